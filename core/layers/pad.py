"""Padding of H×W maps beyond zeros: ReflectionPad2d, ReplicationPad2d, ConstantPad2d.

They mirror ZeroPad2d (:mod:`core.layers.shape`): the same ``padding`` parameter in torch's order
(left, right, top, bottom), negative values crop, no parameters, no MACs, and the same
receptive-field rule (a 1×1 window whose leading pad shifts the field). What differs is what fills
the border, and torch's limits on it: reflection mirrors at most ``n − 1`` rows (the edge row is
not repeated), and reflection and replication work on C×H×W samples only, where a constant
pads the last two axes of any sample with at least three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.shape import check_crop, pad_short, pad_window, pads
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
    set_param_fix,
    torch_builder,
)


def _pad_infer(type_name: str, mode: str) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        exact = mode != "constant"
        if len(shape) < 3 or (exact and len(shape) != 3):
            want = "a C×H×W input" if exact else "the H×W axes of a C×H×W input"
            hint = " — it must come before Flatten" if len(shape) == 1 else ""
            raise LayerError(f"{type_name} pads {want}, but gets {fmt_shape(shape)}{hint}")
        if mode == "constant":
            check_crop(type_name, p, shape)
        left, right, top, bottom = pads(p)
        h, w = shape[-2], shape[-1]
        if mode == "reflect":
            for name, size, amounts in (("H", h, (top, bottom)), ("W", w, (left, right))):
                if max(amounts) >= size:
                    most = min(h, w) - 1
                    raise LayerError(
                        f"{type_name}: padding {max(amounts)} mirrors more than the {size - 1} rows that "
                        f"{name}={size} can give (the edge is not repeated) — use padding {most} "
                        f"or ReplicationPad2d", set_param_fix("padding", most), param="padding")
        out_h, out_w = h + top + bottom, w + left + right
        if out_h <= 0 or out_w <= 0:
            raise LayerError(f"{type_name}: padding {', '.join(map(str, pads(p)))} crops {fmt_shape(shape[-2:])} "
                             f"down to {out_h}×{out_w} — use padding 0", set_param_fix("padding", 0),
                             param="padding")
        return Inferred(out_shapes=((*shape[:-2], out_h, out_w),))

    return infer


_PADDING = ParamSpec("padding", Kind.INTS, 1,
                     "Rows and columns to add: one value for every side, or (left, right, top, bottom); "
                     "negative values crop.", arity=4)

ReflectionPad2d = register(LayerSpec(
    type="ReflectionPad2d", category=Category.SHAPE,
    doc="Pads each H×W map with its mirror image (the edge not repeated): borders without dark seams.",
    params=(_PADDING,), infer=_pad_infer("ReflectionPad2d", "reflect"), window=pad_window,
    build=torch_builder("ReflectionPad2d"), short=pad_short, id_stem="pad", fit_role=FitRole.PASS_THROUGH,
))

ReplicationPad2d = register(LayerSpec(
    type="ReplicationPad2d", category=Category.SHAPE,
    doc="Pads each H×W map by repeating its edge rows and columns outwards.",
    params=(_PADDING,), infer=_pad_infer("ReplicationPad2d", "replicate"), window=pad_window,
    build=torch_builder("ReplicationPad2d"), short=pad_short, id_stem="pad", fit_role=FitRole.PASS_THROUGH,
))

ConstantPad2d = register(LayerSpec(
    type="ConstantPad2d", category=Category.SHAPE,
    doc="Pads each H×W map with a constant value (ZeroPad2d with a value of your choice).",
    params=(ParamSpec("padding", Kind.INTS, 1, _PADDING.doc, arity=4),
            ParamSpec("value", Kind.FLOAT, 0.0, "The value written into the border.")),
    infer=_pad_infer("ConstantPad2d", "constant"), window=pad_window,
    build=torch_builder("ConstantPad2d"),
    short=lambda p: pad_short(p) + (f" · {p['value']:g}" if p["value"] else ""),
    id_stem="pad", fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d"]
