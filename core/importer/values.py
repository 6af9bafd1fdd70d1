"""The values that flow through a conversion in place of tensors.

While the converter walks the fx graph, every fx value is replaced by what it means in the
editable graph: a tensor becomes a :class:`Ref` to a node's output port, a multi-output node's
tuple a :class:`Multi`, a parameter read directly in ``forward`` a :class:`Param`, and the
model's returned tuple an :class:`Outputs`. Both the converter and the op handlers read and make
them, so they sit below both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Ref:
    """A tensor: output ``port`` of graph node ``node``."""

    node: str
    port: int = 0


@dataclass(frozen=True)
class Multi:
    """The tuple of tensors of a node with several outputs (Chunk, Split)."""

    node: str
    count: int


@dataclass(frozen=True)
class Param:
    """A parameter read directly in ``forward`` (``self.layer_scale``)."""

    path: str
    value: torch.Tensor


@dataclass(frozen=True)
class Outputs:
    """A tuple (or namedtuple) of tensors returned by the model."""

    items: tuple[Any, ...]
    names: tuple[str, ...]


def tensors_in(value: Any) -> Iterator[Any]:
    """The tensor references inside an argument (lists of tensors for cat), in order."""
    if isinstance(value, (Ref, Param, Multi)):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from tensors_in(v)


__all__ = ["Multi", "Outputs", "Param", "Ref", "tensors_in"]
