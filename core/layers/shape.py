"""Layers that reshape, pad, resample, reorder or split: Flatten, Identity, ZeroPad2d, Upsample,
ChannelShuffle, Permute, Transpose, Reshape, Chunk, Split.

None of them has parameters or counts MACs. ZeroPad2d adds to the receptive field's padding like a
1×1 window with padding; Upsample divides the effective stride by its factor (DESIGN.md §5).
Permute, Transpose, Reshape, Chunk and Split are stateless ``call_function`` ops written as tensor
methods (ConvNeXt, ShuffleNet), so the compiled graph and exported code need only torch; their
axis numbers follow torch and count the batch axis as 0 (``dim=1`` is the channels).
"""

from __future__ import annotations

import math
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
    ParamError,
    Params,
    ParamSpec,
    Scale,
    Shape,
    Window,
    fmt_shape,
    numel,
    sample_axis,
    set_param_fix,
    torch_builder,
    tup,
)


def _flatten_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    nd = len(shape) + 1  # torch's dims count the batch axis
    start = p["start_dim"] % nd if p["start_dim"] < 0 else p["start_dim"]
    end = p["end_dim"] % nd if p["end_dim"] < 0 else p["end_dim"]
    if not 0 <= start < nd or not 0 <= end < nd:
        raise LayerError(f"Flatten start_dim={p['start_dim']}, end_dim={p['end_dim']} out of range "
                         f"for {len(shape)}-D samples")
    if start == 0:
        raise LayerError("Flatten with start_dim=0 would merge the batch axis into the features — use 1")
    if start > end:
        raise LayerError(f"Flatten start_dim ({p['start_dim']}) comes after end_dim ({p['end_dim']})")
    a, b = start - 1, end - 1
    out = (*shape[:a], numel(shape[a:b + 1]), *shape[b + 1:])
    return Inferred(out_shapes=(out,))


Flatten = register(LayerSpec(
    type="Flatten", category=Category.SHAPE,
    doc="Flattens C×H×W into one vector of C·H·W features (needed between convs and Linear).",
    params=(
        ParamSpec("start_dim", Kind.INT, 1, "First axis to flatten, counting the batch axis as 0.",
                  min=-8, max=8),
        ParamSpec("end_dim", Kind.INT, -1, "Last axis to flatten (-1: the last).", min=-8, max=8),
    ),
    infer=_flatten_infer, window=lambda p, s: GLOBAL, build=torch_builder("Flatten"),
    fit_role=FitRole.PASS_THROUGH,
))

Identity = register(LayerSpec(
    type="Identity", category=Category.SHAPE,
    doc="Passes its input through unchanged (a placeholder that keeps a module path).",
    params=(), infer=lambda p, s: Inferred(out_shapes=(tuple(s[0]),)), build=torch_builder("Identity"),
    fit_role=FitRole.PASS_THROUGH,
))



# -- ZeroPad2d ------------------------------------------------------------------------------------

def pads(p: Params) -> tuple[int, int, int, int]:
    """torch's order: (left, right, top, bottom)."""
    left, right, top, bottom = tup(p["padding"], 4)
    return left, right, top, bottom


def _zeropad_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) < 3:
        # torch would pad any two last axes, C of a C×L input included; we keep it to images.
        raise LayerError(f"ZeroPad2d pads the H×W axes of a C×H×W input, but gets {fmt_shape(shape)} "
                         f"— it must come before Flatten" if len(shape) == 1 else
                         f"ZeroPad2d pads the H×W axes of a C×H×W input, but gets {fmt_shape(shape)}")
    check_crop("ZeroPad2d", p, shape)
    left, right, top, bottom = pads(p)
    h, w = shape[-2] + top + bottom, shape[-1] + left + right
    if h <= 0 or w <= 0:
        raise LayerError(f"ZeroPad2d: padding {', '.join(map(str, pads(p)))} crops {fmt_shape(shape[-2:])} "
                         f"down to {h}×{w} — use padding 0", set_param_fix("padding", 0), param="padding")
    return Inferred(out_shapes=((*shape[:-2], h, w),))


