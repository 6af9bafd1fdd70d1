"""ScaledDotProductAttention: ``F.scaled_dot_product_attention(q, k, v)`` as a stateless layer node.

The functional core of multi-head attention, without its projections: softmax(q·kᵀ·scale)·v per
head, where the heads are leading axes of each sample (timm's ``Attention`` reshapes the output of
one ``qkv`` Linear into q, k and v of shape heads × tokens × head size and calls this function).
Three inputs, query ``(…, T, E)``, key ``(…, S, E)`` and value ``(…, S, Ev)``, whose leading axes
(the heads) are equal; one output ``(…, T, Ev)``. No parameters.

``scale`` multiplies the scores (unset: torch's ``1/sqrt(E)``), ``is_causal`` masks the scores of
later keys (query i attends to keys ≤ i). Attention masks and dropout are no parameters: the
importer refuses a call that passes them. MACs are the two matrix products, ``T·S·E + T·S·Ev`` per
head (``2·T·S·E`` when the value has the query's size), which is what ``FlopCounterMode`` counts
for torch's math kernel; the softmax and the scaling are not counted, like an activation's.
"""

from __future__ import annotations

import math
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
)


def _infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    q, k, v = shapes
    for name, shape in (("query", q), ("key", k), ("value", v)):
        if len(shape) < 2:
            raise LayerError(f"ScaledDotProductAttention needs tokens × features per sample as its {name}, "
                             f"but gets {fmt_shape(shape)}")
    if not q[:-2] == k[:-2] == v[:-2]:
        raise LayerError(f"ScaledDotProductAttention needs the same leading (head) axes on query, key and value, "
                         f"but gets {fmt_shape(q)}, {fmt_shape(k)} and {fmt_shape(v)}")
    if q[-1] != k[-1]:
        raise LayerError(f"ScaledDotProductAttention: the query's features ({q[-1]}) must equal the key's "
                         f"({k[-1]}), to take their dot products")
    if k[-2] != v[-2]:
        raise LayerError(f"ScaledDotProductAttention: the key ({k[-2]} tokens) and the value ({v[-2]} tokens) "
                         f"must have as many tokens")
    heads = math.prod(q[:-2])
    t, s, e, ev = q[-2], k[-2], q[-1], v[-1]
    return Inferred(out_shapes=((*q[:-2], t, ev),), macs=heads * t * s * (e + ev))


def scaled_dot_product_attention(q: Any, k: Any, v: Any, is_causal: bool = False, scale: float | None = None) -> Any:
    """torch's fused attention (any kernel torch picks; all compute the same function)."""
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, is_causal=bool(is_causal), scale=scale)


def _code(xs: Sequence[str], p: Params) -> str:
    scale = "None" if p["scale"] is None else repr(float(p["scale"]))
    return (f"torch.nn.functional.scaled_dot_product_attention({', '.join(xs)}, is_causal={bool(p['is_causal'])}, "
            f"scale={scale})")


def _short(p: Params) -> str:
    parts = ["causal"] if p["is_causal"] else []
    if p["scale"] is not None:
        parts.append(f"scale {float(p['scale']):.4g}")
    return ", ".join(parts)


ScaledDotProductAttention = register(LayerSpec(
    type="ScaledDotProductAttention", category=Category.ATTENTION,
    doc="softmax(q·kᵀ·scale)·v per head (F.scaled_dot_product_attention): attention without projections, with "
        "the query, key and value as inputs 0, 1 and 2 (heads × tokens × features each).",
    params=(
        ParamSpec("is_causal", Kind.BOOL, False, "Each query attends only to keys at or before its own position."),
        ParamSpec("scale", Kind.FLOAT, None, "Factor of the scores; unset: 1/sqrt(features of the query).",
                  min=0.0, min_inclusive=False, optional=True),
    ),
    infer=_infer, window=lambda p, s: GLOBAL, function=scaled_dot_product_attention, code=_code,
    min_inputs=3, max_inputs=3, short=_short, id_stem="sdpa", fit_role=FitRole.OTHER,
))

__all__ = ["ScaledDotProductAttention", "scaled_dot_product_attention"]
