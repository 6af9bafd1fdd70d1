"""Pooling: MaxPool2d, AvgPool2d (windows) and AdaptiveAvg/MaxPool2d (fixed output size).

Same output-size rule as convolutions (ceil_mode included, where a window larger than the padded
input still gives one output); torch also refuses a padding larger than half the kernel
(``pad ≤ ⌊k/2⌋``, the undilated kernel even for MaxPool2d with dilation). Pooling has no parameters and counts 0 MACs
(DESIGN.md §5).
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
    # torch's adaptive windows: start = floor(i·n/o), end = ceil((i+1)·n/o); the widest one:
    k = tuple(-(-n // o) + (1 if n % o else 0) for n, o in zip(spatial, out, strict=True))
    s = tuple(max(n // o, 1) for n, o in zip(spatial, out, strict=True))
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
