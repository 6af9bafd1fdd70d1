"""Embedding, RNN, LSTM and GRU: declarations checked against torch, compiled, exported, analyzed.

The settings below run through the same conformance machinery as every other type
(:mod:`tests.core.test_layers_conformance`: shapes of every output port, parameter and buffer counts,
MACs against ``FlopCounterMode``), with more settings than that file's defaults-only fallback.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core import export
from core.analysis import Severity, analyze
from core.compiler import compile_graph
from core.graph import Graph
from core.layers import Category, LayerError, all_specs, get_spec
from core.layers.recurrent import recurrent_counts
from core.layers.spec import Shape
from tests.core import test_layers_conformance as conformance

CASES: list[tuple[str, dict[str, Any], list[Shape]]] = [
    ("RNN", {"hidden_size": 6}, [(7, 5)]),
    ("RNN", {"hidden_size": 4, "nonlinearity": "relu", "num_layers": 3, "bias": False}, [(5, 3)]),
    ("RNN", {"hidden_size": 5, "num_layers": 2, "bidirectional": True}, [(4, 6)]),
    ("GRU", {"hidden_size": 8}, [(6, 4)]),
    ("GRU", {"hidden_size": 3, "num_layers": 2, "bidirectional": True, "dropout": 0.5}, [(5, 7)]),
    ("LSTM", {"hidden_size": 6}, [(7, 5)]),
    ("LSTM", {"hidden_size": 4, "num_layers": 3, "bidirectional": True, "bias": False}, [(3, 2)]),
    ("LSTM", {"hidden_size": 7, "num_layers": 2, "dropout": 0.2}, [(1, 9)]),
    ("Embedding", {"num_embeddings": 20, "embedding_dim": 6}, [(9,)]),
    ("Embedding", {"num_embeddings": 5, "embedding_dim": 3, "padding_idx": -1}, [(4,)]),
]


@pytest.mark.parametrize(("type_name", "params", "shapes"), CASES,
                         ids=[f"{t}-{i}" for i, (t, *_) in enumerate(CASES)])
def test_conformance_with_torch(type_name: str, params: dict[str, Any], shapes: list[Shape]) -> None:
    conformance.test_conformance(type_name, params, shapes)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_counts_follow_the_gate_formula(num_layers: int, bidirectional: bool) -> None:
    """LSTM: 4·(C_in·H + H² + 2H) parameters and 4·(C_in + H)·H·T MACs per direction per layer;
    C_in is the input's C for the first layer and H·dirs after it. FlopCounterMode counts 2 FLOPs
    per multiply-accumulate of the gate matmuls (the elementwise gate arithmetic counts nothing)."""
    c, h, t, batch = 5, 3, 6, 2
    dirs = 2 if bidirectional else 1
    spec = get_spec("LSTM")
    assert spec is not None
    p = spec.resolve({"hidden_size": h, "num_layers": num_layers, "bidirectional": bidirectional})
    inf = spec.infer(p, [(t, c)])
    ins = [c] + [h * dirs] * (num_layers - 1)
    assert inf.params == sum(dirs * 4 * (k * h + h * h + 2 * h) for k in ins)
    assert inf.macs == sum(dirs * 4 * (k + h) * h * t for k in ins)
    assert (inf.params, inf.macs) == recurrent_counts("LSTM", p, c, t)
    lstm = nn.LSTM(c, h, num_layers, batch_first=True, bidirectional=bidirectional)
    assert inf.params == sum(w.numel() for w in lstm.parameters())
    mkldnn = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False  # the CPU's fused oneDNN kernel would hide the matmuls
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            lstm(torch.randn(batch, t, c))
    finally:
        torch.backends.mkldnn.enabled = mkldnn
    assert counter.get_total_flops() == 2 * batch * inf.macs


@pytest.mark.parametrize(("type_name", "gates"), [("RNN", 1), ("GRU", 3), ("LSTM", 4)])
def test_gates_per_type(type_name: str, gates: int) -> None:
    spec = get_spec(type_name)
    assert spec is not None
    inf = spec.infer(spec.resolve({"hidden_size": 10}), [(8, 4)])
    assert inf.macs == gates * (4 + 10) * 10 * 8
    assert inf.out_shapes[:2] == ((8, 10), (1, 10))
    assert spec.outputs(spec.resolve({})) == len(inf.out_shapes) == (3 if type_name == "LSTM" else 2)


REFUSED: list[tuple[str, dict[str, Any], list[Shape], str | None, str]] = [
    ("LSTM", {}, [(3, 32, 32)], None,
     "LSTM expects 2-D input per sample (T×C), got C×H×W (3×32×32): insert Flatten(2) and a Transpose"),
    ("GRU", {}, [(2, 3, 4, 5)], None, "GRU expects 2-D input per sample (T×C), got 4-D (2×3×4×5)"),
    ("RNN", {}, [(16,)], "torch reads a batch of vectors as one unbatched T×C sequence",
     "RNN expects 2-D input per sample (T×C), got a vector of 16 features"),
    ("LSTM", {"input_size": 4}, [(6, 5)], None, "LSTM input_size 4 does not match the input's 5 features"),
    ("Embedding", {}, [(8, 16)], "torch embeds any shape of ids; a T×C float sequence is not ids",
     "Embedding expects token ids (T,), got 8×16"),
    ("Embedding", {"num_embeddings": 5, "padding_idx": 5}, [(4,)], "torch only asserts it",
     "Embedding padding_idx 5 is outside the table of 5 embeddings"),
]


@pytest.mark.parametrize(("type_name", "params", "shapes", "ours_only", "message"), REFUSED,
                         ids=[f"{t}-{i}" for i, (t, *_) in enumerate(REFUSED)])
def test_refusals_in_the_users_words(type_name: str, params: dict[str, Any], shapes: list[Shape],
                                     ours_only: str | None, message: str) -> None:
    conformance.test_refusal(type_name, params, shapes, ours_only)
    spec = get_spec(type_name)
    assert spec is not None
    with pytest.raises(LayerError) as info:
        spec.infer(spec.resolve(params), shapes)
    assert info.value.message.startswith(message)


def test_dropout_on_one_layer_is_a_warning_with_a_fix() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [5, 4]})
    g.add_node("GRU", "gru", {"hidden_size": 3, "dropout": 0.3})
    g.add_node("Output", "out")
    g.add_edge("input", "gru")
    g.add_edge("gru", "out")
    (diag,) = analyze(g).diagnostics
    assert diag.severity is Severity.WARNING
    assert diag.message == "gru: dropout 0.3 has no effect with one layer (it acts between stacked layers)"
    assert diag.fix is not None and (diag.fix.param, diag.fix.value) == ("dropout", 0.0)


def language_model() -> Graph:
    """Token ids → Embedding → 2-layer bidirectional LSTM; its output, h_n and c_n are three Outputs."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [7]})
    g.add_node("Embedding", "embed", {"num_embeddings": 30, "embedding_dim": 5, "padding_idx": 0})
    g.add_node("LSTM", "lstm", {"hidden_size": 4, "num_layers": 2, "bidirectional": True})
    g.add_node("Linear", "decoder", {"out_features": 30})
    for name in ("logits", "h_n", "c_n"):
        g.add_node("Output", name)
    g.add_edge("input", "embed")
    g.add_edge("embed", "lstm")
    g.add_edge("lstm", "decoder")
    g.add_edge("decoder", "logits")
    g.add_edge("lstm", "h_n", from_port=1)
    g.add_edge("lstm", "c_n", from_port=2)
    return g


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(30, 5, padding_idx=0)
        self.lstm = nn.LSTM(5, 4, 2, batch_first=True, bidirectional=True)
        self.decoder = nn.Linear(8, 30)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, (h_n, c_n) = self.lstm(self.embed(x))
        return self.decoder(out), h_n, c_n


