"""Attention layers: MultiheadAttention, TransformerEncoderLayer, TransformerDecoderLayer and
PositionalEncoding, on T×C sequences (time first, then features; DESIGN.md §5).

Each builds a batch-first module of :mod:`core.layers.attention_modules` (subclasses of torch's
own, with torch's ``state_dict`` keys) whose attention weights the training probes can keep.
MultiheadAttention takes ``query[, key[, value]]``: one input is self-attention, two attend from
the query to a memory that is both key and value. ``causal`` masks the upper triangle of the T×S
scores, so that step t sees only steps ≤ t.

Key padding masks: with ``key_padding_mask`` on (``src_key_padding_mask`` on an encoder layer,
``tgt_key_padding_mask`` / ``memory_key_padding_mask`` on a decoder layer) the layer takes one more
input per mask, after its sequences and in that order, so the number of wired inputs always says
which port is which. A mask is per sample (S,): bool, or 0/1 ids, True (1) where a key step is
padding and is not attended to. :data:`PaddingMask` makes one from token ids (``ids == pad_id``):
Input → PaddingMask → the mask port. Masks change no parameter and no MAC (the scores are computed
whole either way).

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


_MASK_DOC = ("Take a padding mask of the {what} as the last input: per sample (S,), bool or 0/1 ids, True where "
             "a step is padding and is not attended to (PaddingMask makes it from token ids).")


# -- MultiheadAttention ---------------------------------------------------------------------------

def _split_masks(type_name: str, p: Params, shapes: Sequence[Shape], sequences: tuple[str, ...], low: int,
                 masks: tuple[str, ...]) -> tuple[list[Shape], list[Shape]]:
    """Split the inputs into the sequences (``low`` to all of ``sequences``) and the masks that
    ``p`` turns on (the last inputs, in the order of ``masks``); a count that does not fit the
    flags is refused with the flag to change."""
    on = [m for m in masks if p[m]]
    n, high = len(shapes), len(sequences)
    wanted = " and ".join(sequences[:low]) + (" (and optionally " + ", ".join(sequences[low:]) + ")"
                                              if high > low else "")
    if n - len(on) < low:
        names = " and ".join(on)
        raise LayerError(f"{type_name}'s {names} {'is' if len(on) == 1 else 'are'} on, so its last "
                         f"{'input is a mask' if len(on) == 1 else f'{len(on)} inputs are masks'}, but it has "
                         f"{n} input{'s' if n != 1 else ''}: wire {wanted} first, then the padding mask (S,) "
                         f"(PaddingMask makes it from token ids) — or turn {on[-1]} off",
                         set_param_fix(on[-1], False), param=on[-1])
    if n - len(on) > high:
        off = next(m for m in masks if not p[m])
        raise LayerError(f"{type_name} takes {', '.join(sequences)}; input {n} can only be a key padding mask — "
                         f"turn {off} on to use it as one", set_param_fix(off, True), param=off)
    return list(shapes[:n - len(on)]), list(shapes[n - len(on):])


def check_mask(type_name: str, name: str, mask: Shape, steps: int, keys: Shape) -> None:
    """A key padding mask must be one flag per key step: (S,) for keys of S steps."""
    if len(mask) != 1:
        raise LayerError(f"{type_name}'s {name} must be one flag per key step, ({steps},), got "
                         f"{fmt_shape(mask)}: make it from the token ids with PaddingMask, or turn {name} off if "
                         f"this input is not a mask", set_param_fix(name, False), param=name)
    if mask[0] != steps:
        raise LayerError(f"{type_name}'s {name} has {mask[0]} steps but the keys have {steps} ({fmt_shape(keys)}): "
                         f"one flag per key step — make it from the same token ids as the keys", param=name)


def _mha_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    names = ("query", "key", "value")
    seqs, masks = _split_masks("MultiheadAttention", p, shapes, names, 1, ("key_padding_mask",))
    dims = [sequence_shape("MultiheadAttention", s, names[i] if len(seqs) > 1 else "")
            for i, s in enumerate(seqs)]
    t, e = dims[0]
    s, kdim = dims[1] if len(dims) > 1 else dims[0]
    s_v, vdim = dims[2] if len(dims) > 2 else (s, kdim)
    if s_v != s:
        raise LayerError(f"MultiheadAttention's key has {s} steps but its value {s_v}: each key needs its value "
                         f"({fmt_shape(seqs[1])} and {fmt_shape(seqs[2])})")
    for mask in masks:
        check_mask("MultiheadAttention", "key_padding_mask", mask, s, seqs[min(1, len(seqs) - 1)])
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
                                      bias=bool(p["bias"]), kdim=p["kdim"], vdim=p["vdim"], causal=bool(p["causal"]),
                                      key_padding_mask=bool(p["key_padding_mask"]))


def _mha_from_module(m: Any) -> dict[str, Any]:
    if not getattr(m, "batch_first", False):
        raise ParamError("is sequence first (batch_first=False); only batch-first attention (N×T×C) can be "
                         "imported")
    if m.bias_k is not None or m.add_zero_attn:
        raise ParamError("has add_bias_kv or add_zero_attn, which NetCanvas does not support")
    return {"embed_dim": int(m.embed_dim), "num_heads": int(m.num_heads), "dropout": float(m.dropout),
            "bias": m.in_proj_bias is not None, "kdim": int(m.kdim), "vdim": int(m.vdim),
            "causal": bool(getattr(m, "causal", False)),
            "key_padding_mask": bool(getattr(m, "key_padding_mask", False))}


def _heads_default(shape: Shape | None) -> dict[str, Any]:
    """A dropped attention layer's heads: 8 where they divide the features, else the nearest that does."""
    if shape is None or len(shape) != 2:
        return {}
    return {"num_heads": nearest_heads(shape[1], 8)}


