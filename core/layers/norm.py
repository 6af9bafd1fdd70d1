"""Normalization: BatchNorm1d/2d/3d, LayerNorm, LayerNorm2d, GroupNorm, LocalResponseNorm, LayerScale.

Shape in = shape out. Learnable parameters are the affine scale γ and shift β (``2C`` for
BatchNorm, as in the d2l notes); BatchNorm also keeps running statistics as *buffers*
(``running_mean``, ``running_var``: ``2C`` values, plus the one-element ``num_batches_tracked``
counter), which torch's ``buffers()`` yields and analysis reports apart (DESIGN.md §5).
Normalization counts 0 MACs.

Input-dependent arguments are inferred like ``in_channels``: BatchNorm's ``num_features`` and
GroupNorm's ``num_channels`` are the input's C. LayerNorm's ``normalized_shape`` is a real choice
(the last axis for transformer features, C×H×W for a whole image), so it is an optional
parameter: empty means the last axis, and a given shape must match the input's trailing axes.

LayerNorm2d (ConvNeXt's channels-first LayerNorm) and LayerScale (a learned per-channel factor)
are built from our own modules in :mod:`core.layers.extra_modules`, imported only when built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import (
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
    numel,
    set_param_fix,
    torch_builder,
)

_EPS = ParamSpec("eps", Kind.FLOAT, 1e-5, "ε added to the variance so the division never blows up.",
                 min=0.0, min_inclusive=False)
_BIAS = ParamSpec("bias", Kind.BOOL, True, "Learn the shift β too (only with the affine scale on).")


def _affine_count(p: Params, n: int, flag: str) -> int:
    """γ (and β when ``bias``) of ``n`` elements each, when the affine transform is learned."""
    if not p[flag]:
        return 0
    return n * (2 if p["bias"] else 1)


# -- BatchNorm ------------------------------------------------------------------------------------

def _batchnorm(nd: int) -> LayerSpec:
    type_name = f"BatchNorm{nd}d"

    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        if nd == 1:
            if len(shape) not in (1, 2):
                hint = " — use BatchNorm2d for C×H×W feature maps" if len(shape) == 3 else ""
                raise LayerError(f"{type_name} needs a C (features) or C×L (sequence) input, but gets "
                                 f"{fmt_shape(shape)}{hint}")
        elif len(shape) != nd + 1:
            want = "C×H×W" if nd == 2 else "C×D×H×W"
            hint = (" — use BatchNorm1d after Flatten or Linear" if len(shape) in (1, 2)
                    else f" — use BatchNorm{len(shape) - 1}d" if len(shape) in (3, 4) else "")
            raise LayerError(f"{type_name} needs a {want} input, but gets {fmt_shape(shape)}{hint}")
        c = shape[0]
        buffers = 2 * c + 1 if p["track_running_stats"] else 0
        return Inferred(out_shapes=(tuple(shape),), args={"num_features": c},
                        params=_affine_count(p, c, "affine"), buffers=buffers)

    docs = {
        1: "Batch normalization over features (C or C×L): standardizes each feature over the batch.",
        2: "Batch normalization per channel of C×H×W maps: steadies training; put it between conv and ReLU.",
        3: "Batch normalization per channel of C×D×H×W volumes (after Conv3d).",
    }
    return register(LayerSpec(
        type=type_name, category=Category.NORM, doc=docs[nd],
        params=(
            ParamSpec("num_features", Kind.INT, None, "Channels/features C; inferred from the input.",
                      min=1, inferred=True),
            _EPS,
            ParamSpec("momentum", Kind.FLOAT, 0.1,
                      "Weight of the newest batch in the running mean/variance; empty = plain average.",
                      min=0.0, max=1.0, optional=True),
            ParamSpec("affine", Kind.BOOL, True, "Learn a scale γ and shift β per channel (2C parameters)."),
            ParamSpec("track_running_stats", Kind.BOOL, True,
                      "Keep running mean/variance (2C buffers) for eval(); off = always use batch statistics."),
            _BIAS,
        ),
        infer=infer, build=torch_builder(type_name),
        trainable_note="2C learnable (γ, β) + 2C running statistics as buffers",
        id_stem="bn", feature_maps=True, fit_role=FitRole.PASS_THROUGH,
    ))


BatchNorm1d = _batchnorm(1)
BatchNorm2d = _batchnorm(2)
BatchNorm3d = _batchnorm(3)


# -- LayerNorm ------------------------------------------------------------------------------------

def _layernorm_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    given = p["normalized_shape"]
    norm = list(given) if given is not None else [shape[-1]]
    tail = list(shape[len(shape) - len(norm):]) if len(norm) <= len(shape) else None
    if tail != norm:
        want = list(shape[-len(norm):]) if len(norm) <= len(shape) else [shape[-1]]
        raise LayerError(
            f"LayerNorm normalized_shape={fmt_shape(norm)} must match the last axes of the input "
            f"{fmt_shape(shape)} — use {fmt_shape(want)}",
            set_param_fix("normalized_shape", want, f"set normalized_shape to {fmt_shape(want)}"),
            param="normalized_shape")
    return Inferred(out_shapes=(tuple(shape),), args={"normalized_shape": norm},
                    params=_affine_count(p, numel(norm), "elementwise_affine"))


LayerNorm = register(LayerSpec(
    type="LayerNorm", category=Category.NORM,
    doc="Layer normalization: standardizes each sample over its last axes (transformers, ConvNeXt).",
    params=(
        ParamSpec("normalized_shape", Kind.SHAPE, None,
                  "Trailing axes to normalize over; empty = the last axis (features); C×H×W = the whole sample.",
                  optional=True),
        _EPS,
        ParamSpec("elementwise_affine", Kind.BOOL, True,
                  "Learn a scale γ and shift β per normalized element."),
        _BIAS,
    ),
    infer=_layernorm_infer, build=torch_builder("LayerNorm"),
    short=lambda p: fmt_shape(p["normalized_shape"]) if p["normalized_shape"] is not None else "",
    id_stem="ln", fit_role=FitRole.PASS_THROUGH,
))


# -- GroupNorm ------------------------------------------------------------------------------------

def _divisor_at_most(n: int, g: int) -> int:
    """The largest divisor of ``n`` that is ≤ ``g`` (1 at worst)."""
    return max(x for x in range(1, min(n, g) + 1) if n % x == 0)


def _groupnorm_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    c, g = shape[0], p["num_groups"]
    if c % g:
        best = _divisor_at_most(c, g)
        raise LayerError(f"GroupNorm: num_groups={g} must divide the {c} input channels — use num_groups={best}",
                         set_param_fix("num_groups", best), param="num_groups")
    return Inferred(out_shapes=(tuple(shape),), args={"num_channels": c},
                    params=_affine_count(p, c, "affine"))


def _groupnorm_editor(shape: Shape | None) -> dict[str, Any]:
    """torch's usual 32 groups, or the most that divide C, once the input is known."""
    return {"num_groups": math.gcd(32, shape[0])} if shape is not None and len(shape) >= 2 else {}


