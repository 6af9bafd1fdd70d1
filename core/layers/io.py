"""Graph endpoints: ``Input`` (the per-sample shape fed to the network) and ``Output``."""

from __future__ import annotations

from collections.abc import Sequence

from core.layers.registry import register
from core.layers.spec import Category, FitRole, Inferred, Kind, LayerSpec, Params, ParamSpec, Shape, fmt_shape


def _input_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(p["shape"]),))


def _output_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(shapes[0]),))


Input = register(LayerSpec(
    type="Input", category=Category.IO,
    doc="The network's input: one sample's shape, channels first, without the batch axis.",
    params=(ParamSpec("shape", Kind.SHAPE, [3, 32, 32],
                      "Per-sample shape, e.g. 3×224×224 for RGB images or 784 for flat vectors."),),
    infer=_input_infer, min_inputs=0, max_inputs=0,
    short=lambda p: fmt_shape(p["shape"]),
    fit_role=FitRole.OTHER,
))

Output = register(LayerSpec(
    type="Output", category=Category.IO,
    doc="A network output. Several Outputs (auxiliary heads) make the model return a tuple.",
    # A name says what the output is (``out``/``aux``: the keys of the dict an imported torchvision
    # segmentation model returns); the compiled model still returns its outputs in file order.
    params=(ParamSpec("name", Kind.NAME, "", "What this output is called (a Python name, e.g. out or aux), "
                      "or empty; the model returns its outputs in file order either way."),),
    infer=_output_infer, fit_role=FitRole.OTHER,
    short=lambda p: p["name"],
))
