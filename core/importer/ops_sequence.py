"""torch's own recurrent modules (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) as RNN, LSTM and GRU nodes.

torch returns ``output, h_n`` (the LSTM ``output, (h_n, c_n)``) with the states
(layers·dirs)×N×H whatever ``batch_first`` says; a node's ports are batch first, N×(layers·dirs)×H
(:mod:`core.layers.recurrent_modules`). So the call's states become :class:`State` values that
remember the transposition, and only what maps faithfully is accepted on them:

- ``h_n[i]`` (``h_n[-1]``: the last layer's final state) → Select on the port's state axis;
- ``h_n.transpose(0, 1)`` / ``h_n.permute(1, 0, 2)`` → the port itself;
- ``h_n.squeeze(0)`` of a one-layer, one-direction state → Select of position 0.

Anything else on a state, ``batch_first=False``, an LSTM with ``proj_size`` and an initial state
passed in ``forward`` are refused naming the module and the fix.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from core.importer.op_base import Conversion, ModuleCall, tensor_input
from core.importer.values import Multi, Ref


@dataclass(frozen=True)
class State:
    """A recurrent module's ``h_n`` or ``c_n`` as torch holds it, (layers·dirs)×N×H: output ``port`` of
    ``node`` transposed (the port is N×(layers·dirs)×H); ``path`` is the module that returned it."""

    node: str
    port: int
    path: str
    count: int  # layers·dirs


def _kind(m: nn.Module) -> str:
    return "LSTM" if isinstance(m, nn.LSTM) else "GRU" if isinstance(m, nn.GRU) else "RNN"


def recurrent_call(conv: Conversion, n: fx.Node, m: nn.Module, path: str) -> Any:
    """``self.lstm(x)``: one node, its output port and its states (see :class:`State`)."""
    assert isinstance(m, nn.RNNBase)
    what = f"module {path!r} ({_kind(m)})"
    if not m.batch_first:
        raise conv.fail(n, f"{what} with batch_first=False",
                        "NetCanvas's recurrent layers take batch-first N×T×C input — construct it with "
                        "batch_first=True and feed it batch first (x.transpose(0, 1) of a T×N×C tensor)")
    if getattr(m, "proj_size", 0):
        raise conv.fail(n, f"{what} with proj_size={m.proj_size}", "the LSTM layer type has no projection")
    extra = [a for a in [*n.args[1:], *n.kwargs.values()] if a is not None]
    if extra:
        raise conv.fail(n, f"{what} called with an initial state",
                        "a layer node starts from zeros unless its initial_state option is on, whose h_0/c_0 "
                        "inputs are batch first — call it with the sequence alone")
    src = n.args[0]
    assert isinstance(src, fx.Node)
    x = tensor_input(conv, n, conv.values[src])
    count = m.num_layers * (2 if m.bidirectional else 1)

    def result(ref: Any) -> Any:
        assert isinstance(ref, Multi)
        out = Ref(ref.node, 0)
        h = State(ref.node, 1, path, count)
        return (out, (h, State(ref.node, 2, path, count))) if isinstance(m, nn.LSTM) else (out, h)

    return ModuleCall([x], result, checked=False)


def encoder_layer_call(conv: Conversion, n: fx.Node, m: nn.Module, path: str) -> Any:
    """``layer(x, src_mask=None, is_causal=False, src_key_padding_mask=None)``, as ``nn.TransformerEncoder``
    calls its layers: without a mask it is the layer on ``x``; a mask given in forward is refused."""
    names = ("src", "src_mask", "src_key_padding_mask", "is_causal")
    given = dict(zip(names, n.args, strict=False)) | dict(n.kwargs)
    masks = [k for k in names[1:3] if given.get(k) is not None]
    if masks or given.get("is_causal"):
        raise conv.fail(n, f"module {path!r} (TransformerEncoderLayer) called with {(masks or ['is_causal'])[0]}",
                        "a mask given in forward is no layer parameter (the layer's causal option is one)")
    src = given["src"]
    assert isinstance(src, fx.Node)
    x = tensor_input(conv, n, conv.values[src])
    return ModuleCall([x], lambda ref: ref, checked=True)


def on_state(args: tuple[Any, ...], kwargs: dict[str, Any], n: fx.Node) -> State | None:
    """The state that fx node ``n`` works on, or None when it touches none (``(h, c)[0]`` touches none)."""
    if n.target is operator.getitem:
        return args[0] if isinstance(args[0], State) else None
    return next((v for v in [*args, *kwargs.values()] if isinstance(v, State)), None)


def state_name(state: State) -> str:
    """``the h_n of module 'rnn' ((layers·directions)×N×H in torch)``, for refusals."""
    return f"the {'c_n' if state.port == 2 else 'h_n'} of module {state.path!r} ((layers·directions)×N×H in torch)"


def state_op(conv: Conversion, n: fx.Node, state: State, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``h_n[-1]``, ``h_n.transpose(0, 1)``, ``h_n.squeeze(0)`` on a recurrent state; anything else refused."""
    port = Ref(state.node, state.port)
    rest = tuple(args[1:])
    name = str(getattr(n.target, "__name__", n.target))
    if n.target is operator.getitem and args[0] is state and isinstance(rest[0], int) and not kwargs:
        return conv.functional(n, "Select", {"dim": 1, "index": rest[0]}, [port], "select")
    if args and args[0] is state and not kwargs and (
            (name == "transpose" and set(rest) in ({0, 1}, {0, -2}) and len(rest) == 2)
            or (name == "permute" and [d % 3 for d in (rest[0] if len(rest) == 1 else rest)] == [1, 0, 2])):
        return port
    if args and args[0] is state and name == "squeeze" and rest in ((0,), ()) and state.count == 1 and not kwargs:
        return conv.functional(n, "Select", {"dim": 1, "index": 0}, [port], "select")
    which = "c_n" if state.port == 2 else "h_n"
    raise conv.fail(n, f"{name} of {state_name(state)}",
                    f"the node's {which} port is batch first: take one layer's state with {which}[-1] (or "
                    f"{which}[i]), or all with {which}.transpose(0, 1)")


__all__ = ["State", "encoder_layer_call", "on_state", "recurrent_call", "state_name", "state_op"]