MultiheadAttention = register(LayerSpec(
    type="MultiheadAttention", category=Category.ATTENTION,
    doc="Multi-head scaled dot-product attention over T×C sequences; inputs query, key, value (one input: "
        "self-attention), then the key padding mask (S,) when key_padding_mask is on.",
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
        ParamSpec("key_padding_mask", Kind.BOOL, False, _MASK_DOC.format(what="keys")),
    ),
    infer=_mha_infer, window=_seq_rule, build=_mha_build, min_inputs=1, max_inputs=4,
    short=lambda p: f"{p['num_heads']} heads" + (" · causal" if p["causal"] else "")
    + (" · masked" if p["key_padding_mask"] else ""),
    module_class="torch.nn.MultiheadAttention", from_module=_mha_from_module,
    own_class="core.layers.attention_modules.SequenceMultiheadAttention",
    trainable_note="q, k, v and output projections: E·(E + kdim + vdim) + E² weights and 4·E biases",
    id_stem="attn", editor_defaults=_heads_default, fit_role=FitRole.OTHER,
))


# -- Transformer layers ---------------------------------------------------------------------------

def feed_forward_counts(t: int, e: int, f: int, bias: bool) -> tuple[int, int]:
    """(parameters, MACs per sample) of a Transformer layer's E → F → E network on T steps."""
    return 2 * e * f + ((f + e) if bias else 0), 2 * t * e * f


def layer_saved(heads: int, t: int, sources: Sequence[int], e: int, f: int) -> int:
    """Elements a Transformer layer keeps for backward besides its output (an estimate): per
    attention the heads·T·S weights and its q, k, v and context (4·T·E); the feed-forward
    network's hidden activations before and after the activation (2·T·F)."""
    return sum(heads * t * s + 4 * t * e for s in sources) + 2 * t * f