GroupNorm = register(LayerSpec(
    type="GroupNorm", category=Category.NORM,
    doc="Group normalization: standardizes groups of channels per sample; works with tiny batches.",
    params=(
        ParamSpec("num_groups", Kind.INT, 32, "Number of channel groups G; must divide the channels "
                  "(1 = LayerNorm over C×H×W, C = InstanceNorm).", min=1),
        ParamSpec("num_channels", Kind.INT, None, "Channels C; inferred from the input.", min=1, inferred=True),
        _EPS,
        ParamSpec("affine", Kind.BOOL, True, "Learn a scale γ and shift β per channel (2C parameters)."),
        _BIAS,
    ),
    infer=_groupnorm_infer, build=torch_builder("GroupNorm"),
    short=lambda p: f"{p['num_groups']} groups",
    id_stem="gn", editor_defaults=_groupnorm_editor, fit_role=FitRole.PASS_THROUGH,
))


# -- LocalResponseNorm ----------------------------------------------------------------------------

def _lrn_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) < 2:  # torch needs a channel axis and at least one spatial axis
        raise LayerError(f"LocalResponseNorm needs a C×L or C×H×W input, but gets a flat vector of {shape[0]} "
                         f"— it must come before Flatten")
    return Inferred(out_shapes=(tuple(shape),))


