"""GoogLeNet (Inception v1), mirroring torchvision's ``googlenet``.

An Inception block runs four paths side by side — 1×1; 1×1 → 3×3; 1×1 → "5×5"; 3×3 max-pool
→ 1×1 — and concatenates them on channels. Like torchvision, the "5×5" path uses a 3×3 kernel
(torchvision keeps that quirk so its weights load). Every conv is torchvision's BasicConv2d:
conv (no bias) → BatchNorm (ε = 0.001) → ReLU.

``aux_logits`` (default True, as torchvision's ``googlenet()`` constructor without weights)
adds the two auxiliary classifiers after inception4a and inception4d. The graph then has
three Outputs in torchvision's order (main, aux2, aux1); torchvision computes the auxiliary
heads only in training mode, the compiled graph always computes them.
"""

from __future__ import annotations

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import IMAGENET_SHAPE, add_template, generated_training

# (name, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) per Inception block, grouped in stages;
# a string is a max-pool (3×3/s2, 2×2/s2 before stage 5), all with ceil_mode as torchvision.
_Block = tuple[str, int, int, int, int, int, int]
STAGES: dict[str, list[_Block | str]] = {
    "stage3": [("inception3a", 64, 96, 128, 16, 32, 32), ("inception3b", 128, 128, 192, 32, 96, 64), "maxpool3"],
    "stage4": [("inception4a", 192, 96, 208, 16, 48, 64), ("inception4b", 160, 112, 224, 24, 64, 64),
               ("inception4c", 128, 128, 256, 24, 64, 64), ("inception4d", 112, 144, 288, 32, 64, 64),
               ("inception4e", 256, 160, 320, 32, 128, 128), "maxpool4"],
    "stage5": [("inception5a", 256, 160, 320, 32, 128, 128), ("inception5b", 384, 192, 384, 48, 128, 128)],
}
AUX_AFTER = {"inception4a": "aux1", "inception4d": "aux2"}


def basic_conv(b: Builder, x: str, name: str, out: int, k: int, stride: int = 1, padding: int = 0) -> str:
    """torchvision's BasicConv2d: ``name.conv`` → ``name.bn`` → a functional ReLU (``name.relu``)."""
    return b.chain(x, [("Conv2d", f"{name}.conv", conv_params(out, k, stride, padding, bias=False)),
                       ("BatchNorm2d", f"{name}.bn", {"eps": 0.001}),
                       ("ReLU", f"{name}.relu", None)])


def inception(b: Builder, x: str, name: str, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int) -> str:
    with b.group(name, f"Inception: 1×1 · {c1} | 3×3 · {c3} | 5×5 · {c5} | pool → 1×1 · {pool} "
                       f"→ concat {c1 + c3 + c5 + pool}"):
        with b.lane(-1.5), b.group(f"{name}.branch1", f"1×1 conv · {c1}"):
            b1 = basic_conv(b, x, f"{name}.branch1", c1, 1)
        with b.lane(-0.5), b.group(f"{name}.branch2", f"1×1 · {c3r} → 3×3 · {c3}"):
            b2 = basic_conv(b, basic_conv(b, x, f"{name}.branch2.0", c3r, 1), f"{name}.branch2.1", c3, 3, padding=1)
        with b.lane(0.5), b.group(f"{name}.branch3", f"1×1 · {c5r} → 3×3 · {c5} (torchvision's \"5×5\" path)"):
            b3 = basic_conv(b, basic_conv(b, x, f"{name}.branch3.0", c5r, 1), f"{name}.branch3.1", c5, 3, padding=1)
        with b.lane(1.5), b.group(f"{name}.branch4", f"3×3 max-pool → 1×1 · {pool}"):
            p = b.add("MaxPool2d", f"{name}.branch4.0",
                      {"kernel_size": 3, "stride": 1, "padding": 1, "ceil_mode": True}, inputs=x)
            b4 = basic_conv(b, p, f"{name}.branch4.1", pool, 1)
        return b.add("Concat", f"{name}.cat", {"dim": 1}, inputs=[b1, b2, b3, b4])


