"""Resolve a SOURCE argument (DESIGN.md §7) to a :class:`~core.project.Project`.

``SOURCE`` is a project file path, ``template:NAME`` (a built-in template) or
``torchvision:NAME`` (a torchvision classification model imported on the fly).
"""

from __future__ import annotations

from core.project import Project, load_project


class SourceError(ValueError):
    """A SOURCE that names nothing loadable; ``str()`` is one readable line."""


def load_source(source: str) -> Project:
    """Load ``source``; raises :class:`SourceError` or :class:`ProjectError` with a clear message."""
    if source.startswith("template:"):
        name = source.split(":", 1)[1]
        try:
            from templates import build_template
        except ImportError as exc:  # pragma: no cover - templates ship with the app
            raise SourceError(f"templates are not available: {exc}") from None
        return build_template(name)
    if source.startswith("torchvision:"):
        name = source.split(":", 1)[1]
        from core.importer import import_torchvision

        return import_torchvision(name)
    return load_project(source)


__all__ = ["SourceError", "load_source"]