def _layer_params() -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("d_model", Kind.INT, None, "Features E of each step; inferred from the T×E input.", min=1,
                  inferred=True),
        ParamSpec("nhead", Kind.INT, 8, "Attention heads; each attends with E / heads features.", min=1),
        ParamSpec("dim_feedforward", Kind.INT, 2048, "Hidden units F of the feed-forward network (often 4·E).", min=1),
        ParamSpec("dropout", Kind.FLOAT, 0.1, "Dropout on the attention weights and after each block while "
                  "training.", min=0.0, max=1.0),
        ParamSpec("activation", Kind.CHOICE, "relu", "Activation of the feed-forward network.",
                  choices=("relu", "gelu")),
        ParamSpec("layer_norm_eps", Kind.FLOAT, 1e-5, "Added to the variance in the layer norms.", min=0.0,
                  min_inclusive=False),
        ParamSpec("norm_first", Kind.BOOL, False, "Normalise before each block (pre-norm, as ViT) instead of "
                  "after the residual sum."),
        ParamSpec("bias", Kind.BOOL, True, "Learn the biases of the projections, the feed-forward network and the "
                  "layer norms."),
    )


def _norms(n: int, e: int, bias: bool) -> int:
    return n * (2 * e if bias else e)


def _encoder_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,), masks = _split_masks("TransformerEncoderLayer", p, shapes, ("src",), 1, ("src_key_padding_mask",))
    t, e = sequence_shape("TransformerEncoderLayer", shape)
    for mask in masks:
        check_mask("TransformerEncoderLayer", "src_key_padding_mask", mask, t, shape)
    heads, f, bias = int(p["nhead"]), int(p["dim_feedforward"]), bool(p["bias"])
    check_heads(e, heads, "nhead", "d_model")
    a_params, a_macs = attention_counts(t, t, e, e, e, bias)
    f_params, f_macs = feed_forward_counts(t, e, f, bias)
    return Inferred(out_shapes=((t, e),), args={"d_model": e}, params=a_params + f_params + _norms(2, e, bias),
                    macs=a_macs + f_macs, saved=layer_saved(heads, t, [t], e, f))


def _decoder_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (tgt, memory), masks = _split_masks("TransformerDecoderLayer", p, shapes, ("tgt", "memory"), 2, _DECODER_MASKS)
    t, e = sequence_shape("TransformerDecoderLayer", tgt, "tgt")
    s, c = sequence_shape("TransformerDecoderLayer", memory, "memory")
    on = [m for m in _DECODER_MASKS if p[m]]
    for name, mask in zip(on, masks, strict=True):
        steps, keys = (t, tgt) if name == "tgt_key_padding_mask" else (s, memory)
        check_mask("TransformerDecoderLayer", name, mask, steps, keys)
    heads, f, bias = int(p["nhead"]), int(p["dim_feedforward"]), bool(p["bias"])
    check_heads(e, heads, "nhead", "d_model")
    if c != e:
        raise LayerError(f"TransformerDecoderLayer's memory has {c} features per step but its target {e} "
                         f"(d_model): the cross-attention takes both at d_model — project the memory to {e} "
                         f"with a Linear")
    self_params, self_macs = attention_counts(t, t, e, e, e, bias)
    cross_params, cross_macs = attention_counts(t, s, e, e, e, bias)
    f_params, f_macs = feed_forward_counts(t, e, f, bias)
    return Inferred(out_shapes=((t, e),), args={"d_model": e},
                    params=self_params + cross_params + f_params + _norms(3, e, bias),
                    macs=self_macs + cross_macs + f_macs, saved=layer_saved(heads, t, [t, s], e, f))


_DECODER_MASKS = ("tgt_key_padding_mask", "memory_key_padding_mask")


def _layer_build(class_name: str) -> Any:
    def build(p: Params) -> Any:
        from core.layers import attention_modules

        return getattr(attention_modules, class_name)(**p)

    return build


def _layer_from_module(m: Any) -> dict[str, Any]:
    if not getattr(m.self_attn, "batch_first", False):
        raise ParamError("is sequence first (batch_first=False); only batch-first layers (N×T×C) can be imported")
    return {"nhead": int(m.self_attn.num_heads), "dim_feedforward": int(m.linear1.out_features),
            "dropout": float(m.dropout.p), "activation": _activation_name(m.activation),
            "layer_norm_eps": float(m.norm1.eps), "norm_first": bool(m.norm_first),
            "bias": m.linear1.bias is not None, "causal": bool(getattr(m, "causal", False)),
            **{name: bool(getattr(m, name, False)) for name in _MASK_PARAMS[int(hasattr(m, "multihead_attn"))]}}