def check_crop(type_name: str, p: Params, shape: Shape) -> None:
    """torch's constant padding crops before it pads: the negative amounts alone may not take more
    than the whole axis (padding 2, −2 of one row fails although the size would stay 1)."""
    left, right, top, bottom = pads(p)
    for name, size, amounts in (("H", shape[-2], (top, bottom)), ("W", shape[-1], (left, right))):
        cut = -sum(a for a in amounts if a < 0)
        if cut > size:
            raise LayerError(f"{type_name}: padding {', '.join(map(str, pads(p)))} crops {cut} from {name}={size} "
                             f"— use padding 0", set_param_fix("padding", 0), param="padding")


def pad_window(p: Params, shapes: Sequence[Shape]) -> Window:
    left, _, top, _ = pads(p)
    # A 1×1 window with padding: only the leading (top, left) pad shifts the field's offset;
    # leading spatial axes of a C×D×H×W input are not padded.
    lead = (0,) * (len(shapes[0]) - 3)
    ones = (1,) * (len(shapes[0]) - 1)
    return Window(ones, ones, (*lead, top, left), ones)


def pad_short(p: Params) -> str:
    amounts = pads(p)
    return f"pad {amounts[0]}" if len(set(amounts)) == 1 else "pad " + ",".join(map(str, amounts))


ZeroPad2d = register(LayerSpec(
    type="ZeroPad2d", category=Category.SHAPE,
    doc="Adds rows and columns of zeros around each H×W map (negative values crop).",
    params=(ParamSpec("padding", Kind.INTS, 1,
                      "Zeros to add: one value for every side, or (left, right, top, bottom).", arity=4),),
    infer=_zeropad_infer, window=pad_window, build=torch_builder("ZeroPad2d"), short=pad_short,
    fit_role=FitRole.PASS_THROUGH,
))


# -- Upsample -------------------------------------------------------------------------------------

_MODE_AXES = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}  # the rest work for 1–3 axes
_BY_AXES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _upsample_sizes(p: Params, shape: Shape) -> tuple[int, ...]:
    """Output spatial sizes: ``size``, or ``floor(n · scale_factor)`` as torch computes them."""
    spatial = shape[1:]
    nsp = len(spatial)
    which = "size" if p["size"] is not None else "scale_factor"
    value = p[which]
    if isinstance(value, list) and len(value) != nsp:
        raise LayerError(f"Upsample {which}={value} gives {len(value)} axes, but the input "
                         f"{fmt_shape(shape)} has {nsp} — give one number", param=which)
    if which == "size":
        return tuple(int(x) for x in tup(value, nsp))
    return tuple(math.floor(float(n) * float(f)) for n, f in zip(spatial, tup(value, nsp), strict=True))


def _upsample_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if p["size"] is not None and p["scale_factor"] is not None:
        raise LayerError("Upsample takes either size or scale_factor, not both — clear one of them",
                         set_param_fix("scale_factor", None, "clear scale_factor"), param="scale_factor")
    if p["size"] is None and p["scale_factor"] is None:
        raise LayerError("Upsample needs a size or a scale_factor — set scale_factor to 2",
                         set_param_fix("scale_factor", 2.0), param="scale_factor")
    if not 2 <= len(shape) <= 4:
        raise LayerError(f"Upsample needs a C×L, C×H×W or C×D×H×W input, but gets {fmt_shape(shape)}")
    nsp, mode = len(shape) - 1, p["mode"]
    want = _MODE_AXES.get(mode)
    if want is not None and want != nsp:
        fix_mode = _BY_AXES[nsp]
        raise LayerError(f"Upsample mode '{mode}' needs {want} spatial axes, but the input {fmt_shape(shape)} has "
                         f"{nsp} — use mode '{fix_mode}'", set_param_fix("mode", fix_mode), param="mode")
    if p["align_corners"] is not None and mode not in _MODE_AXES:
        raise LayerError(f"Upsample align_corners applies only to the interpolating modes "
                         f"(linear, bilinear, bicubic, trilinear), not '{mode}' — clear it",
                         set_param_fix("align_corners", None, "clear align_corners"), param="align_corners")
    out = _upsample_sizes(p, shape)
    if any(o <= 0 for o in out):
        raise LayerError(f"Upsample: output size {fmt_shape(out)} from {fmt_shape(shape[1:])} is empty "
                         f"— use a larger scale_factor", param="scale_factor")
    return Inferred(out_shapes=((shape[0], *out),))


