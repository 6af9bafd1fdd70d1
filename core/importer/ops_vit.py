"""The vision transformers' patterns: attention modules called with arguments, and Swin's patch merging.

:func:`handler_for` answers from the table here first and then from :mod:`core.importer.ops_more`
(which asks :mod:`core.importer.ops`); :func:`module_call` is asked by the converter for each call
of a layer module, before it refuses a call with extra arguments. What is added:

- ``nn.MultiheadAttention`` called as torchvision's ViT calls it, ``self_attention(x, x, x,
  need_weights=False)`` followed by ``[0]``: one **MultiheadAttention** node (one input when the
  query, key and value are one tensor, self-attention), whose output stands for the tuple's first
  element. The averaged attention weights (the tuple's second element) are no output of the
  layer: a forward that uses them is refused where it does, and so are masks given as arguments
  (the layer's declaration refuses a sequence-first module).
- ``_patch_merging_pad(x)`` of torchvision's Swin (``PatchMerging``): the four interleaved
  half-resolution views of an H×W×C map concatenated on the channels, which is exactly a
  space-to-depth rearrangement, imported as Reshape (H/2, 2, W/2, 2, C) → Permute → Reshape
  (H/2, W/2, 4C): three nodes that move values and compute nothing, bit for bit the same. An odd
  H or W (which Swin pads with a zero row or column first) is refused.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from core.importer.op_base import Conversion, Handler, ModuleCall, bind_args, describe, tensor_input
from core.importer.ops_more import handler_for as handler_in_ops_more
from core.importer.ops_sequence import encoder_layer_call, recurrent_call
from core.layers.spec import LayerSpec, fmt_shape

# -- attention modules called with arguments ------------------------------------------------------


@dataclass(frozen=True)
class AttentionWeights:
    """The attention weights an ``nn.MultiheadAttention`` call returns second: not an output of the layer."""

    path: str


_MHA_ARGS = ("query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights",
             "is_causal")
_MHA_DEFAULTS = {"key_padding_mask": None, "need_weights": True, "attn_mask": None, "average_attn_weights": True,
                 "is_causal": False}


def _attention_call(conv: Conversion, n: fx.Node, m: nn.Module, path: str) -> ModuleCall:
    """``self_attention(x, x, x, need_weights=False)``: its inputs, and the tuple it returns."""
    assert isinstance(m, nn.MultiheadAttention)
    what = f"module {path!r} (MultiheadAttention)"
    b = bind_args(conv, n, [conv.values[a] if isinstance(a, fx.Node) else a for a in n.args],
                  {k: conv.values[v] if isinstance(v, fx.Node) else v for k, v in n.kwargs.items()},
                  _MHA_ARGS, _MHA_DEFAULTS)
    for name in ("key_padding_mask", "attn_mask"):
        if b[name] is not None:
            raise conv.fail(n, f"{what} called with {name}", "a mask given in forward is no layer parameter")
    if b["is_causal"]:
        raise conv.fail(n, f"{what} called with is_causal=True", "set the layer's causal option instead")
    raw = [n.args[i] if i < len(n.args) else n.kwargs.get(name) for i, name in enumerate(_MHA_ARGS[:3])]
    tensors = [tensor_input(conv, n, b[name]) for name in _MHA_ARGS[:3]]
    if raw[0] is raw[1] is raw[2]:
        inputs = tensors[:1]  # self-attention: one input fed to query, key and value
    elif raw[1] is raw[2]:
        inputs = tensors[:2]  # the key is also the value
    else:
        inputs = tensors
    weights = AttentionWeights(path)
    return ModuleCall(inputs, lambda ref: (ref, weights), checked=False)


_MODULE_CALLS: dict[type[nn.Module], Callable[[Conversion, fx.Node, nn.Module, str], ModuleCall]] = {
    nn.MultiheadAttention: _attention_call,
    nn.RNN: recurrent_call, nn.LSTM: recurrent_call, nn.GRU: recurrent_call,
    nn.TransformerEncoderLayer: encoder_layer_call,
}


def module_call(conv: Conversion, n: fx.Node, m: nn.Module, spec: LayerSpec) -> ModuleCall | None:
    """How to import the call ``n`` of layer module ``m``, or None when it is an ordinary call (tensors only)."""
    for cls, make in _MODULE_CALLS.items():
        if isinstance(m, cls) and type(m).forward is cls.forward:
            return make(conv, n, m, str(n.target))
    return None


# -- Swin's patch merging -------------------------------------------------------------------------

def _patch_merging(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``_patch_merging_pad(x)``: the 2×2 neighbours of each H×W×C position side by side, as Reshape/Permute."""
    b = bind_args(conv, n, args, kwargs, ("x",), {})
    x = tensor_input(conv, n, b["x"])
    src = n.args[0]
    assert isinstance(src, fx.Node)
    (shape,) = conv.shapes(src)
    if len(shape) != 3 or shape[0] % 2 or shape[1] % 2:
        raise conv.fail(n, f"Swin's patch merging of a {fmt_shape(shape)} map",
                        "it pads an odd height or width with zeros first, which maps to no layer type here; "
                        "choose an input size that halves evenly down to the last stage")
    h, w, c = shape
    split = conv.functional(n, "Reshape", {"shape": [h // 2, 2, w // 2, 2, c]}, [x], "reshape", last=False)
    # (i, row parity, j, column parity, c) → (i, j, column parity, row parity, c): torchvision's order
    # x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] has the row parity varying fastest
    moved = conv.functional(n, "Permute", {"dims": [1, 3, 4, 2, 5]}, [split], "permute", last=False)
    return conv.functional(n, "Reshape", {"shape": [h // 2, w // 2, 4 * c]}, [moved], "reshape")


def _torchvision_functions() -> dict[Any, Handler]:
    """torchvision's functions that torch.fx keeps as calls (``torch.fx.wrap``), found when torchvision is."""
    try:
        from torchvision.models import swin_transformer
    except ImportError:  # pragma: no cover - torchvision is a dependency; without it nothing calls these
        return {}
    return {swin_transformer._patch_merging_pad: _patch_merging}


_FUNCTIONS: dict[Any, Handler] | None = None


def handler_for(n: fx.Node) -> Handler | None:
    """The handler for a ``call_function`` or ``call_method`` node, or None if unsupported."""
    global _FUNCTIONS
    handler: Handler | None = None
    if n.op == "call_function":
        if _FUNCTIONS is None:
            _FUNCTIONS = _torchvision_functions()
        try:
            handler = _FUNCTIONS.get(n.target)
        except TypeError:  # an unhashable callable
            handler = None
    if handler is None:
        handler = handler_in_ops_more(n)
    return None if handler is None else _without_weights(handler)


def _flat(values: Any) -> Iterator[Any]:
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _without_weights(handler: Handler) -> Handler:
    """``handler``, refusing first a call on the attention weights an ``nn.MultiheadAttention`` returned."""
    def guarded(conv: Conversion, n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        given = (*args[1:], *kwargs.values()) if n.target is operator.getitem else (*args, *kwargs.values())
        for value in _flat(given):  # (out, weights)[0] is fine, torch.cat([out, weights]) is not
            if isinstance(value, AttentionWeights):
                raise conv.fail(n, f"{describe(n)} of the attention weights that module {value.path!r} returns",
                                "a MultiheadAttention node outputs the attended values only (call it with "
                                "need_weights=False)")
        return handler(conv, n, args, kwargs)

    return guarded


__all__ = ["AttentionWeights", "ModuleCall", "handler_for", "module_call"]