def _lrn_build(p: Params) -> Any:
    import torch.nn as nn

    return nn.LocalResponseNorm(p["size"], alpha=p["alpha"], beta=p["beta"], k=p["k"])


LocalResponseNorm = register(LayerSpec(
    type="LocalResponseNorm", category=Category.NORM,
    doc="Local response normalization across neighbouring channels (AlexNet); no parameters.",
    params=(
        ParamSpec("size", Kind.INT, 5, "Number of neighbouring channels n to normalize over (AlexNet: 5).",
                  min=1),
        ParamSpec("alpha", Kind.FLOAT, 1e-4, "Scale α of the sum of squares (AlexNet: 1e-4).", min=0.0),
        ParamSpec("beta", Kind.FLOAT, 0.75, "Exponent β (AlexNet: 0.75).", min=0.0),
        ParamSpec("k", Kind.FLOAT, 1.0, "Additive constant k (AlexNet used 2).", min=0.0),
    ),
    infer=_lrn_infer, build=_lrn_build,
    short=lambda p: f"size {p['size']}",
    fit_role=FitRole.PASS_THROUGH,
))


# -- LayerScale -----------------------------------------------------------------------------------

def _layer_scale_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    c = shape[0]
    return Inferred(out_shapes=(tuple(shape),), args={"channels": c, "rank": len(shape)}, params=c)


def _layer_scale_build(p: Params) -> Any:
    from core.layers.extra_modules import LayerScale as Module

    return Module(p["channels"], init_value=p["init_value"], rank=p["rank"])


LayerScale = register(LayerSpec(
    type="LayerScale", category=Category.NORM,
    doc="Multiplies each channel by a learned factor γ that starts tiny, so a new residual branch "
        "begins almost switched off (ConvNeXt, CaiT).",
    params=(ParamSpec("channels", Kind.INT, None, "Channels C (one γ each); inferred from the input.",
                      min=1, inferred=True),
            ParamSpec("rank", Kind.INT, None, "Axes per sample (γ is shaped C×1×…×1); inferred.",
                      min=1, inferred=True),
            ParamSpec("init_value", Kind.FLOAT, 1e-6, "Starting value of every γ (ConvNeXt: 1e-6).")),
    infer=_layer_scale_infer, build=_layer_scale_build,
    short=lambda p: f"γ₀ {p['init_value']:g}",
    module_class="core.layers.extra_modules.LayerScale",
    trainable_note="C learnable factors (parameter `layer_scale`)",
    fit_role=FitRole.PASS_THROUGH,
))


# -- LayerNorm2d ----------------------------------------------------------------------------------

def _layernorm2d_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 3:
        hint = " — use LayerNorm for flat features" if len(shape) == 1 else ""
        raise LayerError(f"LayerNorm2d normalizes the channels of each pixel of a C×H×W map, but gets "
                         f"{fmt_shape(shape)}{hint}")
    c = shape[0]
    n = 0 if not p["elementwise_affine"] else c * (2 if p["bias"] else 1)
    return Inferred(out_shapes=(tuple(shape),), args={"normalized_shape": c}, params=n)


def _layernorm2d_build(p: Params) -> Any:
    from core.layers.extra_modules import LayerNorm2d as Module

    return Module(p["normalized_shape"], eps=p["eps"], elementwise_affine=p["elementwise_affine"], bias=p["bias"])


