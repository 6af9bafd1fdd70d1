"""The one op table of the ONNX importer: ONNX op type → the handler that adds its layer node(s).

Each handler reads its node's inputs through the conversion (:class:`~core.importer.onnx_conversion.
OnnxConversion`: layer outputs as references, constants as numpy arrays), and adds the layer
types the registry declares; the shape rules and parameters are never restated here. The ops that
move, cut, join and resample tensors have their handlers in :mod:`core.importer.onnx_shape`, taken
into the table here. A few
handlers recognise what exporters write for one torch layer in several ONNX nodes, looking only
at nodes that feed nothing else: ``MatMul`` + ``Add`` of a constant is a Linear, ``x · Sigmoid(x)``
a SiLU, ``x · HardSigmoid(x)`` a Hardswish, ``x · Tanh(Softplus(x))`` a Mish, the ``erf`` form of
GELU, ``Where(x > t, x, Softplus(x))`` a Softplus with a threshold, and the ReduceMean, Sub, Pow,
ReduceMean, Add, Sqrt, Div (Mul, Add) chain of a LayerNorm exported below opset 17.

Anything a layer cannot represent is refused in one line that names the op type and the node
(:meth:`~core.importer.onnx_conversion.OnnxConversion.fail`). Nodes whose inputs are all constants
never reach a handler: they are evaluated (:meth:`~core.importer.onnx_conversion.OnnxConversion.fold`),
which covers the shape arithmetic around ``Reshape``, ``Pad`` and ``Resize``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.graph import id_problem
from core.importer.onnx_conversion import Handler, OnnxConversion
from core.importer.onnx_read import as_written, attributes, ints
from core.importer.onnx_shape import SHAPE_OPS
from core.importer.values import Ref
from core.layers import get_spec


def _single_user(c: OnnxConversion, name: str, op_type: str) -> Any | None:
    """The node of type ``op_type`` that is the only reader of value ``name``, or None."""
    users = c.users(name)
    if len(users) == 1 and users[0].op_type == op_type and name not in c.m.output_names:
        return users[0]
    return None


def _other_input(node: Any, name: str) -> str | None:
    """The other input of a two-input node one of whose inputs is ``name``."""
    ins = list(node.input)
    if len(ins) == 2 and name in ins:
        return ins[1] if ins[0] == name else ins[0]
    return None


# -- convolutions, linear -------------------------------------------------------------------------

def _padding(c: OnnxConversion, node: Any, a: dict[str, Any], spatial: Sequence[int], kernel: Sequence[int],
             strides: Sequence[int], dilations: Sequence[int]) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial axis, ``auto_pad`` worked out from the input size."""
    nd = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for n, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin, end
    if auto == "VALID":
        return [0] * nd, [0] * nd
    pads = ints(a.get("pads", [0] * (2 * nd)))
    if len(pads) != 2 * nd or any(p < 0 for p in pads):
        raise c.fail(node, f"its pads {pads} are not {2 * nd} sizes of zero or more")
    return pads[:nd], pads[nd:]


def _pad_first(c: OnnxConversion, node: Any, x: Ref, begin: list[int], end: list[int]) -> Ref:
    """A ZeroPad2d in front of a layer whose padding differs per side (TensorFlow's "same")."""
    if len(begin) != 2:
        raise c.fail(node, f"it pads {begin} before and {end} after; a layer pads both sides equally")
    (ref,) = c.add(node, "ZeroPad2d", {"padding": [begin[1], end[1], begin[0], end[0]]}, [x], outputs=[""],
                   hint="pad")
    return ref