def test_analysis_shapes_ports_and_sequence_field() -> None:
    a = analyze(language_model())
    # a Linear on T×C acts per step, as meant here (one prediction per token): no warning
    assert a.diagnostics == ()
    lstm = a.nodes["lstm"]
    assert lstm.out_shapes == ((7, 8), (4, 4), (4, 4))
    assert a.nodes["embed"].out_shapes == ((7, 5),)
    assert a.nodes["decoder"].out_shapes == ((7, 30),)
    # along a sequence: one token per embedding, the whole sequence for a bidirectional LSTM
    assert [a.nodes[n].rf.short() for n in ("embed", "lstm", "decoder")] == ["1 step", "whole sequence",
                                                                            "whole sequence"]
    assert a.total_params == sum(p.numel() for p in HandWritten().parameters())


def test_compiled_model_is_torch_lstm_batch_first_with_one_port_per_result() -> None:
    model = compile_graph(language_model()).eval()
    lstm = model.get_submodule("lstm")
    assert isinstance(lstm, nn.LSTM) and lstm.batch_first
    ref = HandWritten().eval()
    assert list(model.state_dict()) == list(ref.state_dict())
    ref.load_state_dict(model.state_dict(), strict=True)
    x = torch.randint(0, 30, (3, 7))
    logits, h_n, c_n = model(x)
    want_logits, want_h, want_c = ref(x)
    assert torch.equal(logits, want_logits)
    # torch's h_n/c_n are (layers·dirs)×N×H; the ports are batch first: N×(layers·dirs)×H
    assert torch.equal(h_n, want_h.transpose(0, 1)) and torch.equal(c_n, want_c.transpose(0, 1))