def inception_aux(b: Builder, x: str, name: str, num_classes: int) -> str:
    """torchvision's InceptionAux, ending in its own Output ``output_<name>`` inside the block."""
    with b.lane(3), b.group(name, "Auxiliary classifier (weighted 0.3 in the loss while training)"):
        x = b.add("AdaptiveAvgPool2d", f"{name}.avgpool", {"output_size": [4, 4]}, inputs=x)
        with b.group(f"{name}.conv", "1×1 conv · 128"):
            x = basic_conv(b, x, f"{name}.conv", 128, 1)
        x = b.chain(x, [("Flatten", f"{name}.flatten", None), ("Linear", f"{name}.fc1", {"out_features": 1024}),
                        ("ReLU", f"{name}.relu", None), ("Dropout", f"{name}.dropout", {"p": 0.7}),
                        ("Linear", f"{name}.fc2", {"out_features": num_classes})])
        return b.output(x, f"output_{name}")


def googlenet(*, num_classes: int = 1000, aux_logits: bool = True) -> Project:
    b = Builder()
    x = b.input((3, 224, 224))
    pool = {"kernel_size": 3, "stride": 2, "ceil_mode": True}
    with b.group("stem", "Stem: conv 7×7 · s2 → max-pool → 1×1 → 3×3 → max-pool"):
        with b.group("conv1", "conv 7×7 · 64 · s2"):
            x = basic_conv(b, x, "conv1", 64, 7, 2, 3)
        x = b.add("MaxPool2d", "maxpool1", pool, inputs=x)
        with b.group("conv2", "conv 1×1 · 64"):
            x = basic_conv(b, x, "conv2", 64, 1)
        with b.group("conv3", "conv 3×3 · 192"):
            x = basic_conv(b, x, "conv3", 192, 3, padding=1)
        x = b.add("MaxPool2d", "maxpool2", pool, inputs=x)
    for stage, entries in STAGES.items():
        blocks = [e[0] for e in entries if not isinstance(e, str)]
        with b.group(stage, f"Stage {stage[-1]}: " + ", ".join(blocks)
                     + (" → max-pool" if isinstance(entries[-1], str) else "")):
            for entry in entries:
                if isinstance(entry, str):
                    params = {"kernel_size": 2, "stride": 2, "ceil_mode": True} if entry == "maxpool4" else pool
                    x = b.add("MaxPool2d", entry, params, inputs=x)
                    continue
                x = inception(b, x, *entry)
                if aux_logits and entry[0] in AUX_AFTER:
                    inception_aux(b, x, AUX_AFTER[entry[0]], num_classes)
    with b.group("head", "Head: global average pooling → dropout → dense"):
        x = b.chain(x, [("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}), ("Flatten", "flatten", None),
                        ("Dropout", "dropout", {"p": 0.2}), ("Linear", "fc", {"out_features": num_classes})])
    b.output(x)
    if aux_logits:  # the model returns Outputs in file order: torchvision's logits, aux_logits2, aux_logits1
        b.move_to_end("output_aux2")
        b.move_to_end("output_aux1")
    return b.project("GoogLeNet (Inception v1)", generated_training(IMAGENET_SHAPE, num_classes))


add_template("googlenet", "GoogLeNet (Inception v1)",
             "Nine Inception blocks, each concatenating four parallel paths (1×1, 3×3, 5×5 and pooling) on "
             "channels; 1×1 convs keep it cheap. Two auxiliary classifiers (option aux_logits) help train "
             "the middle. Same module paths as torchvision's googlenet.",
             (3, 224, 224), 1000, googlenet, torchvision="googlenet")

__all__ = ["basic_conv", "googlenet", "inception", "inception_aux"]