def _upsample_window(p: Params, shapes: Sequence[Shape]) -> Scale:
    shape = shapes[0]
    out = _upsample_sizes(p, shape)
    return Scale(tuple(o / n for o, n in zip(out, shape[1:], strict=True)))


def _upsample_short(p: Params) -> str:
    if p["size"] is None and p["scale_factor"] is None:
        return ""
    if p["size"] is not None:
        text = "→ " + "×".join(map(str, tup(p["size"], 1)))
    else:
        f = tup(p["scale_factor"], 1)
        text = "×" + "×".join(f"{x:g}" for x in f) if len(set(f)) == 1 else "×(" + ", ".join(f"{x:g}" for x in f) + ")"
    return text if p["mode"] == "nearest" else f"{text} · {p['mode']}"


Upsample = register(LayerSpec(
    type="Upsample", category=Category.SHAPE,
    doc="Enlarges feature maps by a factor (or to a size) by interpolation; no parameters (U-Net, FPN).",
    params=(
        # torch's defaults (both None) on purpose: a default factor could never be cleared once a
        # size is set, and torch refuses both at once. The palette may add Upsample with scale_factor 2.
        ParamSpec("size", Kind.INTS, None, "Output size (H×W); set this or scale_factor, not both.",
                  min=1, arity=2, optional=True),
        ParamSpec("scale_factor", Kind.FLOATS, None, "Multiplier for each spatial size (2 doubles H and W); "
                  "set this or size.", min=0.0, min_inclusive=False, arity=2, optional=True),
        ParamSpec("mode", Kind.CHOICE, "nearest", "Interpolation: copy the nearest pixel, or (bi/tri)linear "
                  "or bicubic blending.",
                  choices=("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")),
        ParamSpec("align_corners", Kind.BOOL, None, "Linear modes only: align the corner pixels of input "
                  "and output; empty = false.", optional=True),
        ParamSpec("recompute_scale_factor", Kind.BOOL, None, "Recompute the factor from the rounded output "
                  "size for the interpolation itself.", optional=True),
    ),
    infer=_upsample_infer, window=_upsample_window, build=torch_builder("Upsample"), short=_upsample_short,
    editor_defaults=lambda shape: {"scale_factor": 2},  # torch's unset size and factor would be an error
    fit_role=FitRole.PASS_THROUGH,
))


# -- ChannelShuffle -------------------------------------------------------------------------------

def _shuffle_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) < 2:
        raise LayerError(f"ChannelShuffle needs a C×H×W (or C×L) input, but gets a flat vector of {shape[0]} "
                         f"— it must come before Flatten")
    c, g = shape[0], p["groups"]
    if c % g:
        best = max(x for x in range(1, min(c, g) + 1) if c % x == 0)
        raise LayerError(f"ChannelShuffle: groups={g} must divide the {c} input channels — use groups={best}",
                         set_param_fix("groups", best), param="groups")
    return Inferred(out_shapes=(tuple(shape),))


ChannelShuffle = register(LayerSpec(
    type="ChannelShuffle", category=Category.SHAPE,
    doc="Interleaves the channels of g groups so grouped convs exchange information (ShuffleNet).",
    params=(ParamSpec("groups", Kind.INT, 2, "Number of channel groups g; must divide the channels.", min=1),),
    infer=_shuffle_infer, build=torch_builder("ChannelShuffle"), short=lambda p: f"{p['groups']} groups",
    fit_role=FitRole.PASS_THROUGH,
))


# -- Permute --------------------------------------------------------------------------------------

def _permute_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    dims = list(p["dims"])
    want = list(range(1, len(shape) + 1))
    if sorted(dims) != want:
        fix = want[1:] + want[:1] if len(want) > 1 else want
        raise LayerError(f"Permute dims={dims} must order the sample axes {want} of the {fmt_shape(shape)} input "
                         f"(each exactly once; the batch axis 0 stays first) — e.g. {fix}",
                         set_param_fix("dims", fix), param="dims")
    return Inferred(out_shapes=(tuple(shape[d - 1] for d in dims),))


