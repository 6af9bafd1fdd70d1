"""Taking part of a tensor, or broadcasting it: Slice (``x[:, :c]``), Select (``x[:, 0]``) and Expand.

All three are stateless ``call_function`` ops without parameters or MACs whose axis numbers count
the batch axis as 0, like torch (``dim=1`` is the channels, ``-1`` the last axis); the batch axis
itself is never sliced, selected or expanded. A Slice keeps ``range(n)[start:end:step]`` along one
axis, exactly Python's rule (negative or too-large bounds are clipped), and must keep something.
It crops like a negative padding for the receptive field, with a stride of ``step``.

Expand broadcasts axes of size 1 to a larger size without copying (``x.expand``): a per-channel
gate to a whole map, or a learned class token (a :mod:`~core.layers.param` node, one sample) to
the batch. With a second input it takes that input's batch size, and, without a ``shape``, its
shape too (``x.expand_as(y)``).
"""

from __future__ import annotations

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
    Window,
    fmt_shape,
    sample_axis,
    set_param_fix,
)

_DIM_DOC = "Axis counted with the batch axis: 1 = channels, -1 = last."


# -- Slice ----------------------------------------------------------------------------------------

def _kept(p: Params, n: int) -> range:
    return range(n)[slice(p["start"], p["end"], p["step"])]


def _slice_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    axis = sample_axis("Slice", p["dim"], len(shape))
    kept = _kept(p, shape[axis])
    if not len(kept):
        end = "" if p["end"] is None else p["end"]
        raise LayerError(f"Slice [{p['start']}:{end}] keeps nothing of the {shape[axis]} values along dim "
                         f"{p['dim']} — use start 0", set_param_fix("start", 0), param="start")
    out = list(shape)
    out[axis] = len(kept)
    return Inferred(out_shapes=(tuple(out),))


def _slice_window(p: Params, shapes: Sequence[Shape]) -> Any:
    shape = shapes[0]
    try:
        axis = sample_axis("Slice", p["dim"], len(shape))
    except LayerError:
        return None
    if axis == 0:
        return None  # channels (or features): the field is unchanged
    kept = _kept(p, shape[axis])
    nsp = len(shape) - 1
    ones = (1,) * nsp
    on_axis = [0] * nsp
    on_axis[axis - 1] = 1
    first = kept.start if len(kept) else 0
    stride = tuple(p["step"] if a else 1 for a in on_axis)
    padding = tuple(-first if a else 0 for a in on_axis)  # a crop is a negative padding
    return Window(ones, stride, padding, ones)


def slice_index(dim: int, item: str) -> str:
    """``x[:, 2:5]`` for dim 1 of a 3-axis tensor; negative dims index from the end: ``x[..., 1:]``."""
    if dim < 0:
        return "[" + ", ".join(["...", item] + [":"] * (-dim - 1)) + "]"
    return "[" + ", ".join([":"] * dim + [item]) + "]"


def _bounds(p: Params) -> str:
    start = "" if p["start"] == 0 else str(int(p["start"]))
    end = "" if p["end"] is None else str(int(p["end"]))
    return f"{start}:{end}" + ("" if p["step"] == 1 else f":{int(p['step'])}")


def _slice(x: Any, dim: int = 1, start: int = 0, end: int | None = None, step: int = 1) -> Any:
    index: tuple[Any, ...] = (slice(None),) * dim + (slice(start, end, step),) if dim >= 0 else \
        (Ellipsis, slice(start, end, step)) + (slice(None),) * (-dim - 1)
    return x[index]


Slice = register(LayerSpec(
    type="Slice", category=Category.SHAPE,
    doc="Keeps part of one axis, x[:, start:end:step] (GhostNet's first channels, a sequence without its token).",
    params=(ParamSpec("dim", Kind.INT, 1, _DIM_DOC, min=-8, max=8),
            ParamSpec("start", Kind.INT, 0, "First index kept (negative counts from the end)."),
            ParamSpec("end", Kind.INT, None, "Index after the last one kept; empty = to the end.", optional=True),
            ParamSpec("step", Kind.INT, 1, "Keep every step-th value.", min=1)),
    infer=_slice_infer, window=_slice_window, function=_slice,
    code=lambda xs, p: xs[0] + slice_index(int(p["dim"]), _bounds(p)),
    short=lambda p: f"[{_bounds(p)}] · dim {p['dim']}",
    fit_role=FitRole.OTHER,
))


