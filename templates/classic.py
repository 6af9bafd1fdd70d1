"""The first networks of the course: LeNet-5 (d2l), an MLP, AlexNet and Network in Network.

LeNet-5, the MLP and NiN follow "Dive into Deep Learning" (sigmoid + average pooling for
LeNet, 1×1 "mlpconv" blocks and global average pooling for NiN). AlexNet mirrors torchvision's
``alexnet`` module for module, so its weights load with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.project import Project
from templates.builder import Builder, conv_params
from templates.registry import FASHION_MNIST_TRAINING, IMAGENET_SHAPE, add_template, generated_training


def lenet5(*, num_classes: int = 10) -> Project:
    b = Builder()
    x = b.input((1, 28, 28))
    with b.group("block1", "Conv 5×5 · 6 → sigmoid → avg-pool"):
        x = b.chain(x, [("Conv2d", "conv1", conv_params(6, 5, padding=2)), ("Sigmoid", "sigmoid1", None),
                        ("AvgPool2d", "pool1", {"kernel_size": 2, "stride": 2})])
    with b.group("block2", "Conv 5×5 · 16 → sigmoid → avg-pool"):
        x = b.chain(x, [("Conv2d", "conv2", conv_params(16, 5)), ("Sigmoid", "sigmoid2", None),
                        ("AvgPool2d", "pool2", {"kernel_size": 2, "stride": 2})])
    with b.group("classifier", "Classifier (dense layers)"):
        x = b.chain(x, [("Flatten", "flatten", None),
                        ("Linear", "fc1", {"out_features": 120}), ("Sigmoid", "sigmoid3", None),
                        ("Linear", "fc2", {"out_features": 84}), ("Sigmoid", "sigmoid4", None),
                        ("Linear", "fc3", {"out_features": num_classes})])
    b.output(x)
    return b.project("LeNet-5", {**FASHION_MNIST_TRAINING, "lr": 0.9})


def mlp(*, num_classes: int = 10, hidden: Sequence[int] = (256,), dropout: float = 0.0) -> Project:
    b = Builder()
    x = b.input((1, 28, 28))
    x = b.add("Flatten", "flatten", inputs=x)  # 1×28×28 → 784 features
    for i, width in enumerate(hidden, start=1):
        with b.group(f"hidden{i}", f"Hidden layer {i}: {width} units"):
            x = b.chain(x, [("Linear", f"fc{i}", {"out_features": int(width)}), ("ReLU", f"relu{i}", None)])
            if dropout:
                x = b.add("Dropout", f"dropout{i}", {"p": float(dropout)}, inputs=x)
    x = b.add("Linear", f"fc{len(hidden) + 1}", {"out_features": num_classes}, inputs=x)
    b.output(x)
    sizes = " → ".join(str(v) for v in (784, *hidden, num_classes))
    return b.project(f"MLP {sizes}", {**FASHION_MNIST_TRAINING, "lr": 0.1})


def alexnet(*, num_classes: int = 1000) -> Project:
    b = Builder()
    x = b.input((3, 224, 224))
    with b.group("features.block1", "Conv 11×11 · 64 · s4 → ReLU → max-pool"):
        x = b.chain(x, [("Conv2d", "features.0", conv_params(64, 11, 4, 2)), ("ReLU", "features.1", None),
                        ("MaxPool2d", "features.2", {"kernel_size": 3, "stride": 2})])
    with b.group("features.block2", "Conv 5×5 · 192 → ReLU → max-pool"):
        x = b.chain(x, [("Conv2d", "features.3", conv_params(192, 5, padding=2)), ("ReLU", "features.4", None),
                        ("MaxPool2d", "features.5", {"kernel_size": 3, "stride": 2})])
    with b.group("features.block3", "Three 3×3 convs (384, 256, 256) → max-pool"):
        for i, width in zip((6, 8, 10), (384, 256, 256), strict=True):
            x = b.chain(x, [("Conv2d", f"features.{i}", conv_params(width, 3, padding=1)),
                            ("ReLU", f"features.{i + 1}", None)])
        x = b.add("MaxPool2d", "features.12", {"kernel_size": 3, "stride": 2}, inputs=x)
    with b.group("head", "Head: adaptive average pooling to 6×6 → three dense layers"):
        x = b.chain(x, [("AdaptiveAvgPool2d", "avgpool", {"output_size": [6, 6]}), ("Flatten", "flatten", None)])
        with b.group("classifier", "Classifier: dropout + three dense layers"):
            x = b.chain(x, [("Dropout", "classifier.0", {"p": 0.5}),
                            ("Linear", "classifier.1", {"out_features": 4096}), ("ReLU", "classifier.2", None),
                            ("Dropout", "classifier.3", {"p": 0.5}),
                            ("Linear", "classifier.4", {"out_features": 4096}), ("ReLU", "classifier.5", None),
                            ("Linear", "classifier.6", {"out_features": num_classes})])
    b.output(x)
    return b.project("AlexNet", generated_training(IMAGENET_SHAPE, num_classes))


def nin(*, num_classes: int = 10) -> Project:
    """d2l's NiN: mlpconv blocks (a conv, then two 1×1 convs), global average pooling, no dense layer."""
    b = Builder()
    x = b.input((1, 224, 224))

    def nin_block(x: str, name: str, out: int, k: int, s: int, p: int) -> str:
        with b.group(name, f"NiN block: {k}×{k} · {out} → two 1×1 convs"):
            return b.chain(x, [("Conv2d", f"{name}.conv", conv_params(out, k, s, p)), ("ReLU", f"{name}.relu1", None),
                               ("Conv2d", f"{name}.mlp1", conv_params(out, 1)), ("ReLU", f"{name}.relu2", None),
                               ("Conv2d", f"{name}.mlp2", conv_params(out, 1)), ("ReLU", f"{name}.relu3", None)])

    x = nin_block(x, "nin1", 96, 11, 4, 0)
    x = b.add("MaxPool2d", "pool1", {"kernel_size": 3, "stride": 2}, inputs=x)
    x = nin_block(x, "nin2", 256, 5, 1, 2)
    x = b.add("MaxPool2d", "pool2", {"kernel_size": 3, "stride": 2}, inputs=x)
    x = nin_block(x, "nin3", 384, 3, 1, 1)
    x = b.add("MaxPool2d", "pool3", {"kernel_size": 3, "stride": 2}, inputs=x)
    x = b.add("Dropout", "dropout", {"p": 0.5}, inputs=x)
    x = nin_block(x, "nin4", num_classes, 3, 1, 1)  # one channel per class
    with b.group("head", "Global average pooling (replaces the dense layers)"):
        x = b.chain(x, [("AdaptiveAvgPool2d", "gap", {"output_size": 1}), ("Flatten", "flatten", None)])
    b.output(x)
    # d2l trains NiN on Fashion-MNIST resized to 224×224; the engine doesn't resize those files, so
    # the default is generated data of the same shape.
    return b.project("Network in Network (NiN)", {**generated_training((1, 224, 224), num_classes), "lr": 0.1})


add_template("lenet5", "LeNet-5",
             "LeCun's LeNet as taught in d2l: two 5×5 convs with sigmoid and 2×2 average pooling, "
             "then three dense layers (120, 84, 10). 61,706 parameters.",
             (1, 28, 28), 10, lenet5)
add_template("mlp", "Multilayer perceptron",
             "Flatten a 28×28 image into 784 features, one hidden layer of 256 ReLU units, 10 outputs. "
             "Options: hidden sizes, dropout.",
             (1, 28, 28), 10, mlp)
add_template("alexnet", "AlexNet",
             "The 2012 ImageNet winner: five convs with ReLU and max-pooling, then three dense layers "
             "with dropout. Same module paths as torchvision's alexnet.",
             (3, 224, 224), 1000, alexnet, torchvision="alexnet")
add_template("nin", "Network in Network",
             "NiN (d2l): each block is a conv followed by two 1×1 convs (an MLP per pixel); global "
             "average pooling over one channel per class replaces the dense layers.",
             (1, 224, 224), 10, nin)

__all__ = ["alexnet", "lenet5", "mlp", "nin"]
