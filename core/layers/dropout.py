"""Dropout: Dropout (single activations), Dropout2d (whole channels) and StochasticDepth
(whole residual branches, EfficientNet and ConvNeXt; our module in :mod:`core.layers.extra_modules`).

Active only in ``train()``; in ``eval()`` they pass the input through. Shape in = shape out,
no parameters, 0 MACs.
"""

from __future__ import annotations

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
    torch_builder,
)

_P = ParamSpec("p", Kind.FLOAT, 0.5, "Probability of zeroing each element while training (AlexNet: 0.5).",
               min=0.0, max=1.0)
_INPLACE = ParamSpec("inplace", Kind.BOOL, False, "Overwrite the input tensor to save memory.")


def _dropout_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(shapes[0]),))


def _dropout2d_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    warnings: tuple[tuple[str, Any], ...] = ()
    if len(shape) == 2:
        # torch reads a batched 3-D input as N×C×L and drops whole channels (Dropout1d behaviour).
        warnings = ((f"Dropout2d on a C×L input ({fmt_shape(shape)}) drops whole channels of a sequence; "
                     f"torch treats it like Dropout1d and warns", None),)
    elif len(shape) != 3:
        hint = " — use Dropout for flat features" if len(shape) == 1 else ""
        raise LayerError(f"Dropout2d needs a C×H×W input (it drops whole channels), but gets {fmt_shape(shape)}{hint}")
    return Inferred(out_shapes=(tuple(shape),), warnings=warnings)


def _short(p: Params) -> str:
    return f"p {p['p']:g}"


Dropout = register(LayerSpec(
    type="Dropout", category=Category.DROPOUT,
    doc="Randomly zeroes activations with probability p while training (and scales the rest by 1/(1−p)).",
    params=(_P, _INPLACE), infer=_dropout_infer, build=torch_builder("Dropout"), short=_short,
    id_stem="drop", fit_role=FitRole.PASS_THROUGH,
))

Dropout2d = register(LayerSpec(
    type="Dropout2d", category=Category.DROPOUT,
    doc="Spatial dropout: zeroes whole channels of a C×H×W map with probability p while training.",
    params=(_P, _INPLACE), infer=_dropout2d_infer, build=torch_builder("Dropout2d"), short=_short,
    id_stem="drop", fit_role=FitRole.PASS_THROUGH,
))


# -- StochasticDepth ------------------------------------------------------------------------------

def _same(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(shapes[0]),))


def _stochastic_depth_build(p: Params) -> Any:
    from core.layers.extra_modules import StochasticDepth as Module

    return Module(p=p["p"], mode=p["mode"])


StochasticDepth = register(LayerSpec(
    type="StochasticDepth", category=Category.DROPOUT,
    doc="Drops a whole residual branch with probability p while training (EfficientNet, ConvNeXt); "
        "identity in eval().",
    params=(ParamSpec("p", Kind.FLOAT, 0.1, "Probability of dropping the branch while training.",
                      min=0.0, max=1.0),
            ParamSpec("mode", Kind.CHOICE, "row", "'row': one decision per sample; 'batch': one per batch.",
                      choices=("row", "batch"))),
    infer=_same, build=_stochastic_depth_build,
    short=lambda p: f"p {p['p']:g}" + (" · batch" if p["mode"] == "batch" else ""),
    module_class="torchvision.ops.StochasticDepth", own_class="core.layers.extra_modules.StochasticDepth",
    fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["Dropout", "Dropout2d", "StochasticDepth"]
