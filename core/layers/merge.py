"""Merges of several inputs: Add (residual), Concat (Inception, DenseNet), Stack (SKNet), Multiply (SE gates),
Subtract and Divide (normalizing by a computed statistic, differences of Siamese branches),
MatMul (a learned projection ``x @ W`` with a Parameter node, attention scores).

These are stateless ``call_function`` nodes in the compiled model: ``function(*inputs, **params)``
computes the node's output for any number of inputs, ordered by the edge ``port``. Their ``fx``
declaration makes the compiled code read like hand-written torch: several inputs chain
(``a + b + c``, one ``operator.add`` per step), Concat is ``torch.cat([a, b], dim=1)``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import (
    Category,
    Emit,
    FitRole,
    FxCall,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    Params,
    ParamSpec,
    Shape,
    fmt_shape,
    numel,
)


def _add_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        if tuple(s) != tuple(first):
            raise LayerError(f"Add needs inputs of identical shape, but input {i} is {fmt_shape(s)} "
                             f"and input 0 is {fmt_shape(first)}")
    return Inferred(out_shapes=(tuple(first),))


def broadcast(shapes: Sequence[Shape], type_name: str = "Multiply") -> Shape:
    """torch's broadcasting over per-sample shapes.

    The batch axis comes first in every input, so torch's right-aligned broadcasting only lines
    the batch axes up when all samples have the same number of axes: ``N×C×H×W * N×C`` fails
    for ``N > 1``. We require equal ranks, then broadcast axis by axis.
    """
    ndim = max(len(s) for s in shapes)
    if any(len(s) != ndim for s in shapes):
        raise LayerError(f"{type_name} needs inputs with the same number of axes (the batch axes must line up), "
                         "but gets " + " and ".join(fmt_shape(s) for s in shapes)
                         + " — reshape the smaller one, e.g. a C gate to C×1×1")
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise LayerError(f"{type_name} needs shapes that broadcast, but gets "
                             + " and ".join(fmt_shape(s) for s in shapes)
                             + f" (sizes {sorted(sizes)} along axis {axis})")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def _broadcast_infer(type_name: str) -> Any:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        return Inferred(out_shapes=(broadcast(shapes, type_name),))

    return infer


def concat_axis(dim: int, ndim: int) -> int:
    """Per-sample axis for torch's ``dim`` counted with the batch axis (negative from the end)."""
    axis = dim - 1 if dim > 0 else ndim + dim
    if dim == 0 or not 0 <= axis < ndim:
        raise LayerError(f"Concat dim={dim} is out of range for {ndim}-D samples "
                         f"(dim counts the batch axis: 1 is channels)")
    return axis


def _cat_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        raise LayerError("Concat needs inputs with the same number of axes, but gets "
                         + ", ".join(fmt_shape(s) for s in shapes))
    axis = concat_axis(p["dim"], len(first))
    for i, s in enumerate(shapes[1:], start=1):
        others = [d for j, d in enumerate(s) if j != axis]
        if others != [d for j, d in enumerate(first) if j != axis]:
            raise LayerError(f"Concat along dim {p['dim']} needs all other axes equal, but input {i} is "
                             f"{fmt_shape(s)} and input 0 is {fmt_shape(first)}")
    out = list(first)
    out[axis] = sum(s[axis] for s in shapes)
    return Inferred(out_shapes=(tuple(out),))


def _stack_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    first = tuple(shapes[0])
    for i, s in enumerate(shapes[1:], start=1):
        if tuple(s) != first:
            raise LayerError(f"Stack needs inputs of identical shape, but input {i} is {fmt_shape(s)} "
                             f"and input 0 is {fmt_shape(first)}")
    dim = int(p["dim"])
    # The new axis goes among the output's len(first) + 1 per-sample axes; dim counts the batch axis.
    axis = dim - 1 if dim > 0 else len(first) + 1 + dim
    if dim == 0 or not 0 <= axis <= len(first):
        raise LayerError(f"Stack dim={dim} is out of range for {len(first)}-D samples (dim counts the batch "
                         f"axis: 1 puts the new axis right after it)", param="dim")
    out = (*first[:axis], len(shapes), *first[axis:])
    return Inferred(out_shapes=(out,))


def _stack(*xs: object, dim: int = 1) -> object:
    import torch

    return torch.stack(xs, dim=dim)  # type: ignore[arg-type]


def _add(*xs: Any) -> Any:
    """Sum of all inputs (operator.add only takes two; Add accepts any number)."""
    return functools.reduce(operator.add, xs)


def _mul(*xs: Any) -> Any:
    """Product of all inputs, broadcasting like torch."""
    return functools.reduce(operator.mul, xs)


def _sub(*xs: Any) -> Any:
    """The first input minus the others, left to right, broadcasting like torch."""
    return functools.reduce(operator.sub, xs)


def _div(*xs: Any) -> Any:
    """The first input divided by the others, left to right (true division), broadcasting like torch."""
    return functools.reduce(operator.truediv, xs)