def _permute(x: Any, dims: Sequence[int]) -> Any:
    return x.permute(0, *dims)


def _permute_from_module(m: Any) -> dict[str, Any]:
    dims = [int(d) for d in m.dims]
    if not dims or dims[0] != 0:
        raise ParamError(f"dims: Permute({dims}) moves the batch axis; only permutations that keep "
                         f"axis 0 first can be represented")
    return {"dims": dims[1:]}


Permute = register(LayerSpec(
    type="Permute", category=Category.SHAPE,
    doc="Reorders the axes of each sample, e.g. C×H×W → H×W×C (dims 2, 3, 1) for channels-last layers.",
    params=(ParamSpec("dims", Kind.SHAPE, [2, 3, 1],
                      "New order of the sample axes, numbered as in torch (1 = channels); the batch "
                      "axis stays first. [2, 3, 1] makes C×H×W channels-last."),),
    infer=_permute_infer, function=_permute,
    code=lambda xs, p: f"{xs[0]}.permute(0, {', '.join(str(int(d)) for d in p['dims'])})",
    short=lambda p: "→ " + ",".join(str(d) for d in p["dims"]),
    module_class="torchvision.ops.misc.Permute", from_module=_permute_from_module,
    fit_role=FitRole.OTHER,
))


# -- Transpose ------------------------------------------------------------------------------------

def _transpose_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    a = sample_axis("Transpose", p["dim0"], len(shape), "dim0")
    b = sample_axis("Transpose", p["dim1"], len(shape), "dim1")
    out = list(shape)
    out[a], out[b] = out[b], out[a]
    return Inferred(out_shapes=(tuple(out),))


def _transpose(x: Any, dim0: int, dim1: int) -> Any:
    return x.transpose(dim0, dim1)


_DIM_DOC = "Axis counted with the batch axis: 1 = channels, -1 = last."

Transpose = register(LayerSpec(
    type="Transpose", category=Category.SHAPE,
    doc="Swaps two axes of each sample (torch.transpose), e.g. the group and channel axes of a shuffle.",
    params=(ParamSpec("dim0", Kind.INT, 1, _DIM_DOC, min=-8, max=8),
            ParamSpec("dim1", Kind.INT, 2, _DIM_DOC, min=-8, max=8)),
    infer=_transpose_infer, function=_transpose,
    code=lambda xs, p: f"{xs[0]}.transpose({int(p['dim0'])}, {int(p['dim1'])})",
    short=lambda p: f"{p['dim0']} ↔ {p['dim1']}",
    fit_role=FitRole.OTHER,
))


# -- Reshape --------------------------------------------------------------------------------------

def _reshape_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    target = p["shape"]
    if target is None:
        raise LayerError(f"Reshape needs a target shape, e.g. {numel(shape)} to flatten the "
                         f"{fmt_shape(shape)} input", set_param_fix("shape", [numel(shape)]), param="shape")
    if numel(target) != numel(shape):
        raise LayerError(f"Reshape to {fmt_shape(target)} holds {numel(target)} values per sample, but the "
                         f"input {fmt_shape(shape)} has {numel(shape)}", param="shape")
    return Inferred(out_shapes=(tuple(target),))


def _reshape_window(p: Params, shapes: Sequence[Shape]) -> Any:
    # Values keep their place only when the spatial axes are untouched; otherwise they mix.
    target, shape = p["shape"], shapes[0]
    if target is not None and len(target) == len(shape) and tuple(target[1:]) == tuple(shape[1:]):
        return None
    return GLOBAL


def _reshape(x: Any, shape: Sequence[int]) -> Any:
    return x.reshape(x.shape[0], *shape)


def _reshape_editor(shape: Shape | None) -> dict[str, Any]:
    """Flatten once the input is known: the one target that always fits."""
    return {"shape": [numel(shape)]} if shape else {}


Reshape = register(LayerSpec(
    type="Reshape", category=Category.SHAPE,
    doc="Gives each sample a new shape with the same number of values (x.view / x.reshape).",
    params=(ParamSpec("shape", Kind.SHAPE, None, "Per-sample target shape, without the batch axis."),),
    infer=_reshape_infer, window=_reshape_window, function=_reshape,
    code=lambda xs, p: f"{xs[0]}.reshape({xs[0]}.shape[0], {', '.join(str(int(d)) for d in p['shape'])})",
    short=lambda p: "→ " + fmt_shape(p["shape"]) if p["shape"] is not None else "",
    editor_defaults=_reshape_editor, fit_role=FitRole.OTHER,
))


