"""Pooling: MaxPool2d, AvgPool2d (windows), AdaptiveAvg/MaxPool2d (fixed output size) and Mean.

Same output-size rule as convolutions (ceil_mode included, where a window larger than the padded
input still gives one output); torch also refuses a padding larger than half the kernel
(``pad ≤ ⌊k/2⌋``, the undilated kernel even for MaxPool2d with dilation). Pooling has no parameters and counts 0 MACs
(DESIGN.md §5).

Mean (``x.mean(dims)``) is global average pooling as MNASNet and ShuffleNet write it: a
``call_function`` op whose ``dim`` counts the batch axis as 0, like torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.conv import expect_spatial, window_sizes, without_padding_fix
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
    Window,
    fmt_shape,
    sample_axis,
    set_param_fix,
    torch_builder,
    tup,
)


def _window_params(p: Params, nd: int) -> tuple[tuple[int, ...], ...]:
    k = tup(p["kernel_size"], nd)
    s = tup(p["stride"], nd) if p["stride"] is not None else k
    pad = tup(p["padding"], nd)
    d = tup(p.get("dilation", 1), nd)
    return k, s, pad, d


def _pool_infer(type_name: str, nd: int) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        expect_spatial(type_name, shape, nd)
        k, s, pad, d = _window_params(p, nd)
        allowed = [min(pi, ki // 2) for ki, pi in zip(k, pad, strict=True)]
        for ki, pi, ok in zip(k, pad, allowed, strict=True):
            if pi > ok:
                value: Any = allowed[0] if len(set(allowed)) == 1 else allowed
                raise LayerError(f"{type_name}: padding {pi} is more than half the kernel size {ki} "
                                 f"(torch allows at most {ki // 2}) — use padding {value}",
                                 set_param_fix("padding", value), param="padding")
        try:
            out = window_sizes(type_name, shape[1:], k, s, pad, d, p["ceil_mode"])
        except LayerError as exc:
            fix = exc.fix
            if fix is not None and fix.param == "padding" and fix.value > min(k) // 2:
                # More padding would break the half-kernel rule above; only a smaller window helps.
                raise without_padding_fix(exc) from None
            raise
        return Inferred(out_shapes=((shape[0], *out),))

    return infer


def _pool_window(nd: int) -> Any:
    def window(p: Params, shapes: Sequence[Shape]) -> Window:
        k, s, pad, d = _window_params(p, nd)
        return Window(k, s, pad, d)

    return window


def _pool_short(p: Params) -> str:
    k = tup(p["kernel_size"], 2)
    s = tup(p["stride"], 2) if p["stride"] is not None else k
    text = "×".join(map(str, k))
    if s != k:
        text += f" · s{s[0]}" if len(set(s)) == 1 else " · s" + "×".join(map(str, s))
    elif s[0] != 1:
        text += f" · s{s[0]}"
    return text


_KS = ParamSpec("kernel_size", Kind.INTS, 2, "Window size F (one value, or one per axis).", min=1, arity=2)
_STRIDE = ParamSpec("stride", Kind.INTS, None, "Step S between windows; unset means S = kernel_size.",
                    min=1, arity=2, optional=True, default_from="kernel_size")
_PAD = ParamSpec("padding", Kind.INTS, 0, "Implicit padding P on each side (at most half the kernel).",
                 min=0, arity=2)
_CEIL = ParamSpec("ceil_mode", Kind.BOOL, False,
                  "Round the output size up instead of down (a last partial window is kept).")

MaxPool2d = register(LayerSpec(
    type="MaxPool2d", category=Category.POOL,
    doc="Takes the maximum of each F×F window: halves H×W with F=2, S=2; no parameters.",
    params=(_KS, _STRIDE, _PAD,
            ParamSpec("dilation", Kind.INTS, 1, "Spacing between window taps.", min=1, arity=2),
            _CEIL),
    infer=_pool_infer("MaxPool2d", 2), window=_pool_window(2), build=torch_builder("MaxPool2d"), short=_pool_short,
    feature_maps=True, fit_role=FitRole.PASS_THROUGH,
))

AvgPool2d = register(LayerSpec(
    type="AvgPool2d", category=Category.POOL,
    doc="Averages each F×F window (LeNet's subsampling); no parameters.",
    params=(_KS, _STRIDE, _PAD, _CEIL,
            ParamSpec("count_include_pad", Kind.BOOL, True, "Count padded zeros in the average."),
            ParamSpec("divisor_override", Kind.INT, None, "Divide by this instead of the window size.",
                      min=1, optional=True)),
    infer=_pool_infer("AvgPool2d", 2), window=_pool_window(2), build=torch_builder("AvgPool2d"), short=_pool_short,
    feature_maps=True, fit_role=FitRole.PASS_THROUGH,
))


def _adaptive_infer(type_name: str) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        expect_spatial(type_name, shape, 2)
        out = tup(p["output_size"], 2)
        return Inferred(out_shapes=((shape[0], *out),))

    return infer


def _adaptive_window(p: Params, shapes: Sequence[Shape]) -> Any:
    out = tup(p["output_size"], 2)
    if all(o == 1 for o in out):
        return GLOBAL
    spatial = shapes[0][1:]
    # torch's adaptive windows: start = floor(i·n/o), end = ceil((i+1)·n/o). They are ceil(n/o)
    # wide, or one wider where i·n mod o > o − n mod o, which happens for some i exactly when
    # n mod o does not divide o (9 → 6: all 2 wide; 5 → 3: 2, 3, 2). The field's size is the
    # widest window and its stride n/o, a fraction when o does not divide n (AlexNet at 320 px).
    k = tuple(-(-n // o) + (1 if n % o and o % (n % o) else 0) for n, o in zip(spatial, out, strict=True))
    s = tuple(n // o if n % o == 0 else n / o for n, o in zip(spatial, out, strict=True))
    return Window(k, s, (0, 0), (1, 1))


def _adaptive(type_name: str, doc: str, stem: str) -> LayerSpec:
    return register(LayerSpec(
        type=type_name, category=Category.POOL, doc=doc,
        params=(ParamSpec("output_size", Kind.INTS, 1, "Output H×W; 1 = global pooling to one value per channel.",
                          min=1, arity=2),),
        infer=_adaptive_infer(type_name), window=_adaptive_window, build=torch_builder(type_name),
        short=lambda p: "→ " + "×".join(map(str, tup(p["output_size"], 2))),
        id_stem=stem, feature_maps=True, fit_role=FitRole.PASS_THROUGH,
    ))


AdaptiveAvgPool2d = _adaptive("AdaptiveAvgPool2d",
                              "Averages each channel down to a fixed output size (global average pooling at 1).",
                              "avgpool")
AdaptiveMaxPool2d = _adaptive("AdaptiveMaxPool2d", "Max-pools each channel down to a fixed output size.", "maxpool")


# -- Mean -----------------------------------------------------------------------------------------

def _mean_axes(p: Params, shape: Shape) -> list[int]:
    dims = list(p["dim"])
    axes = [sample_axis("Mean", d, len(shape)) for d in dims]
    if len(set(axes)) != len(axes):
        raise LayerError(f"Mean dim={dims} names an axis twice", param="dim")
    return axes


def _mean_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    axes = _mean_axes(p, shape)
    if p["keepdim"]:
        out = tuple(1 if i in axes else n for i, n in enumerate(shape))
    else:
        out = tuple(n for i, n in enumerate(shape) if i not in axes)
    if not out:
        raise LayerError(f"Mean over every axis of the {fmt_shape(shape)} input leaves a scalar per sample "
                         f"— keep the channel axis (dim [2, 3])", set_param_fix("dim", [2, 3]), param="dim")
    return Inferred(out_shapes=(out,))


def _mean_window(p: Params, shapes: Sequence[Shape]) -> Any:
    shape = shapes[0]
    try:
        axes = _mean_axes(p, shape)
    except LayerError:
        return None
    # Averaging over a spatial axis (any axis after the channels) sees the whole input.
    return GLOBAL if len(shape) > 1 and any(a >= 1 for a in axes) else None


def _mean(x: Any, dim: Sequence[int], keepdim: bool = False) -> Any:
    return x.mean(list(dim), keepdim=keepdim)


Mean = register(LayerSpec(
    type="Mean", category=Category.POOL,
    doc="Averages over some axes (x.mean): over H and W it is global average pooling (MNASNet, ShuffleNet).",
    params=(ParamSpec("dim", Kind.SHAPE, [2, 3], "Axes to average, counted with the batch axis "
                      "(2, 3 = height and width)."),
            ParamSpec("keepdim", Kind.BOOL, False, "Keep the averaged axes with size 1.")),
    infer=_mean_infer, window=_mean_window, function=_mean,
    code=lambda xs, p: f"{xs[0]}.mean([{', '.join(str(int(d)) for d in p['dim'])}], keepdim={bool(p['keepdim'])})",
    short=lambda p: "dims " + ",".join(str(d) for d in p["dim"]),
    fit_role=FitRole.PASS_THROUGH,  # over H and W (its default) it keeps the channels
))

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "MaxPool2d", "Mean"]
