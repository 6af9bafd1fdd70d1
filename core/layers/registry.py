"""The registry of layer types: one :class:`LayerSpec` per type name, duplicates refused.

Legacy names map to current ones so older project files keep loading; that mapping lives
here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator

from core.layers.spec import Category, LayerSpec


class RegistryError(ValueError):
    """A second declaration for a type name, or a legacy name that clashes."""


_SPECS: dict[str, LayerSpec] = {}
_LEGACY: dict[str, str] = {}


def register(spec: LayerSpec) -> LayerSpec:
    """Add ``spec``; refuse a name (or legacy name) that is already taken."""
    if spec.type in _SPECS or spec.type in _LEGACY:
        raise RegistryError(f"layer type {spec.type!r} is already registered")
    for old in spec.legacy_names:
        if old in _SPECS or old in _LEGACY:
            raise RegistryError(f"legacy name {old!r} of {spec.type} is already taken")
    _SPECS[spec.type] = spec
    for old in spec.legacy_names:
        _LEGACY[old] = spec.type
    return spec


def canonical_type(name: str) -> str:
    """The current type name for ``name`` (itself unless it is a legacy name)."""
    return _LEGACY.get(name, name)


def get_spec(name: str) -> LayerSpec | None:
    """The declaration for ``name`` (legacy names accepted), or ``None`` if unknown."""
    return _SPECS.get(_LEGACY.get(name, name))


def all_specs() -> Iterator[LayerSpec]:
    """Every declaration, by palette category then by name."""
    order = {c: i for i, c in enumerate(Category)}
    yield from sorted(_SPECS.values(), key=lambda s: (order[s.category], s.type))


def type_names() -> list[str]:
    return sorted(_SPECS)


def suggest(name: str) -> str | None:
    """The registered type closest to a misspelt ``name`` (for 'did you mean' messages)."""
    import difflib

    lowered = {t.lower(): t for t in _SPECS}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, list(_SPECS), n=1, cutoff=0.6)
    return close[0] if close else None