def _activation_name(act: Any) -> str:
    """torch's activation (F.relu, F.gelu or their modules) as the layer's choice."""
    import torch.nn.functional as F
    from torch import nn

    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu"
    name = getattr(act, "__name__", type(act).__name__)
    raise ParamError(f"has the activation {name}; NetCanvas's Transformer layers take relu or gelu")


def _layer_defaults(shape: Shape | None) -> dict[str, Any]:
    """A dropped Transformer layer: heads that divide the features, and the usual 4·E hidden units."""
    if shape is None or len(shape) != 2:
        return {}
    return {"nhead": nearest_heads(shape[1], 8), "dim_feedforward": 4 * shape[1]}


def _layer_short(p: Params) -> str:
    text = f"{p['nhead']} heads · F {p['dim_feedforward']}"
    masked = any(p.get(name) for names in _MASK_PARAMS for name in names)
    return (text + (" · pre-norm" if p["norm_first"] else "") + (" · causal" if p["causal"] else "")
            + (" · masked" if masked else ""))


# the mask flags of an encoder layer [False] and a decoder layer [True], as their modules hold them
_MASK_PARAMS = (("src_key_padding_mask",), _DECODER_MASKS)

_LAYER_NOTE = ("attention 4·E² + 4·E, feed-forward 2·E·F + F + E, 2·E per layer norm (without bias: the "
               "weights only)")

def _transformer_layer(type_name: str, doc: str, causal: ParamSpec, masks: tuple[ParamSpec, ...], infer: Any,
                       inputs: int, note: str, stem: str, role: FitRole) -> LayerSpec:
    """Declare torch's Transformer layer ``type_name`` (built as our batch-first ``Sequence…`` subclass)."""
    return register(LayerSpec(
        type=type_name, category=Category.ATTENTION, doc=doc, params=(*_layer_params(), causal, *masks),
        infer=infer, window=_seq_rule, build=_layer_build(f"Sequence{type_name}"),
        min_inputs=inputs, max_inputs=inputs + len(masks), short=_layer_short, module_class=f"torch.nn.{type_name}",
        from_module=_layer_from_module, own_class=f"core.layers.attention_modules.Sequence{type_name}",
        trainable_note=note, id_stem=stem, editor_defaults=_layer_defaults, fit_role=role,
    ))


TransformerEncoderLayer = _transformer_layer(
    "TransformerEncoderLayer",
    "A Transformer encoder block on a T×E sequence: self-attention and a feed-forward network, each with a "
    "residual sum and a layer norm; then the padding mask (T,) when src_key_padding_mask is on.",
    ParamSpec("causal", Kind.BOOL, False, "Step t attends only to steps up to t (a decoder-only language model)."),
    (ParamSpec("src_key_padding_mask", Kind.BOOL, False, _MASK_DOC.format(what="sequence")),),
    # OTHER since the mask port: the head walk follows one input only (it stops at a wired mask anyway)
    _encoder_infer, 1, _LAYER_NOTE, "encoder", FitRole.OTHER)

TransformerDecoderLayer = _transformer_layer(
    "TransformerDecoderLayer",
    "A Transformer decoder block; inputs tgt (T×E) and memory (S×E), then the padding masks that are on: "
    "masked self-attention, attention to the memory, then a feed-forward network.",
    ParamSpec("causal", Kind.BOOL, True, "Target step t attends only to target steps up to t (the memory is "
              "always seen whole)."),
    (ParamSpec("tgt_key_padding_mask", Kind.BOOL, False, _MASK_DOC.format(what="target")),
     ParamSpec("memory_key_padding_mask", Kind.BOOL, False, _MASK_DOC.format(what="memory").replace(
         "as the last input", "as the last input (after the target's mask when both are on)"))),
    _decoder_infer, 2, "two attentions, the feed-forward network and three layer norms; " + _LAYER_NOTE, "decoder",
    FitRole.OTHER)


