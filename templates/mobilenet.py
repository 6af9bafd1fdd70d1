"""MobileNet V2, mirroring torchvision's ``mobilenet_v2``.

An inverted residual block expands the channels with a 1×1 conv (×t), filters each channel
on its own with a 3×3 depthwise conv (``groups`` = channels), then projects back down with a
linear 1×1 conv (no activation). The shortcut ``Add`` exists only when the stride is 1 and
the channel count is unchanged. Activations are ReLU6. Node ids follow torchvision's
``features.N.conv.M`` paths.
"""

from __future__ import annotations

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import IMAGENET_SHAPE, add_template, generated_training

# t (expansion), c (output channels), n (blocks), s (stride of the first block): torchvision's table
SETTINGS: list[tuple[int, int, int, int]] = [
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
]


def conv_bn_relu6(b: Builder, x: str, name: str, out: int, k: int, stride: int = 1, groups: int = 1) -> str:
    """torchvision's Conv2dNormActivation: ``name.0`` conv (no bias) → ``name.1`` BN → ``name.2`` ReLU6."""
    return b.chain(x, [("Conv2d", f"{name}.0", conv_params(out, k, stride, (k - 1) // 2, bias=False, groups=groups)),
                       ("BatchNorm2d", f"{name}.1", None), ("ReLU6", f"{name}.2", None)])


def inverted_residual(b: Builder, x: str, name: str, inp: int, out: int, stride: int, t: int) -> str:
    hidden = inp * t  # torchvision: int(round(inp * expand_ratio)), exact for integer t
    residual = stride == 1 and inp == out
    label = (f"Inverted residual: {inp} → ×{t} = {hidden} → depthwise 3×3" + (f" · s{stride}" if stride > 1 else "")
             + f" → {out}" + (", + shortcut" if residual else ""))
    with b.group(name, label):
        y, m = x, 0
        if t != 1:
            y = conv_bn_relu6(b, y, f"{name}.conv.0", hidden, 1)
            m = 1
        y = conv_bn_relu6(b, y, f"{name}.conv.{m}", hidden, 3, stride, groups=hidden)
        y = b.chain(y, [("Conv2d", f"{name}.conv.{m + 1}", conv_params(out, 1, bias=False)),
                        ("BatchNorm2d", f"{name}.conv.{m + 2}", None)])
        if residual:
            y = b.add("Add", f"{name}.add", inputs=[x, y])
    return y


def mobilenet_v2(*, num_classes: int = 1000) -> Project:
    b = Builder()
    x = b.input((3, 224, 224))
    with b.group("features.0", "Stem: conv 3×3 · 32 · s2 → BN → ReLU6"):
        x = conv_bn_relu6(b, x, "features.0", 32, 3, 2)
    channels, index = 32, 1
    for s_i, (t, c, n, s) in enumerate(SETTINGS, start=1):
        with b.group(f"stage{s_i}", f"Stage {s_i}: {n} × inverted residual (t={t}) → {c} channels"
                     + (f", stride {s}" if s > 1 else "")):
            for i in range(n):
                x = inverted_residual(b, x, f"features.{index}", channels, c, s if i == 0 else 1, t)
                channels, index = c, index + 1
    with b.group(f"features.{index}", "conv 1×1 · 1280 → BN → ReLU6"):
        x = conv_bn_relu6(b, x, f"features.{index}", 1280, 1)
    with b.group("head", "Head: global average pooling → dropout → dense"):
        # torchvision pools and flattens functionally in forward(), then its classifier Sequential
        x = b.chain(x, [("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}), ("Flatten", "flatten", None)])
        with b.group("classifier", "Classifier: dropout → dense"):
            x = b.chain(x, [("Dropout", "classifier.0", {"p": 0.2}),
                            ("Linear", "classifier.1", {"out_features": num_classes})])
    b.output(x)
    return b.project("MobileNet V2", generated_training(IMAGENET_SHAPE, num_classes))


add_template("mobilenet_v2", "MobileNet V2",
             "Inverted residual blocks: expand ×6 with a 1×1 conv, a cheap 3×3 depthwise conv, a linear 1×1 "
             "projection, and a shortcut when the shape allows; ReLU6. 3.5 M parameters, 0.3 GMACs. "
             "Same module paths as torchvision's mobilenet_v2.",
             (3, 224, 224), 1000, mobilenet_v2, torchvision="mobilenet_v2")

__all__ = ["conv_bn_relu6", "inverted_residual", "mobilenet_v2"]
