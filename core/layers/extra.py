"""Layer types that imported models need: Permute, Transpose, Reshape, Mean, Chunk, Split,
StochasticDepth, LayerScale and LayerNorm2d.

They are ordinary declarations (palette, inspector, analysis, compiler and exporter read them
like any other); they exist because torchvision's ConvNeXt, EfficientNet, ShuffleNet and
MNASNet use them. Stateless ones are ``call_function`` ops written as tensor methods, so the
compiled graph and exported code need only torch; the three with state or a train/eval
behaviour are modules from :mod:`core.layers.extra_modules` (imported only when built).

Axis numbers follow torch and count the batch axis as 0 (``dim=1`` is the channels), as
Concat and Flatten do. Shapes in the rules below are per sample, without the batch axis.
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
    ParamError,
    Params,
    ParamSpec,
    Shape,
    fmt_shape,
    numel,
    set_param_fix,
)

# Our own classes that an imported module may already be (a compiled NetCanvas model imported
# again): the importer treats them as the same layer types as the torchvision classes below.
OWN_CLASSES: dict[str, str] = {
    "StochasticDepth": "core.layers.extra_modules.StochasticDepth",
    "LayerNorm2d": "core.layers.extra_modules.LayerNorm2d",
}


def _axis(type_name: str, dim: int, rank: int, what: str = "dim") -> int:
    """torch's ``dim`` (batch axis = 0, negative from the end) → per-sample axis; refuses the batch."""
    nd = rank + 1
    if not -nd <= dim < nd:
        raise LayerError(f"{type_name} {what}={dim} is out of range for {rank}-D samples "
                         f"(dims count the batch axis: 1 is the first axis of a sample)", param=what)
    axis = dim % nd
    if axis == 0:
        raise LayerError(f"{type_name} {what}={dim} is the batch axis, which would mix samples "
                         f"— use 1 (channels) or a later axis", set_param_fix(what, 1), param=what)
    return axis - 1


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
    a = _axis("Transpose", p["dim0"], len(shape), "dim0")
    b = _axis("Transpose", p["dim1"], len(shape), "dim1")
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


# -- Mean -----------------------------------------------------------------------------------------

def _mean_axes(p: Params, shape: Shape) -> list[int]:
    dims = list(p["dim"])
    axes = [_axis("Mean", d, len(shape)) for d in dims]
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


# -- Chunk / Split --------------------------------------------------------------------------------

def _chunk_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    axis = _axis("Chunk", p["dim"], len(shape))
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
    axis = _axis("Split", p["dim"], len(shape))
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
    module_class="torchvision.ops.StochasticDepth",
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
    module_class="torchvision.models.convnext.LayerNorm2d",
    trainable_note="2C learnable (γ, β)",
    id_stem="ln", fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["OWN_CLASSES", "Chunk", "LayerNorm2d", "LayerScale", "Mean", "Permute", "Reshape", "Split",
           "StochasticDepth", "Transpose"]
