"""The ONNX importer's handlers for ops that move, cut, join and resample tensors.

Concat, Split, Slice, Gather, Identity/Dropout/Cast, Shape, Flatten, Reshape, Squeeze/Unsqueeze,
Transpose, Pad, Resize/Upsample: :data:`SHAPE_OPS`, which :mod:`core.importer.onnx_ops` takes into
its one op table. Shapes here count the batch axis as ONNX does (axis 0); a layer's parameters
count it too (``dim=1`` is the channels), except Reshape's target, which is per sample. Anything
that would move the batch axis is refused naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.importer.onnx_conversion import Handler, OnnxConversion
from core.importer.onnx_read import BATCH_MARK, as_written, attributes, ints
from core.importer.values import Ref


def _slice(c: OnnxConversion, node: Any) -> None:
    """Constant starts/ends/axes/steps: one Slice layer per sliced axis (``x[:, :c]``)."""
    a = attributes(node)
    x = c.tensor(node)
    rank = c.rank(x)
    if c.m.opset < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = c.const(node, 1, "starts"), c.const(node, 2, "ends")
        axes, steps = c.const(node, 3, "axes"), c.const(node, 4, "steps")
    st, en = ints(starts), ints(ends)
    ax = ints(axes) if axes is not None else list(range(len(st)))
    sp = ints(steps) if steps is not None else [1] * len(st)
    ref = x
    for i, (axis, start, end, step) in enumerate(zip(ax, st, en, sp, strict=True)):
        dim = c.axis(node, axis, rank)
        size = c.shape(ref)[dim - 1]
        if step < 1:
            raise c.fail(node, f"it steps {step} along axis {dim}; Slice steps forward")
        start = min(max(start + size if start < 0 else start, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        if (start, end, step) == (0, size, 1):
            continue
        last = i == len(ax) - 1
        params = {"dim": dim, "start": start, "end": None if end >= size else end, "step": step}
        (ref,) = c.add(node, "Slice", params, [ref], outputs=None if last else [""], hint=None if last else "slice")
    if ref == x:
        c.alias(node.output[0], x)
    elif c.values.get(node.output[0]) != ref:
        c.alias(node.output[0], ref)


def _gather(c: OnnxConversion, node: Any) -> None:
    """A constant single index along one axis of a tensor: Select (``x[:, 0]``)."""
    x = c.tensor(node)
    index = c.const(node, 1, "index")
    assert index is not None
    dim = c.axis(node, int(attributes(node).get("axis", 0)), c.rank(x))
    if index.ndim != 0:
        raise c.fail(node, f"it gathers {index.size} positions; Select takes one (a scalar index)")
    size = c.shape(x)[dim - 1]
    i = int(index)
    c.add(node, "Select", {"dim": dim, "index": i + size if i < 0 else i}, [x])


def _concat(c: OnnxConversion, node: Any) -> None:
    refs = [c.tensor(node, i) for i in range(len(node.input))]
    axis = c.axis(node, int(attributes(node)["axis"]), c.rank(refs[0]))
    if len(refs) == 1:
        c.alias(node.output[0], refs[0])
    else:
        c.add(node, "Concat", {"dim": axis}, refs)


def _split(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    axis = c.axis(node, int(a.get("axis", 0)), c.rank(x))
    size = c.shape(x)[axis - 1]
    given = a.get("split") if c.m.opset < 13 else c.const(node, 1, "split sizes")
    count = len(node.output)
    if given is not None:
        sections = ints(given)
    elif "num_outputs" in a:
        step = math.ceil(size / int(a["num_outputs"]))
        sections = [min(step, size - i * step) for i in range(int(a["num_outputs"]))]
    else:
        sections = [size // count] * count
    if sum(sections) != size or len(sections) != count or any(s < 1 for s in sections):
        raise c.fail(node, f"it splits {size} into {sections} for {count} outputs")
    c.add(node, "Split", {"sections": sections, "dim": axis}, [x])


# -- shape ----------------------------------------------------------------------------------------

def _identity(c: OnnxConversion, node: Any) -> None:
    if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1] and c.users(node.output[1]):
        raise c.fail(node, "its mask output is used; in inference Dropout gives only its input")
    c.alias(node.output[0], c.value(node, 0))


def _cast(c: OnnxConversion, node: Any) -> None:
    if int(attributes(node).get("to", 1)) not in (1, 10, 11, 16):
        raise c.fail(node, "it casts a tensor to a non-float type, which no layer does")
    c.alias(node.output[0], c.tensor(node))


def _shape(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    full = np.array([BATCH_MARK, *c.shape(c.tensor(node))], dtype=np.int64)
    start, end = int(a.get("start", 0)), a.get("end")
    c.alias(node.output[0], full[start:None if end is None else int(end)])


def _reshape_to(c: OnnxConversion, node: Any, x: Ref, target: Sequence[int]) -> None:
    """Reshape ``x`` to per-sample ``target``: nothing when it keeps the shape, Flatten to one axis."""
    shape = c.shape(x)
    if tuple(target) == shape:
        c.alias(node.output[0], x)
    elif len(target) == 1:
        c.add(node, "Flatten", {}, [x])
    else:
        c.add(node, "Reshape", {"shape": list(target)}, [x])


def _reshape(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    raw = c.const(node, 1, "target shape")
    assert raw is not None
    target = ints(raw)
    shape = c.shape(x)
    allowzero = bool(attributes(node).get("allowzero", 0))
    batch_like = {BATCH_MARK, c.m.fixed_batch or BATCH_MARK, -1} | ({0} if not allowzero else set())
    if not target or target[0] not in batch_like or BATCH_MARK in target[1:]:
        raise c.fail(node, f"it reshapes to {target}, which does not keep the batch axis first; a layer reshapes "
                           f"each sample")
    rest = [shape[i] if (d == 0 and not allowzero and i < len(shape)) else d for i, d in enumerate(target[1:])]
    numel = math.prod(shape)
    if (target[0] == -1 and -1 in rest) or any(d < -1 or d == 0 for d in rest):
        raise c.fail(node, f"its target shape {target} does not say the size of each sample")
    if target[0] == -1 and math.prod(rest) != numel:
        raise c.fail(node, f"its target shape {target} regroups samples of {numel} values")
    if -1 in rest:
        known = math.prod(d for d in rest if d != -1)
        rest = [numel // known if d == -1 else d for d in rest]
    _reshape_to(c, node, x, rest)


def _squeeze(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    shape = c.shape(x)
    rank = c.rank(x)
    a = attributes(node)
    given = a.get("axes") if c.m.opset < 13 else c.const(node, 1, "axes")
    if node.op_type == "Squeeze":
        axes = {c.axis(node, int(v), rank) for v in ints(given)} if given is not None else \
            {i + 1 for i, d in enumerate(shape) if d == 1}
        target = [d for i, d in enumerate(shape) if i + 1 not in axes]
    else:
        assert given is not None
        out_rank = rank + len(ints(given))
        axes = {c.axis(node, int(v), out_rank) for v in ints(given)}
        it = iter(shape)
        target = [1 if i in axes else next(it) for i in range(1, out_rank)]
    if not target:
        raise c.fail(node, "it leaves a scalar per sample; a layer keeps at least one axis")
    _reshape_to(c, node, x, target)


def _transpose(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    rank = c.rank(x)
    perm = ints(attributes(node).get("perm", list(range(rank))[::-1]))
    if perm[0] != 0:
        raise c.fail(node, f"its perm {perm} moves the batch axis; a layer reorders the axes of each sample")
    moved = [i for i, p in enumerate(perm) if p != i]
    if not moved:
        c.alias(node.output[0], x)
    elif len(moved) == 2:
        c.add(node, "Transpose", {"dim0": moved[0], "dim1": moved[1]}, [x])
    else:
        c.add(node, "Permute", {"dims": perm[1:]}, [x])


_PAD_TYPES = {"reflect": "ReflectionPad2d", "edge": "ReplicationPad2d"}


def _pad(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    rank = c.rank(x)
    if c.m.opset < 11:
        pads, value = ints(a.get("pads", a.get("paddings", []))), float(a.get("value", 0.0))
    else:
        raw = c.const(node, 1, "pads")
        v = c.const(node, 2, "constant value")
        pads = ints(raw if raw is not None else [])
        value = 0.0 if v is None or v.size == 0 else float(v.reshape(-1)[0])
        axes = c.const(node, 3, "axes")
        if axes is not None:
            full = [0] * (2 * rank)
            for i, ax in enumerate(ints(axes)):
                ax = ax + rank if ax < 0 else ax
                full[ax], full[rank + ax] = pads[i], pads[len(pads) // 2 + i]
            pads = full
    if len(pads) != 2 * rank or rank != 4:
        raise c.fail(node, f"it pads a {rank}-axis tensor; NetCanvas pads the H×W maps of N×C×H×W tensors")
    if any(pads[i] or pads[rank + i] for i in (0, 1)):
        raise c.fail(node, f"its pads {pads} pad the batch or channel axis; a padding layer pads H and W")
    if any(p < 0 for p in pads):
        raise c.fail(node, f"its pads {pads} crop; NetCanvas's padding layers only add")
    padding = [pads[3], pads[7], pads[2], pads[6]]  # left, right, top, bottom
    mode = a.get("mode", "constant")
    if mode == "constant" and value == 0:
        c.add(node, "ZeroPad2d", {"padding": padding}, [x])
    elif mode == "constant":
        c.add(node, "ConstantPad2d", {"padding": padding, "value": as_written(value)}, [x])
    elif mode in _PAD_TYPES:
        c.add(node, _PAD_TYPES[mode], {"padding": padding}, [x])
    else:
        raise c.fail(node, f"its mode {mode!r} has no padding layer in NetCanvas")


def _resize(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    rank = c.rank(x)
    if node.op_type == "Upsample" or c.m.opset < 11:
        scales = c.const(node, 1, "scales") if c.has(node, 1) else np.asarray(a.get("scales", []), dtype=np.float32)
        sizes = None
    else:
        scales = c.const(node, 2, "scales")
        sizes = c.const(node, 3, "sizes")
        if scales is not None and scales.size == 0:
            scales = None
    mode = a.get("mode", "nearest")
    ctm = a.get("coordinate_transformation_mode", "half_pixel" if node.op_type == "Resize" else "asymmetric")
    if rank != 4 or "axes" in a:
        raise c.fail(node, f"it resizes a {rank}-axis tensor; NetCanvas's Upsample here resizes N×C×H×W maps")
    if mode == "nearest":
        if ctm != "asymmetric" or a.get("nearest_mode", "round_prefer_floor") != "floor":
            if not (ctm == "half_pixel" and a.get("nearest_mode") == "round_prefer_ceil"):
                raise c.fail(node, f"nearest with {ctm!r} coordinates matches no torch resize mode")
            mode = "nearest-exact"
        params: dict[str, Any] = {"mode": mode}
    elif mode in ("linear", "cubic"):
        if ctm not in ("align_corners", "half_pixel", "pytorch_half_pixel"):
            raise c.fail(node, f"{mode} with {ctm!r} coordinates matches no torch resize mode")
        params = {"mode": "bilinear" if mode == "linear" else "bicubic", "align_corners": ctm == "align_corners"}
        if mode == "cubic" and not math.isclose(float(a.get("cubic_coeff_a", -0.75)), -0.75):
            raise c.fail(node, "its cubic coefficient is not torch's -0.75")
    else:
        raise c.fail(node, f"its mode {mode!r} matches no torch resize mode")
    if sizes is not None and sizes.size:
        size = ints(sizes)
        if size[1] != c.shape(x)[0]:
            raise c.fail(node, f"it resizes the channel axis to {size[1]}; Upsample resizes H and W")
        params["size"] = size[2:]
    elif scales is not None and scales.size == 4:
        f = [float(s) for s in scales.reshape(-1)]
        if f[0] != 1 or f[1] != 1:
            raise c.fail(node, f"its scales {f} resize the batch or channel axis; Upsample resizes H and W")
        params["scale_factor"] = [as_written(s) for s in f[2:]]
    else:
        raise c.fail(node, "it gives neither scales nor sizes as constants")
    c.add(node, "Upsample", params, [x])


def _flatten(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    axis = int(attributes(node).get("axis", 1))
    if axis != 1 and not (axis == -1 and c.rank(x) == 2):
        raise c.fail(node, f"it flattens from axis {axis}; ONNX then merges leading axes with the batch, which a "
                           f"layer cannot do (axis 1 is Flatten)")
    _reshape_to(c, node, x, [math.prod(c.shape(x))])


SHAPE_OPS: dict[str, Handler] = {
    "Concat": _concat, "Split": _split, "Slice": _slice, "Gather": _gather,
    "Identity": _identity, "Dropout": _identity, "Cast": _cast, "Shape": _shape,
    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Unsqueeze": _squeeze,
    "Transpose": _transpose, "Pad": _pad, "Resize": _resize, "Upsample": _resize,
}

__all__ = ["SHAPE_OPS"]
