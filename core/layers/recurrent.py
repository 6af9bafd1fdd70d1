"""Sequence layers: Embedding (token ids → vectors) and the recurrent RNN, LSTM and GRU.

A sequence sample is T×C: time first, then features (DESIGN.md §5; batch-first in torch terms).
The recurrent layers build :mod:`core.layers.recurrent_modules`' batch-first subclasses of torch's
own layers (cuDNN on a GPU, never a Python loop over time steps), whose results are separate
output ports: port 0 ``output`` (T × H·dirs), port 1 ``h_n`` ((layers·dirs) × H) and, for the
LSTM, port 2 ``c_n`` ((layers·dirs) × H). Sequences start from zeros, unless ``initial_state`` is on:
then the layer takes ``h_0`` (and the LSTM ``c_0``) as inputs 1 (and 2), per sample
(layers·dirs) × H like ``h_n``, so that an encoder's final state starts a decoder (seq2seq). The
initial state changes no parameter and no MAC.

Counting (exactly what torch's ``parameters()`` holds, and FlopCounterMode's matmuls / 2): each
layer and direction has ``gates`` (RNN 1, GRU 3, LSTM 4) input-to-hidden and hidden-to-hidden
matrices of (C_in + H)·H weights and two biases of H; the first layer's C_in is the input's C,
later layers' H·dirs. MACs = gate weight elements × T per direction per layer. An Embedding is a
table lookup: N·D parameters and no MACs.

The receptive field along a sequence (:class:`~core.layers.spec.SequenceRule`): a forward RNN's
step t has read the prefix 0…t, a bidirectional one the whole sequence; an Embedding's vector is one
token's, a field of 1 step that a Conv1d stack then widens like any window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.layers.registry import register
from core.layers.spec import (
    Category,
    FitRole,
    InferFn,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    Params,
    ParamSpec,
    SequenceRule,
    Shape,
    fmt_shape,
    set_param_fix,
    torch_builder,
)

# Gate matrices per time step: RNN h' = tanh(W x + U h); GRU reset, update, new; LSTM i, f, g, o.
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def sequence_problem(type_name: str, shape: Shape) -> str:
    """Why a non-T×C sample cannot enter a recurrent layer, and what to insert when it is obvious."""
    got = fmt_shape(shape)
    if len(shape) == 3:
        return (f"{type_name} expects 2-D input per sample (T×C), got C×H×W ({got}): insert Flatten(2) and a "
                f"Transpose")
    if len(shape) == 1:
        return (f"{type_name} expects 2-D input per sample (T×C), got a vector of {shape[0]} features: a sequence "
                f"needs a time axis (an Embedding of token ids gives T×C)")
    return f"{type_name} expects 2-D input per sample (T×C), got {len(shape)}-D ({got})"


def recurrent_counts(type_name: str, p: Params, c: int, t: int) -> tuple[int, int]:
    """(parameters, MACs per sample) of a recurrent layer on T×C samples."""
    gates = GATES[type_name]
    h, dirs = int(p["hidden_size"]), 2 if p["bidirectional"] else 1
    params = macs = 0
    for layer in range(int(p["num_layers"])):
        c_in = c if layer == 0 else h * dirs
        params += dirs * gates * ((c_in + h) * h + (2 * h if p["bias"] else 0))
        macs += dirs * gates * (c_in + h) * h * t
    return params, macs


def state_names(type_name: str) -> tuple[str, ...]:
    """The initial-state inputs of a recurrent layer, in port order after the sequence."""
    return ("h_0", "c_0") if type_name == "LSTM" else ("h_0",)


def check_states(type_name: str, p: Params, states: Sequence[Shape]) -> None:
    """The initial states wired must be what ``initial_state`` asks for, each (layers·dirs)×H."""
    names = state_names(type_name)
    if not p["initial_state"]:
        if states:
            raise LayerError(f"{type_name} takes one input (the T×C sequence) unless initial_state is on — turn "
                             f"it on to start from {' and '.join(names)}", set_param_fix("initial_state", True),
                             param="initial_state")
        return
    if len(states) != len(names):
        missing = ", ".join(names[len(states):])
        raise LayerError(f"{type_name}'s initial_state is on: wire {missing} after the sequence, "
                         f"each (layers·dirs)×H per sample like h_n (an encoder's h_n) — or turn initial_state off",
                         set_param_fix("initial_state", False), param="initial_state")
    h, layers, dirs = int(p["hidden_size"]), int(p["num_layers"]), 2 if p["bidirectional"] else 1
    want = (layers * dirs, h)
    for name, shape in zip(names, states, strict=True):
        if tuple(shape) == want:
            continue
        fix = None
        if len(shape) == 2 and shape[0] == want[0]:  # the units differ: take the state's
            fix, hint = set_param_fix("hidden_size", shape[1]), f"set hidden_size to {shape[1]}"
        elif len(shape) == 2 and shape[1] == h and shape[0] % dirs == 0:  # the layers differ
            fix, hint = set_param_fix("num_layers", shape[0] // dirs), f"set num_layers to {shape[0] // dirs}"
        else:
            hint = "feed it the h_n of a layer with the same num_layers, bidirectional and hidden_size"
        raise LayerError(f"{type_name}'s {name} must be (layers·dirs)×H = {fmt_shape(want)} per sample "
                         f"({layers} layer{'s' if layers != 1 else ''} × {dirs} direction{'s' if dirs != 1 else ''}, "
                         f"hidden_size {h}), got {fmt_shape(shape)} — {hint}", fix,
                         param=fix.param if fix is not None else None)


def _recurrent_infer(type_name: str) -> InferFn:
    def infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
        shape = shapes[0]
        if len(shape) != 2:
            raise LayerError(sequence_problem(type_name, shape))
        t, c = shape
        given = p.get("input_size")
        if given is not None and given != c:
            raise LayerError(f"{type_name} input_size {given} does not match the input's {c} features per step "
                             f"({fmt_shape(shape)}) — leave it empty to infer it",
                             set_param_fix("input_size", None), param="input_size")
        check_states(type_name, p, shapes[1:])
        h, layers, dirs = int(p["hidden_size"]), int(p["num_layers"]), 2 if p["bidirectional"] else 1
        params, macs = recurrent_counts(type_name, p, c, t)
        state = (layers * dirs, h)
        outs: tuple[Shape, ...] = ((t, h * dirs), state, state) if type_name == "LSTM" else ((t, h * dirs), state)
        warnings: tuple[tuple[str, Any], ...] = ()
        if p["dropout"] > 0 and layers == 1:
            # torch warns too: dropout acts between stacked layers, so one layer never uses it
            warnings = ((f"dropout {p['dropout']} has no effect with one layer (it acts between stacked layers)",
                         set_param_fix("dropout", 0.0)),)
        return Inferred(out_shapes=outs, args={"input_size": c}, params=params, macs=macs, warnings=warnings)

    return infer


def _recurrent_build(type_name: str) -> Any:
    def build(p: Params) -> Any:
        from core.layers import recurrent_modules

        cls = getattr(recurrent_modules, f"Sequence{type_name}")
        return cls(**p)

    return build


def _recurrent_from_module(type_name: str) -> Any:
    def from_module(m: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_size": int(m.input_size), "hidden_size": int(m.hidden_size), "num_layers": int(m.num_layers),
            "bias": bool(m.bias), "dropout": float(m.dropout), "bidirectional": bool(m.bidirectional),
            "initial_state": bool(getattr(m, "initial_state", False))}
        if type_name == "RNN":
            out["nonlinearity"] = str(m.nonlinearity)
        return out

    return from_module


def _recurrent_field(p: Params, shapes: Sequence[Shape]) -> SequenceRule:
    return SequenceRule.WHOLE if p["bidirectional"] else SequenceRule.PREFIX


def _embedding_field(p: Params, shapes: Sequence[Shape]) -> SequenceRule:
    return SequenceRule.STEP


def _two_outputs(p: Params) -> int:
    return 2  # output, h_n


def _three_outputs(p: Params) -> int:
    return 3  # output, h_n, c_n


def _short(p: Params) -> str:
    text = f"H {p['hidden_size']}"
    if p["num_layers"] != 1:
        text += f" ×{p['num_layers']}"
    return text + (" · bi" if p["bidirectional"] else "") + (" · h_0" if p["initial_state"] else "")


def _recurrent(type_name: str, doc: str) -> LayerSpec:
    params = [
        ParamSpec("input_size", Kind.INT, None, "Features per time step C; inferred from the T×C input.",
                  min=1, inferred=True),
        ParamSpec("hidden_size", Kind.INT, 64, "Hidden units H per direction.", min=1),
        ParamSpec("num_layers", Kind.INT, 1, "Stacked recurrent layers; each takes the one before's output.",
                  min=1),
    ]
    if type_name == "RNN":
        params.append(ParamSpec("nonlinearity", Kind.CHOICE, "tanh", "Activation of the hidden state.",
                                choices=("tanh", "relu")))
    params += [
        ParamSpec("bias", Kind.BOOL, True, "Learn the input and hidden biases of every gate."),
        ParamSpec("dropout", Kind.FLOAT, 0.0, "Dropout between stacked layers while training (not after the last).",
                  min=0.0, max=1.0),
        ParamSpec("bidirectional", Kind.BOOL, False, "Also read the sequence backwards: outputs have 2·H features."),
        ParamSpec("initial_state", Kind.BOOL, False, f"Start from {' and '.join(state_names(type_name))} wired as "
                  f"the next inputs, each (layers·dirs)×H like h_n (seq2seq: an encoder's final state); off: zeros."),
    ]
    ports = "output, h_n, c_n" if type_name == "LSTM" else "output, h_n"
    return register(LayerSpec(
        type=type_name, category=Category.RECURRENT,
        doc=f"{doc} Inputs: the sequence (then {', '.join(state_names(type_name))} with initial_state). "
            f"Outputs: {ports}.",
        params=tuple(params), infer=_recurrent_infer(type_name), window=_recurrent_field,
        build=_recurrent_build(type_name), max_inputs=1 + len(state_names(type_name)),
        num_outputs=_three_outputs if type_name == "LSTM" else _two_outputs,
        short=_short,
        module_class=f"core.layers.recurrent_modules.Sequence{type_name}",
        from_module=_recurrent_from_module(type_name),
        trainable_note=f"{GATES[type_name]} gate matrices of (C_in + H)·H weights and 2·H biases per layer "
                       f"and direction",
        fit_role=FitRole.OTHER,
    ))


RNN = _recurrent("RNN", "Elman recurrent layer over a T×C sequence, h_t = tanh(W·x_t + U·h_(t−1)).")
LSTM = _recurrent("LSTM", "Long short-term memory over a T×C sequence (input, forget, cell and output gates).")
GRU = _recurrent("GRU", "Gated recurrent unit over a T×C sequence (reset, update and new gates).")


# -- Embedding ------------------------------------------------------------------------------------

def _embedding_infer(p: Params, shapes: Sequence[Shape]) -> Inferred:
    (shape,) = shapes
    if len(shape) != 1:
        raise LayerError(f"Embedding expects token ids (T,), got {fmt_shape(shape)}: one integer id per time "
                         f"step, e.g. an Input of shape ({shape[0]},)")
    n, d, pad = int(p["num_embeddings"]), int(p["embedding_dim"]), p["padding_idx"]
    if pad is not None and not -n <= pad < n:
        raise LayerError(f"Embedding padding_idx {pad} is outside the table of {n} embeddings — leave it empty",
                         set_param_fix("padding_idx", None), param="padding_idx")
    return Inferred(out_shapes=((shape[0], d),), params=n * d)


Embedding = register(LayerSpec(
    type="Embedding", category=Category.RECURRENT,
    doc="Looks up a learned vector for each token id: (T,) integer ids → T×D (the start of a language model).",
    params=(ParamSpec("num_embeddings", Kind.INT, 1000, "Size of the vocabulary: ids run from 0 to N−1.", min=1),
            ParamSpec("embedding_dim", Kind.INT, 64, "Features D of each token's vector.", min=1),
            ParamSpec("padding_idx", Kind.INT, None, "An id whose vector stays zero and is not trained; empty: none.",
                      optional=True)),
    infer=_embedding_infer, window=_embedding_field, build=torch_builder("Embedding"),
    short=lambda p: f"{p['num_embeddings']} → {p['embedding_dim']}",
    trainable_note="one D-vector per id (N·D parameters); a lookup, no MACs",
    int_inputs=True, fit_role=FitRole.OTHER,
))

__all__ = ["GATES", "GRU", "LSTM", "RNN", "Embedding", "check_states", "recurrent_counts", "sequence_problem",
           "state_names"]
