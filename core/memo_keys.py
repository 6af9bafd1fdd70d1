"""Memo keys of a node's user parameters: what the analysis caches validated parameters under.

Two nodes with equal keys hold the same parameters (``True``, ``1`` and ``1.0`` stay apart), so
the analysis validates each distinct parameter set once (a 1,000-node ResNet has a few dozen).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def freeze_value(value: Any) -> Any:
    """A hashable stand-in for a JSON-like value that keeps ``True``, ``1`` and ``1.0`` apart."""
    cls = value.__class__
    if cls is list or cls is tuple:
        return (list, *(freeze_value(v) for v in value))
    if cls is dict:
        return (dict, *((str(k), freeze_value(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return (object, repr(value))
    return (cls, value)


SCALARS = frozenset((int, float, bool, str, type(None)))


def params_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    """The memo key of a node's user params: scalars and flat lists take a fast path (they are
    all a layer declaration accepts); anything else goes through :func:`freeze_value`. Key order follows
    the dict, so the same params in another order only miss the memo."""
    out: list[Any] = []
    for k, v in params.items():
        cls = v.__class__
        if cls in SCALARS:
            out.append((k, cls, v))
        elif cls is list and all(x.__class__ is int for x in v):
            out.append((k, list, tuple(v)))
        else:
            out.append((k, freeze_value(v)))
    return tuple(out)


__all__ = ["freeze_value", "params_key"]
