"""VGG-11/13/16/19 (with and without batch norm) and a CIFAR-10 VGG-11: a ``cfgs`` table and one
``make_layers``, the way torchvision writes them.

A cfg entry is a conv width (3×3, padding 1, then [BatchNorm2d,] ReLU) or ``"M"`` (2×2
max-pool, which halves H×W). Node ids count layers exactly as torchvision's ``features``
Sequential does (``features.0`` … ``classifier.6``), so torchvision's weights load with
``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import CIFAR_TRAINING, IMAGENET_SHAPE, add_template, generated_training

CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(b: Builder, x: str, cfg: Sequence[int | str], batch_norm: bool) -> str:
    """The ``features`` part: one top-level group per stage (the convs up to and including a max-pool)."""
    stages: list[list[int | str]] = [[]]
    for v in cfg:
        stages[-1].append(v)
        if v == "M":
            stages.append([])
    index = 0
    for s, stage in enumerate((st for st in stages if st), start=1):
        convs = [v for v in stage if v != "M"]
        label = f"Stage {s}: {len(convs)} × conv 3×3 · {convs[0]}" + (" → max-pool" if "M" in stage else "")
        with b.group(f"features.stage{s}", label):
            for v in stage:
                if v == "M":
                    x = b.add("MaxPool2d", f"features.{index}", {"kernel_size": 2, "stride": 2}, inputs=x)
                    index += 1
                    continue
                x = b.add("Conv2d", f"features.{index}", conv_params(int(v), 3, padding=1), inputs=x)
                index += 1
                if batch_norm:
                    x = b.add("BatchNorm2d", f"features.{index}", inputs=x)
                    index += 1
                x = b.add("ReLU", f"features.{index}", inputs=x)
                index += 1
    return x


def vgg(cfg_name: str, batch_norm: bool, *, num_classes: int = 1000) -> Project:
    b = Builder()
    x = b.input((3, 224, 224))
    x = make_layers(b, x, CFGS[cfg_name], batch_norm)
    with b.group("head", "Head: adaptive average pooling to 7×7 → three dense layers"):
        x = b.chain(x, [("AdaptiveAvgPool2d", "avgpool", {"output_size": [7, 7]}), ("Flatten", "flatten", None)])
        with b.group("classifier", "Classifier: three dense layers with dropout"):
            x = b.chain(x, [("Linear", "classifier.0", {"out_features": 4096}), ("ReLU", "classifier.1", None),
                            ("Dropout", "classifier.2", {"p": 0.5}),
                            ("Linear", "classifier.3", {"out_features": 4096}), ("ReLU", "classifier.4", None),
                            ("Dropout", "classifier.5", {"p": 0.5}),
                            ("Linear", "classifier.6", {"out_features": num_classes})])
    b.output(x)
    title = f"VGG-{cfg_name[3:]}" + (" with batch norm" if batch_norm else "")
    return b.project(title, generated_training(IMAGENET_SHAPE, num_classes))


def vgg11_cifar(*, num_classes: int = 10) -> Project:
    """VGG-11 with batch norm for 32×32 images: five max-pools leave 512×1×1, one dense layer follows."""
    b = Builder()
    x = b.input((3, 32, 32))
    x = make_layers(b, x, CFGS["vgg11"], batch_norm=True)
    with b.group("head", "Classifier"):
        x = b.chain(x, [("Flatten", "flatten", None), ("Linear", "classifier", {"out_features": num_classes})])
    b.output(x)
    return b.project("VGG-11 for CIFAR-10", CIFAR_TRAINING)


def _register() -> None:
    for cfg_name in CFGS:
        depth = cfg_name[3:]
        n_conv = sum(1 for v in CFGS[cfg_name] if v != "M")
        for bn in (False, True):
            name = cfg_name + ("_bn" if bn else "")
            add_template(
                name, f"VGG-{depth}" + (" (batch norm)" if bn else ""),
                f"{n_conv} conv layers of 3×3 in five stages (64 → 512 channels), each stage ending in a "
                f"2×2 max-pool, then three dense layers{'; BatchNorm after every conv' if bn else ''}. "
                f"Same module paths as torchvision's {name}.",
                (3, 224, 224), 1000, partial(vgg, cfg_name, bn), torchvision=name)
    add_template("vgg11_cifar", "VGG-11 for CIFAR-10",
                 "VGG-11 with batch norm sized for 3×32×32 images: the five stages shrink 32 → 1, "
                 "then one dense layer of 512 → 10.",
                 (3, 32, 32), 10, vgg11_cifar)


_register()

__all__ = ["CFGS", "make_layers", "vgg", "vgg11_cifar"]
