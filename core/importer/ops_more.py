"""More op handlers: the patterns of third-party model zoos that :mod:`core.importer.ops` does not know.

The converter asks :func:`handler_for`, which answers from the tables here first and then from
:mod:`core.importer.ops`; a handler here may hand a call it does not recognize back to the one
there (``x * y`` is a Multiply unless ``y`` is a drop-path mask). What is added:

- **Drop path** (stochastic depth written as a function, timm's ``DropPath``):
  ``x * x.new_empty(b, 1, 1, 1).bernoulli_(keep).div_(keep)``, or ``x / keep * floor(keep + torch.rand(b, 1,
  1, 1))`` (EfficientNet's ``drop_connect``). The importer traces in training mode
  (so training-only branches are kept), where this mask is drawn; it is followed through the calls
  as a :class:`Mask` and the product becomes a **StochasticDepth** node, the layer type torchvision's
  ``StochasticDepth`` already imports as: identity in eval, the same per-sample drop in training. A
  mask that does not rescale what it keeps (``scale_by_keep=False``) is refused, since StochasticDepth
  always rescales.
- ``torch.stack`` → a **Stack** node.
- ``F.conv2d`` with a fixed buffer as its kernel, the anti-aliasing blur of TResNet and friends
  (``F.conv2d(x, self.filt, stride=2, groups=C)`` with a binomial filter) → a **BlurPool2d** node,
  whose filter is computed, not stored: the zoo keeps it as a non-persistent buffer, so the
  ``state_dict`` keys stay equal. A kernel with other values, or one saved in ``state_dict``, is refused.
- ``F.pad(x, …, value=-inf)`` right before a max pool (TensorFlow's "SAME" max pooling) → one
  **MaxPool2d** with its own padding, which pads with -inf too, when the padding is even on both
  sides of each axis; else **ReplicationPad2d** + MaxPool2d, which gives the same maxima exactly
  (each window that holds padding also holds the edge value it repeats). Other -inf padding is
  refused: a project file is JSON, which has no -inf. A pad of 0 on every axis is no node at all.
- A convolution or linear weight **computed in forward from parameters** (NFNet's scaled weight
  standardisation, ``ScaledStdConv2d``) is refused at its first step, in one sentence that says so.
- ``torch.softmax`` / ``torch.log_softmax`` with a dim → Softmax / LogSoftmax; ``-x`` → Scale by -1.
"""

from __future__ import annotations

import math
import operator
import weakref
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from core.importer.modules import user_params
from core.importer.op_base import Conversion, Handler, bind_args, describe, rank_of, tensor_input
from core.importer.ops import handler_for as handler_in_ops
from core.importer.trace import BATCH
from core.importer.values import Param
from core.layers import get_spec
from core.layers.extra_modules import BlurPool2d

# -- drop path -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mask:
    """A random per-sample keep mask while it is being drawn, in either spelling of drop path:
    ``x.new_empty(b, 1, 1, 1).bernoulli_(keep).div_(keep)``, or ``floor(keep + torch.rand(b, 1, 1, 1))``
    with ``x / keep`` (EfficientNet's ``drop_connect``).

    ``keep`` is the probability of keeping a sample (None until the draw is complete), ``scaled``
    whether the kept samples are divided by ``keep``; ``mode`` is StochasticDepth's: one draw per
    sample ("row") or one for the whole batch ("batch"); ``uniform`` is set while the mask is still
    ``torch.rand``'s uniform values (plus ``shift``, the constant added to them).
    """

    mode: str
    keep: float | None = None
    scaled: bool = False
    uniform: bool = False
    shift: float = 0.0


def is_mask(value: Any) -> bool:
    """Whether a value is a drop-path mask: an in-place op on it changes no layer's output."""
    return isinstance(value, Mask)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _mask_shape(conv: Conversion, n: fx.Node, *, uniform: bool = False) -> Mask:
    """A new tensor of shape ``b×1×…×1`` (or all ones): the start of a drop-path mask; any other is refused."""
    value = n.meta.get("val")
    shape = tuple(int(d) for d in value.shape) if isinstance(value, torch.Tensor) else ()
    if len(shape) >= 2 and all(d == 1 for d in shape[1:]) and shape[0] in (BATCH, 1):
        return Mask("row" if shape[0] == BATCH else "batch", uniform=uniform)
    raise conv.fail(n, f"{describe(n)} of shape {list(shape)}",
                    "a new tensor maps to a layer only as a drop-path mask, one value per sample")


