"""Semantic segmentation templates: networks whose output is a class map the size of the image.

``fcn-resnet18`` is d2l's fully convolutional network (Dive into Deep Learning, §14.11 "Fully
Convolutional Networks", after Long, Shelhamer & Darrell 2015): ResNet-18 without its global
average pooling and dense layer (torchvision's node ids, so ImageNet weights load into the
backbone with ``--weights DEFAULT`` as d2l's ``pretrained=True`` does), a 1×1 convolution from 512
channels to the classes, and one transposed convolution (kernel 64, stride 32, padding 16) that
brings the stride-32 class map back to the input size, initialised as bilinear upsampling.

``unet`` is a small U-Net (Ronneberger, Fischer & Brox 2015): per scale two 3×3 convolutions
(with BatchNorm and ReLU; padded, so the skips need no cropping), 2×2 max-pooling down, a 2×2
stride-2 transposed convolution up, the encoder's map of the same scale concatenated onto it, and
a 1×1 convolution to the classes.

Both take 3×64×64 images and train on ``shapes-seg``; their class count defaults to its classes.
"""

from __future__ import annotations

from typing import Any

from core.project import Project
from core.sources import SourceError
from templates.builder import Builder, conv_params
from templates.registry import add_template
from templates.resnet import resnet_features

SEG_INPUT = (3, 64, 64)
# The number of classes of shapes-seg (background + five shape kinds). The listing needs it when the
# templates register, before anything imports torch, so it is written here; the builders read the
# dataset's own SHAPES_SEG_CLASSES, and tests/core/test_templates_segmentation.py checks the two agree.
SHAPES_SEG_NUM_CLASSES = 6


def _shapes_seg_classes() -> int:
    """``len(SHAPES_SEG_CLASSES)``, read when a template is built (that module imports torch)."""
    from core.training.data.segmentation import SHAPES_SEG_CLASSES

    return len(SHAPES_SEG_CLASSES)


def _training(epochs: int, lr: float) -> dict[str, Any]:
    """shapes-seg with Adam: a from-scratch network learns its 64×64 scenes in a few CPU epochs."""
    return {"task": "segmentation", "dataset": "shapes-seg", "epochs": epochs, "batch_size": 32,
            "optimizer": "adam", "lr": lr, "weight_decay": 1e-4, "schedule": "cosine"}


def fcn_resnet18(*, num_classes: int | None = None) -> Project:
    """d2l's FCN on a ResNet-18 backbone (§14.11): backbone → 1×1 conv → ConvTranspose2d ×32, bilinear."""
    classes = _shapes_seg_classes() if num_classes is None else num_classes
    b = Builder()
    x = b.input(SEG_INPUT)
    x = resnet_features(b, x, (2, 2, 2, 2), bottleneck=False)
    with b.group("head", f"FCN head: 1×1 conv · {classes} classes → transposed conv ×32 (bilinear init)"):
        # d2l's names for the two layers it adds (net.add_module('final_conv' / 'transpose_conv', …))
        x = b.chain(x, [
            ("Conv2d", "final_conv", {"out_channels": classes, "kernel_size": 1}),
            ("ConvTranspose2d", "transpose_conv", {"out_channels": classes, "kernel_size": 64, "stride": 32,
                                                   "padding": 16, "weight_init": "bilinear"})])
    b.output(x)
    project = b.project("FCN (ResNet-18)", _training(epochs=8, lr=1e-3))
    # The backbone has torchvision resnet18's ids: --weights DEFAULT loads ImageNet weights into it (fc is
    # left out, the head starts fresh), which is how d2l builds its FCN.
    project.extra["torchvision"] = "resnet18"
    return project


def _double_conv(b: Builder, x: str, name: str, channels: int) -> str:
    """U-Net's unit of every scale: (3×3 conv → BN → ReLU) twice, padded so the size is kept."""
    with b.group(name, f"2 × (conv 3×3 · {channels} → BN → ReLU)"):
        return b.chain(x, [
            ("Conv2d", f"{name}.conv1", conv_params(channels, 3, 1, 1, bias=False)),
            ("BatchNorm2d", f"{name}.bn1", None), ("ReLU", f"{name}.relu1", None),
            ("Conv2d", f"{name}.conv2", conv_params(channels, 3, 1, 1, bias=False)),
            ("BatchNorm2d", f"{name}.bn2", None), ("ReLU", f"{name}.relu2", None)])


def unet(*, num_classes: int | None = None, base_channels: int = 16, scales: int = 4) -> Project:
    """A small U-Net: ``scales`` resolutions (3 or 4), ``base_channels`` at the top, doubling per scale."""
    if scales not in (3, 4):
        raise SourceError(f"template 'unet': scales must be 3 or 4, got {scales!r}")
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 1:
        raise SourceError(f"template 'unet': base_channels must be a positive integer, got {base_channels!r}")
    classes = _shapes_seg_classes() if num_classes is None else num_classes
    widths = [base_channels * 2 ** i for i in range(scales)]
    b = Builder()
    x = b.input(SEG_INPUT)
    skips: list[str] = []
    for i, width in enumerate(widths[:-1], start=1):  # encoder: keep each scale's map for its skip
        x = _double_conv(b, x, f"enc{i}", width)
        skips.append(x)
        x = b.add("MaxPool2d", f"pool{i}", {"kernel_size": 2}, inputs=x)
    x = _double_conv(b, x, "bottleneck", widths[-1])
    for i in range(scales - 1, 0, -1):  # decoder: up, concatenate the skip, two convs
        width = widths[i - 1]
        with b.group(f"up{i}", f"Up ×2 to {width} channels, concatenate enc{i}"):
            up = b.add("ConvTranspose2d", f"up{i}.up", {"out_channels": width, "kernel_size": 2, "stride": 2},
                       inputs=x)
            x = b.add("Concat", f"up{i}.cat", inputs=[up, skips[i - 1]])
        x = _double_conv(b, x, f"dec{i}", width)
    with b.group("head", f"Head: 1×1 conv · {classes} classes"):
        x = b.add("Conv2d", "head.conv", {"out_channels": classes, "kernel_size": 1}, inputs=x)
    b.output(x)
    return b.project("U-Net (small)", _training(epochs=8, lr=2e-3))


add_template("fcn-resnet18", "FCN (ResNet-18)",
             "d2l's fully convolutional network: ResNet-18 without its pooling and dense layer (torchvision's "
             "ids), a 1×1 conv to the classes and a transposed conv (kernel 64, stride 32) initialised as "
             "bilinear upsampling back to 64×64. Segmentation of shapes-seg.",
             SEG_INPUT, SHAPES_SEG_NUM_CLASSES, fcn_resnet18)
add_template("unet", "U-Net (small)",
             "A small U-Net (Ronneberger et al.): two 3×3 conv+BN+ReLU per scale, max-pool down, transposed "
             "conv up and the encoder's map concatenated at each scale, a 1×1 conv to the classes. "
             "Segmentation of shapes-seg.",
             SEG_INPUT, SHAPES_SEG_NUM_CLASSES, unet)

__all__ = ["SHAPES_SEG_NUM_CLASSES", "fcn_resnet18", "unet"]
