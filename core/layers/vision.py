"""The vision transformers' own attention layers: Swin's shifted-window attention (V1 and V2), MaxViT's.

torchvision's Swin Transformer attends inside windows of an H×W×C map with a learned bias per
relative position; its attention is one module whose forward is a single function (padding,
shift, window partition, attention, reverse) that no general layer spells, so it is one layer
type here, like torch's own ``nn.MultiheadAttention``. Swin V2's variant (scaled cosine attention,
a position bias from a small MLP) is the same type with ``cosine`` on; torchvision's
``ShiftedWindowAttentionV2`` imports as it (:mod:`core.importer.modules`).

Counts, per sample, for an H×W×C input padded to Hp×Wp (whole windows of N = wh·ww tokens),
T = Hp·Wp tokens:

- parameters: 3C² (+3C bias) + C² (+C bias) + a (2wh−1)(2ww−1)×heads bias table; V2 instead
  heads logit scales and the MLP 2→512→heads (2·512 + 512 + 512·heads);
- buffers: the N² relative position index (V2 also the (2wh−1)(2ww−1)×2 coordinate table);
- MACs: the projections T·C·3C + T·C·C, plus QKᵀ and A·V, T·N·C each (every head of every
  window: N² scores of C/heads features). V2 adds its MLP over the coordinate table, which runs
  once per forward whatever the batch; it is counted once per sample, as torchvision's published
  figures (batch 1) count it.

MaxViT's ``RelativePositionalMultiHeadAttention`` is likewise one type, RelativePositionAttention,
over G×P×D groups of P tokens that form an h×w patch (s×s in MaxViT; unset, the squarest that holds
P): 4D² + 4D projection weights and a (2h−1)(2w−1)×heads table,
G·P·4D² + 2·G·P²·D MACs (the keys are scaled by D^−½, torchvision's choice, not a head's width).

The modules are in :mod:`core.layers.vision_modules` (importing this file never imports torch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.layers.attention import check_heads, nearest_heads
from core.layers.registry import register
from core.layers.spec import (
    UNKNOWN_FIELD,
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
    set_param_fix,
    tup,
)

CPB_HIDDEN = 512  # width of Swin V2's position-bias MLP (torchvision's, fixed)


def _window_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 3:
        raise LayerError(f"ShiftedWindowAttention works on an H×W×C map (channels last: a Permute with dims "
                         f"[2, 3, 1] after a convolution), but gets {fmt_shape(shape)}")
    h, w, c = shape
    heads = int(p["num_heads"])
    check_heads(c, heads, "num_heads", "dim")
    wh, ww = (int(v) for v in tup(p["window_size"], 2))
    sh, sw = (int(v) for v in tup(p["shift_size"], 2))
    if sh >= wh or sw >= ww:
        raise LayerError(f"ShiftedWindowAttention shift_size {[sh, sw]} must be smaller than window_size {[wh, ww]} "
                         f"— Swin shifts by half a window, {[wh // 2, ww // 2]}",
                         set_param_fix("shift_size", [wh // 2, ww // 2]),
                         param="shift_size")
    if p["cosine"] and (wh < 2 or ww < 2):
        raise LayerError(f"ShiftedWindowAttention with cosine on needs windows of at least 2×2 (its position "
                         f"coordinates are scaled by window − 1), got {wh}×{ww} — use a window of 2 or more",
                         set_param_fix("window_size", 2),
                         param="window_size")
    tokens = (h + (wh - h % wh) % wh) * (w + (ww - w % ww) % ww)
    n, offsets = wh * ww, (2 * wh - 1) * (2 * ww - 1)
    params = 4 * c * c + (3 * c if p["qkv_bias"] else 0) + (c if p["proj_bias"] else 0)
    macs = tokens * c * 4 * c + 2 * tokens * n * c
    buffers = n * n
    if p["cosine"]:
        params += heads + 2 * CPB_HIDDEN + CPB_HIDDEN + CPB_HIDDEN * heads
        macs += offsets * (2 * CPB_HIDDEN + CPB_HIDDEN * heads)
        buffers += offsets * 2
    else:
        params += offsets * heads
    return Inferred(out_shapes=(tuple(shape),), args={"dim": c}, params=params, buffers=buffers, macs=macs,
                    saved=heads * tokens * n)


def _window_build(p: Params) -> Any:
    from core.layers.vision_modules import ShiftedWindowAttention as Module

    return Module(int(p["dim"]), list(tup(p["window_size"], 2)), list(tup(p["shift_size"], 2)),
                  int(p["num_heads"]), qkv_bias=bool(p["qkv_bias"]), proj_bias=bool(p["proj_bias"]),
                  attention_dropout=float(p["attention_dropout"]), dropout=float(p["dropout"]),
                  cosine=bool(p["cosine"]))


def _window_from_module(m: Any) -> dict[str, Any]:
    """torchvision's ShiftedWindowAttention or ShiftedWindowAttentionV2 (or ours) as this type's params."""
    return {"window_size": [int(v) for v in m.window_size], "shift_size": [int(v) for v in m.shift_size],
            "num_heads": int(m.num_heads), "qkv_bias": m.qkv.bias is not None, "proj_bias": m.proj.bias is not None,
            "attention_dropout": float(m.attention_dropout), "dropout": float(m.dropout),
            "cosine": hasattr(m, "logit_scale")}


def _window_editor(shape: Shape | None) -> dict[str, Any]:
    """A dropped layer's heads: 3 (Swin-T's first stage) where they divide the channels, else the nearest that do."""
    if shape is None or len(shape) != 3:
        return {}
    return {"num_heads": nearest_heads(shape[2], 3)}


def _window_short(p: Params) -> str:
    wh, ww = tup(p["window_size"], 2)
    shifted = any(tup(p["shift_size"], 2))
    cosine = " · cosine" if p["cosine"] else ""
    return f"{p['num_heads']} heads · {wh}×{ww}" + (" shifted" if shifted else "") + cosine


ShiftedWindowAttention = register(LayerSpec(
    type="ShiftedWindowAttention", category=Category.ATTENTION,
    doc="Swin's multi-head self-attention inside (shifted) windows of an H×W×C map, with a learned bias per "
        "relative position.",
    params=(
        ParamSpec("dim", Kind.INT, None, "Channels C of the H×W×C input; inferred.", min=1, inferred=True),
        ParamSpec("window_size", Kind.INTS, 7, "Window height and width in positions (the map is padded to whole "
                  "windows).", min=1, arity=2),
        ParamSpec("shift_size", Kind.INTS, 0, "Cyclic shift of the windows before attending; Swin alternates 0 and "
                  "half a window, so that information crosses window borders.", min=0, arity=2),
        ParamSpec("num_heads", Kind.INT, 3, "Attention heads; each attends with C / heads features.", min=1),
        ParamSpec("qkv_bias", Kind.BOOL, True, "Learn biases of the query, key and value projection."),
        ParamSpec("proj_bias", Kind.BOOL, True, "Learn a bias of the output projection."),
        ParamSpec("attention_dropout", Kind.FLOAT, 0.0, "Dropout on the attention weights while training.",
                  min=0.0, max=1.0),
        ParamSpec("dropout", Kind.FLOAT, 0.0, "Dropout on the output while training.", min=0.0, max=1.0),
        ParamSpec("cosine", Kind.BOOL, False, "Swin V2: cosine-similarity logits with a learned scale per head, and "
                  "the position bias from an MLP of log-spaced offsets (works for other window sizes too)."),
    ),
    infer=_window_infer, window=lambda p, shapes: UNKNOWN_FIELD, build=_window_build, short=_window_short,
    module_class="torchvision.models.swin_transformer.ShiftedWindowAttention", from_module=_window_from_module,
    own_class="core.layers.vision_modules.ShiftedWindowAttention", editor_defaults=_window_editor,
    trainable_note="projections 4C² (+4C biases) and a bias table of (2wh−1)(2ww−1)×heads; cosine: an MLP "
                   "2→512→heads and heads logit scales instead of the table",
    id_stem="attn", fit_role=FitRole.PASS_THROUGH,
))



# -- MaxViT's relative-position attention ---------------------------------------------------------

def _relative_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 3:
        raise LayerError(f"RelativePositionAttention works on G×P×D groups of P tokens (MaxViT's window or grid "
                         f"partition), but gets {fmt_shape(shape)}")
    g, tokens, d = shape
    wh, ww = _group_window(p, tokens)
    if wh * ww != tokens:
        raise LayerError(f"RelativePositionAttention's window_size {wh}×{ww} holds {wh * ww} tokens, but its input "
                         f"has groups of P = {tokens} ({fmt_shape(shape)}) — unset it for the squarest patch",
                         set_param_fix("window_size", None),
                         param="window_size")
    head_dim = int(p["head_dim"])
    if d % head_dim:
        fix = max(h for h in range(1, d + 1) if d % h == 0 and h <= head_dim)
        raise LayerError(f"RelativePositionAttention's features {d} are not divisible by head_dim {head_dim}: "
                         f"the heads take {head_dim} features each — use head_dim {fix}",
                         set_param_fix("head_dim", fix), param="head_dim")
    heads = d // head_dim
    params = 4 * d * d + 4 * d + (2 * wh - 1) * (2 * ww - 1) * heads
    macs = g * tokens * 4 * d * d + 2 * g * tokens * tokens * d
    return Inferred(out_shapes=(tuple(shape),), args={"feat_dim": d, "max_seq_len": tokens}, params=params,
                    buffers=tokens * tokens, macs=macs, saved=g * heads * tokens * tokens)


def _group_window(p: Params, tokens: int) -> tuple[int, int]:
    """The patch a group's tokens form: ``window_size``, else the squarest h×w of P (s×s for MaxViT's)."""
    if p["window_size"] is not None:
        wh, ww = tup(p["window_size"], 2)
        return int(wh), int(ww)
    wh = max(h for h in range(1, math.isqrt(tokens) + 1) if tokens % h == 0)
    return wh, tokens // wh


def _relative_build(p: Params) -> Any:
    from core.layers.vision_modules import RelativePositionAttention as Module

    window = None if p["window_size"] is None else list(tup(p["window_size"], 2))
    return Module(int(p["feat_dim"]), int(p["head_dim"]), int(p["max_seq_len"]), window_size=window)


def _relative_editor(shape: Shape | None) -> dict[str, Any]:
    """A dropped layer's heads: 32 features each (MaxViT's) where that divides the features, else fewer."""
    if shape is None or len(shape) != 3:
        return {}
    return {"head_dim": max(h for h in range(1, min(shape[2], 32) + 1) if shape[2] % h == 0)}


def _relative_from_module(m: Any) -> dict[str, Any]:
    """torchvision's RelativePositionalMultiHeadAttention (an s×s group) or ours."""
    window = getattr(m, "window_size", None)
    side = math.isqrt(int(m.max_seq_len))
    if window is not None and list(window) != [side, side]:
        return {"head_dim": int(m.head_dim), "window_size": [int(v) for v in window]}
    return {"head_dim": int(m.head_dim)}


