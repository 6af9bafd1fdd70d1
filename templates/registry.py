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
# template is sized for. The built-in generated ``shapes`` dataset needs no download.
IMAGENET_TRAINING: dict[str, Any] = {
    "dataset": "shapes", "epochs": 5, "batch_size": 32, "optimizer": "sgd", "lr": 0.01,
    "momentum": 0.9, "weight_decay": 1e-4,
}
CIFAR_TRAINING: dict[str, Any] = {
    "dataset": "cifar10", "epochs": 30, "batch_size": 128, "optimizer": "sgd", "lr": 0.1,
    "momentum": 0.9, "weight_decay": 5e-4,
}


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


__all__ = ["CIFAR_TRAINING", "IMAGENET_TRAINING", "TemplateInfo", "add_template", "registered"]
