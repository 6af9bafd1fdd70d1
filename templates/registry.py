"""The table of built-in templates: what each one is (for the list) and the function that builds it.

Family modules (``templates/vgg.py`` …) call :func:`add_template` at import; names are unique.
A builder takes only keyword options (``num_classes`` …) and returns a fresh
:class:`core.project.Project` each call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.project import Project

Build = Callable[..., Project]

# Training defaults (the project's ``training`` section, DESIGN.md §4/§9), by the data a
# template is sized for. The engine feeds images at the graph's Input shape and does not resize
# MNIST-style or CIFAR files, so a 224-px template defaults to generated data of exactly its
# shape and class count: Train works at once, with no download; a user points it at an image
# folder (resized to the Input) for real work.
CIFAR_TRAINING: dict[str, Any] = {
    "dataset": "cifar10", "epochs": 30, "batch_size": 128, "optimizer": "sgd", "lr": 0.1,
    "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine",
}
FASHION_MNIST_TRAINING: dict[str, Any] = {
    "dataset": "fashion-mnist", "epochs": 10, "batch_size": 256, "optimizer": "sgd", "momentum": 0.0,
}


def generated_training(input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """Generated images fitting ``input_shape`` and ``num_classes`` (small: ~190 MB at 3×224×224)."""
    dims = ",".join(str(v) for v in (*input_shape, num_classes))
    return {"dataset": f"synthetic:{dims}", "train_size": 1000, "val_size": 250, "epochs": 3, "batch_size": 32,
            "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4}


IMAGENET_SHAPE = (3, 224, 224)


@dataclass(frozen=True)
class TemplateInfo:
    """One line of ``main.py templates``: what a student sees before opening a template."""

    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    num_classes: int
    torchvision: str | None = None  # the torchvision model it mirrors (same module paths), if any
    options: tuple[str, ...] = ()  # keyword options build_template accepts


_TEMPLATES: dict[str, tuple[TemplateInfo, Build]] = {}


def add_template(name: str, title: str, description: str, input_shape: tuple[int, ...], num_classes: int,
                 build: Build, torchvision: str | None = None) -> TemplateInfo:
    """Register ``build`` under ``name``; its keyword-only parameters are the template's options."""
    if name in _TEMPLATES:
        raise ValueError(f"template {name!r} is already registered")
    options = tuple(p.name for p in inspect.signature(build).parameters.values()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY)
    info = TemplateInfo(name, title, description, tuple(input_shape), num_classes, torchvision, options)
    _TEMPLATES[name] = (info, build)
    return info


def registered() -> dict[str, tuple[TemplateInfo, Build]]:
    return _TEMPLATES


__all__ = ["CIFAR_TRAINING", "FASHION_MNIST_TRAINING", "IMAGENET_SHAPE", "TemplateInfo", "add_template",
           "generated_training", "registered"]
