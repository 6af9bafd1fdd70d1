"""Resolve a SOURCE argument (DESIGN.md §7) to a :class:`~core.project.Project`.

``SOURCE`` is a project file path or ``KIND:NAME``, where ``KIND`` is a registered kind of model
source: ``template:NAME`` (a built-in template), ``torchvision:NAME`` (a torchvision
classification model imported on the fly). Like torchvision's model registry, the kinds come in
through :func:`register_source`, so core never imports the packages above it: :mod:`templates`
registers ``template:`` when it is imported (``main.py`` imports it before handing over to the
editor or the command line), and ``torchvision:`` is registered here, as a resolver that imports
the importer (and so torch) only when such a source is first loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.errors import SourceError
from core.project import Project, load_project


class Listing(Protocol):
    """One model a kind of source offers, as ``main.py templates`` and the gallery describe it
    (a template's ``TemplateInfo`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def torchvision(self) -> str | None: ...

    @property
    def options(self) -> tuple[str, ...]: ...


Resolver = Callable[[str], Project]
Lister = Callable[[], Sequence[Listing]]


@dataclass(frozen=True)
class SourceKind:
    """A registered ``KIND:``: ``resolve(NAME)`` builds the project; ``lister()``, where the kind
    has a fixed list of names, describes them."""

    prefix: str
    resolve: Resolver
    lister: Lister | None = None


_KINDS: dict[str, SourceKind] = {}


def register_source(prefix: str, resolver: Resolver, *, lister: Lister | None = None) -> SourceKind:
    """Make ``PREFIX:NAME`` load through ``resolver(NAME)``. Registering a prefix again replaces it
    (a module imported twice registers the same kind twice)."""
    if not prefix.isidentifier() or len(prefix) < 2:  # one letter would shadow a Windows drive (C:\\…)
        raise ValueError(f"a source kind is a name of two letters or more, not {prefix!r}")
    kind = SourceKind(prefix, resolver, lister)
    _KINDS[prefix] = kind
    return kind


def source_kind(prefix: str) -> SourceKind | None:
    """The kind registered as ``prefix`` (without the colon), or None."""
    return _KINDS.get(prefix)


def list_sources(prefix: str) -> list[Listing]:
    """What kind ``prefix`` offers (``list_sources("template")``: every built-in template)."""
    kind = _KINDS.get(prefix)
    if kind is None or kind.lister is None:
        known = ", ".join(f"{k}:" for k, v in _KINDS.items() if v.lister is not None) or "none"
        raise SourceError(f"there is no list of {prefix}: sources; kinds with a list: {known}")
    return list(kind.lister())


def load_source(source: str) -> Project:
    """Load ``source``; raises :class:`SourceError` or :class:`ProjectError` with a clear message.

    ``KIND:NAME`` with a registered ``KIND`` goes to that kind's resolver; a path ending in
    ``.onnx`` is imported (its graph only: ``main.py import`` also writes its weights); anything
    else is a project file path."""
    prefix, colon, name = source.partition(":")
    kind = _KINDS.get(prefix) if colon else None
    if kind is not None:
        return kind.resolve(name)
    if source.lower().endswith(".onnx"):
        return _onnx(source)
    return load_project(source)


def _torchvision(name: str) -> Project:
    from core.importer import import_torchvision  # torch is imported when such a source is first loaded

    return import_torchvision(name)


register_source("torchvision", _torchvision)


def _onnx(path: str) -> Project:
    from core.importer.errors import ModelImportError
    from core.importer.onnx_import import import_onnx_project  # onnx is imported only for such a file

    try:
        return import_onnx_project(path)[0]
    except ModelImportError as exc:
        text = str(exc)
        if text.startswith(path):  # a problem with the file itself names it; the caller names it once
            text = text[len(path):].lstrip(": ").removeprefix("is ")
        raise SourceError(text) from None

__all__ = ["Listing", "SourceError", "SourceKind", "list_sources", "load_source", "register_source",
           "source_kind"]