RelativePositionAttention = register(LayerSpec(
    type="RelativePositionAttention", category=Category.ATTENTION,
    doc="MaxViT's multi-head self-attention within each group of P tokens (G×P×D, an s×s patch each), with a "
        "learned bias per relative position.",
    params=(
        ParamSpec("feat_dim", Kind.INT, None, "Features D of each token; inferred.", min=1, inferred=True),
        ParamSpec("head_dim", Kind.INT, 2, "Features per head; D / head_dim heads (MaxViT: 32).", min=1),
        ParamSpec("max_seq_len", Kind.INT, None, "Tokens P per group; inferred.", min=1, inferred=True),
        ParamSpec("window_size", Kind.INTS, None, "Height and width of the patch a group's tokens form (their "
                  "relative positions); unset: the squarest that holds P (s×s, as MaxViT's).", min=1, arity=2,
                  optional=True),
    ),
    infer=_relative_infer, window=lambda p, shapes: UNKNOWN_FIELD, build=_relative_build,
    short=lambda p: f"head_dim {p['head_dim']}",
    module_class="torchvision.models.maxvit.RelativePositionalMultiHeadAttention",
    from_module=_relative_from_module, editor_defaults=_relative_editor,
    own_class="core.layers.vision_modules.RelativePositionAttention",
    trainable_note="projections 4D² + 4D biases and a (2h−1)(2w−1)×heads bias table for h×w groups",
    id_stem="attn", fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["CPB_HIDDEN", "RelativePositionAttention", "ShiftedWindowAttention"]
