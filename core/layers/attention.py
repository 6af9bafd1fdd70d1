"""Attention layers: MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer and
PositionalEncoding, on T×C sequences (time first, then features; DESIGN.md §5).

Each builds a batch-first module of :mod:`core.layers.attention_modules` (subclasses of torch's
own, with torch's ``state_dict`` keys) whose attention weights the training probes can keep.
MultiheadAttention takes ``query[, key[, value]]``: one input is self-attention, two attend from
the query to a memory that is both key and value. ``causal`` masks the upper triangle of the T×S
scores, so that step t sees only steps ≤ t.

Counting (exactly what torch's ``parameters()`` holds, and FlopCounterMode's matmuls / 2): with
query T×E and key/value S×kdim, S×vdim, attention has the projections
``T·E·E + S·kdim·E + S·vdim·E`` (q, k, v), the scores ``QKᵀ`` (T·S·E over all heads), the weighted
sum ``A·V`` (T·S·E) and the output projection ``T·E·E``; a causal mask still computes the full
scores. torchinfo leaves out ``QKᵀ`` and ``A·V`` (its issue #226); we count them. A Transformer
layer is the sum of its attentions and its feed-forward network (2·T·E·F); LayerNorm, softmax,
dropout and the residual sums are not multiply-accumulates.

Memory: attention keeps its heads·T·S weights for backward, which the training-memory estimate
adds (:attr:`~core.layers.spec.Inferred.saved`). The receptive field along the sequence is the
whole sequence, or its prefix when causal (:class:`~core.layers.spec.SequenceRule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.recurrent import sequence_problem
from core.layers.registry import register
from core.layers.spec import (
    Category,
    FitRole,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    ParamError,
    Params,
    ParamSpec,
    SequenceRule,
    Shape,
    fmt_shape,
    set_param_fix,
)


def attention_counts(t: int, s: int, e: int, kdim: int, vdim: int, bias: bool) -> tuple[int, int]:
    """(parameters, MACs per sample) of multi-head attention from T queries of E to S keys/values."""
    params = e * (e + kdim + vdim) + e * e + (4 * e if bias else 0)
    macs = t * e * e + s * (kdim + vdim) * e + 2 * t * s * e + t * e * e
    return params, macs


def nearest_heads(e: int, heads: int) -> int:
    """The number of heads closest to ``heads`` that divides ``e`` (the larger on a tie)."""
    divisors = [d for d in range(1, e + 1) if e % d == 0]
    return min(divisors, key=lambda d: (abs(d - heads), -d))


def check_heads(e: int, heads: int, param: str, dim_name: str) -> None:
    """Refuse an embedding that the heads cannot split evenly, offering the nearest count that can."""
    if e % heads:
        fix = nearest_heads(e, heads)
        raise LayerError(f"{dim_name} {e} is not divisible by {param} {heads}: each head takes an equal share of the "
                         f"features — use {fix} heads ({e // fix} features each)",
                         set_param_fix(param, fix), param=param)


def sequence_shape(type_name: str, shape: Shape, role: str = "") -> tuple[int, int]:
    """(T, C) of a T×C input, or the refusal in the users' words (a C×H×W image, a vector)."""
    if len(shape) != 2:
        message = sequence_problem(type_name, shape)
        if role:
            message = message.replace(" input per sample", f" {role} input per sample", 1)
        raise LayerError(message)
    return shape[0], shape[1]


def _seq_rule(p: Params, shapes: Sequence[Shape]) -> SequenceRule:
    return SequenceRule.PREFIX if p["causal"] else SequenceRule.WHOLE


# -- MultiheadAttention ---------------------------------------------------------------------------

