"""Pooling: Max/AvgPool1d, 2d and 3d (windows), AdaptiveAvg/MaxPool1d and 2d and AdaptiveAvgPool3d
(fixed output size), MaxUnpool2d, BlurPool2d (a fixed binomial blur, then a stride), and Mean, Sum, Amax.

Same output-size rule as convolutions (ceil_mode included, where a window larger than the padded
input still gives one output); torch also refuses a padding larger than half the kernel
(``pad ≤ ⌊k/2⌋``, the undilated kernel even for MaxPool2d with dilation). Pooling has no parameters and counts 0 MACs
(DESIGN.md §5).

Mean (``x.mean(dims)``) is global average pooling as MNASNet and ShuffleNet write it: a
``call_function`` op whose ``dim`` counts the batch axis as 0, like torch; Sum and Amax
(``x.sum(dims)``, ``x.amax(dims)``) are the same reduction with another operation.
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
        if type_name == "AvgPool3d" and any(n < ki for n, ki in zip(shape[1:], k, strict=True)):
            # torch's avg_pool3d alone wants the window inside the unpadded input.
            fit = min(min(shape[1:]), *k)
            raise LayerError(f"{type_name}: kernel {'×'.join(map(str, k))} is larger than the input "
                             f"{fmt_shape(shape[1:])} (AvgPool3d does not count padding here) — use kernel_size "
                             f"{fit}", set_param_fix("kernel_size", fit), param="kernel_size")
        try:
            out = window_sizes(type_name, shape[1:], k, s, pad, d, p["ceil_mode"])
        except LayerError as exc:
            fix = exc.fix
            if fix is not None and fix.param == "padding" and fix.value > min(k) // 2:
                # More padding would break the half-kernel rule above; only a smaller window helps.
                raise without_padding_fix(exc) from None
            raise
        outs = ((shape[0], *out),) * (2 if p.get("return_indices") else 1)
        return Inferred(out_shapes=outs)

    return infer


def _pool_window(nd: int) -> Any:
    def window(p: Params, shapes: Sequence[Shape]) -> Window:
        k, s, pad, d = _window_params(p, nd)
        return Window(k, s, pad, d)

    return window


def _pool_short(nd: int) -> Any:
    def short(p: Params) -> str:
        k = tup(p["kernel_size"], nd)
        s = tup(p["stride"], nd) if p["stride"] is not None else k
        text = "×".join(map(str, k))
        if s != k:
            text += f" · s{s[0]}" if len(set(s)) == 1 else " · s" + "×".join(map(str, s))
        elif s[0] != 1:
            text += f" · s{s[0]}"
        return text

    return short


def _window_specs(nd: int) -> tuple[ParamSpec, ParamSpec, ParamSpec]:
    """kernel_size, stride and padding of an ``nd``-axis pooling window."""
    return (ParamSpec("kernel_size", Kind.INTS, 2, "Window size F (one value, or one per axis).", min=1, arity=nd),
            ParamSpec("stride", Kind.INTS, None, "Step S between windows; unset means S = kernel_size.",
                      min=1, arity=nd, optional=True, default_from="kernel_size"),
            ParamSpec("padding", Kind.INTS, 0, "Implicit padding P on each side (at most half the kernel).",
                      min=0, arity=nd))


_CEIL = ParamSpec("ceil_mode", Kind.BOOL, False,
                  "Round the output size up instead of down (a last partial window is kept).")
_SIZES = {1: "L", 2: "H×W", 3: "D×H×W"}


def _max_pool(nd: int, doc: str) -> LayerSpec:
    type_name = f"MaxPool{nd}d"
    return register(LayerSpec(
        type=type_name, category=Category.POOL, doc=doc,
        params=(*_window_specs(nd), ParamSpec("dilation", Kind.INTS, 1, "Spacing between window taps.", min=1,
                                              arity=nd), _CEIL,
                ParamSpec("return_indices", Kind.BOOL, False, "Also output where each maximum came from "
                          "(a second output, for MaxUnpool2d).")),
        infer=_pool_infer(type_name, nd), window=_pool_window(nd), build=torch_builder(type_name),
        num_outputs=lambda p: 2 if p.get("return_indices") else 1,
        short=_pool_short(nd), feature_maps=True, fit_role=FitRole.PASS_THROUGH,
    ))


def _avg_pool(nd: int, doc: str) -> LayerSpec:
    type_name = f"AvgPool{nd}d"
    divisor = () if nd == 1 else (ParamSpec("divisor_override", Kind.INT, None,
                                            "Divide by this instead of the window size.", min=1, optional=True),)
    return register(LayerSpec(
        type=type_name, category=Category.POOL, doc=doc,
        params=(*_window_specs(nd), _CEIL,
                ParamSpec("count_include_pad", Kind.BOOL, True, "Count padded zeros in the average."), *divisor),
        infer=_pool_infer(type_name, nd), window=_pool_window(nd), build=torch_builder(type_name),
        short=_pool_short(nd), feature_maps=True, fit_role=FitRole.PASS_THROUGH,
    ))


MaxPool1d = _max_pool(1, "Takes the maximum of each window of F steps along a C×L sequence; no parameters.")
MaxPool2d = _max_pool(2, "Takes the maximum of each F×F window: halves H×W with F=2, S=2; no parameters.")
MaxPool3d = _max_pool(3, "Takes the maximum of each F×F×F window of a C×D×H×W volume; no parameters.")
AvgPool1d = _avg_pool(1, "Averages each window of F steps along a C×L sequence; no parameters.")
AvgPool2d = _avg_pool(2, "Averages each F×F window (LeNet's subsampling); no parameters.")
AvgPool3d = _avg_pool(3, "Averages each F×F×F window of a C×D×H×W volume; no parameters.")


# -- MaxUnpool2d ----------------------------------------------------------------------------------

def _unpool_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    values, indices = shapes
    expect_spatial("MaxUnpool2d", values, 2)
    if tuple(indices) != tuple(values):
        raise LayerError(f"MaxUnpool2d needs the indices of the values it gets (input 1 from the same "
                         f"MaxPool2d with return_indices), but they are {fmt_shape(indices)} and "
                         f"{fmt_shape(values)}")
    k, s, pad, _ = _window_params(p, 2)
    out = tuple((n - 1) * si - 2 * pi + ki for n, ki, si, pi in zip(values[1:], k, s, pad, strict=True))
    if any(o <= 0 for o in out):
        raise LayerError(f"MaxUnpool2d: output size collapses to {fmt_shape(out)} — use padding 0",
                         set_param_fix("padding", 0), param="padding")
    return Inferred(out_shapes=((values[0], *out),))


def _unpool_window(p: Params, shapes: Sequence[Shape]) -> Window:
    k, s, pad, d = _window_params(p, 2)
    return Window(k, s, pad, d, transposed=True)


MaxUnpool2d = register(LayerSpec(
    type="MaxUnpool2d", category=Category.POOL,
    doc="Puts each value back where its MaxPool2d found the maximum (input 1: its indices), zeros elsewhere.",
    params=_window_specs(2),
    infer=_unpool_infer, window=_unpool_window, build=torch_builder("MaxUnpool2d"), short=_pool_short(2),
    min_inputs=2, max_inputs=2, id_stem="unpool", fit_role=FitRole.OTHER,
))


def _adaptive_infer(type_name: str, nd: int) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        expect_spatial(type_name, shape, nd)
        out = tup(p["output_size"], nd)
        return Inferred(out_shapes=((shape[0], *out),))

    return infer


def _adaptive_window(p: Params, shapes: Sequence[Shape]) -> Any:
    out = tup(p["output_size"], len(shapes[0]) - 1)
    if all(o == 1 for o in out):
        return GLOBAL
    spatial = shapes[0][1:]
    # torch's adaptive windows: start = floor(i·n/o), end = ceil((i+1)·n/o). They are ceil(n/o)
    # wide, or one wider where i·n mod o > o − n mod o, which happens for some i exactly when
    # n mod o does not divide o (9 → 6: all 2 wide; 5 → 3: 2, 3, 2). The field's size is the
    # widest window and its stride n/o, a fraction when o does not divide n (AlexNet at 320 px).
    k = tuple(-(-n // o) + (1 if n % o and o % (n % o) else 0) for n, o in zip(spatial, out, strict=True))
    s = tuple(n // o if n % o == 0 else n / o for n, o in zip(spatial, out, strict=True))
    return Window(k, s, (0,) * len(k), (1,) * len(k))


def _adaptive(type_name: str, doc: str, stem: str, nd: int = 2) -> LayerSpec:
    return register(LayerSpec(
        type=type_name, category=Category.POOL, doc=doc,
        params=(ParamSpec("output_size", Kind.INTS, 1, f"Output {_SIZES[nd]}; 1 = global pooling to one value "
                          f"per channel.", min=1, arity=nd),),
        infer=_adaptive_infer(type_name, nd), window=_adaptive_window, build=torch_builder(type_name),
        short=lambda p: "→ " + "×".join(map(str, tup(p["output_size"], nd))),
        id_stem=stem, feature_maps=True, fit_role=FitRole.PASS_THROUGH,
    ))


AdaptiveAvgPool2d = _adaptive("AdaptiveAvgPool2d",
                              "Averages each channel down to a fixed output size (global average pooling at 1).",
                              "avgpool")
AdaptiveMaxPool2d = _adaptive("AdaptiveMaxPool2d", "Max-pools each channel down to a fixed output size.", "maxpool")
AdaptiveAvgPool1d = _adaptive("AdaptiveAvgPool1d", "Averages each channel of a C×L sequence down to a fixed "
                              "length (global average pooling at 1).", "avgpool", 1)
AdaptiveMaxPool1d = _adaptive("AdaptiveMaxPool1d", "Max-pools each channel of a C×L sequence down to a fixed "
                              "length.", "maxpool", 1)
AdaptiveAvgPool3d = _adaptive("AdaptiveAvgPool3d", "Averages each channel of a C×D×H×W volume down to a fixed "
                              "output size (global average pooling at 1).", "avgpool", 3)


# -- Mean, Sum, Amax ------------------------------------------------------------------------------

def _reduce_axes(type_name: str, p: Params, shape: Shape) -> list[int]:
    dims = list(p["dim"])
    axes = [sample_axis(type_name, d, len(shape)) for d in dims]
    if len(set(axes)) != len(axes):
        raise LayerError(f"{type_name} dim={dims} names an axis twice", param="dim")
    return axes


def _reduce_infer(type_name: str) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        axes = _reduce_axes(type_name, p, shape)
        if p["keepdim"]:
            out = tuple(1 if i in axes else n for i, n in enumerate(shape))
        else:
            out = tuple(n for i, n in enumerate(shape) if i not in axes)
        if not out:
            raise LayerError(f"{type_name} over every axis of the {fmt_shape(shape)} input leaves a scalar per "
                             f"sample — keep the channel axis (dim [2, 3])", set_param_fix("dim", [2, 3]),
                             param="dim")
        return Inferred(out_shapes=(out,))

    return infer


def _reduce_window(type_name: str) -> Any:
    def window(p: Params, shapes: Sequence[Shape]) -> Any:
        shape = shapes[0]
        try:
            axes = _reduce_axes(type_name, p, shape)
        except LayerError:
            return None
        # Reducing over a spatial axis (any axis after the channels) sees the whole input.
        return GLOBAL if len(shape) > 1 and any(a >= 1 for a in axes) else None

    return window


def _reduce(type_name: str, method: str, doc: str, what: str) -> LayerSpec:
    def function(x: Any, dim: Sequence[int], keepdim: bool = False) -> Any:
        return getattr(x, method)(list(dim), keepdim=keepdim)

    return register(LayerSpec(
        type=type_name, category=Category.POOL, doc=doc,
        params=(ParamSpec("dim", Kind.SHAPE, [2, 3], f"Axes to {what}, counted with the batch axis "
                          f"(2, 3 = height and width)."),
                ParamSpec("keepdim", Kind.BOOL, False, "Keep the reduced axes with size 1.")),
        infer=_reduce_infer(type_name), window=_reduce_window(type_name), function=function,
        code=lambda xs, p: (f"{xs[0]}.{method}([{', '.join(str(int(d)) for d in p['dim'])}], "
                            f"keepdim={bool(p['keepdim'])})"),
        short=lambda p: "dims " + ",".join(str(d) for d in p["dim"]),
        fit_role=FitRole.PASS_THROUGH,  # over H and W (its default) it keeps the channels
    ))


Mean = _reduce("Mean", "mean", "Averages over some axes (x.mean): over H and W it is global average pooling "
               "(MNASNet, ShuffleNet).", "average")
Sum = _reduce("Sum", "sum", "Adds up over some axes (x.sum): over H and W a global sum pooling; attention pooling "
              "sums weighted values.", "sum up")
Amax = _reduce("Amax", "amax", "Takes the maximum over some axes (x.amax): over H and W it is global max pooling "
               "(CBAM's channel attention).", "maximize over")

# -- BlurPool2d -----------------------------------------------------------------------------------

def _blur_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    expect_spatial("BlurPool2d", shape, 2)
    k, s = int(p["filt_size"]), int(p["stride"])
    out = window_sizes("BlurPool2d", shape[1:], (k, k), (s, s), (0, 0), (1, 1))
    channels = shape[0]
    # a depthwise convolution: weight elements (C·k·k) × output positions; the k×k filter is a
    # buffer (non-persistent: in buffers(), not in state_dict)
    return Inferred(out_shapes=((channels, *out),), buffers=k * k, macs=channels * k * k * out[0] * out[1])


BlurPool2d = register(LayerSpec(
    type="BlurPool2d", category=Category.POOL,
    doc="Blurs each channel with a fixed binomial F×F filter, then steps by S: anti-aliased downsampling "
        "(TResNet); nothing is learned.",
    params=(ParamSpec("filt_size", Kind.INT, 3, "Filter size F: row F−1 of Pascal's triangle, normalized "
                      "(3 → 1 2 1).", min=2, max=7),
            ParamSpec("stride", Kind.INT, 2, "Step S between windows (2 halves H×W).", min=1)),
    infer=_blur_infer,
    window=lambda p, shapes: Window((int(p["filt_size"]),) * 2, (int(p["stride"]),) * 2, (0, 0), (1, 1)),
    build=lambda p: _blur_module(p),
    short=lambda p: f"{p['filt_size']}×{p['filt_size']} · s{p['stride']}",
    module_class="core.layers.extra_modules.BlurPool2d",
    feature_maps=True, fit_role=FitRole.PASS_THROUGH,
))


def _blur_module(p: Params) -> Any:
    from core.layers.extra_modules import BlurPool2d as Module

    return Module(filt_size=int(p["filt_size"]), stride=int(p["stride"]))


__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "Amax", "AvgPool1d", "AvgPool2d", "AvgPool3d", "BlurPool2d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "MaxUnpool2d", "Mean", "Sum"]
