"""Built-in templates: classic networks as editable graphs (DESIGN.md §1, §7).

``list_templates()`` describes them; ``build_template(name, **options)`` returns a fresh
:class:`core.project.Project`. Each family module is data plus small builders (a ``cfgs``
table for VGG, block builders for ResNet …) that emit nodes through the public Graph API.
Templates that mirror a torchvision model use its module paths as node ids, so the compiled
model's ``state_dict`` has torchvision's keys and shapes.

Importing this package registers the ``template:NAME`` source kind with
:func:`core.sources.register_source`: that is how core, the command line included, reaches the
templates without importing them (``main.py`` imports this package before it hands over).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from core.project import Project
from core.sources import SourceError, register_source
from templates.registry import TemplateInfo, registered

# Family modules register their templates at import; this order is the listing's order (the
# order a course meets them).
FAMILIES = ("classic", "vgg", "googlenet", "resnet", "densenet", "mobilenet", "sequence", "transformer",
            "segmentation", "gan")
for _family in FAMILIES:
    importlib.import_module(f"templates.{_family}")


def list_templates() -> list[TemplateInfo]:
    """Every template, family by family in the order of :data:`FAMILIES`."""
    return [info for info, _build in registered().values()]


def template_names() -> list[str]:
    return list(registered())


def build_template(name: str, **options: Any) -> Project:
    """Build template ``name``. Unknown names or options raise :class:`SourceError` saying what exists."""
    entry = registered().get(name)
    if entry is None:
        names = template_names()
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SourceError(f"no template named {name!r}; {hint}templates: {', '.join(names)}")
    info, build = entry
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        accepted = ", ".join(info.options) or "none"
        raise SourceError(f"template {name!r} has no option {', '.join(unknown)}; its options: {accepted}")
    num_classes = options.get("num_classes", info.num_classes)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise SourceError(f"template {name!r}: num_classes must be a positive integer, got {num_classes!r}")
    project = build(**options)
    if info.torchvision is not None:
        # The project file's top-level "torchvision" key: which model's pretrained weights fit this
        # graph (DESIGN.md §11), so `--weights DEFAULT` knows what DEFAULT means.
        project.extra.setdefault("torchvision", info.torchvision)
    return project


register_source("template", build_template, lister=list_templates)

__all__ = ["TemplateInfo", "build_template", "list_templates", "template_names"]