def _matmul_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    a, b = shapes
    if len(b) < 2:
        raise LayerError(f"MatMul needs a matrix (or a stack of matrices) as input 1, but gets {fmt_shape(b)}")
    k = a[-1]
    if b[-2] != k:
        raise LayerError(f"MatMul of {fmt_shape(a)} by {fmt_shape(b)}: the last axis of input 0 ({k}) must equal "
                         f"the next-to-last axis of input 1 ({b[-2]})")
    if len(a) == 1:  # a vector per sample: x @ W
        if len(b) != 2:
            raise LayerError(f"MatMul of a vector per sample ({fmt_shape(a)}) needs a matrix as input 1, but gets "
                             f"{fmt_shape(b)}")
        out: Shape = (b[-1],)
    else:
        if len(a) != len(b):
            raise LayerError(f"MatMul needs inputs with the same number of axes (the batch axes must line up), "
                             f"but gets {fmt_shape(a)} and {fmt_shape(b)}")
        lead = broadcast([a[:-2], b[:-2]], "MatMul") if len(a) > 2 else ()
        out = (*lead, a[-2], b[-1])
    return Inferred(out_shapes=(out,), macs=numel(out) * k)


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` per sample; a sample that is a vector (``N×K`` batch) is multiplied as a row."""
    import torch

    if a.dim() == 2:
        return torch.matmul(a.unsqueeze(1), b).squeeze(1)
    return torch.matmul(a, b)


def _cat(*xs: object, dim: int = 1) -> object:
    import torch

    return torch.cat(xs, dim=dim)  # type: ignore[arg-type]


Add = register(LayerSpec(
    type="Add", category=Category.MERGE,
    doc="Element-wise sum of inputs of identical shape: the residual (skip) connection of ResNet.",
    params=(), infer=_add_infer, function=_add,
    code=lambda xs, p: " + ".join(xs), min_inputs=2, max_inputs=None,
    fx=FxCall(operator.add, Emit.CHAIN), feature_maps=True, fit_role=FitRole.OTHER,
))


def _broadcasting(type_name: str, doc: str, function: Callable[..., Any], op: Callable[[Any, Any], Any],
                  symbol: str, stem: str) -> LayerSpec:
    """Declare an element-wise merge of two or more inputs that broadcasts like torch, chained left
    to right (``a - b - c``) in the compiled forward and in exported code."""
    return register(LayerSpec(
        type=type_name, category=Category.MERGE, doc=doc, params=(), infer=_broadcast_infer(type_name),
        function=function, code=lambda xs, p: f" {symbol} ".join(xs), min_inputs=2, max_inputs=None,
        id_stem=stem, fx=FxCall(op, Emit.CHAIN), fit_role=FitRole.OTHER,
    ))


Multiply = _broadcasting("Multiply", "Element-wise product with broadcasting: the squeeze-and-excitation channel gate.",
                         _mul, operator.mul, "*", "mul")
Subtract = _broadcasting("Subtract", "Element-wise difference a − b (− c …) with broadcasting: input 0 minus the "
                         "others.", _sub, operator.sub, "-", "sub")
Divide = _broadcasting("Divide", "Element-wise true division a / b (/ c …) with broadcasting: input 0 divided by the "
                       "others.", _div, operator.truediv, "/", "div")

MatMul = register(LayerSpec(
    type="MatMul", category=Category.MERGE,
    doc="Matrix product per sample, input 0 @ input 1: a learned projection x @ W, or attention's Q @ Kᵀ.",
    params=(), infer=_matmul_infer, function=matmul,
    code=lambda xs, p: (f"(torch.matmul({xs[0]}.unsqueeze(1), {xs[1]}).squeeze(1) if {xs[0]}.dim() == 2 "
                        f"else torch.matmul({xs[0]}, {xs[1]}))"),
    min_inputs=2, max_inputs=2, id_stem="matmul", fx=FxCall(matmul), fit_role=FitRole.OTHER,
))

Concat = register(LayerSpec(
    type="Concat", category=Category.MERGE,
    doc="Concatenates inputs along an axis (channels by default): Inception branches, DenseNet.",
    params=(ParamSpec("dim", Kind.INT, 1, "Axis counted with the batch axis: 1 = channels, -1 = last.",
                      min=-8, max=8),),
    infer=_cat_infer, function=_cat,
    code=lambda xs, p: f"torch.cat([{', '.join(xs)}], dim={int(p['dim'])})",
    min_inputs=2, max_inputs=None, short=lambda p: f"dim {p['dim']}",
    id_stem="cat", fx=FxCall("torch.cat", Emit.LIST), feature_maps=True, fit_role=FitRole.OTHER,
))

Stack = register(LayerSpec(
    type="Stack", category=Category.MERGE,
    doc="Stacks inputs of identical shape along a new axis (torch.stack): SKNet's kernel paths, weighted then "
        "summed.",
    params=(ParamSpec("dim", Kind.INT, 1, "Where the new axis goes, counted with the batch axis: 1 = right "
                      "after it, -1 = last.", min=-8, max=8),),
    infer=_stack_infer, function=_stack,
    code=lambda xs, p: f"torch.stack([{', '.join(xs)}], dim={int(p['dim'])})",
    min_inputs=2, max_inputs=None, short=lambda p: f"dim {p['dim']}",
    id_stem="stack", fx=FxCall("torch.stack", Emit.LIST), fit_role=FitRole.OTHER,
))