# -- Chunk / Split --------------------------------------------------------------------------------

def _chunk_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    axis = sample_axis("Chunk", p["dim"], len(shape))
    n, k = shape[axis], p["chunks"]
    size = -(-n // k)  # torch.chunk: pieces of ceil(n / chunks), the last one smaller
    got = -(-n // size)
    if got != k:
        raise LayerError(f"Chunk: {n} values along dim {p['dim']} split into {got} pieces, not {k} "
                         f"(torch uses pieces of ⌈{n}/{k}⌉ = {size}) — use chunks={got}",
                         set_param_fix("chunks", got), param="chunks")
    outs = []
    for i in range(k):
        piece = list(shape)
        piece[axis] = min(size, n - i * size)
        outs.append(tuple(piece))
    return Inferred(out_shapes=tuple(outs))


def _chunk(x: Any, chunks: int, dim: int = 1) -> Any:
    return x.chunk(chunks, dim)


Chunk = register(LayerSpec(
    type="Chunk", category=Category.SHAPE,
    doc="Splits the input into equal pieces along an axis, one output each (ShuffleNet's channel split).",
    params=(ParamSpec("chunks", Kind.INT, 2, "Number of pieces (outputs).", min=1, max=64),
            ParamSpec("dim", Kind.INT, 1, _DIM_DOC, min=-8, max=8)),
    infer=_chunk_infer, function=_chunk, num_outputs=lambda p: int(p["chunks"]),
    code=lambda xs, p: f"{xs[0]}.chunk({int(p['chunks'])}, {int(p['dim'])})",
    short=lambda p: f"{p['chunks']} pieces · dim {p['dim']}",
    fit_role=FitRole.OTHER,
))


def _split_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    sections = p["sections"]
    axis = sample_axis("Split", p["dim"], len(shape))
    if sections is None:
        half = [shape[axis] // 2, shape[axis] - shape[axis] // 2]
        raise LayerError(f"Split needs the section sizes, e.g. {half}", set_param_fix("sections", half),
                         param="sections")
    if sum(sections) != shape[axis]:
        raise LayerError(f"Split sections {list(sections)} add up to {sum(sections)}, but the input has "
                         f"{shape[axis]} along dim {p['dim']}", param="sections")
    outs = []
    for s in sections:
        piece = list(shape)
        piece[axis] = s
        outs.append(tuple(piece))
    return Inferred(out_shapes=tuple(outs))


def _split(x: Any, sections: Sequence[int], dim: int = 1) -> Any:
    return x.split(list(sections), dim)


def _split_editor(shape: Shape | None) -> dict[str, Any]:
    """Two halves on the channels once the input is known."""
    if shape is None or len(shape) < 2 or shape[0] < 2:
        return {}
    return {"sections": [shape[0] // 2, shape[0] - shape[0] // 2]}


Split = register(LayerSpec(
    type="Split", category=Category.SHAPE,
    doc="Splits the input along an axis into pieces of the given sizes, one output each.",
    params=(ParamSpec("sections", Kind.SHAPE, None, "Size of each piece along dim; they must add up to "
                      "the input's size there."),
            ParamSpec("dim", Kind.INT, 1, _DIM_DOC, min=-8, max=8)),
    infer=_split_infer, function=_split,
    num_outputs=lambda p: len(p["sections"]) if p.get("sections") else 1,
    code=lambda xs, p: f"{xs[0]}.split({[int(s) for s in p['sections']]}, {int(p['dim'])})",
    short=lambda p: "/".join(str(s) for s in p["sections"]) if p["sections"] else "",
    editor_defaults=_split_editor, fit_role=FitRole.OTHER,
))

__all__ = ["ChannelShuffle", "Chunk", "Flatten", "Identity", "Permute", "Reshape", "Split", "Transpose", "Upsample",
           "ZeroPad2d", "check_crop", "pad_short", "pad_window", "pads"]