def test_python_export_builds_the_same_model_and_feeds_token_ids(capsys: pytest.CaptureFixture[str]) -> None:
    g = language_model()
    model = compile_graph(g).eval()
    source = export.python_source(g, "Lm")
    assert "self.lstm = SequenceLSTM(5, 4, num_layers=2, bidirectional=True)" in source
    assert "torch.zeros(2, 7, dtype=torch.long)" in source
    namespace: dict[str, Any] = {"__name__": "__main__"}  # runs the file's own example call too
    exec(compile(source, "lm.py", "exec"), namespace)
    assert "tensor(" in capsys.readouterr().out
    exported = namespace["Lm"]().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    x = torch.randint(0, 30, (2, 7))
    for a, b in zip(exported(x), model(x), strict=True):
        assert torch.equal(a, b)


def test_palette_category() -> None:
    recurrent = {s.type for s in all_specs() if s.category is Category.RECURRENT}
    assert recurrent == {"Embedding", "RNN", "LSTM", "GRU"}


def test_a_compiled_recurrent_model_and_a_batch_first_torch_lstm_import_and_a_time_first_one_is_refused() -> None:
    from core.importer import ModelImportError, import_module

    g = Graph()
    g.add_node("Input", "input", {"shape": [7, 5]})
    g.add_node("GRU", "gru", {"hidden_size": 6, "bidirectional": True})
    g.add_node("Output", "out")
    g.add_node("Output", "h_n")
    g.add_edge("input", "gru")
    g.add_edge("gru", "out")
    g.add_edge("gru", "h_n", from_port=1)
    model = compile_graph(g).eval()
    again = import_module(model, input_shape=(7, 5))
    assert [again.node(n).type for n in again.nodes] == ["Input", "GRU", "Output", "Output"]
    rebuilt = compile_graph(again).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 7, 5)
    assert all(torch.equal(a, b) for a, b in zip(model(x), rebuilt(x), strict=True))

    class Plain(nn.Module):  # torch's own LSTM returns (output, (h_n, c_n)) with h_n batch-second
        def __init__(self, batch_first: bool = True) -> None:
            super().__init__()
            self.lstm = nn.LSTM(5, 6, batch_first=batch_first)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.lstm(x)[0]
            return out

    plain = Plain().eval()
    imported = compile_graph(import_module(plain, input_shape=(7, 5))).eval()
    imported.load_state_dict(plain.state_dict(), strict=True)
    assert torch.equal(imported(x), plain(x))
    with pytest.raises(ModelImportError, match="lstm"):  # time-first: the sample axes are not T×C
        import_module(Plain(batch_first=False), input_shape=(7, 5))
