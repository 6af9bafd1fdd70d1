"""timm's attention patterns: q, k and v split off a batch-moving permute, and fused attention.

The converter asks :func:`handler_for` here first; it answers from its own table and then from
:mod:`core.importer.ops_vit` (which asks :mod:`core.importer.ops_more` and :mod:`core.importer.ops`).
What is added:

- ``qkv.reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4)`` followed by ``q, k, v = qkv.unbind(0)``
  (or ``qkv[0], qkv[1], qkv[2]``): the permute moves the batch axis to second place, which no layer
  can do on its own, but each piece taken along the new first axis is batch-first again. Such a
  permute leaves no node; each piece becomes a **Select** of the source along the permuted-away
  axis and a **Permute** of the axes left (the same values, bit for bit). A permute that moves the
  batch axis and is used any other way is refused, as before, where it happens.
- ``unbind(dim)`` of a batch-first tensor along a sample axis: one Select per piece.
- ``F.scaled_dot_product_attention(q, k, v)``: one **ScaledDotProductAttention** node
  (:mod:`core.layers.sdpa`), with ``is_causal`` and ``scale``; an attention mask, dropout or grouped
  key/value heads given in the call are refused, naming the module.
"""

from __future__ import annotations

import operator
import sys
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from core.importer.errors import ModelImportError
from core.importer.op_base import Conversion, Handler, bind_args, describe, rank_of, tensor_input
from core.importer.ops import parameter_node
from core.importer.ops_vit import handler_for as handler_in_ops_vit
from core.importer.values import Param, Ref


@dataclass(frozen=True)
class MovedBatch:
    """A permute of ``source`` that moves the batch axis off the front, used only by taking pieces along axis 0.

    ``dims`` is the permutation over all axes (batch included, ``dims[1] == 0``); ``refusal`` is
    what the permute would have been refused with, kept for a use that cannot take it."""

    source: Ref
    dims: tuple[int, ...]
    refusal: ModelImportError


def _positive(dims: list[int], rank: int) -> list[int]:
    return [int(d) % rank for d in dims]


def _takes_pieces(user: fx.Node) -> bool:
    """Whether fx node ``user`` only takes pieces of its first argument along axis 0 (``unbind(0)``, ``x[1]``)."""
    if user.target is operator.getitem:
        return isinstance(user.args[1], int) and len(user.args) == 2
    if (user.op == "call_method" and user.target == "unbind") or user.target is torch.unbind:
        dim = user.args[1] if len(user.args) > 1 else user.kwargs.get("dim", 0)
        return isinstance(dim, int) and dim == 0
    return False


