"""ResNet-18/34/50/101/152, ResNeXt-50 32×4d and a CIFAR-10 ResNet-18: block builders, as in
torchvision's ``resnet.py``.

A BasicBlock is two 3×3 convs; a Bottleneck is 1×1 (reduce) → 3×3 (grouped for ResNeXt) → 1×1
(expand ×4). Each conv is followed by BatchNorm (so the convs carry no bias), the residual
``Add`` comes before the last ReLU, and a 1×1 conv + BN projects the shortcut whenever the
stride or the channel count changes. Node ids are torchvision's module paths; torchvision
reuses one ``relu`` module per block, so the later ReLUs of a block get graph-only ids
(``layer1.0.relu_1``), which hold no parameters and add no ``state_dict`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import CIFAR_TRAINING, IMAGENET_SHAPE, add_template, generated_training


class _ResNetBuilder:
    """State shared while building one network: channel count so far, groups and width."""

    def __init__(self, b: Builder, bottleneck: bool, groups: int = 1, width_per_group: int = 64) -> None:
        self.b = b
        self.bottleneck = bottleneck
        self.expansion = 4 if bottleneck else 1
        self.groups = groups
        self.width_per_group = width_per_group
        self.inplanes = 64

    def _shortcut(self, x: str, name: str, out: int, stride: int) -> str:
        b = self.b
        if stride == 1 and self.inplanes == out:
            return x  # identity shortcut: an edge straight to the Add
        with b.lane(1), b.group(f"{name}.downsample", f"Shortcut: 1×1 conv · {out}" + (f" · s{stride}" if stride > 1
                                                                                       else "") + " + BN"):
            return b.chain(x, [("Conv2d", f"{name}.downsample.0", conv_params(out, 1, stride, bias=False)),
                               ("BatchNorm2d", f"{name}.downsample.1", None)])

    def block(self, x: str, name: str, planes: int, stride: int) -> str:
        b = self.b
        out = planes * self.expansion
        if self.bottleneck:
            width = int(planes * (self.width_per_group / 64.0)) * self.groups
            kind = "Bottleneck" if self.groups == 1 else f"Bottleneck ({self.groups} groups)"
            label = f"{kind} {width} → {out}"
        else:
            label = f"BasicBlock {out}"
        if stride > 1:
            label += f", stride {stride}"
        with b.group(name, label):
            if self.bottleneck:
                main = b.chain(x, [
                    ("Conv2d", f"{name}.conv1", conv_params(width, 1, bias=False)),
                    ("BatchNorm2d", f"{name}.bn1", None), ("ReLU", f"{name}.relu", None),
                    ("Conv2d", f"{name}.conv2", conv_params(width, 3, stride, 1, bias=False, groups=self.groups)),
                    ("BatchNorm2d", f"{name}.bn2", None), ("ReLU", f"{name}.relu_1", None),
                    ("Conv2d", f"{name}.conv3", conv_params(out, 1, bias=False)),
                    ("BatchNorm2d", f"{name}.bn3", None)])
                last_relu = f"{name}.relu_2"
            else:
                main = b.chain(x, [
                    ("Conv2d", f"{name}.conv1", conv_params(out, 3, stride, 1, bias=False)),
                    ("BatchNorm2d", f"{name}.bn1", None), ("ReLU", f"{name}.relu", None),
                    ("Conv2d", f"{name}.conv2", conv_params(out, 3, 1, 1, bias=False)),
                    ("BatchNorm2d", f"{name}.bn2", None)])
                last_relu = f"{name}.relu_1"
            shortcut = self._shortcut(x, name, out, stride)
            x = b.add("Add", f"{name}.add", inputs=[main, shortcut])
            x = b.add("ReLU", last_relu, inputs=x)
        self.inplanes = out
        return x

    def stage(self, x: str, index: int, planes: int, blocks: int, stride: int) -> str:
        kind = "Bottleneck" if self.bottleneck else "BasicBlock"
        with self.b.group(f"layer{index}", f"Stage {index}: {blocks} × {kind}, {planes * self.expansion} channels"):
            for i in range(blocks):
                x = self.block(x, f"layer{index}.{i}", planes, stride if i == 0 else 1)
        return x


def resnet_features(b: Builder, x: str, layers: Sequence[int], bottleneck: bool, groups: int = 1,
                    width_per_group: int = 64, cifar_stem: bool = False) -> str:
    """The stem and the four stages from ``x`` (torchvision's node ids): the network minus avgpool and fc,
    which d2l's FCN keeps as its backbone. Returns the last stage's output."""
    with b.group("stem", "Stem: conv 3×3 · 64 → BN → ReLU" if cifar_stem
                 else "Stem: conv 7×7 · 64 · s2 → BN → ReLU → max-pool · s2"):
        conv1 = conv_params(64, 3, 1, 1, bias=False) if cifar_stem else conv_params(64, 7, 2, 3, bias=False)
        x = b.chain(x, [("Conv2d", "conv1", conv1), ("BatchNorm2d", "bn1", None), ("ReLU", "relu", None)])
        if not cifar_stem:  # 32×32 images are too small to lose another factor of 2 here
            x = b.add("MaxPool2d", "maxpool", {"kernel_size": 3, "stride": 2, "padding": 1}, inputs=x)
    rb = _ResNetBuilder(b, bottleneck, groups, width_per_group)
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True), start=1):
        x = rb.stage(x, i, planes, blocks, 1 if i == 1 else 2)
    return x


def resnet(title: str, layers: Sequence[int], bottleneck: bool, groups: int = 1, width_per_group: int = 64,
           cifar_stem: bool = False, *, num_classes: int = 1000) -> Project:
    """The structure comes positionally (bound per template); keyword-only arguments are user options."""
    b = Builder()
    x = b.input((3, 32, 32) if cifar_stem else (3, 224, 224))
    x = resnet_features(b, x, layers, bottleneck, groups, width_per_group, cifar_stem)
    with b.group("head", "Head: global average pooling → dense"):
        x = b.chain(x, [("AdaptiveAvgPool2d", "avgpool", {"output_size": [1, 1]}), ("Flatten", "flatten", None),
                        ("Linear", "fc", {"out_features": num_classes})])
    b.output(x)
    return b.project(title, CIFAR_TRAINING if cifar_stem else generated_training(IMAGENET_SHAPE, num_classes))


_BASIC = "two 3×3 convs per residual block"
_BOTTLENECK = "bottleneck blocks (1×1 reduce → 3×3 → 1×1 expand ×4)"
for _depth, _layers, _bottleneck in ((18, (2, 2, 2, 2), False), (34, (3, 4, 6, 3), False),
                                     (50, (3, 4, 6, 3), True), (101, (3, 4, 23, 3), True),
                                     (152, (3, 8, 36, 3), True)):
    add_template(f"resnet{_depth}", f"ResNet-{_depth}",
                 f"Residual network with {'/'.join(map(str, _layers))} blocks in four stages, "
                 f"{_BOTTLENECK if _bottleneck else _BASIC}; BN after every conv, a 1×1 projection shortcut "
                 f"where the shape changes. Same module paths as torchvision's resnet{_depth}.",
                 (3, 224, 224), 1000, partial(resnet, f"ResNet-{_depth}", _layers, _bottleneck),
                 torchvision=f"resnet{_depth}")

add_template("resnext50_32x4d", "ResNeXt-50 32×4d",
             "ResNet-50 whose 3×3 bottleneck convs are grouped: 32 groups of width 4 (aggregated "
             "transformations), wider but about as cheap. Same module paths as torchvision's resnext50_32x4d.",
             (3, 224, 224), 1000,
             partial(resnet, "ResNeXt-50 32×4d", (3, 4, 6, 3), True, 32, 4),
             torchvision="resnext50_32x4d")
add_template("resnet18_cifar", "ResNet-18 for CIFAR-10",
             "ResNet-18 sized for 3×32×32 images: a 3×3 stride-1 stem without max-pooling keeps 32×32 "
             "into stage 1; 10 classes.",
             (3, 32, 32), 10, partial(resnet, "ResNet-18 for CIFAR-10", (2, 2, 2, 2), False, 1, 64, True,
                                      num_classes=10))

__all__ = ["resnet", "resnet_features"]
