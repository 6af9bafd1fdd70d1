"""``torchvision:NAME``: torchvision's classification and segmentation models, built without weights and imported.

A segmentation model (``fcn_resnet50``, ``deeplabv3_mobilenet_v3_large``, ``lraspp_mobilenet_v3_large`` …)
is built with its auxiliary head where it has one and without its backbone's pretrained weights; its
``{"out": …, "aux": …}`` dict becomes Outputs named ``out`` and ``aux``.

The import itself is :func:`~core.importer.pipeline.import_module`; this module only knows
torchvision: the model names, the input each expects, and how to build one cheaply (on the meta
device where torchvision allows). torchvision is imported inside the functions, so importing the
importer does not pay for it until a ``torchvision:`` source is used.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from core.errors import SourceError
from core.importer.pipeline import import_module
from core.project import Project


def torchvision_names() -> list[str]:
    """torchvision's classification model names (``resnet18`` …)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def segmentation_names() -> list[str]:
    """torchvision's semantic segmentation model names (``fcn_resnet50`` …)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models.segmentation))


def _segmentation_kwargs(name: str) -> dict[str, Any]:
    """How a segmentation model is built: no backbone weights (torchvision's default downloads them)
    and the auxiliary head where the family has one (LR-ASPP has none), so its ``aux`` is imported too."""
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    params = inspect.signature(builder).parameters
    kwargs: dict[str, Any] = {"weights_backbone": None}
    if "aux_loss" in params:
        kwargs["aux_loss"] = True
    return kwargs


def torchvision_input_shape(name: str, model: nn.Module | None = None) -> tuple[int, int, int]:
    """The input a torchvision model expects: its weights' crop size (3×299×299 for Inception v3).

    A model that fixes its size (``image_size`` of the vision transformers) has the last word.
    """
    import torchvision

    fixed = getattr(model, "image_size", None)
    if isinstance(fixed, int):
        return (3, fixed, fixed)
    size = 224
    try:
        weights = torchvision.models.get_model_weights(name)
        keywords = getattr(next(iter(weights)).transforms, "keywords", {})
        # classification weights crop; segmentation weights only resize (520 for fcn_resnet50)
        size = int(keywords.get("crop_size", keywords.get("resize_size", size)))
    except (ValueError, StopIteration, TypeError):
        pass
    return (3, size, size)


def _check_name(name: str) -> None:
    names = torchvision_names() + segmentation_names()
    if name not in names:
        close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
        hint = f" — did you mean {' or '.join(close)}?" if close else " (see torchvision.models.list_models())"
        raise SourceError(f"torchvision has no classification or segmentation model {name!r}{hint}")


def torchvision_model(name: str, *, meta: bool = False, **kwargs: Any) -> nn.Module:
    """``torchvision.models.get_model(name, **kwargs)`` without weights; ``meta`` skips allocating them.

    Unknown names raise :class:`SourceError` with the closest names.
    """
    import torchvision

    _check_name(name)
    if name in segmentation_names():
        kwargs = {**_segmentation_kwargs(name), **kwargs}
    with warnings.catch_warnings():
        # GoogLeNet and Inception v3 warn that their default init will change; it does not matter here.
        warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The default weight initialization", category=UserWarning)
        if meta:
            try:
                with torch.device("meta"):
                    return torchvision.models.get_model(name, **kwargs)
            except (NotImplementedError, RuntimeError):
                pass  # an init that reads its own values (RegNet): build it for real
        return torchvision.models.get_model(name, **kwargs)


def import_torchvision(name: str, input_shape: Sequence[int] | None = None) -> Project:
    """``torchvision:NAME`` as a project: the model's structure imported and laid out top to bottom.

    The project holds no weights (it never does); the model is built on the meta device where
    torchvision allows, so even the largest import in a second or two.
    """
    model = torchvision_model(name, meta=True)
    graph = import_module(model, input_shape or torchvision_input_shape(name, model))
    # "torchvision": which pretrained weights fit the graph (DESIGN.md §11: weights=DEFAULT needs it)
    return Project(graph=graph, name=name, extra={"imported_from": f"torchvision:{name}", "torchvision": name})


__all__ = ["import_torchvision", "segmentation_names", "torchvision_input_shape", "torchvision_model",
           "torchvision_names"]