def _conv(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    w = c.const(node, 1, "weight")
    b = c.const(node, 2, "bias")
    assert w is not None
    nd = w.ndim - 2
    if nd not in (1, 2, 3):
        raise c.fail(node, f"it is a {nd}-D convolution; NetCanvas has Conv1d, Conv2d and Conv3d")
    kernel = list(w.shape[2:])
    strides, dil = ints(a.get("strides", [1] * nd)), ints(a.get("dilations", [1] * nd))
    begin, end = _padding(c, node, a, c.shape(x)[1:], kernel, strides, dil)
    if begin != end:
        x, begin = _pad_first(c, node, x, begin, end), [0] * nd
    params = {"out_channels": int(w.shape[0]), "kernel_size": kernel, "stride": strides, "padding": begin,
              "dilation": dil, "groups": int(a.get("group", 1)), "bias": b is not None}
    weights = {"weight": w} if b is None else {"weight": w, "bias": b}
    c.add(node, f"Conv{nd}d", params, [x], weights)


def _conv_transpose(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    w = c.const(node, 1, "weight")
    b = c.const(node, 2, "bias")
    assert w is not None
    if w.ndim != 4:
        raise c.fail(node, f"it is a {w.ndim - 2}-D transposed convolution; NetCanvas has ConvTranspose2d")
    if "output_shape" in a or a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise c.fail(node, "it sets output_shape or auto_pad; give pads and output_padding instead")
    groups = int(a.get("group", 1))
    pads = ints(a.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise c.fail(node, f"its pads {pads} differ per side; ConvTranspose2d crops both sides equally")
    params = {"out_channels": int(w.shape[1]) * groups, "kernel_size": list(w.shape[2:]),
              "stride": ints(a.get("strides", [1, 1])), "padding": pads[:2],
              "output_padding": ints(a.get("output_padding", [0, 0])), "dilation": ints(a.get("dilations", [1, 1])),
              "groups": groups, "bias": b is not None}
    weights = {"weight": w} if b is None else {"weight": w, "bias": b}
    c.add(node, "ConvTranspose2d", params, [x], weights)


def _linear(c: OnnxConversion, node: Any, x: Ref, weight: np.ndarray, bias: np.ndarray | None,
            outputs: Sequence[str] | None = None) -> None:
    weights = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    c.add(node, "Linear", {"out_features": int(weight.shape[0]), "bias": bias is not None}, [x], weights,
          outputs=outputs)


def _gemm(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    if a.get("transA", 0):
        raise c.fail(node, "it transposes its input (transA=1); a Linear layer multiplies the input as it comes")
    x = c.tensor(node)
    w = c.const(node, 1, "weight")
    bias = c.const(node, 2, "bias")
    assert w is not None
    weight = (w if a.get("transB", 0) else w.T) * np.float32(a.get("alpha", 1.0))
    if bias is not None:
        bias = np.broadcast_to(bias * np.float32(a.get("beta", 1.0)), (1, weight.shape[0])).reshape(-1)
    _linear(c, node, x, weight, bias)


def _matmul(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    if isinstance(c.value(node, 1), Ref):  # attention's Q @ Kᵀ: a product of two tensors
        c.add(node, "MatMul", {}, [x, c.tensor(node, 1)])
        return
    w = c.const(node, 1, "weight")
    assert w is not None
    if w.ndim != 2:
        raise c.fail(node, f"it multiplies by a {w.ndim}-D constant; a Linear layer's weight is 2-D")
    out = node.output[0]
    add = _single_user(c, out, "Add")
    other = _other_input(add, out) if add is not None else None
    bias = c.peek(other) if other else None
    if add is not None and isinstance(bias, np.ndarray) and bias.size == w.shape[1]:
        c.done.add(id(add))
        _linear(c, node, x, w.T, bias.reshape(-1), outputs=[add.output[0]])
    else:
        _linear(c, node, x, w.T, None)


# -- normalisation --------------------------------------------------------------------------------

def _batch_norm(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    if a.get("training_mode", 0):
        raise c.fail(node, "it normalises in training mode; import the model exported for inference")
    if any(name for name in node.output[1:]):
        raise c.fail(node, "its running statistics are read as outputs; a layer only gives the normalised tensor")
    x = c.tensor(node)
    scale, bias, mean, var = (c.const(node, i, what) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "running mean"), (4, "running variance")))
    rank = c.rank(x)
    if rank not in (2, 3, 4, 5):
        raise c.fail(node, f"it normalises a {rank}-axis tensor; NetCanvas has BatchNorm1d, 2d and 3d")
    params = {"eps": as_written(a.get("epsilon", 1e-5)), "momentum": round(1.0 - float(a.get("momentum", 0.9)), 6)}
    weights = {"weight": scale, "bias": bias, "running_mean": mean, "running_var": var}
    kind = {4: "BatchNorm2d", 5: "BatchNorm3d"}.get(rank, "BatchNorm1d")
    c.add(node, kind, params, [x], weights)  # type: ignore[arg-type]


def _layer_norm(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    scale, bias = c.const(node, 1, "scale"), c.const(node, 2, "bias")
    axis = c.axis(node, int(a.get("axis", -1)), c.rank(x))
    params = {"normalized_shape": list(c.shape(x)[axis - 1:]), "eps": as_written(a.get("epsilon", 1e-5)),
              "bias": bias is not None}
    weights = {"weight": scale} if bias is None else {"weight": scale, "bias": bias}
    c.add(node, "LayerNorm", params, [x], weights)  # type: ignore[arg-type]


# -- activations ----------------------------------------------------------------------------------

def _simple(type_name: str) -> Handler:
    def handler(c: OnnxConversion, node: Any) -> None:
        c.add(node, type_name, {}, [c.tensor(node)])
    return handler


def _fused_mul(c: OnnxConversion, node: Any) -> Any | None:
    """The Mul that multiplies ``node``'s input by ``node``'s output (x · f(x)), if it alone reads it."""
    mul = _single_user(c, node.output[0], "Mul")
    return mul if mul is not None and _other_input(mul, node.output[0]) == node.input[0] else None


def _sigmoid(c: OnnxConversion, node: Any) -> None:
    mul = _fused_mul(c, node)
    if mul is not None:
        c.done.add(id(mul))
        c.add(node, "SiLU", {}, [c.tensor(node)], outputs=[mul.output[0]])
    else:
        c.add(node, "Sigmoid", {}, [c.tensor(node)])


def _hard_sigmoid(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-5) and math.isclose(beta, 0.5, rel_tol=1e-6)):
        raise c.fail(node, f"it has alpha {alpha:g} and beta {beta:g}; torch's Hardsigmoid is alpha 1/6, beta 0.5")
    mul = _fused_mul(c, node)
    if mul is not None:
        c.done.add(id(mul))
        c.add(node, "Hardswish", {}, [c.tensor(node)], outputs=[mul.output[0]])
    else:
        c.add(node, "Hardsigmoid", {}, [c.tensor(node)])


def _leaky_relu(c: OnnxConversion, node: Any) -> None:
    c.add(node, "LeakyReLU", {"negative_slope": as_written(attributes(node).get("alpha", 0.01))}, [c.tensor(node)])


def _elu(c: OnnxConversion, node: Any) -> None:
    c.add(node, "ELU", {"alpha": as_written(attributes(node).get("alpha", 1.0))}, [c.tensor(node)])


def _gelu(c: OnnxConversion, node: Any) -> None:
    c.add(node, "GELU", {"approximate": attributes(node).get("approximate", "none")}, [c.tensor(node)])


def _softplus(c: OnnxConversion, node: Any) -> None:
    x, out = node.input[0], node.output[0]
    users = c.users(out)
    where = next((u for u in users if u.op_type == "Where" and list(u.input[1:]) == [x, out]), None)
    greater = _threshold_of(c, where, x) if where is not None and len(users) == 1 else None
    if where is not None and greater is not None:
        c.done.update((id(where), id(greater[0])))
        c.add(node, "Softplus", {"threshold": greater[1]}, [c.tensor(node)], outputs=[where.output[0]])
        return
    tanh = _single_user(c, out, "Tanh")
    mul = _fused_mul(c, tanh) if tanh is not None else None
    if tanh is not None and mul is not None and _other_input(mul, tanh.output[0]) == x and get_spec("Mish"):
        c.done.update((id(tanh), id(mul)))
        c.add(node, "Mish", {}, [c.tensor(node)], outputs=[mul.output[0]])
        return
    c.add(node, "Softplus", {}, [c.tensor(node)])


def _threshold_of(c: OnnxConversion, where: Any, x: str) -> tuple[Any, float] | None:
    """``(Greater node, t)`` when ``where``'s condition is ``x > t`` for a constant ``t`` read by it alone."""
    cond = where.input[0]
    producer = c.m.producers.get(cond)
    if producer is None or producer.op_type != "Greater" or producer.input[0] != x:
        return None
    t = c.peek(producer.input[1])
    if not isinstance(t, np.ndarray) or t.size != 1 or _single_user(c, cond, "Where") is None:
        return None
    return producer, as_written(t.reshape(-1)[0])


def _greater(c: OnnxConversion, node: Any) -> None:
    """Only as part of an exported Softplus (handled there, see :func:`_softplus`)."""
    where = _single_user(c, node.output[0], "Where")
    if where is not None and _threshold_of(c, where, node.input[0]) is not None:
        sp = c.m.producers.get(where.input[2])
        if sp is not None and sp.op_type == "Softplus" and sp.input[0] == node.input[0]:
            return  # the Softplus handler takes it, with the Where
    raise c.fail(node, "NetCanvas has no layer type for this op")


def _mish(c: OnnxConversion, node: Any) -> None:
    c.add(node, "Mish", {}, [c.tensor(node)])


def _prelu(c: OnnxConversion, node: Any) -> None:
    x = c.tensor(node)
    slope = c.const(node, 1, "slope")
    assert slope is not None
    channels = c.shape(x)[0]
    if slope.size not in (1, channels) or (slope.size > 1 and slope.shape[-1] == slope.size and len(c.shape(x)) > 1):
        raise c.fail(node, f"its slope has shape {list(slope.shape)}; PReLU has one slope or one per channel")
    c.add(node, "PReLU", {"num_parameters": int(slope.size)}, [x], {"weight": slope.reshape(-1)})


def _clip(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    if c.m.opset < 11:
        lo, hi = a.get("min"), a.get("max")
    else:
        lo_c, hi_c = c.const(node, 1, "minimum"), c.const(node, 2, "maximum")
        lo = None if lo_c is None else float(lo_c.reshape(-1)[0])
        hi = None if hi_c is None else float(hi_c.reshape(-1)[0])
    x = c.tensor(node)
    if lo == 0 and hi is None:
        c.add(node, "ReLU", {}, [x])
    elif lo == 0 and hi == 6:
        c.add(node, "ReLU6", {}, [x])
    elif lo is not None and hi is not None:
        c.add(node, "Hardtanh", {"min_val": as_written(lo), "max_val": as_written(hi)}, [x])
    else:
        raise c.fail(node, f"it clips to [{lo}, {hi}]; NetCanvas has ReLU (0, ∞), ReLU6 (0, 6) and Hardtanh (a, b)")


def _softmax(type_name: str) -> Handler:
    def handler(c: OnnxConversion, node: Any) -> None:
        x = c.tensor(node)
        rank = c.rank(x)
        default = -1 if c.m.opset >= 13 else 1
        axis = c.axis(node, int(attributes(node).get("axis", default)), rank)
        if c.m.opset < 13 and axis != rank - 1:
            raise c.fail(node, f"before opset 13 it normalises over every axis from {axis} on together; "
                               f"{type_name} works along one axis")
        c.add(node, type_name, {"dim": axis}, [x])
    return handler


# -- pooling --------------------------------------------------------------------------------------

def _pool(kind: str) -> Handler:
    """MaxPool / AveragePool over 1, 2 or 3 axes (``kind`` is ``Max`` or ``Avg``)."""
    def handler(c: OnnxConversion, node: Any) -> None:
        a = attributes(node)
        x = c.tensor(node)
        if len(node.output) > 1 and node.output[1]:
            raise c.fail(node, "its indices output is used; a pooling layer gives only the pooled tensor here")
        kernel = ints(a["kernel_shape"])
        nd = len(kernel)
        if nd not in (1, 2, 3):
            raise c.fail(node, f"it pools over {nd} axes; NetCanvas pools over 1, 2 or 3")
        type_name = f"{kind}Pool{nd}d"
        strides, dil = ints(a.get("strides", [1] * nd)), ints(a.get("dilations", [1] * nd))
        begin, end = _padding(c, node, a, c.shape(x)[1:], kernel, strides, dil)
        params: dict[str, Any] = {"kernel_size": kernel, "stride": strides, "ceil_mode": bool(a.get("ceil_mode", 0))}
        if kind == "Max":
            params["dilation"] = dil
        else:
            params["count_include_pad"] = bool(a.get("count_include_pad", 0))
            if dil != [1] * nd:
                raise c.fail(node, f"it has dilations {dil}; {type_name} has none")
        if begin != end:
            if kind == "Max" or not params["count_include_pad"]:
                raise c.fail(node, f"it pads {begin} before and {end} after; pooling pads both sides equally")
            x, begin = _pad_first(c, node, x, begin, end), [0] * nd
        params["padding"] = begin
        c.add(node, type_name, params, [x])
    return handler


def _global_pool(kind: str) -> Handler:
    """GlobalAveragePool / GlobalMaxPool: adaptive pooling to 1, or a mean / max over the axes."""
    def handler(c: OnnxConversion, node: Any) -> None:
        x = c.tensor(node)
        rank = c.rank(x)
        if rank < 3:
            raise c.fail(node, f"it pools a {rank}-axis tensor, which has no spatial axes")
        if (kind, rank) in (("Avg", 4), ("Avg", 5), ("Max", 4)):
            c.add(node, f"Adaptive{kind}Pool{rank - 2}d", {"output_size": 1}, [x])
        else:
            c.add(node, "Mean" if kind == "Avg" else "Amax", {"dim": list(range(2, rank)), "keepdim": True}, [x])
    return handler


# Reduce op → (layer type, the opset from which its axes are an input rather than an attribute)
_REDUCE = {"ReduceMean": ("Mean", 18), "ReduceSum": ("Sum", 13), "ReduceMax": ("Amax", 18)}


def _reduce_axes(c: OnnxConversion, node: Any, rank: int) -> list[int] | None:
    """The axes a Reduce node reduces (non-negative, sorted), None for all of them."""
    given = attributes(node).get("axes") if c.m.opset < _REDUCE[node.op_type][1] else c.const(node, 1, "axes")
    if given is not None and not np.asarray(given).size:
        given = None
    return sorted(c.axis(node, int(v), rank) for v in ints(given)) if given is not None else None


def _reduce(c: OnnxConversion, node: Any) -> None:
    a = attributes(node)
    x = c.tensor(node)
    rank = c.rank(x)
    type_name = _REDUCE[node.op_type][0]
    if type_name == "Mean" and _decomposed_layer_norm(c, node):
        return
    given = _reduce_axes(c, node, rank)
    axes = given if given is not None else list(range(1, rank))
    keep = bool(a.get("keepdims", 1))
    if given is None and a.get("noop_with_empty_axes", 0):
        c.alias(node.output[0], x)
    elif type_name == "Mean" and keep and rank == 4 and axes == [2, 3]:
        c.add(node, "AdaptiveAvgPool2d", {"output_size": 1}, [x])
    else:
        c.add(node, type_name, {"dim": axes, "keepdim": keep}, [x])


def _scalar(c: OnnxConversion, name: str | None) -> float | None:
    v = c.peek(name or "")
    return float(v.reshape(-1)[0]) if isinstance(v, np.ndarray) and v.size == 1 else None


def _decomposed_layer_norm(c: OnnxConversion, mean: Any) -> bool:
    """LayerNorm as torch exports it below opset 17, folded back into one LayerNorm node:
    ``d = x − ReduceMean(x)``, ``d / Sqrt(ReduceMean(Pow(d, 2)) + eps)``, then ``· weight + bias``
    (the affine part only where the constants have the normalised shape). Every node but the last
    must feed only the next one; anything else stays the ops it is. True when folded."""
    x, rank = c.tensor(mean), c.rank(c.tensor(mean))
    axes = _reduce_axes(c, mean, rank)
    keep = attributes(mean).get("keepdims", 1)
    if not axes or axes != list(range(axes[0], rank)) or not keep:
        return False
    sub = _single_user(c, mean.output[0], "Sub")
    if sub is None or list(sub.input) != [mean.input[0], mean.output[0]]:
        return False
    d = sub.output[0]
    users = c.users(d)
    pow_ = next((u for u in users if u.op_type == "Pow" and u.input[0] == d), None)
    div = next((u for u in users if u.op_type == "Div" and u.input[0] == d), None)
    if len(users) != 2 or pow_ is None or div is None or _scalar(c, pow_.input[1]) != 2.0 or d in c.m.output_names:
        return False
    var = _single_user(c, pow_.output[0], "ReduceMean")
    if var is None or _reduce_axes(c, var, rank) != axes or not attributes(var).get("keepdims", 1):
        return False
    add = _single_user(c, var.output[0], "Add")
    eps = _scalar(c, _other_input(add, var.output[0])) if add is not None else None
    sqrt = _single_user(c, add.output[0], "Sqrt") if add is not None else None
    if eps is None or sqrt is None or add is None or _single_user(c, sqrt.output[0], "Div") is not div:
        return False
    assert div is not None  # checked above
    normalized = list(c.shape(x)[axes[0] - 1:])
    folded, out = [sub, pow_, var, add, sqrt, div], div.output[0]
    weights: dict[str, np.ndarray] = {}
    for op, leaf in (("Mul", "weight"), ("Add", "bias")):
        user = _single_user(c, out, op)
        const = c.peek(_other_input(user, out) or "") if user is not None else None
        if user is None or not isinstance(const, np.ndarray) or list(const.shape) != normalized:
            break
        weights[leaf], out = const, user.output[0]
        folded.append(user)
    params: dict[str, Any] = {"normalized_shape": normalized, "eps": as_written(eps),
                              "elementwise_affine": bool(weights)}
    if weights:
        params["bias"] = "bias" in weights
    c.done.update(id(n) for n in folded)
    c.add(mean, "LayerNorm", params, [x], weights, outputs=[out])
    return True


# -- element-wise and merges ----------------------------------------------------------------------

def _merge(type_name: str, neutral: float, *, first_only: bool = False) -> Handler:
    """An element-wise op; a constant equal to ``neutral`` (+ 0, × 1) is no op at all (for ``first_only``
    ops, − 0 and / 1, only as the second operand), a literal number a Scale node (x · factor + offset), any
    other constant (an initializer named like a parameter, a tensor) a Parameter node feeding it."""
    def handler(c: OnnxConversion, node: Any) -> None:
        values = [c.value(node, i) for i in range(len(node.input))]
        refs = [v for v in values if isinstance(v, Ref)]
        consts = [v for v in values if not isinstance(v, Ref)]
        neutral_ok = not first_only or isinstance(values[0], Ref)
        if consts and len(refs) == 1 and neutral_ok and all(np.all(k == neutral) for k in consts):
            c.alias(node.output[0], refs[0])
            return
        if not refs:
            raise c.fail(node, "none of its inputs comes from the network's input")
        at = next(i for i, v in enumerate(values) if not isinstance(v, Ref)) if consts else -1
        if len(values) == 2 and len(refs) == 1 and np.asarray(consts[0]).size == 1 and not _learned(c, node.input[at]):
            scale = _scale_by(type_name, float(np.asarray(consts[0]).reshape(-1)[0]), isinstance(values[0], Ref))
            if scale is not None:  # x + 1e-5, 1 - x, x / 6: a Scale node, no Parameter to broadcast
                c.add(node, "Scale", {"factor": scale[0], "offset": scale[1]}, refs)
                return
        rank = c.rank(refs[0])
        inputs = [v if isinstance(v, Ref) else _constant_tensor(c, node, i, v, rank) for i, v in enumerate(values)]
        c.add(node, type_name, {}, inputs)
    return handler


def _learned(c: OnnxConversion, name: str) -> bool:
    """Whether constant ``name`` is an initializer named like a source parameter (``alpha``, ``block.scale``),
    which stays a Parameter node; a literal (a Constant node, torch's ``onnx::Mul_12``) does not."""
    return name in c.m.consts and not name.startswith(("onnx::", "/"))


def _scale_by(type_name: str, k: float, x_first: bool) -> tuple[float, float] | None:
    """(factor, offset) of ``x op k`` (or ``k op x``) as ``x · factor + offset``; None when it is no such."""
    if not math.isfinite(k):
        return None
    if type_name == "Add":
        return 1.0, k
    if type_name == "Multiply":
        return k, 0.0
    if type_name == "Subtract":
        return (1.0, -k) if x_first else (-1.0, k)
    if type_name == "Divide" and x_first and k != 0.0:
        return 1.0 / k, 0.0
    return None


def _constant_tensor(c: OnnxConversion, node: Any, i: int, value: np.ndarray, rank: int) -> Ref:
    """Constant input ``i`` of an element-wise op as a Parameter node holding it (a positional
    embedding, a layer scale, a normalisation's mean), shaped to broadcast over one sample and
    named after its initializer where that name is an id (``pos_embedding``)."""
    arr = np.asarray(value, dtype=np.float32)
    if (arr.ndim == rank and arr.shape[0] != 1) or arr.ndim > rank:
        raise c.fail(node, f"its constant of shape {list(arr.shape)} differs along the batch axis; a layer "
                           f"treats every sample alike")
    sample = list(arr.shape[1:]) if arr.ndim == rank else [1] * (rank - 1 - arr.ndim) + list(arr.shape)
    if any(d < 1 for d in sample):
        raise c.fail(node, f"its constant of shape {list(arr.shape)} is empty")
    (ref,) = c.add(node, "Parameter", {"shape": sample, "batch_axis": True}, [],
                   {"weight": arr.reshape(1, *sample)}, outputs=[""], hint=_constant_name(c, node.input[i]))
    return ref


def _constant_name(c: OnnxConversion, name: str) -> str:
    leaf = name.rpartition(".")[2] if name in c.m.consts else ""  # an initializer: the source's own name
    return leaf if leaf and not id_problem(leaf) else "constant"


def _div(c: OnnxConversion, node: Any) -> None:
    """Only as the first node of GELU in its ``erf`` form: 0.5 · x · (1 + erf(x / √2))."""
    x, out = node.input[0], node.output[0]
    d = c.peek(node.input[1])
    erf = _single_user(c, out, "Erf")
    add = _single_user(c, erf.output[0], "Add") if erf is not None else None
    one = c.peek(_other_input(add, erf.output[0]) or "") if add is not None and erf is not None else None
    mul = _single_user(c, add.output[0], "Mul") if add is not None else None
    half = _single_user(c, mul.output[0], "Mul") if mul is not None else None
    k = c.peek(_other_input(half, mul.output[0]) or "") if half is not None and mul is not None else None
    if (isinstance(d, np.ndarray) and d.size == 1 and math.isclose(float(d.reshape(-1)[0]), math.sqrt(2), rel_tol=1e-4)
            and isinstance(one, np.ndarray) and np.all(one == 1) and mul is not None and add is not None
            and _other_input(mul, add.output[0]) == x and half is not None and isinstance(k, np.ndarray)
            and np.all(k == 0.5)):
        c.done.update(id(n) for n in (erf, add, mul, half))
        c.add(node, "GELU", {}, [c.tensor(node)], outputs=[half.output[0]])
        return
    _merge("Divide", 1.0, first_only=True)(c, node)


def convert_node(c: OnnxConversion, node: Any) -> None:
    """One ONNX node: evaluated when its inputs are all constants, else sent to its handler in :data:`OPS`."""
    if node.domain not in ("", "ai.onnx"):
        raise c.fail(node, f"it is an op of the {node.domain!r} domain, which NetCanvas does not import")
    ins = [c.value(node, i) if name else None for i, name in enumerate(node.input)]
    if node.op_type != "If" and all(v is None or isinstance(v, np.ndarray) for v in ins):
        c.fold(node, ins)
        return
    handler = OPS.get(node.op_type)
    if handler is None:
        raise c.fail(node, "NetCanvas has no layer type for this op")
    handler(c, node)


def _if(c: OnnxConversion, node: Any) -> None:
    """A branch on a constant (the TorchScript exporter's ``x.squeeze(1)`` asks whether the axis is 1):
    the branch taken is converted in place, the other is never looked at."""
    cond = c.const(node, 0, "condition")
    assert cond is not None
    a = attributes(node)
    branch = a["then_branch"] if bool(cond.reshape(-1)[0]) else a["else_branch"]
    for inner in branch.node:
        if id(inner) not in c.done:
            convert_node(c, inner)
    for name, out in zip(node.output, branch.output, strict=True):
        if out.name not in c.values:
            raise c.fail(node, f"its branch gives {out.name!r}, which nothing computes")
        c.alias(name, c.values[out.name])


OPS: dict[str, Handler] = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "Relu": _simple("ReLU"), "Tanh": _simple("Tanh"), "HardSwish": _simple("Hardswish"), "Mish": _mish,
    "Sigmoid": _sigmoid, "HardSigmoid": _hard_sigmoid, "LeakyRelu": _leaky_relu, "Elu": _elu, "Gelu": _gelu,
    "Softplus": _softplus, "Greater": _greater, "PRelu": _prelu, "Clip": _clip,
    "Softmax": _softmax("Softmax"), "LogSoftmax": _softmax("LogSoftmax"),
    "MaxPool": _pool("Max"), "AveragePool": _pool("Avg"),
    "GlobalAveragePool": _global_pool("Avg"), "GlobalMaxPool": _global_pool("Max"),
    "ReduceMean": _reduce, "ReduceSum": _reduce, "ReduceMax": _reduce,
    "Add": _merge("Add", 0.0), "Mul": _merge("Multiply", 1.0), "Sub": _merge("Subtract", 0.0, first_only=True),
    "Div": _div, "If": _if, **SHAPE_OPS,
}


__all__ = ["OPS", "convert_node"]