# -- Select ---------------------------------------------------------------------------------------

def _select_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    axis = sample_axis("Select", p["dim"], len(shape))
    n, i = shape[axis], p["index"]
    if not -n <= i < n:
        raise LayerError(f"Select index {i} is out of range for the {n} values along dim {p['dim']} "
                         f"— use index 0", set_param_fix("index", 0), param="index")
    if len(shape) == 1:
        raise LayerError(f"Select of one value of the {fmt_shape(shape)} input leaves a scalar per sample "
                         f"— use Slice to keep the axis")
    return Inferred(out_shapes=(tuple(d for a, d in enumerate(shape) if a != axis),))


def _select(x: Any, dim: int = 1, index: int = 0) -> Any:
    return x.select(dim, index)


Select = register(LayerSpec(
    type="Select", category=Category.SHAPE,
    doc="Takes one position of an axis and drops the axis, x[:, 0] (ViT's class token).",
    params=(ParamSpec("dim", Kind.INT, 1, _DIM_DOC, min=-8, max=8),
            ParamSpec("index", Kind.INT, 0, "The position taken (negative counts from the end).")),
    infer=_select_infer, window=lambda p, s: GLOBAL, function=_select,
    code=lambda xs, p: f"{xs[0]}.select({int(p['dim'])}, {int(p['index'])})",
    short=lambda p: f"[{p['index']}] · dim {p['dim']}",
    fit_role=FitRole.OTHER,
))


# -- Expand ---------------------------------------------------------------------------------------

def _expand_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    shape = shapes[0]
    target = p["shape"]
    if target is None:
        if len(shapes) < 2:
            raise LayerError(f"Expand needs a target shape or a second input to match — set shape, e.g. "
                             f"{fmt_shape(shape)}", set_param_fix("shape", list(shape)), param="shape")
        target = shapes[1]
    if len(target) != len(shape):
        raise LayerError(f"Expand to {fmt_shape(target)} needs a target with the {len(shape)} axes of the "
                         f"{fmt_shape(shape)} input (it only widens axes of size 1)", param="shape")
    for n, t in zip(shape, target, strict=True):
        if n != t and n != 1:
            raise LayerError(f"Expand can only widen axes of size 1, but {fmt_shape(shape)} → {fmt_shape(target)} "
                             f"changes an axis of size {n}", param="shape")
    return Inferred(out_shapes=(tuple(target),))


def _expand(x: Any, like: Any = None, shape: Sequence[int] | None = None) -> Any:
    batch = -1 if like is None else like.shape[0]
    size = like.shape[1:] if shape is None else shape
    return x.expand(batch, *size)


def _expand_code(xs: Sequence[str], p: Params) -> str:
    batch = f"{xs[1]}.shape[0]" if len(xs) > 1 else "-1"
    if p["shape"] is None:  # infer refuses this without a second input
        return f"{xs[0]}.expand({batch}, *{xs[1]}.shape[1:])"
    return f"{xs[0]}.expand({batch}, {', '.join(str(int(d)) for d in p['shape'])})"


Expand = register(LayerSpec(
    type="Expand", category=Category.SHAPE,
    doc="Broadcasts axes of size 1 to a larger size without copying (x.expand); a second input gives the batch.",
    params=(ParamSpec("shape", Kind.SHAPE, None, "Per-sample target shape; empty = the second input's shape.",
                      optional=True),),
    infer=_expand_infer, function=_expand,
    code=_expand_code, min_inputs=1, max_inputs=2,
    short=lambda p: "→ " + fmt_shape(p["shape"]) if p["shape"] is not None else "as input 1",
    fit_role=FitRole.OTHER,
))

__all__ = ["Expand", "Select", "Slice", "slice_index"]