def _permute(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.permute(...)``: as :mod:`core.importer.ops` does, or a :class:`MovedBatch` for q, k, v split off it."""
    fallback = handler_in_ops_vit(n)
    assert fallback is not None  # ops handles every permute (refusing the batch-moving ones)
    rest = args[1:] or tuple(kwargs.values())
    given = list(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else list(rest)
    rank = rank_of(n)
    dims = _positive(given, rank) if all(isinstance(d, int) for d in given) else []
    if len(dims) < 2 or dims[0] == 0 or dims[1] != 0 or not n.users or not all(map(_takes_pieces, n.users)):
        return fallback(conv, n, args, kwargs)
    x = tensor_input(conv, n, args[0])
    refusal = conv.fail(n, f"{describe(n)} {dims} that moves the batch axis")
    return MovedBatch(x, tuple(dims), refusal)


def _piece(conv: Conversion, n: fx.Node, moved: MovedBatch, index: int, *, checked: bool) -> Any:
    """``moved[index]`` as Select (along the axis the permute put first) and Permute (of the axes left)."""
    first, rest = moved.dims[0], moved.dims[1:]
    order = [d if d < first else d - 1 for d in rest]  # the axes left, numbered after the select
    moves = order != sorted(order)
    value = conv.functional(n, "Select", {"dim": first, "index": index}, [moved.source], "select",
                            last=checked and not moves)
    if not moves:
        return value
    return conv.functional(n, "Permute", {"dims": order[1:]}, [value], "permute", last=checked)


def _getitem(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args and isinstance(args[0], MovedBatch):
        moved: MovedBatch = args[0]
        size = int(n.args[0].meta["val"].shape[0])  # type: ignore[union-attr]
        return _piece(conv, n, moved, int(args[1]) % size, checked=True)
    fallback = handler_in_ops_vit(n)
    assert fallback is not None
    return fallback(conv, n, args, kwargs)


def _unbind(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``x.unbind(dim)``: the pieces of a :class:`MovedBatch` along axis 0, or Selects along a sample axis."""
    b = bind_args(conv, n, args, kwargs, ("input", "dim"), {"dim": 0})
    count = len(n.meta["val"])
    if isinstance(b["input"], MovedBatch):
        return tuple(_piece(conv, n, b["input"], i, checked=False) for i in range(count))
    x = tensor_input(conv, n, b["input"])
    axis = int(b["dim"]) % rank_of(n)
    if axis == 0:
        raise conv.fail(n, f"{describe(n)} along the batch axis", "a layer works on each sample alone")
    return tuple(conv.functional(n, "Select", {"dim": axis, "index": i}, [x], "select", last=False)
                 for i in range(count))


_BROADCASTING = frozenset({operator.mul, operator.add, operator.sub, operator.truediv, torch.mul, torch.add, torch.sub,
                           torch.div, "mul", "add", "sub", "div"})


def _broadcast_only(n: fx.Node, rank: int) -> bool:
    """Whether every use of ``n`` is an element-wise op with a tensor of more than ``rank`` axes (so that
    torch's broadcasting puts a leading axis of size 1 in front of ``n``'s value)."""
    for user in n.users:
        if (user.target if user.op == "call_function" else str(user.target)) not in _BROADCASTING:
            return False
        others = [a for a in user.args if isinstance(a, fx.Node) and a is not n]
        if len(others) != 1 or not isinstance(others[0].meta.get("val"), torch.Tensor):
            return False
        if others[0].meta["val"].dim() <= rank:
            return False
    return bool(n.users)


def _view(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``self.scale.view(C, 1, 1) * x`` (timm's PoolFormer ``Scale``): a Parameter node, reshaped to broadcast.

    A view without the leading axis of size 1 broadcasts to the same thing when it only meets
    tensors of more axes; anything else goes to :mod:`core.importer.ops`."""
    value = n.meta.get("val")
    # Only views of two axes or more (C×1×1): a flat view (``w.view(6)``) stays refused by core.importer.ops,
    # whose rule asks for a leading axis of size 1 there.
    if (isinstance(args[0], Param) and isinstance(value, torch.Tensor) and value.dim() >= 2
            and value.shape[0] != 1 and _broadcast_only(n, value.dim())):
        x = parameter_node(conv, n, args[0])
        # the shape is checked where it meets a batch, like a view with a leading 1 (core.importer.ops)
        return conv.functional(n, "Reshape", {"shape": [int(d) for d in value.shape]}, [x], "reshape", last=False)
    fallback = handler_in_ops_vit(n)
    assert fallback is not None
    return fallback(conv, n, args, kwargs)


_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_SDPA_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None, "enable_gqa": False}


def _sdpa(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``F.scaled_dot_product_attention(q, k, v, …)``: one ScaledDotProductAttention node."""
    b = bind_args(conv, n, args, kwargs, _SDPA_ARGS, _SDPA_DEFAULTS)
    what = describe(n)
    if b["attn_mask"] is not None:
        raise conv.fail(n, f"{what} with an attention mask", "a mask given in forward is no layer parameter")
    if not isinstance(b["dropout_p"], (int, float)) or b["dropout_p"]:
        raise conv.fail(n, f"{what} with dropout_p={b['dropout_p']}",
                        "dropout inside the attention is no parameter of the layer; import the model in eval "
                        "mode, or with attention dropout 0")
    if b["enable_gqa"]:
        raise conv.fail(n, f"{what} with enable_gqa=True", "the key and value must have the query's heads")
    if not isinstance(b["is_causal"], bool):
        raise conv.fail(n, f"{what} with an is_causal computed in forward", "it must be a constant")
    scale = b["scale"]
    if scale is not None and (not isinstance(scale, (int, float)) or scale <= 0):
        raise conv.fail(n, f"{what} with scale={scale!r}", "the scale must be a positive constant")
    tensors = [tensor_input(conv, n, b[name]) for name in _SDPA_ARGS[:3]]
    params = {"is_causal": b["is_causal"], "scale": None if scale is None else float(scale)}
    return conv.functional(n, "ScaledDotProductAttention", params, tensors, "sdpa")


def _maybe_add_mask(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """timm's ``maybe_add_mask(scores, attn_mask)`` (kept as a call by ``torch.fx.wrap``): the scores when no mask."""
    b = bind_args(conv, n, args, kwargs, ("scores", "attn_mask"), {"attn_mask": None})
    if b["attn_mask"] is not None:
        raise conv.fail(n, f"{describe(n)} with an attention mask", "a mask given in forward is no layer parameter")
    return tensor_input(conv, n, b["scores"])


def _timm_functions() -> dict[Any, Handler]:
    """timm's functions that torch.fx keeps as calls (``torch.fx.wrap``), found when timm is installed."""
    try:
        from timm.layers import attention
    except ImportError:  # timm is no dependency: without it nothing calls these
        return {}
    return {attention.maybe_add_mask: _maybe_add_mask}


_TIMM: dict[Any, Handler] | None = None

_FUNCTIONS: dict[Any, Handler] = {
    F.scaled_dot_product_attention: _sdpa, torch.permute: _permute, torch.unbind: _unbind,
    operator.getitem: _getitem, torch.reshape: _view,
}
_METHODS: dict[str, Handler] = {"permute": _permute, "unbind": _unbind, "view": _view, "reshape": _view}


def _refuse_moved(handler: Handler) -> Handler:
    """``handler``, refusing first a call on a :class:`MovedBatch` (with the permute's own refusal)."""
    def guarded(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, MovedBatch):
                raise value.refusal
        return handler(conv, n, args, kwargs)

    return guarded


def handler_for(n: fx.Node) -> Handler | None:
    """The handler for a ``call_function`` or ``call_method`` node, or None if unsupported."""
    global _TIMM
    handler: Handler | None
    if n.op == "call_method":
        handler = _METHODS.get(str(n.target))
    else:
        if _TIMM is None and "timm" in sys.modules:  # a model of timm's is being imported: timm is there
            _TIMM = _timm_functions()
        try:
            handler = _FUNCTIONS.get(n.target) or (_TIMM or {}).get(n.target)
        except TypeError:  # an unhashable callable
            handler = None
    if handler is not None:
        return handler
    handler = handler_in_ops_vit(n)
    return None if handler is None else _refuse_moved(handler)


__all__ = ["MovedBatch", "handler_for"]