def _mha_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    names = ("query", "key", "value")
    dims = [sequence_shape("MultiheadAttention", s, names[i] if len(shapes) > 1 else "")
            for i, s in enumerate(shapes)]
    t, e = dims[0]
    s, kdim = dims[1] if len(dims) > 1 else dims[0]
    s_v, vdim = dims[2] if len(dims) > 2 else (s, kdim)
    if s_v != s:
        raise LayerError(f"MultiheadAttention's key has {s} steps but its value {s_v}: each key needs its value "
                         f"({fmt_shape(shapes[1])} and {fmt_shape(shapes[2])})")
    heads = int(p["num_heads"])
    check_heads(e, heads, "num_heads", "embed_dim")
    params, macs = attention_counts(t, s, e, kdim, vdim, bool(p["bias"]))
    args: dict[str, Any] = {"embed_dim": e}
    for name, value in (("kdim", kdim), ("vdim", vdim)):
        if value != e:  # torch's None: the same as embed_dim (one packed in_proj_weight)
            args[name] = value
    return Inferred(out_shapes=((t, e),), args=args, params=params, macs=macs, saved=heads * t * s)


def _mha_build(p: Params) -> Any:
    from core.layers.attention_modules import SequenceMultiheadAttention

    return SequenceMultiheadAttention(int(p["embed_dim"]), int(p["num_heads"]), dropout=float(p["dropout"]),
                                      bias=bool(p["bias"]), kdim=p["kdim"], vdim=p["vdim"], causal=bool(p["causal"]))


def _mha_from_module(m: Any) -> dict[str, Any]:
    if not getattr(m, "batch_first", False):
        raise ParamError("is sequence first (batch_first=False); only batch-first attention (N×T×C) can be "
                         "imported")
    if m.bias_k is not None or m.add_zero_attn:
        raise ParamError("has add_bias_kv or add_zero_attn, which NetCanvas does not support")
    return {"embed_dim": int(m.embed_dim), "num_heads": int(m.num_heads), "dropout": float(m.dropout),
            "bias": m.in_proj_bias is not None, "kdim": int(m.kdim), "vdim": int(m.vdim),
            "causal": bool(getattr(m, "causal", False))}


def _heads_default(shape: Shape | None) -> dict[str, Any]:
    """A dropped attention layer's heads: 8 where they divide the features, else the nearest that does."""
    if shape is None or len(shape) != 2:
        return {}
    return {"num_heads": nearest_heads(shape[1], 8)}


MultiheadAttention = register(LayerSpec(
    type="MultiheadAttention", category=Category.ATTENTION,
    doc="Multi-head scaled dot-product attention over T×C sequences; inputs query, key, value (one input: "
        "self-attention).",
    params=(
        ParamSpec("embed_dim", Kind.INT, None, "Features E of the query and the output; inferred from the query.",
                  min=1, inferred=True),
        ParamSpec("num_heads", Kind.INT, 8, "Attention heads; each attends with E / heads features.", min=1),
        ParamSpec("dropout", Kind.FLOAT, 0.0, "Dropout on the attention weights while training.", min=0.0, max=1.0),
        ParamSpec("bias", Kind.BOOL, True, "Learn biases of the input and output projections."),
        ParamSpec("kdim", Kind.INT, None, "Features of the key; inferred from the key input (E when one input).",
                  min=1, inferred=True),
        ParamSpec("vdim", Kind.INT, None, "Features of the value; inferred from the value input (the key's when "
                  "not wired).", min=1, inferred=True),
        ParamSpec("causal", Kind.BOOL, False, "Step t attends only to steps up to t (a language model's mask)."),
    ),
    infer=_mha_infer, window=_seq_rule, build=_mha_build, min_inputs=1, max_inputs=3,
    short=lambda p: f"{p['num_heads']} heads" + (" · causal" if p["causal"] else ""),
    module_class="torch.nn.MultiheadAttention", from_module=_mha_from_module,
    own_class="core.layers.attention_modules.SequenceMultiheadAttention",
    trainable_note="q, k, v and output projections: E·(E + kdim + vdim) + E² weights and 4·E biases",
    id_stem="attn", editor_defaults=_heads_default, fit_role=FitRole.OTHER,
))


__all__ = ["MultiheadAttention", "attention_counts", "check_heads", "nearest_heads", "sequence_shape"]