def _new_empty(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.new_empty(b, 1, 1, 1)``: the start of a drop-path mask."""
    tensor_input(conv, n, args[0])
    return _mask_shape(conv, n)


def _rand(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``torch.rand(b, 1, 1, 1)``: uniform values that ``floor(keep + u)`` turns into a drop-path mask."""
    return _mask_shape(conv, n, uniform=True)


def _mask_add(conv: Conversion, n: fx.Node, mask: Mask, k: Any) -> Mask:
    """``keep + torch.rand(…)``: the uniform values shifted, so that their floor is 1 with probability keep."""
    if not mask.uniform or mask.shift or not _number(k) or not 0.0 <= float(k) <= 1.0:
        raise conv.fail(n, f"{describe(n)} of a random tensor and {k!r}",
                        "random values map to a layer only as a drop-path mask, floor(keep + torch.rand(b, 1, 1, 1))")
    return Mask(mask.mode, uniform=True, shift=float(k))


def _floor(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``floor(keep + u)``: 1 with probability keep, else 0 — a drop-path mask, not yet rescaled."""
    mask = args[0] if args else None
    if not isinstance(mask, Mask) or not mask.uniform or len(args) != 1 or kwargs:
        if isinstance(mask, Mask):
            raise conv.fail(n, f"{describe(n)} of a random tensor", "it is no drop-path mask")
        raise conv.fail(n, f"the {'method' if n.op == 'call_method' else 'function'} {describe(n)}")
    drawn = Mask(mask.mode, mask.shift)
    src = n.args[0]
    if str(n.target).endswith("_") and isinstance(src, fx.Node):
        conv.values[src] = drawn  # in place: later uses of the tensor see the mask
    return drawn


def _bernoulli(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``mask.bernoulli_(keep)``: each sample kept with probability ``keep``."""
    b = bind_args(conv, n, args, kwargs, ("self", "p", "generator"), {"p": 0.5, "generator": None})
    mask = b["self"]
    if (not isinstance(mask, Mask) or mask.keep is not None or mask.uniform or not _number(b["p"])
            or b["generator"] is not None):
        raise conv.fail(n, f"{describe(n)} on a {type(mask).__name__}",
                        "random draws map to a layer only as a drop-path mask (x.new_empty(b, 1, 1, 1).bernoulli_(p))")
    return Mask(mask.mode, float(b["p"]))


def _mask_div(conv: Conversion, n: fx.Node, mask: Mask, divisor: Any) -> Mask:
    if mask.keep is None or mask.scaled or not _number(divisor) or not math.isclose(float(divisor), mask.keep):
        raise conv.fail(n, f"{describe(n)} of a drop-path mask by {divisor!r}",
                        "a drop-path mask maps to StochasticDepth only when its kept samples are divided by "
                        "the keep probability")
    scaled = Mask(mask.mode, mask.keep, True)
    src = n.args[0]
    if str(n.target).endswith("_") and isinstance(src, fx.Node):
        conv.values[src] = scaled  # in place: every later use of the mask sees it divided
    return scaled


def _stochastic_depth(conv: Conversion, n: fx.Node, x: Any, mask: Mask) -> Any:
    """``x * mask``: a StochasticDepth node, at the path of the module doing it when that is a leaf."""
    x = tensor_input(conv, n, x)
    if mask.keep is None:
        raise conv.fail(n, f"{describe(n)} by an undrawn tensor (new_empty without bernoulli_)")
    if not mask.scaled and mask.keep < 1.0:
        raise conv.fail(n, f"a drop path that does not rescale the samples it keeps ({describe(n)} by a mask "
                        "that is not divided by the keep probability, e.g. scale_by_keep=False)",
                        "StochasticDepth rescales them by 1/(1-p), so training would differ")
    params = {"p": float(f"{1.0 - mask.keep:.12g}"), "mode": mask.mode}  # 1 - 0.8 is 0.19999999999999996
    stack = n.meta.get("nn_module_stack") or {}
    scope = str(list(stack.values())[-1][0]) if stack else ""
    node_id = conv.ids.get(scope, "") if scope else ""
    leaf = bool(node_id) and not any(i.startswith(node_id + ".") for i in conv.ids.values())
    if not leaf or node_id in conv.graph.nodes:
        return conv.functional(n, "StochasticDepth", params, [x], "drop_path")
    spec = get_spec("StochasticDepth")
    assert spec is not None
    # The DropPath module holds nothing else: its node takes its path, as a StochasticDepth module would.
    return conv.add("StochasticDepth", node_id, user_params(spec, params, node_id), [x], scope.rpartition(".")[0], n)


def _mul(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    operands = [*args, *kwargs.values()]
    masks = [v for v in operands if isinstance(v, Mask)]
    if len(masks) == 1 and len(operands) == 2:
        other = operands[1] if operands[0] is masks[0] else operands[0]
        return _stochastic_depth(conv, n, other, masks[0])
    return _base(n)(conv, n, args, kwargs)


def _add(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) == 2 and not kwargs and any(isinstance(a, Mask) for a in args):
        mask, k = (args[0], args[1]) if isinstance(args[0], Mask) else (args[1], args[0])
        return _mask_add(conv, n, mask, k)
    return _base(n)(conv, n, args, kwargs)


def _div(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and isinstance(args[0], Mask) and len(args) == 2 and not kwargs:
        return _mask_div(conv, n, args[0], args[1])
    if len(args) == 2 and not kwargs and _number(args[1]):
        mask_node = _masked_by(conv, n)
        if mask_node is not None:
            # x / keep * mask is x * (mask / keep): the rescaling belongs to the mask, and x passes on as it is
            mask = conv.values[mask_node]
            conv.values[mask_node] = Mask(mask.mode, mask.keep, True)
            return tensor_input(conv, n, args[0])
    return _base(n)(conv, n, args, kwargs)


def _masked_by(conv: Conversion, n: fx.Node) -> fx.Node | None:
    """The mask node when ``n`` (``x / keep``) feeds only ``… * mask`` and ``keep`` is the mask's, else None."""
    users = list(n.users)
    if len(users) != 1 or users[0].target not in (operator.mul, torch.mul, "mul") or len(users[0].args) != 2:
        return None
    other = users[0].args[1] if users[0].args[0] is n else users[0].args[0]
    mask = conv.values.get(other) if isinstance(other, fx.Node) else None
    divisor = n.args[1]
    if (not isinstance(mask, Mask) or mask.keep is None or mask.scaled or mask.uniform
            or not _number(divisor) or not math.isclose(float(divisor), mask.keep)):  # type: ignore[arg-type]
        return None
    assert isinstance(other, fx.Node)  # its value is a Mask
    return other


# -- torch.stack, torch.softmax ---------------------------------------------------------------------

def _stack(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("tensors", "dim"), {"dim": 0})
    tensors = conv.refs(n, b["tensors"], describe(n))
    dim = int(b["dim"])
    if dim % _stack_rank(n) == 0:
        raise conv.fail(n, f"{describe(n)} along dim {dim}", "it would stack samples of the batch together")
    if len(tensors) == 1:  # a one-element stack adds an axis of size 1
        (out,) = conv.shapes(n)
        return conv.functional(n, "Reshape", {"shape": list(out)}, tensors, "reshape")
    return conv.functional(n, "Stack", {"dim": dim}, tensors, "stack")


def _stack_rank(n: fx.Node) -> int:
    """Axes of the stacked result, the batch axis included."""
    value = n.meta.get("val")
    return int(value.dim()) if isinstance(value, torch.Tensor) else 1


def _softmax(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    b = bind_args(conv, n, args, kwargs, ("input", "dim", "dtype"), {"dtype": None})
    x = tensor_input(conv, n, b["input"])
    if b["dim"] is None or b["dtype"] is not None:
        raise conv.fail(n, f"{describe(n)} without dim or with a dtype")
    name = getattr(n.target, "__name__", "softmax")
    type_name = "LogSoftmax" if name == "log_softmax" else "Softmax"
    return conv.functional(n, type_name, {"dim": int(b["dim"])}, [x], name)


def _neg(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``-x``: a Scale by -1."""
    if len(args) != 1 or kwargs:
        raise conv.fail(n, f"{describe(n)} with arguments")
    x = tensor_input(conv, n, args[0])
    return conv.functional(n, "Scale", {"factor": -1.0}, [x], "neg")


# -- a fixed blur kernel ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Kernel:
    """A buffer reshaped or expanded to be a convolution's kernel (``self.filt.expand(C, 1, k, k)``)."""

    param: Param
    value: torch.Tensor  # the kernel as the convolution gets it (meta when the source is on meta)


def _buffer_expand(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``self.filt.expand(C, 1, k, k)`` feeding only convolution weights: a :class:`Kernel`, else as ``ops``."""
    base = args[0] if args else None
    if (isinstance(base, Param) and not isinstance(base.value, torch.nn.Parameter) and n.users
            and all(_is_conv_weight(u, n) for u in n.users)):
        value = n.meta.get("val")
        if isinstance(value, torch.Tensor):
            return Kernel(base, value)
    return _base(n)(conv, n, args, kwargs)


_CONVS = (F.conv1d, F.conv2d, F.conv3d)


def _is_conv_weight(user: fx.Node, arg: fx.Node) -> bool:
    if user.op != "call_function" or user.target not in (*_CONVS, F.linear):
        return False
    weight = user.args[1] if len(user.args) > 1 else user.kwargs.get("weight")
    return weight is arg


def binomial_filter(size: int) -> torch.Tensor:
    """The normalized 2-D binomial filter BlurPool2d blurs with, as BlurPool2d builds it."""
    return BlurPool2d(size, 1).filt[0, 0]


def _conv2d(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``F.conv2d(x, fixed_kernel, stride=s, groups=C)`` with a binomial kernel: a BlurPool2d node."""
    b = bind_args(conv, n, args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
                  {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1})
    weight = b["weight"]
    if isinstance(weight, Param) and not isinstance(weight.value, torch.nn.Parameter):
        weight = Kernel(weight, weight.value)
    if not isinstance(weight, Kernel):
        what = "a parameter" if isinstance(weight, Param) else "a computed tensor"
        raise conv.fail(n, f"{describe(n)} with {what} as its weight",
                        "only a module's own Conv2d weight, or a fixed binomial blur, maps to a layer")
    x = tensor_input(conv, n, b["input"])
    where = f"{describe(n)} with the buffer {weight.param.path!r} as its kernel"
    src = n.args[0]
    assert isinstance(src, fx.Node)
    channels = conv.shapes(src)[0][0]
    shape = tuple(int(d) for d in weight.value.shape)
    stride = ops_tuple(b["stride"])
    if (b["bias"] is not None or ops_tuple(b["padding"]) != (0, 0) or ops_tuple(b["dilation"]) != (1, 1)
            or b["groups"] != channels or len(shape) != 4 or shape[0] != channels or shape[1] != 1
            or shape[2] != shape[3] or stride[0] != stride[1] or not 2 <= shape[2] <= 7):
        raise conv.fail(n, where, "a fixed kernel maps to BlurPool2d only as a depthwise square k×k filter "
                        "(2 ≤ k ≤ 7) without bias, padding or dilation, the same stride on both axes")
    if not weight.value.is_meta:  # on the meta device there are no values to compare
        expected = binomial_filter(shape[2]).to(weight.value.dtype).expand(shape)
        if not torch.equal(weight.value.detach().cpu(), expected):
            raise conv.fail(n, where, "its values are not the binomial blur BlurPool2d computes")
    if _persistent(conv, weight.param.path):
        raise conv.fail(n, where, "the buffer is saved in state_dict, and BlurPool2d computes its filter instead, "
                        "so the weights would not load")
    conv.absorbed.add(weight.param.path)
    return conv.functional(n, "BlurPool2d", {"filt_size": shape[2], "stride": stride[0]}, [x], "blur")


def ops_tuple(value: Any) -> tuple[int, ...]:
    """A 2-D conv or pool argument (``2``, ``[2]`` or ``(2, 2)``) as a pair."""
    if isinstance(value, (list, tuple)):
        items = tuple(int(v) for v in value)
        return items * 2 if len(items) == 1 else items
    return (int(value), int(value))


def _persistent(conv: Conversion, path: str) -> bool:
    owner, _, leaf = path.rpartition(".")
    try:
        module = conv.module.get_submodule(owner)
    except AttributeError:
        return True
    return leaf not in getattr(module, "_non_persistent_buffers_set", set())


# -- "SAME" max pooling: -inf padding ---------------------------------------------------------------

_ONLY_BEFORE_MAX_POOL = ("a project file is JSON, which cannot store an infinite padding value; -inf padding imports "
                         "only right before a max pool, as that pool's padding")


def _pad(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``F.pad(x, amounts, value=-inf)`` then a max pool: one MaxPool2d with that padding, when even."""
    b = bind_args(conv, n, args, kwargs, ("input", "pad", "mode", "value"), {"mode": "constant", "value": None})
    value = b["value"]
    amounts = b["pad"]
    if isinstance(amounts, (list, tuple)) and amounts and all(a == 0 for a in amounts):
        return tensor_input(conv, n, b["input"])  # no padding on any axis (Swin pads 0 when windows fit): no node
    if not (_number(value) and not math.isfinite(float(value))):
        return _base(n)(conv, n, args, kwargs)
    x = tensor_input(conv, n, b["input"])
    amounts = list(b["pad"]) if isinstance(b["pad"], (list, tuple)) else []
    pool = _single_user(n)
    where = f"F.pad with value={value} (padding {amounts})"
    if value != -math.inf or pool is None or len(amounts) not in (2, 4) or rank_of(n) != 4:
        raise conv.fail(n, where, _ONLY_BEFORE_MAX_POOL)
    left, right, top, bottom = [*amounts, 0, 0][:4]
    pooled = _max_pool_args(conv, pool)
    if pooled is None:
        raise conv.fail(n, where + f" before {_name(pool)}", _ONLY_BEFORE_MAX_POOL)
    kernel, stride, padding, dilation, ceil_mode = pooled
    if padding != (0, 0) or dilation != (1, 1) or max(top, bottom) >= kernel[0] or max(left, right) >= kernel[1]:
        raise conv.fail(n, where + " before a max pool", "-inf padding maps to the pool only when the pool has "
                        "no padding of its own, no dilation, and less padding than its kernel on each side; a "
                        "project file is JSON, which cannot store -inf")
    params: dict[str, Any] = {"kernel_size": list(kernel), "stride": list(stride), "dilation": list(dilation),
                              "ceil_mode": ceil_mode}
    if left == right and top == bottom and not ceil_mode and top <= kernel[0] // 2 and left <= kernel[1] // 2:
        params["padding"] = [top, left]  # MaxPool2d's own padding is -inf: the very same windows
    else:
        # Every window that holds a padded position also holds the edge value next to it (the padding
        # is narrower than the window), so repeating the edge leaves each maximum as -inf padding does.
        x = conv.functional(n, "ReplicationPad2d", {"padding": [left, right, top, bottom]}, [x], "pad")
    ref = conv.functional(pool, "MaxPool2d", params, [x], "max_pool2d")
    conv.skip.add(pool)
    conv.values[pool] = ref
    return ref


def _single_user(n: fx.Node) -> fx.Node | None:
    users = list(n.users)
    return users[0] if len(users) == 1 else None


def _name(n: fx.Node) -> str:
    return f"module {n.target!r}" if n.op == "call_module" else describe(n)


_Pool = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...], bool]


def _max_pool_args(conv: Conversion, pool: fx.Node) -> _Pool | None:
    """(kernel, stride, padding, dilation, ceil_mode) of a 2-D max pool call, or None if it is none."""
    if pool.op == "call_module":
        module = conv.module.get_submodule(str(pool.target))
        if type(module) is not torch.nn.MaxPool2d or module.return_indices or pool.args[0] is None:
            return None
        raw: dict[str, Any] = {"kernel_size": module.kernel_size, "stride": module.stride,
                               "padding": module.padding, "dilation": module.dilation,
                               "ceil_mode": module.ceil_mode}
    elif pool.op == "call_function" and pool.target in (F.max_pool2d, torch.max_pool2d):
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        raw = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}
        raw.update(zip(names, pool.args, strict=False))
        raw.update(pool.kwargs)
        if raw["return_indices"] or any(isinstance(v, fx.Node) for k, v in raw.items() if k != "input"):
            return None
    else:
        return None
    kernel = ops_tuple(raw["kernel_size"])
    stride = ops_tuple(raw["stride"]) if raw["stride"] not in (None, [], ()) else kernel
    return kernel, stride, ops_tuple(raw["padding"]), ops_tuple(raw["dilation"]), bool(raw["ceil_mode"])


# -- weights computed in forward -----------------------------------------------------------------

_COMPUTED: weakref.WeakKeyDictionary[fx.Graph, dict[fx.Node, fx.Node]] = weakref.WeakKeyDictionary()


def _weight_steps(graph: fx.Graph) -> dict[fx.Node, fx.Node]:
    """Each node that computes a convolution's or linear's weight from parameters → that call.

    NFNet's ``ScaledStdConv2d`` standardises its weight in every forward (``F.batch_norm`` of the
    reshaped weight, times a learned gain) before ``F.conv2d``. Found once per graph, so the first
    step of such a computation can be refused for what it is.
    """
    found = _COMPUTED.get(graph)
    if found is not None:
        return found
    found = {}
    root = graph.owning_module
    for call in graph.nodes:
        if call.op != "call_function" or call.target not in (*_CONVS, F.linear):
            continue
        weight = call.args[1] if len(call.args) > 1 else call.kwargs.get("weight")
        if not isinstance(weight, fx.Node) or weight.op == "get_attr":
            continue
        steps: list[fx.Node] = []
        todo, learned = [weight], False
        seen: set[fx.Node] = set()
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "placeholder":
                steps = []  # computed from the input: a dynamic convolution, refused where it fails
                break
            if node.op == "get_attr":
                learned |= isinstance(_attr(root, str(node.target)), torch.nn.Parameter)
                continue
            steps.append(node)
            todo.extend(node.all_input_nodes)
        if learned:
            for node in steps:
                found.setdefault(node, call)
    _COMPUTED[graph] = found
    return found


def _attr(root: Any, target: str) -> Any:
    value = root
    for seg in target.split("."):
        value = getattr(value, seg, None)
    return value


_STANDARDISE = frozenset({F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, torch.std, torch.var,
                          torch.std_mean, torch.var_mean, "std", "var"})


def _computed_weight(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    call = _weight_steps(n.graph)[n]
    steps = _ancestors(call)
    params = sorted({str(a.target) for a in steps if a.op == "get_attr"})
    named = ", ".join(repr(p) for p in params[:3]) + (" …" if len(params) > 3 else "")
    standardised = any(a.op in ("call_function", "call_method") and a.target in _STANDARDISE for a in steps)
    kind = " (weight standardisation, as NFNet's ScaledStdConv2d does)" if standardised else ""
    raise conv.fail(n, f"{describe(call)} whose weight is computed in forward from {named}{kind}",
                    "a layer node holds its weight as it is; folding the computed weight in would match in eval "
                    "but train a different model")


def _ancestors(call: fx.Node) -> list[fx.Node]:
    weight = call.args[1] if len(call.args) > 1 else call.kwargs.get("weight")
    out, todo, seen = [], [weight] if isinstance(weight, fx.Node) else [], set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        out.append(node)
        todo.extend(node.all_input_nodes)
    return out


# -- the tables -------------------------------------------------------------------------------------

_FUNCTIONS: dict[Any, Handler] = {
    operator.mul: _mul, operator.imul: _mul, torch.mul: _mul,
    operator.add: _add, operator.iadd: _add, torch.add: _add, torch.rand: _rand, torch.floor: _floor,
    operator.truediv: _div, operator.itruediv: _div, torch.div: _div,
    torch.stack: _stack, torch.softmax: _softmax, torch.log_softmax: _softmax,
    operator.neg: _neg, torch.neg: _neg,
    F.conv2d: _conv2d, F.pad: _pad,
}

_METHODS: dict[str, Handler] = {
    "mul": _mul, "mul_": _mul, "div": _div, "div_": _div,
    "add": _add, "add_": _add, "floor": _floor, "floor_": _floor,
    "neg": _neg, "new_empty": _new_empty, "bernoulli_": _bernoulli, "expand": _buffer_expand,
}


def _base(n: fx.Node) -> Handler:
    """The handler :mod:`core.importer.ops` has for ``n`` (these tables only add to its)."""
    handler = handler_in_ops(n)
    if handler is None:
        return _refuse
    return handler


def _refuse(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    kind = "method" if n.op == "call_method" else "function"
    raise conv.fail(n, f"the {kind} {describe(n)}")


def handler_for(n: fx.Node) -> Handler | None:
    """The handler for a ``call_function`` or ``call_method`` node, or None if unsupported."""
    if n.op in ("call_function", "call_method") and n in _weight_steps(n.graph):
        return _computed_weight
    handler: Handler | None
    if n.op == "call_method":
        handler = _METHODS.get(str(n.target))
    else:
        try:
            handler = _FUNCTIONS.get(n.target)
        except TypeError:  # an unhashable callable
            handler = None
    return handler if handler is not None else handler_in_ops(n)


__all__ = ["Kernel", "Mask", "binomial_filter", "handler_for", "is_mask"]