LayerNorm2d = register(LayerSpec(
    type="LayerNorm2d", category=Category.NORM,
    doc="LayerNorm over the channels of each pixel of a C×H×W map (ConvNeXt's channels-first LayerNorm).",
    params=(ParamSpec("normalized_shape", Kind.INT, None, "Channels C; inferred from the input.",
                      min=1, inferred=True),
            ParamSpec("eps", Kind.FLOAT, 1e-5, "ε added to the variance (ConvNeXt: 1e-6).",
                      min=0.0, min_inclusive=False),
            ParamSpec("elementwise_affine", Kind.BOOL, True, "Learn a scale γ and shift β per channel."),
            ParamSpec("bias", Kind.BOOL, True, "Learn the shift β too (only with the affine scale on).")),
    infer=_layernorm2d_infer, build=_layernorm2d_build,
    module_class="torchvision.models.convnext.LayerNorm2d", own_class="core.layers.extra_modules.LayerNorm2d",
    trainable_note="2C learnable (γ, β)",
    id_stem="ln", fit_role=FitRole.PASS_THROUGH,
))


# -- FrozenBatchNorm2d ----------------------------------------------------------------------------

def _frozen_bn_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 3:
        raise LayerError(f"FrozenBatchNorm2d needs a C×H×W input, but gets {fmt_shape(shape)}")
    return Inferred(out_shapes=(tuple(shape),), args={"num_features": shape[0]}, params=0, buffers=4 * shape[0])


def _frozen_bn_build(p: Params) -> Any:
    from core.layers.extra_modules import FrozenBatchNorm2d as Module

    return Module(p["num_features"], eps=p["eps"])


FrozenBatchNorm2d = register(LayerSpec(
    type="FrozenBatchNorm2d", category=Category.NORM,
    doc="BatchNorm2d with fixed statistics, scale and shift (detection backbones): normalizes every batch "
        "with the stored statistics and never trains.",
    params=(ParamSpec("num_features", Kind.INT, None, "Channels C; inferred from the input.", min=1,
                      inferred=True),
            _EPS),
    infer=_frozen_bn_infer, build=_frozen_bn_build,
    module_class="torchvision.ops.misc.FrozenBatchNorm2d",
    own_class="core.layers.extra_modules.FrozenBatchNorm2d",
    trainable_note="no learnable parameters: γ, β and the running statistics are 4C buffers",
    id_stem="bn", feature_maps=True, fit_role=FitRole.PASS_THROUGH,
))


# -- Normalize (F.normalize) ----------------------------------------------------------------------

def _normalize_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    dim, nd = p["dim"], len(shape) + 1  # torch's dim counts the batch axis
    if not -nd <= dim < nd or dim in (0, -nd):
        raise LayerError(f"Normalize dim={dim} is not an axis of a {fmt_shape(shape)} sample (dim counts the "
                         f"batch axis, which is never normalized across) — use dim=1 (channels)",
                         set_param_fix("dim", 1), param="dim")
    return Inferred(out_shapes=(tuple(shape),))


def _normalize(x: Any, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Any:
    import torch.nn.functional as F

    return F.normalize(x, p=p, dim=dim, eps=eps)


Normalize = register(LayerSpec(
    type="Normalize", category=Category.NORM,
    doc="Divides each vector along an axis by its p-norm, F.normalize (SSD's L2 norm of conv4_3, "
        "embeddings on the unit sphere); no parameters.",
    params=(ParamSpec("p", Kind.FLOAT, 2.0, "Which norm: 2 = Euclidean length, 1 = sum of magnitudes.",
                      min=0.0, min_inclusive=False),
            ParamSpec("dim", Kind.INT, 1, "Axis of the vectors, counted with the batch axis: 1 = channels.",
                      min=-8, max=8),
            ParamSpec("eps", Kind.FLOAT, 1e-12, "Smallest norm divided by, so a zero vector stays zero.",
                      min=0.0)),
    infer=_normalize_infer, function=_normalize,
    code=lambda xs, p: (f"torch.nn.functional.normalize({xs[0]}, p={float(p['p'])!r}, dim={int(p['dim'])}, "
                        f"eps={float(p['eps'])!r})"),
    short=lambda p: f"L{p['p']:g} · dim {p['dim']}",
    fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "FrozenBatchNorm2d", "GroupNorm", "LayerNorm", "LayerNorm2d",
           "LayerScale", "LocalResponseNorm", "Normalize"]
