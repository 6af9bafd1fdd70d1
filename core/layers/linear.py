"""Fully connected layers. Linear: ``(n + 1)·m`` parameters, ``n·m`` MACs per position.

On a C×H×W map without Flatten it acts per position, which analysis warns about; on a T×C sequence
acting per time step is what is meant (one prediction per token), so it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import (
    GLOBAL,
    Category,
    FitRole,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    Params,
    ParamSpec,
    Shape,
    fmt_shape,
    insert_fix,
    numel,
    set_param_fix,
)


def _linear_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    n, m = shape[-1], p["out_features"]
    given = p["in_features"]
    warnings: tuple[tuple[str, Any], ...] = ()
    if len(shape) > 1:
        flat = numel(shape)
        # A 1×C input (a class token alone: CaiT, PiT) has in_features = C both ways: torch's is meant.
        if given is not None and given == flat and given != n:
            raise LayerError(
                f"in_features={given} matches the input {fmt_shape(shape)} only once flattened "
                f"({'·'.join(map(str, shape))} = {flat}) — insert Flatten before it",
                insert_fix("Flatten", label=f"insert Flatten ({fmt_shape(shape)} → {flat})"),
                param="in_features")
        # A T×C sequence is meant per step (a language model's head, a Transformer's MLP): no warning.
        if given is None and len(shape) > 2:
            warnings = ((f"Linear on a {fmt_shape(shape)} input acts on the last axis only "
                         f"({n} features); insert Flatten to use all {flat}",
                         insert_fix("Flatten", label=f"insert Flatten ({fmt_shape(shape)} → {flat})")),)
    params = n * m + (m if p["bias"] else 0)
    return Inferred(out_shapes=((*shape[:-1], m),), args={"in_features": n}, params=params,
                    macs=n * m * numel(shape[:-1]), warnings=warnings)


def _build_linear(p: Params) -> Any:
    import torch.nn as nn

    return nn.Linear(p["in_features"], p["out_features"], bias=p["bias"])


Linear = register(LayerSpec(
    type="Linear", category=Category.LINEAR,
    doc="Fully connected layer y = xWᵀ + b on the last axis: (n + 1)·m parameters.",
    params=(
        ParamSpec("in_features", Kind.INT, None, "Input features n; inferred from the input.",
                  min=1, inferred=True),
        ParamSpec("out_features", Kind.INT, 10, "Output features m (the number of classes for a head).",
                  min=1),
        ParamSpec("bias", Kind.BOOL, True, "Learn an additive bias per output feature."),
    ),
    # On a flat vector the field becomes global (DESIGN §5); on H×W×C (ConvNeXt's per-position MLP)
    # each position only mixes its own features, so the field passes through.
    infer=_linear_infer, window=lambda p, s: GLOBAL if len(s[0]) <= 1 else None, build=_build_linear,
    short=lambda p: f"→ {p['out_features']}",
    id_stem="fc", fit_role=FitRole.HEAD, width_param="out_features",
))

__all__ = ["Linear", "set_param_fix"]