# -- PositionalEncoding ---------------------------------------------------------------------------

def _pe_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    t, c = sequence_shape("PositionalEncoding", shape)
    n = int(p["max_len"])
    if t > n:
        raise LayerError(f"PositionalEncoding has codes for {n} positions (max_len) but the sequence has {t} steps "
                         f"— set max_len to {t}", set_param_fix("max_len", t), param="max_len")
    table = n * c
    learned = p["mode"] == "learned"
    return Inferred(out_shapes=(shape,), args={"num_features": c}, params=table if learned else 0,
                    buffers=0 if learned else table)


def _pe_build(p: Params) -> Any:
    from core.layers.attention_modules import PositionalEncoding as Module

    return Module(int(p["num_features"]), mode=p["mode"], max_len=int(p["max_len"]), dropout=float(p["dropout"]))


def _pe_from_module(m: Any) -> dict[str, Any]:
    return {"mode": str(m.mode), "max_len": int(m.max_len), "dropout": float(m.dropout.p)}


PositionalEncoding = register(LayerSpec(
    type="PositionalEncoding", category=Category.ATTENTION,
    doc="Adds a code of each step's position to a T×C sequence (sinusoidal as in Vaswani et al., or learned), "
        "then dropout.",
    params=(
        ParamSpec("num_features", Kind.INT, None, "Features C of each step; inferred from the T×C input.", min=1,
                  inferred=True),
        ParamSpec("mode", Kind.CHOICE, "sinusoidal", "sinusoidal: fixed sines and cosines of the position; "
                  "learned: a trained max_len×C table.", choices=("sinusoidal", "learned")),
        ParamSpec("max_len", Kind.INT, 1000, "Longest sequence it has codes for.", min=1),
        ParamSpec("dropout", Kind.FLOAT, 0.1, "Dropout after adding the codes while training.", min=0.0, max=1.0),
    ),
    infer=_pe_infer, build=_pe_build,
    short=lambda p: p["mode"],
    module_class="core.layers.attention_modules.PositionalEncoding", from_module=_pe_from_module,
    trainable_note="learned: max_len·C parameters; sinusoidal: a fixed max_len·C buffer, not saved with the "
                   "weights",
    id_stem="pos", fit_role=FitRole.PASS_THROUGH,
))


# -- PaddingMask ----------------------------------------------------------------------------------

def _padding_mask_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 1:
        raise LayerError(f"PaddingMask expects token ids (T,), got {fmt_shape(shape)}: take the mask from the ids "
                         f"(the Input before the Embedding), not from the vectors")
    return Inferred(out_shapes=(shape,))


def padding_mask(ids: Any, pad_id: int = 0) -> Any:
    """True where a token id is the padding id: the key padding mask of attention."""
    return ids == pad_id


PaddingMask = register(LayerSpec(
    type="PaddingMask", category=Category.SHAPE,
    doc="Marks the padding of token ids, ids == pad_id: (T,) ids → (T,) bool, True at padding (an attention "
        "layer's key padding mask).",
    params=(ParamSpec("pad_id", Kind.INT, 0, "The id that pads the sequences (the vocabulary's <pad>)."),),
    infer=_padding_mask_infer, function=padding_mask,
    code=lambda xs, p: f"{xs[0]} == {int(p['pad_id'])}",
    short=lambda p: f"== {p['pad_id']}", id_stem="pad_mask", int_inputs=True, fit_role=FitRole.OTHER,
))


__all__ = ["MultiheadAttention", "PaddingMask", "PositionalEncoding", "TransformerDecoderLayer",
           "TransformerEncoderLayer", "attention_counts", "check_heads", "check_mask", "feed_forward_counts",
           "nearest_heads", "padding_mask", "sequence_shape"]
