"""DenseNet-121, mirroring torchvision's ``densenet121``.

In a dense block every layer (BN → ReLU → 1×1 conv to 4·k → BN → ReLU → 3×3 conv to k = 32
channels) sees the concatenation of everything before it and appends its k new channels. The
graph writes that the way d2l does, as a running concatenation: each dense layer ends in a
``Concat`` of its input and its new features (``features.denseblock1.denselayer1.cat``), which
is exactly torchvision's ``torch.cat(features, 1)``. Transition layers (BN → ReLU → 1×1 conv
halving the channels → 2×2 average pooling) sit between blocks.
"""

from __future__ import annotations

from functools import partial

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import IMAGENET_SHAPE, add_template, generated_training


def dense_block(b: Builder, x: str, name: str, num_layers: int, channels: int, growth: int, bn_size: int) -> str:
    with b.group(name, f"Dense block: {num_layers} layers, {channels} → {channels + num_layers * growth} channels"):
        for j in range(1, num_layers + 1):
            layer = f"{name}.denselayer{j}"
            with b.group(layer, f"Dense layer: BN-ReLU-1×1 · {bn_size * growth} → BN-ReLU-3×3 · {growth} → concat"):
                new = b.chain(x, [
                    ("BatchNorm2d", f"{layer}.norm1", None), ("ReLU", f"{layer}.relu1", None),
                    ("Conv2d", f"{layer}.conv1", conv_params(bn_size * growth, 1, bias=False)),
                    ("BatchNorm2d", f"{layer}.norm2", None), ("ReLU", f"{layer}.relu2", None),
                    ("Conv2d", f"{layer}.conv2", conv_params(growth, 3, padding=1, bias=False))])
                with b.lane(1):
                    x = b.add("Concat", f"{layer}.cat", {"dim": 1}, inputs=[x, new])
    return x


def densenet(title: str, block_config: tuple[int, ...], growth: int = 32, num_init: int = 64, bn_size: int = 4, *,
             num_classes: int = 1000) -> Project:
    """The structure comes positionally (bound per template); keyword-only arguments are user options."""
    b = Builder()
    x = b.input((3, 224, 224))
    with b.group("stem", f"Stem: conv 7×7 · {num_init} · s2 → BN → ReLU → max-pool"):
        x = b.chain(x, [("Conv2d", "features.conv0", conv_params(num_init, 7, 2, 3, bias=False)),
                        ("BatchNorm2d", "features.norm0", None), ("ReLU", "features.relu0", None),
                        ("MaxPool2d", "features.pool0", {"kernel_size": 3, "stride": 2, "padding": 1})])
    channels = num_init
    for i, num_layers in enumerate(block_config, start=1):
        x = dense_block(b, x, f"features.denseblock{i}", num_layers, channels, growth, bn_size)
        channels += num_layers * growth
        if i < len(block_config):
            name = f"features.transition{i}"
            with b.group(name, f"Transition: BN → ReLU → 1×1 conv {channels} → {channels // 2} → avg-pool 2×2"):
                x = b.chain(x, [("BatchNorm2d", f"{name}.norm", None), ("ReLU", f"{name}.relu", None),
                                ("Conv2d", f"{name}.conv", conv_params(channels // 2, 1, bias=False)),
                                ("AvgPool2d", f"{name}.pool", {"kernel_size": 2, "stride": 2})])
            channels //= 2
    with b.group("head", "Head: BN → ReLU → global average pooling → dense"):
        # torchvision applies this ReLU, the pooling and the flatten functionally in forward()
        x = b.chain(x, [("BatchNorm2d", "features.norm5", None), ("ReLU", "relu", None),
                        ("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}), ("Flatten", "flatten", None),
                        ("Linear", "classifier", {"out_features": num_classes})])
    b.output(x)
    return b.project(title, generated_training(IMAGENET_SHAPE, num_classes))


add_template("densenet121", "DenseNet-121",
             "Dense blocks of 6/12/24/16 layers where each layer receives the concatenated features of all "
             "earlier ones (growth rate 32), with transition layers halving channels and size between "
             "blocks. Same module paths as torchvision's densenet121.",
             (3, 224, 224), 1000, partial(densenet, "DenseNet-121", (6, 12, 24, 16)), torchvision="densenet121")

__all__ = ["dense_block", "densenet"]
