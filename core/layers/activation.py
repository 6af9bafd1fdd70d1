"""Element-wise activations: shape in = shape out, no MACs (DESIGN.md §5)."""

from __future__ import annotations

from collections.abc import Sequence

from core.layers.registry import register
from core.layers.shape import _nn
from core.layers.spec import Category, Inferred, LayerSpec, Params, ParamSpec, Shape


def same_shape(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(shapes[0]),))


def activation(type_name: str, doc: str, *params: ParamSpec) -> LayerSpec:
    """Declare a parameter-free-shape activation backed by ``torch.nn.<type_name>``."""
    return register(LayerSpec(type=type_name, category=Category.ACTIVATION, doc=doc, params=params,
                              infer=same_shape, build=_nn(type_name)))


ReLU = activation("ReLU", "max(0, x): the default activation; avoids vanishing gradients of sigmoid.")
