"""How the importer turns functional calls into layer nodes: the op handlers and their tables.

Each handler takes the conversion in progress, the fx node and its arguments (tensors already
replaced by :mod:`~core.importer.values` references to graph nodes, shape arithmetic by its value)
and returns the value the call produces: a reference to a new node, an existing reference
(``x.contiguous()`` adds nothing), or the outputs of a multi-output node. :func:`handler_for`
picks the handler; a call it has none for is refused by the converter, which names it with
:func:`describe`.

The seam with the converter, :class:`~core.importer.op_base.Conversion`, and the helpers every
handler uses live in :mod:`~core.importer.op_base`. The tables map torch's functional spellings to
the registry's layer types; the layer types themselves (shape rules, parameters) are only ever
declared in :mod:`core.layers`.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from core.graph import id_problem
from core.importer.modules import user_params
from core.importer.op_base import (
    MADE_IN_FORWARD,
    Conversion,
    Handler,
    bind_args,
    describe,
    made_in_forward,
    rank_of,
    tensor_input,
)
from core.importer.values import Multi, Param, Ref
from core.layers import get_spec

# -- element-wise merges -------------------------------------------------------------------------

def _operands(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    rest = dict(kwargs)
    if "other" in rest:
        args = (*args, rest.pop("other"))
    alpha = rest.pop("alpha", 1)
    if len(args) != 2 or rest or alpha != 1:
        raise conv.fail(n, f"{describe(n)} with arguments {sorted(kwargs) if kwargs else len(args)}")
    return args[0], args[1]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _with_constant(conv: Conversion, n: fx.Node, a: Any, b: Any, op: str) -> Any:
    """``x + c``, ``c - x``, ``x * c``, ``x / c`` …: a Scale node (x · factor + offset), or None if no constant.

    Division by ``c`` is multiplication by ``1/c``, which may differ from torch's quotient in the
    last bit of a float.
    """
    if isinstance(a, Ref) and _number(b):
        x, c, x_first = a, float(b), True
    elif isinstance(b, Ref) and _number(a):
        x, c, x_first = b, float(a), False
    else:
        return None
    if op == "add":
        factor, offset = 1.0, c
    elif op == "sub":
        factor, offset = (1.0, -c) if x_first else (-1.0, c)
    elif op == "mul":
        factor, offset = c, 0.0
    elif not x_first:
        raise conv.fail(n, f"{describe(n)} of a constant by a tensor", "a reciprocal maps to no layer type")
    elif c == 0.0:
        raise conv.fail(n, f"{describe(n)} of a tensor by the constant 0")
    else:
        factor, offset = 1.0 / c, 0.0
    if factor == 1.0 and offset == 0.0:
        return x  # + 0, × 1: no op
    return conv.functional(n, "Scale", {"factor": factor, "offset": offset}, [x], op)


def _add(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = _operands(conv, n, args, kwargs)
    scaled = _with_constant(conv, n, a, b, "add")
    if scaled is not None:
        return scaled
    return conv.functional(n, "Add", {}, _tensors(conv, n, a, b, fit="Add"), "add")


def _mul(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = _operands(conv, n, args, kwargs)
    scaled = _with_constant(conv, n, a, b, "mul")
    if scaled is not None:
        return scaled
    if isinstance(a, Param) and isinstance(b, Ref) and _is_layer_scale(conv, n, a):
        return _layer_scale(conv, n, a, b)
    if isinstance(b, Param) and isinstance(a, Ref) and _is_layer_scale(conv, n, b):
        return _layer_scale(conv, n, b, a)
    return conv.functional(n, "Multiply", {}, _tensors(conv, n, a, b, fit="Multiply"), "mul")


def _sub(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = _operands(conv, n, args, kwargs)
    scaled = _with_constant(conv, n, a, b, "sub")
    if scaled is not None:
        return scaled
    return conv.functional(n, "Subtract", {}, _tensors(conv, n, a, b, fit="Subtract"), "sub")


def _div(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    rest = dict(kwargs)
    if rest.pop("rounding_mode", None) is not None:
        raise conv.fail(n, f"{describe(n)} with rounding_mode={kwargs['rounding_mode']!r}")
    a, b = _operands(conv, n, args, rest)
    scaled = _with_constant(conv, n, a, b, "div")
    if scaled is not None:
        return scaled
    return conv.functional(n, "Divide", {}, _tensors(conv, n, a, b, fit="Divide"), "div")


def _matmul(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "other"), {})
    if isinstance(b["input"], Param):
        raise conv.fail(n, f"{describe(n)} of the parameter {b['input'].path!r} by a tensor",
                        "a MatMul multiplies a sample by a matrix, not a matrix by the batch")
    return conv.functional(n, "MatMul", {}, _tensors(conv, n, b["input"], b["other"]), "matmul")


def _tensors(conv: Conversion, n: fx.Node, *operands: Any, fit: str = "") -> list[Any]:
    """The operands of a merge as references: parameters become Parameter nodes; constants are refused.

    ``fit`` (a merge type) lines a parameter up with the result as torch broadcasts it: one with
    fewer axes than a sample (timm's per-feature ``gamma`` of shape D on N×D tokens) gets leading
    axes of size 1 through a Reshape, and for Add, which takes equal shapes only, an Expand.
    """
    if not all(isinstance(v, (Ref, Param)) for v in operands):
        raise conv.fail(n, f"{describe(n)} of a tensor and a constant")
    out = []
    for v in operands:
        if isinstance(v, Param):
            v = parameter_node(conv, n, v)
            if fit:
                v = _fitted(conv, n, v, fit)
        out.append(v)
    return out


def _fitted(conv: Conversion, n: fx.Node, ref: Ref, merge: str) -> Ref:
    (target,) = conv.shapes(n)
    spec = get_spec("Parameter")
    assert spec is not None
    shape = list(spec.resolve(conv.graph.nodes[ref.node].params)["shape"])
    if len(shape) < len(target):
        shape = [1] * (len(target) - len(shape)) + shape
        ref = conv.functional(n, "Reshape", {"shape": shape}, [ref], "reshape", last=False)
    if merge == "Add" and tuple(shape) != tuple(target):
        ref = conv.functional(n, "Expand", {"shape": list(target)}, [ref], "expand", last=False)
    return ref


def parameter_node(conv: Conversion, n: fx.Node, param: Param) -> Ref:
    """The Parameter node holding ``param`` (one per parameter, made at its first use), at its own path.

    Its id is the parameter's path, so its state is ``<path>.weight`` (the converter's ``key``
    maps the source's key there); its group is the module that owns it.
    """
    if param.path in conv.param_nodes:
        return Ref(conv.param_nodes[param.path])
    if made_in_forward(param):
        raise conv.fail(n, f"{describe(n)} of {MADE_IN_FORWARD[0]}", MADE_IN_FORWARD[1])
    if not isinstance(param.value, torch.nn.Parameter):
        raise conv.fail(n, f"the buffer {param.path!r} used directly in forward",
                        "a Parameter node holds learned weights, not a buffer")
    owner, _, leaf = param.path.rpartition(".")
    shape = [int(d) for d in param.value.shape]
    if not shape:
        raise conv.fail(n, f"the scalar parameter {param.path!r} used directly in forward",
                        "a Parameter node holds a tensor of at least one axis")
    if owner and conv.ids[owner] in conv.graph.nodes:
        raise conv.fail(n, f"the parameter {param.path!r} of a layer used directly in forward",
                        "a layer's own weights can only be used by the layer")
    node_id = f"{conv.ids[owner]}.{leaf}" if owner else leaf
    if id_problem(node_id) or node_id in conv.graph.nodes:
        raise conv.fail(n, f"the parameter {param.path!r} used directly in forward",
                        "its name cannot be a node id here")
    batch_axis = len(shape) > 1 and shape[0] == 1  # ViT's 1×N×D tokens; else the tensor is one sample
    params = {"shape": shape[1:] if batch_axis else shape, "batch_axis": batch_axis}
    spec = get_spec("Parameter")
    assert spec is not None
    conv.add("Parameter", node_id, user_params(spec, params, node_id), [], owner, None)
    conv.param_nodes[param.path] = node_id
    return Ref(node_id)


def _is_layer_scale(conv: Conversion, n: fx.Node, param: Param) -> bool:
    """``self.layer_scale * x`` (ConvNeXt): a per-channel scale that broadcasts to exactly x's shape."""
    owner, _, attr = param.path.rpartition(".")
    (shape,) = conv.shapes(n)
    want = (shape[0],) + (1,) * (len(shape) - 1)
    return (attr == "layer_scale" and bool(owner) and tuple(param.value.shape) == want
            and conv.ids[owner] not in conv.graph.nodes)


def _layer_scale(conv: Conversion, n: fx.Node, param: Any, x: Any) -> Any:
    """``self.layer_scale * x`` (ConvNeXt): a LayerScale node at the owner's path, keeping the key."""
    owner = param.path.rpartition(".")[0]
    params: dict[str, Any] = {}
    flat = param.value.detach().flatten()
    if flat.numel() and not flat.is_meta and bool((flat == flat[0]).all()):
        params["init_value"] = float(flat[0])
    spec = get_spec("LayerScale")
    assert spec is not None
    node_id = conv.ids[owner]
    return conv.add("LayerScale", node_id, user_params(spec, params, node_id), [x], owner, n)


def _cat(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("tensors", "dim"), {"dim": 0})
    tensors = conv.refs(n, b["tensors"], describe(n))
    if len(tensors) == 1:  # DenseNet concatenates a one-element list: the tensor itself
        return tensors[0]
    return conv.functional(n, "Concat", {"dim": b["dim"]}, tensors, "cat")


# -- layers written as functions ------------------------------------------------------------------

# function → (layer type, argument names after the input, values the extra names must have)
_AS_LAYER: dict[Any, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    F.relu: ("ReLU", ("inplace",), {}),
    torch.relu: ("ReLU", (), {}),
    torch.relu_: ("ReLU", (), {"inplace": True}),
    F.relu_: ("ReLU", (), {"inplace": True}),
    F.relu6: ("ReLU6", ("inplace",), {}),
    F.hardtanh: ("Hardtanh", ("min_val", "max_val", "inplace"), {}),
    F.hardsigmoid: ("Hardsigmoid", ("inplace",), {}),
    F.hardswish: ("Hardswish", ("inplace",), {}),
    F.silu: ("SiLU", ("inplace",), {}),
    F.gelu: ("GELU", ("approximate",), {}),
    F.elu: ("ELU", ("alpha", "inplace"), {}),
    F.softplus: ("Softplus", ("beta", "threshold"), {}),
    F.mish: ("Mish", ("inplace",), {}),
    F.leaky_relu: ("LeakyReLU", ("negative_slope", "inplace"), {}),
    torch.sigmoid: ("Sigmoid", (), {}),
    F.sigmoid: ("Sigmoid", (), {}),
    torch.tanh: ("Tanh", (), {}),
    F.tanh: ("Tanh", (), {}),
    F.softmax: ("Softmax", ("dim", "_stacklevel", "dtype"), {"dtype": None}),
    F.log_softmax: ("LogSoftmax", ("dim", "_stacklevel", "dtype"), {"dtype": None}),
    F.dropout: ("Dropout", ("p", "training", "inplace"), {}),
    F.dropout2d: ("Dropout2d", ("p", "training", "inplace"), {}),
    F.adaptive_avg_pool2d: ("AdaptiveAvgPool2d", ("output_size",), {}),
    F.adaptive_max_pool2d: ("AdaptiveMaxPool2d", ("output_size", "return_indices"), {"return_indices": False}),
    F.avg_pool2d: ("AvgPool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                 "divisor_override"), {}),
    F.max_pool2d: ("MaxPool2d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   {}),
    F.max_pool1d: ("MaxPool1d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   {}),
    F.max_pool3d: ("MaxPool3d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   {}),
    **{getattr(F, f"max_pool{nd}d_with_indices"): (f"MaxPool{nd}d", ("kernel_size", "stride", "padding", "dilation",
                                                                   "ceil_mode", "return_indices"),
                                                  {"return_indices": True})
       for nd in (1, 2, 3)},
    F.avg_pool1d: ("AvgPool1d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"), {}),
    F.avg_pool3d: ("AvgPool3d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                 "divisor_override"), {}),
    F.adaptive_avg_pool3d: ("AdaptiveAvgPool3d", ("output_size",), {}),
    F.adaptive_avg_pool1d: ("AdaptiveAvgPool1d", ("output_size",), {}),
    F.adaptive_max_pool1d: ("AdaptiveMaxPool1d", ("output_size", "return_indices"), {"return_indices": False}),
    F.normalize: ("Normalize", ("p", "dim", "eps", "out"), {"out": None}),
}

_AS_LAYER_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("ReLU", {}), "relu_": ("ReLU", {"inplace": True}),
    "sigmoid": ("Sigmoid", {}), "sigmoid_": ("Sigmoid", {}),  # no inplace flag: same values
    "tanh": ("Tanh", {}), "tanh_": ("Tanh", {}),
    "softmax": ("Softmax", {}), "log_softmax": ("LogSoftmax", {}),
}


def _as_layer(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    type_name, names, required = _AS_LAYER[n.target]
    spec = get_spec(type_name)
    if spec is None:
        raise conv.fail(n, describe(n))
    x = tensor_input(conv, n, args[0])
    defaults = {**_defaults(n.target, names), **required}  # an argument left out has the value it must have
    b = bind_args(conv, n, args[1:], kwargs, names, defaults)
    params: dict[str, Any] = {}
    for key, value in b.items():
        if key == "training":
            if value is False:
                return x  # dropout that never drops
        elif key == "_stacklevel":
            continue
        elif key in required and value != required[key]:
            raise conv.fail(n, f"{describe(n)} with {key}={value!r}")
        elif key in spec.param_names:
            params[key] = list(value) if isinstance(value, tuple) else value
    for key, value in required.items():
        if key in spec.param_names:
            params[key] = value
    if type_name in ("Softmax", "LogSoftmax") and params.get("dim") is None:
        raise conv.fail(n, f"{describe(n)} without dim")
    name = getattr(n.target, "__name__", "").removesuffix("_with_indices")  # F.max_pool2d_with_indices
    return conv.functional(n, type_name, params, [x], name or None)


def _defaults(fn: Any, names: Sequence[str]) -> dict[str, Any]:
    """Default values of ``fn``'s arguments; builtins without a signature give theirs by hand."""
    try:
        sig = inspect.signature(fn)
        found = {k: p.default for k, p in sig.parameters.items()
                 if k in names and p.default is not inspect.Parameter.empty}
        if found or not names:
            return found
    except (TypeError, ValueError):
        pass
    known = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True,
             "divisor_override": None, "return_indices": False, "beta": 1.0, "threshold": 20.0,
             "approximate": "none"}
    return {k: v for k, v in known.items() if k in names}


def _as_layer_method(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    type_name, fixed = _AS_LAYER_METHODS[str(n.target)]
    x = tensor_input(conv, n, args[0])
    params = dict(fixed)
    if type_name in ("Softmax", "LogSoftmax"):
        b = bind_args(conv, n, args, kwargs, ("self", "dim", "dtype"), {"dtype": None})
        if b["dtype"] is not None or b["dim"] is None:
            raise conv.fail(n, f"{describe(n)} without dim or with a dtype")
        params["dim"] = b["dim"]
    elif len(args) > 1 or kwargs:
        raise conv.fail(n, f"{describe(n)} with arguments")
    return conv.functional(n, type_name, params, [x], str(n.target))


def _clamp(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.clamp(a, b)`` / ``torch.clamp`` / ``clip`` with constant bounds: ReLU (0, ∞), ReLU6 (0, 6) or Hardtanh."""
    b = bind_args(conv, n, args, kwargs, ("input", "min", "max"), {"min": None, "max": None})
    x = tensor_input(conv, n, b["input"])
    lo, hi = b["min"], b["max"]
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in (lo, hi)):
        raise conv.fail(n, f"{describe(n)} to bounds that are tensors", "only constant numbers map to a layer")
    if lo == 0 and hi is None:
        return conv.functional(n, "ReLU", {}, [x], "clamp")
    if lo == 0 and hi == 6:
        return conv.functional(n, "ReLU6", {}, [x], "clamp")
    if lo is None or hi is None:
        raise conv.fail(n, f"{describe(n)} with one bound ({lo}, {hi})",
                        "NetCanvas clips with ReLU (0, ∞), ReLU6 (0, 6) or Hardtanh (a, b)")
    return conv.functional(n, "Hardtanh", {"min_val": float(lo), "max_val": float(hi)}, [x], "clamp")


# -- shape operations -----------------------------------------------------------------------------

def _flatten(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
    x = tensor_input(conv, n, b["input"])
    return conv.functional(n, "Flatten", {"start_dim": b["start_dim"], "end_dim": b["end_dim"]}, [x], "flatten")


def _positive_dims(dims: Any, rank: int) -> list[int]:
    seq = list(dims) if isinstance(dims, (list, tuple)) else [dims]
    return [int(d) % rank for d in seq]


_REDUCTIONS = {"mean": "Mean", "sum": "Sum", "amax": "Amax"}


def _reduce(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.mean(dims)``, ``torch.sum(x, dims, keepdim)``, ``x.amax(dims)`` over constant axes."""
    name = str(n.target) if n.op == "call_method" else getattr(n.target, "__name__", "")
    type_name = _REDUCTIONS[name]
    names = ("input", "dim", "keepdim") if name == "amax" else ("input", "dim", "keepdim", "dtype")
    b = bind_args(conv, n, args, kwargs, names, {"dim": None, "keepdim": False, "dtype": None})
    x = tensor_input(conv, n, b["input"])
    if b["dim"] in (None, (), []) or b.get("dtype") is not None:
        raise conv.fail(n, f"{describe(n)} over every axis (batch included)" if b.get("dtype") is None
                        else f"{describe(n)} with a dtype")
    dims = _positive_dims(b["dim"], rank_of(n))
    return conv.functional(n, type_name, {"dim": dims, "keepdim": bool(b["keepdim"])}, [x], name)


_PAD_TYPES = {"reflect": "ReflectionPad2d", "replicate": "ReplicationPad2d"}


def _pad(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``F.pad(x, (l, r[, t, b]), mode, value)`` of the last two axes → a 2-D padding layer."""
    b = bind_args(conv, n, args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
    x = tensor_input(conv, n, b["input"])
    amounts, mode, value = b["pad"], b["mode"], b["value"]
    if (not isinstance(amounts, (list, tuple)) or len(amounts) not in (2, 4)
            or not all(isinstance(a, int) for a in amounts)):
        raise conv.fail(n, f"{describe(n)} with pad={amounts!r}",
                        "only constant amounts for the last one or two axes map to a 2-D padding layer")
    if rank_of(n) < 4:
        raise conv.fail(n, f"{describe(n)} of a {rank_of(n) - 1}-axis sample",
                        "the padding layers pad the H×W axes of C×H×W maps")
    padding = [*amounts, 0, 0] if len(amounts) == 2 else list(amounts)
    if mode == "constant":
        if value in (None, 0):
            return conv.functional(n, "ZeroPad2d", {"padding": padding}, [x], "pad")
        return conv.functional(n, "ConstantPad2d", {"padding": padding, "value": float(value)}, [x], "pad")
    if mode not in _PAD_TYPES:
        raise conv.fail(n, f"{describe(n)} with mode={mode!r}")
    return conv.functional(n, _PAD_TYPES[mode], {"padding": padding}, [x], "pad")


_RESIZE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear")


def _interpolate(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``F.interpolate`` / ``F.upsample`` to a constant size or by a constant factor → an Upsample node.

    A size read from another tensor (``x.shape[-2:]``, as torchvision's segmentation heads do) is a
    constant here: the trace knows every size. ``F.upsample_bilinear`` aligns the corners, as torch's does.
    """
    name = getattr(n.target, "__name__", "")
    if name in ("upsample_nearest", "upsample_bilinear"):
        b = bind_args(conv, n, args, kwargs, ("input", "size", "scale_factor"), {"size": None, "scale_factor": None})
        b["mode"], b["align_corners"] = name.removeprefix("upsample_"), True if name.endswith("bilinear") else None
        b["recompute_scale_factor"], b["antialias"] = None, False
    else:
        b = bind_args(conv, n, args, kwargs, ("input", "size", "scale_factor", "mode", "align_corners",
                                          "recompute_scale_factor", "antialias"),
                  {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None,
                   "recompute_scale_factor": None, "antialias": False})
    x = tensor_input(conv, n, b["input"])
    mode = b["mode"]
    if mode not in _RESIZE_MODES:
        raise conv.fail(n, f"{describe(n)} with mode={mode!r}",
                        f"Upsample resizes with the modes {', '.join(_RESIZE_MODES)}")
    if b["antialias"]:
        raise conv.fail(n, f"{describe(n)} with antialias=True", "Upsample resizes without antialiasing")
    nsp = rank_of(n) - 2

    def constant(value: Any, kind: type) -> Any:
        seq = list(value) if isinstance(value, (list, tuple, torch.Size)) else [value]
        if len(seq) not in (1, nsp) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seq):
            return None
        seq = [kind(v) for v in seq]
        return seq if len(seq) > 1 and (nsp == 2 or len(set(seq)) > 1) else seq[0]  # as written: one, or per axis

    params: dict[str, Any] = {"mode": mode, "align_corners": b["align_corners"],
                              "recompute_scale_factor": b["recompute_scale_factor"]}
    for key, kind in (("size", int), ("scale_factor", float)):
        value = b[key]
        params[key] = None if value is None else constant(value, kind)
        if value is not None and params[key] is None:
            raise conv.fail(n, f"{describe(n)} with {key}={value!r}",
                            f"Upsample takes one constant {key} per spatial axis ({nsp} here)")
    return conv.functional(n, "Upsample", params, [x], "interpolate")


def _max_unpool(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "indices", "kernel_size", "stride", "padding", "output_size"),
              {"stride": None, "padding": 0, "output_size": None})
    if b["output_size"] is not None:
        raise conv.fail(n, f"{describe(n)} with output_size", "MaxUnpool2d computes its size from the window")
    inputs = conv.refs(n, [b["input"], b["indices"]], describe(n))
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in b.items() if k in ("kernel_size", "stride",
                                                                                       "padding")}
    return conv.functional(n, "MaxUnpool2d", params, inputs, "max_unpool")


def _view(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if isinstance(args[0], Param):
        return _view_param(conv, n, args[0])
    x = tensor_input(conv, n, args[0])
    src = n.args[0]
    assert isinstance(src, fx.Node)
    (in_shape,) = conv.shapes(src)
    (out_shape,) = conv.shapes(n)
    if out_shape == in_shape:
        return x
    if len(out_shape) == 1:  # x.view(x.size(0), -1): a flatten
        return conv.functional(n, "Flatten", {}, [x], "flatten")
    shuffled = _channel_shuffle_chain(conv, n, in_shape, out_shape)
    if shuffled is not None:
        groups, last, skipped = shuffled
        conv.skip.update(skipped)
        ref = conv.functional(last, "ChannelShuffle", {"groups": groups}, [x], "channel_shuffle")
        conv.values[last] = ref
        return ref
    return conv.functional(n, "Reshape", {"shape": list(out_shape)}, [x], "reshape")


def _view_param(conv: Conversion, n: fx.Node, param: Param) -> Any:
    """``self.scale.view(1, -1, 1, 1)`` (SSD's L2 norm scale): its Parameter node, reshaped to broadcast."""
    value = n.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.dim() < 2 or value.shape[0] != 1:
        raise conv.fail(n, f"{describe(n)} of the parameter {param.path!r} to shape "
                        f"{list(value.shape) if isinstance(value, torch.Tensor) else '?'}",
                        "a parameter reshaped for use in forward needs a leading axis of size 1, which "
                        "broadcasts over the batch")
    x = parameter_node(conv, n, param)
    # torch's value has a batch of one, not the traced batch: the shape is checked where it meets a batch
    return conv.functional(n, "Reshape", {"shape": list(value.shape[1:])}, [x], "reshape", last=False)


def _is_transpose(n: fx.Node, a: int, b: int) -> bool:
    if not ((n.op == "call_function" and n.target in (torch.transpose, torch.swapaxes))
            or (n.op == "call_method" and n.target in ("transpose", "swapaxes"))):
        return False
    if len(n.args) != 3 or n.kwargs:
        return False
    rank = rank_of(n)
    return {int(n.args[1]) % rank, int(n.args[2]) % rank} == {a, b}  # type: ignore[call-overload, arg-type]


def _single_user(n: fx.Node) -> fx.Node | None:
    users = list(n.users)
    return users[0] if len(users) == 1 else None


def _channel_shuffle_chain(conv: Conversion, n: fx.Node, in_shape: tuple[int, ...],
                           out_shape: tuple[int, ...]) -> tuple[int, fx.Node, list[fx.Node]] | None:
    """``view(n, g, c/g, …) → transpose(1, 2) → [contiguous] → view(n, c, …)``: ShuffleNet's channel shuffle."""
    if (len(out_shape) != len(in_shape) + 1 or out_shape[2:] != in_shape[1:]
            or out_shape[0] * out_shape[1] != in_shape[0]):
        return None
    t = _single_user(n)
    if t is None or not _is_transpose(t, 1, 2):
        return None
    skipped = [t]
    last = _single_user(t)
    if last is not None and last.op == "call_method" and last.target == "contiguous":
        skipped.append(last)
        last = _single_user(last)
    if last is None or not _is_reshape(last) or conv.shapes(last)[0] != in_shape:
        return None
    return out_shape[0], last, [*skipped, last]


def _is_reshape(n: fx.Node) -> bool:
    return ((n.op == "call_method" and n.target in ("view", "reshape", "flatten"))
            or (n.op == "call_function" and n.target in (torch.reshape, torch.flatten)))


def _transpose(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "dim0", "dim1"), {})
    x = tensor_input(conv, n, b["input"])
    return conv.functional(n, "Transpose", {"dim0": b["dim0"], "dim1": b["dim1"]}, [x], "transpose")


def _permute(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = tensor_input(conv, n, args[0])
    rest = args[1:] or tuple(kwargs.values())
    dims = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
    dims = _positive_dims(dims, rank_of(n))
    if not dims or dims[0] != 0:
        raise conv.fail(n, f"{describe(n)} {dims} that moves the batch axis")
    return conv.functional(n, "Permute", {"dims": dims[1:]}, [x], "permute")


def _chunk(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "chunks", "dim"), {"dim": 0})
    x = tensor_input(conv, n, b["input"])
    count = len(conv.shapes(n))  # torch may return fewer pieces than asked for
    return conv.functional(n, "Chunk", {"chunks": count, "dim": b["dim"]}, [x], "chunk")


def _split(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "split_size_or_sections", "dim"), {"dim": 0})
    if "split_size" in kwargs:
        b["split_size_or_sections"] = kwargs["split_size"]
    x = tensor_input(conv, n, b["input"])
    axis = int(b["dim"]) % rank_of(n)
    sections = [s[axis - 1] for s in conv.shapes(n)]
    return conv.functional(n, "Split", {"sections": sections, "dim": b["dim"]}, [x], "split")


def _channel_shuffle(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "groups"), {})
    x = tensor_input(conv, n, b["input"])
    return conv.functional(n, "ChannelShuffle", {"groups": b["groups"]}, [x], "channel_shuffle")


def _alias(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) > 1 or any(k != "memory_format" for k in kwargs):
        raise conv.fail(n, f"{describe(n)} with arguments")
    return tensor_input(conv, n, args[0])


def _getitem(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    base, index = args
    if isinstance(base, Multi) and isinstance(index, int):
        return Ref(base.node, index % base.count)
    if isinstance(base, (list, tuple)):
        return base[index]
    if isinstance(base, Ref):
        return _index(conv, n, base, index)
    raise conv.fail(n, "indexing a tensor (x[...])")


def _index(conv: Conversion, n: fx.Node, x: Ref, index: Any) -> Any:
    """``x[:, :c]``, ``x[..., 1:]``, ``x[:, 0]``: a Slice or Select per indexed axis, last axis first."""
    items = list(index) if isinstance(index, tuple) else [index]
    rank = rank_of(n)
    if None in items and all(i is None or i is ... or i == slice(None) for i in items):
        return _new_shape(conv, n, x)  # x[:, None]: only new axes of size 1
    if any(i is None or not isinstance(i, (int, slice, type(Ellipsis))) for i in items) or items.count(...) > 1:
        raise conv.fail(n, f"indexing a tensor as x[{_show_index(items)}]",
                        "only constant ints and slices (and one ...) map to Slice and Select")
    if ... in items:
        at = items.index(...)
        items[at:at + 1] = [slice(None)] * (rank - len(items) + 1)
    if len(items) > rank:
        raise conv.fail(n, f"indexing a tensor of {rank} axes with {len(items)} indices")
    steps = []
    for axis, item in enumerate(items):
        if isinstance(item, slice) and item == slice(None):
            continue
        if axis == 0:
            raise conv.fail(n, f"indexing the batch axis with {item!r}", "a layer works on each sample alone")
        if isinstance(item, slice) and not all(v is None or isinstance(v, int) for v in (item.start, item.stop,
                                                                                          item.step)):
            raise conv.fail(n, f"slicing a tensor as x[{_show_index(items)}]", "only constant bounds map to Slice")
        steps.append((axis, item))
    value: Any = x
    for k, (axis, item) in enumerate(reversed(steps)):  # the last axis first: earlier axes keep their number
        last = k == len(steps) - 1
        if isinstance(item, int):
            value = conv.functional(n, "Select", {"dim": axis, "index": item}, [value], "select", last=last)
        else:
            params = {"dim": axis, "start": item.start or 0, "end": item.stop, "step": item.step or 1}
            value = conv.functional(n, "Slice", params, [value], "slice", last=last)
    return value


def _show_index(items: Sequence[Any]) -> str:
    """An index as Python writes it: ``:, None, 1:3``."""
    def one(item: Any) -> str:
        if isinstance(item, slice):
            start, stop, step = ("" if v is None else str(v) if isinstance(v, int) else "?"
                                 for v in (item.start, item.stop, item.step))
            return f"{start}:{stop}" + (f":{step}" if step else "")
        if isinstance(item, list):
            return str(item)
        return "..." if item is ... else str(item) if isinstance(item, (int, type(None))) else "a tensor"
    return ", ".join(one(i) for i in items)


def _new_shape(conv: Conversion, n: fx.Node, x: Ref) -> Any:
    """``x.unsqueeze(d)``, ``x.squeeze(d)``, ``x[:, None]``: a Reshape to torch's shape, the batch axis kept."""
    (out,) = conv.shapes(n)
    if not out:
        raise conv.fail(n, f"{describe(n)} down to a scalar per sample")
    return conv.functional(n, "Reshape", {"shape": list(out)}, [x], "reshape")


def _squeeze(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    x = tensor_input(conv, n, args[0])
    src = n.args[0]
    assert isinstance(src, fx.Node)
    if getattr(n.target, "__name__", str(n.target)) == "squeeze" and not (args[1:] or kwargs):
        # torch squeezes every axis of size 1, the batch axis too when the batch is 1
        raise conv.fail(n, f"{describe(n)} without a dim", "it would drop the batch axis of a batch of one")
    return _new_shape(conv, n, x)


def _narrow(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "dim", "start", "length"), {})
    x = tensor_input(conv, n, b["input"])
    axis = int(b["dim"]) % rank_of(n)
    src = n.args[0]
    assert isinstance(src, fx.Node)
    size = conv.shapes(src)[0][axis - 1] if axis else 0
    start = int(b["start"]) % size if size and int(b["start"]) < 0 else int(b["start"])
    return _index(conv, n, x, (slice(None),) * axis + (slice(start, start + int(b["length"])),))


def _select(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "dim", "index"), {})
    x = tensor_input(conv, n, b["input"])
    axis = int(b["dim"]) % rank_of(n)
    return _index(conv, n, x, (slice(None),) * axis + (int(b["index"]),))


def _batch_source(conv: Conversion, n: fx.Node, arg: Any) -> Ref | None:
    """The tensor whose batch size an expand's first size was read from (``x.shape[0]``, ``x.size(0)``)."""
    todo = [arg] if isinstance(arg, fx.Node) else []
    seen: set[fx.Node] = set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        value = conv.values.get(node)
        if isinstance(value, Ref):
            return value
        todo.extend(node.all_input_nodes)
    return None


def _expand(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.expand(b, -1, h, w)`` of a batch, or of a parameter to the batch of the tensor ``b`` came from."""
    base, sizes = args[0], list(args[1:]) or list(kwargs.get("size", ()))
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = list(sizes[0])
    (target,) = conv.shapes(n)
    if isinstance(base, Param):
        raw = n.args[1] if len(n.args) > 1 else None
        if isinstance(raw, (list, tuple)) and raw:
            raw = raw[0]
        like = _batch_source(conv, n, raw)
        if like is None:
            raise conv.fail(n, f"{describe(n)} of the parameter {base.path!r} to a constant batch size",
                            "expand it to the batch of an input, e.g. x.shape[0]")
        return conv.functional(n, "Expand", {"shape": list(target)}, [parameter_node(conv, n, base), like],
                               "expand")
    x = tensor_input(conv, n, base)
    return conv.functional(n, "Expand", {"shape": list(target)}, [x], "expand")


def _expand_as(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("self", "other"), {})
    x, other = _tensors(conv, n, b["self"], b["other"])
    return conv.functional(n, "Expand", {}, [x, other], "expand_as")


_FUNCTIONS: dict[Any, Handler] = {
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    operator.mul: _mul, operator.imul: _mul, torch.mul: _mul,
    operator.matmul: _matmul, torch.matmul: _matmul, torch.mm: _matmul, torch.bmm: _matmul,
    operator.sub: _sub, operator.isub: _sub, torch.sub: _sub, torch.subtract: _sub,
    operator.truediv: _div, operator.itruediv: _div, torch.div: _div, torch.divide: _div, torch.true_divide: _div,
    torch.cat: _cat, torch.concat: _cat, torch.concatenate: _cat,
    torch.flatten: _flatten, torch.mean: _reduce, torch.sum: _reduce, torch.amax: _reduce, torch.reshape: _view,
    torch.narrow: _narrow, torch.select: _select, torch.unsqueeze: _squeeze, torch.squeeze: _squeeze,
    torch.transpose: _transpose, torch.swapaxes: _transpose, torch.permute: _permute,
    torch.chunk: _chunk, torch.split: _split, operator.getitem: _getitem,
    torch.channel_shuffle: _channel_shuffle, F.channel_shuffle: _channel_shuffle, F.pad: _pad,
    F.max_unpool2d: _max_unpool, torch.clamp: _clamp, torch.clip: _clamp,
    **{fn: _interpolate for fn in (F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear)},
    **{fn: _as_layer for fn in _AS_LAYER},
}

_METHODS: dict[str, Handler] = {
    "add": _add, "add_": _add, "mul": _mul, "mul_": _mul, "sub": _sub, "sub_": _sub, "div": _div, "div_": _div,
    "matmul": _matmul, "mm": _matmul, "bmm": _matmul,
    "flatten": _flatten, "mean": _reduce, "sum": _reduce, "amax": _reduce, "view": _view, "reshape": _view,
    "narrow": _narrow, "select": _select, "expand": _expand, "expand_as": _expand_as,
    "unsqueeze": _squeeze, "squeeze": _squeeze,
    "transpose": _transpose, "swapaxes": _transpose, "permute": _permute,
    "chunk": _chunk, "split": _split, "contiguous": _alias, "clone": _alias,
    "clamp": _clamp, "clamp_": _clamp, "clip": _clamp, "clip_": _clamp,
    **{name: _as_layer_method for name in _AS_LAYER_METHODS},
}


def handler_for(n: fx.Node) -> Handler | None:
    """The handler for a ``call_function`` or ``call_method`` node, or None if unsupported."""
    if n.op == "call_method":
        return _METHODS.get(str(n.target))
    try:
        return _FUNCTIONS.get(n.target)
    except TypeError:  # an unhashable callable
        return None


__all__ = ["Conversion", "Handler", "describe", "handler_for"]
