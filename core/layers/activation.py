"""Element-wise activations (and Softmax/LogSoftmax): shape in = shape out, no MACs (DESIGN.md §5).

Only PReLU has parameters: one learned slope, or one per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
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
    ShortFn,
    fmt_shape,
    set_param_fix,
    torch_builder,
)


def same_shape(p: Params, shapes: Sequence[Shape]) -> Inferred:
    return Inferred(out_shapes=(tuple(shapes[0]),))


def activation(type_name: str, doc: str, *params: ParamSpec, short: ShortFn | None = None) -> LayerSpec:
    """Declare a parameter-free-shape activation backed by ``torch.nn.<type_name>``.

    Element-wise: its output is a feature map worth showing, and it keeps the class count.
    """
    return register(LayerSpec(type=type_name, category=Category.ACTIVATION, doc=doc, params=params,
                              infer=same_shape, build=torch_builder(type_name), short=short,
                              feature_maps=True, fit_role=FitRole.PASS_THROUGH))


_INPLACE = ParamSpec("inplace", Kind.BOOL, False, "Overwrite the input tensor to save memory.")

ReLU = activation("ReLU", "max(0, x): the default activation; avoids vanishing gradients of sigmoid.", _INPLACE)
ReLU6 = activation("ReLU6", "min(max(0, x), 6): ReLU capped at 6, robust in low precision (MobileNet).",
                   _INPLACE)
LeakyReLU = activation(
    "LeakyReLU", "x for x > 0, slope·x otherwise: keeps a small gradient for negative inputs.",
    ParamSpec("negative_slope", Kind.FLOAT, 0.01, "Slope for negative inputs (0.01 by default; 0.2 in GANs)."),
    _INPLACE,
    short=lambda p: f"slope {p['negative_slope']:g}",
)
ELU = activation(
    "ELU", "x for x > 0, α·(eˣ − 1) otherwise: smooth, with negative outputs that centre activations.",
    ParamSpec("alpha", Kind.FLOAT, 1.0, "α: the value ELU approaches for very negative inputs (−α)."),
    _INPLACE,
    short=lambda p: f"α {p['alpha']:g}" if p["alpha"] != 1.0 else "",
)
GELU = activation(
    "GELU", "x·Φ(x), a smooth ReLU weighted by the Gaussian CDF (BERT, ViT, ConvNeXt).",
    ParamSpec("approximate", Kind.CHOICE, "none", "'tanh' uses the faster tanh approximation of Φ.",
              choices=("none", "tanh")),
    short=lambda p: "tanh" if p["approximate"] == "tanh" else "",
)
SiLU = activation("SiLU", "x·sigmoid(x), also called Swish (EfficientNet).", _INPLACE)
Hardswish = activation("Hardswish", "x·ReLU6(x + 3)/6: a cheap piecewise Swish (MobileNetV3).", _INPLACE)
Hardsigmoid = activation("Hardsigmoid", "ReLU6(x + 3)/6: a cheap piecewise sigmoid (MobileNetV3's SE gates).",
                         _INPLACE)
Sigmoid = activation("Sigmoid", "1/(1 + e⁻ˣ): squashes to (0, 1); LeNet's activation, saturates in deep nets.")
Tanh = activation("Tanh", "tanh(x): squashes to (−1, 1), zero-centred; saturates in deep nets.")
Softplus = activation(
    "Softplus", "log(1 + e^(β·x))/β: a smooth ReLU that is positive everywhere (linear above the threshold).",
    ParamSpec("beta", Kind.FLOAT, 1.0, "β: sharpness; larger values come closer to ReLU."),
    ParamSpec("threshold", Kind.FLOAT, 20.0, "Above β·x > threshold the output is x itself, for stability."),
    short=lambda p: f"β {p['beta']:g}" if p["beta"] != 1.0 else "",
)
Mish = activation("Mish", "x·tanh(softplus(x)): a smooth, non-monotonic activation (YOLOv4).", _INPLACE)


def _hardtanh_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    lo, hi = p["min_val"], p["max_val"]
    if not hi > lo:  # torch asserts it when the layer is built
        raise LayerError(f"Hardtanh max_val={hi:g} must be above min_val={lo:g} — raise max_val or lower min_val",
                         fix=set_param_fix("max_val", lo + 1.0), param="max_val")
    return same_shape(p, shapes)


# Clip to any [a, b] (ONNX's Clip, F.hardtanh): ReLU6 is Hardtanh(0, 6).
Hardtanh = register(LayerSpec(
    type="Hardtanh", category=Category.ACTIVATION,
    doc="min(max(x, a), b): clips to [min_val, max_val]; ReLU6 is Hardtanh(0, 6).",
    params=(ParamSpec("min_val", Kind.FLOAT, -1.0, "a: the lowest output value."),
            ParamSpec("max_val", Kind.FLOAT, 1.0, "b: the highest output value (above min_val)."),
            _INPLACE),
    infer=_hardtanh_infer, build=torch_builder("Hardtanh"),
    short=lambda p: f"[{p['min_val']:g}, {p['max_val']:g}]",
    feature_maps=True, fit_role=FitRole.PASS_THROUGH))


# -- PReLU ----------------------------------------------------------------------------------------

def _prelu_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    n, c = p["num_parameters"], shape[0]
    if n not in (1, c):
        raise LayerError(f"PReLU num_parameters={n} must be 1 (one shared slope) or the {c} input channels "
                         f"— use num_parameters={c}",
                         set_param_fix("num_parameters", c), param="num_parameters")
    return Inferred(out_shapes=(tuple(shape),), params=n)


PReLU = register(LayerSpec(
    type="PReLU", category=Category.ACTIVATION,
    doc="Leaky ReLU whose negative slope is learned (He et al.): one slope, or one per channel.",
    params=(
        ParamSpec("num_parameters", Kind.INT, 1, "Learned slopes: 1 shared, or one per input channel.", min=1),
        ParamSpec("init", Kind.FLOAT, 0.25, "Starting value of the learned slope."),
    ),
    infer=_prelu_infer, build=torch_builder("PReLU"),
    short=lambda p: f"{p['num_parameters']} slopes" if p["num_parameters"] != 1 else "",
    feature_maps=True, fit_role=FitRole.PASS_THROUGH,
))


# -- Softmax / LogSoftmax -------------------------------------------------------------------------

def _softmax(type_name: str, doc: str) -> LayerSpec:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        (shape,) = shapes
        dim, nd = p["dim"], len(shape) + 1  # torch's dim counts the batch axis
        if not -nd <= dim < nd:
            raise LayerError(f"{type_name} dim={dim} is out of range for a {fmt_shape(shape)} input "
                             f"(dim counts the batch axis) — use dim=1 for the first axis of a sample",
                             set_param_fix("dim", 1), param="dim")
        if dim in (0, -nd):
            raise LayerError(f"{type_name} dim={dim} would normalize across the batch, mixing samples "
                             f"— use dim=1 (classes)", set_param_fix("dim", 1), param="dim")
        return Inferred(out_shapes=(tuple(shape),))

    return register(LayerSpec(
        type=type_name, category=Category.ACTIVATION, doc=doc,
        params=(ParamSpec("dim", Kind.INT, 1,
                          "Axis that sums to one, counted with the batch axis: 1 = classes/channels, -1 = last.",
                          min=-8, max=8),),
        infer=infer, build=torch_builder(type_name), short=lambda p: f"dim {p['dim']}",
        fit_role=FitRole.PASS_THROUGH,  # class probabilities: as many as the scores it is given
    ))


Softmax = _softmax("Softmax", "exp(x_i)/Σ exp(x_j): turns class scores into probabilities that sum to 1.")
LogSoftmax = _softmax("LogSoftmax", "log(softmax(x)): numerically stable log-probabilities, for NLLLoss.")


# -- Scale (arithmetic with constants) ------------------------------------------------------------

def _scale(x: Any, factor: float = 1.0, offset: float = 0.0) -> Any:
    if factor != 1.0:
        x = x * factor
    return x + offset if offset != 0.0 else x


def _scale_code(xs: Sequence[str], p: Params) -> str:
    text = xs[0] if p["factor"] == 1.0 else f"{xs[0]} * {float(p['factor'])!r}"
    return text if p["offset"] == 0.0 else f"{text} + {float(p['offset'])!r}"


Scale = register(LayerSpec(
    type="Scale", category=Category.ACTIVATION,
    doc="x · factor + offset with constant numbers, element-wise: input scaling (x / 255), a fixed "
        "gain or shift; no parameters.",
    params=(ParamSpec("factor", Kind.FLOAT, 1.0, "Every value is multiplied by this (1/255 for x / 255)."),
            ParamSpec("offset", Kind.FLOAT, 0.0, "Then this is added (−0.5 for x − 0.5).")),
    infer=same_shape, function=_scale, code=_scale_code,
    short=lambda p: " ".join(t for t in (f"×{p['factor']:g}" if p["factor"] != 1.0 else "",
                                         f"{p['offset']:+g}" if p["offset"] != 0.0 else "") if t),
    fit_role=FitRole.PASS_THROUGH,
))

__all__ = ["ELU", "GELU", "Hardsigmoid", "Hardswish", "Hardtanh", "LeakyReLU", "LogSoftmax", "Mish", "PReLU",
           "ReLU", "ReLU6", "Scale", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh", "same_shape"]
