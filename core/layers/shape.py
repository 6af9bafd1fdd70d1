"""Layers that reshape or pass through: Flatten, Identity (and padding/resampling types)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import GLOBAL, Category, Inferred, Kind, LayerError, LayerSpec, Params, ParamSpec, Shape, numel


def _nn(type_name: str) -> Any:
    """A ``build`` function passing the validated params to ``torch.nn.<type_name>``."""

    def build(p: Params) -> Any:
        import torch.nn as nn

        return getattr(nn, type_name)(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items()})

    return build


def _flatten_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    nd = len(shape) + 1  # torch's dims count the batch axis
    start = p["start_dim"] % nd if p["start_dim"] < 0 else p["start_dim"]
    end = p["end_dim"] % nd if p["end_dim"] < 0 else p["end_dim"]
    if not 0 <= start < nd or not 0 <= end < nd:
        raise LayerError(f"Flatten start_dim={p['start_dim']}, end_dim={p['end_dim']} out of range "
                         f"for {len(shape)}-D samples")
    if start == 0:
        raise LayerError("Flatten with start_dim=0 would merge the batch axis into the features — use 1")
    if start > end:
        raise LayerError(f"Flatten start_dim ({p['start_dim']}) comes after end_dim ({p['end_dim']})")
    a, b = start - 1, end - 1
    out = (*shape[:a], numel(shape[a:b + 1]), *shape[b + 1:])
    return Inferred(out_shapes=(out,))


Flatten = register(LayerSpec(
    type="Flatten", category=Category.SHAPE,
    doc="Flattens C×H×W into one vector of C·H·W features (needed between convs and Linear).",
    params=(
        ParamSpec("start_dim", Kind.INT, 1, "First axis to flatten, counting the batch axis as 0.",
                  min=-8, max=8),
        ParamSpec("end_dim", Kind.INT, -1, "Last axis to flatten (-1: the last).", min=-8, max=8),
    ),
    infer=_flatten_infer, window=lambda p, s: GLOBAL, build=_nn("Flatten"),
))

Identity = register(LayerSpec(
    type="Identity", category=Category.SHAPE,
    doc="Passes its input through unchanged (a placeholder that keeps a module path).",
    params=(), infer=lambda p, s: Inferred(out_shapes=(tuple(s[0]),)), build=_nn("Identity"),
))

__all__ = ["Flatten", "Identity", "_nn"]
