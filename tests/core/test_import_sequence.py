"""Importing sequence models that start from token ids: Embedding → RNN/LSTM/GRU or a Transformer encoder.

Each import must be the source: the same parameter count, the same ``state_dict`` keys and the
same eval outputs on random token ids. torch's recurrent states are (layers·dirs)×N×H while the
nodes' ``h_n``/``c_n`` ports are batch first, so ``h_n[-1]`` must become a Select on the state
axis; what cannot map faithfully (``batch_first=False``, other uses of a state) is refused by name.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph, plan_graph
from core.export import python_source, token_inputs
from core.importer import ModelImportError, import_with_weights
from tests.core.test_import_vit import randomize  # random weights everywhere, eval mode

VOCAB, STEPS = 37, 9


def same_model(model: nn.Module, shape: tuple[int, ...] = (STEPS,), vocab: int = VOCAB) -> Any:
    """Import ``model`` with its weights; the compiled import must be the model on random ids. Returns the graph."""
    graph, state = import_with_weights(model, shape)
    result = analyze(graph)
    assert result.ok, [d.message for d in result.errors]
    assert result.total_params == sum(p.numel() for p in model.parameters())
    compiled = compile_graph(graph, analysis=result)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    assert set(compiled.state_dict()) == set(model.state_dict())
    assert token_inputs(plan_graph(graph, result)) == {"input"}  # a token-id Input, as the exporter sees it
    ids = torch.randint(0, vocab, (3, *shape))
    with torch.no_grad():
        got, want = compiled(ids), model(ids)
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    return graph


def types(graph: Any) -> list[str]:
    return [n.type for n in graph.nodes.values()]


class RNNLM(nn.Module):
    """d2l's RNN language model: a vector per token, a GRU, a Linear on every step's state."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 16)
        self.rnn = nn.GRU(16, 32, batch_first=True)
        self.linear = nn.Linear(32, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(self.embedding(x))
        return self.linear(y)


class LSTMClassifier(nn.Module):
    """A sequence classifier on the last layer's final hidden state, ``h_n[-1]``."""

    def __init__(self, layers: int = 1, bidirectional: bool = False) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 12, padding_idx=0)
        self.lstm = nn.LSTM(12, 20, num_layers=layers, bidirectional=bidirectional, batch_first=True)
        self.head = nn.Linear(20, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embedding(x))
        return self.head(h[-1])


class BiLSTMTagger(nn.Module):
    """A 2-layer bidirectional LSTM: every step's output, plus both directions' last states side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        self.lstm = nn.LSTM(8, 10, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.steps = nn.Linear(20, 5)
        self.whole = nn.Linear(20, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, (h, _) = self.lstm(self.embedding(x))
        return self.steps(out), self.whole(torch.cat([h[-2], h[-1]], dim=1))


class TransformerClassifier(nn.Module):
    """A small Transformer encoder over embeddings, classified from the mean over time."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 16)
        layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embedding(x)).mean(1))


def test_d2l_rnn_language_model_imports_faithfully() -> None:
    graph = same_model(randomize(RNNLM()))
    assert types(graph) == ["Input", "Embedding", "GRU", "Linear", "Output"]


def test_lstm_classifier_on_the_last_hidden_state_selects_the_state_axis() -> None:
    graph = same_model(randomize(LSTMClassifier(layers=2)))
    assert "Select" in types(graph)
    (select,) = [n for n in graph.nodes.values() if n.type == "Select"]
    assert (select.params.get("dim", 1), select.params["index"]) == (1, -1)  # dim 1: the default
    (edge,) = graph.in_edges(select.id)
    assert (edge.src, edge.from_port) == ("lstm", 1)  # the h_n port, batch first


def test_bidirectional_two_layer_lstm_imports_faithfully() -> None:
    graph = same_model(randomize(BiLSTMTagger()))
    lstm = graph.nodes["lstm"]
    assert lstm.params["bidirectional"] is True and lstm.params["num_layers"] == 2


def test_transformer_encoder_classifier_imports_faithfully() -> None:
    same_model(randomize(TransformerClassifier()))


def test_exported_rnn_lm_template_imports_back_as_the_same_model() -> None:
    from templates import build_template

    graph = build_template("rnn-lm").graph
    namespace: dict[str, Any] = {}
    exec(compile(python_source(graph, "LM"), "lm.py", "exec"), namespace)
    model = randomize(namespace["LM"]())
    (shape,) = [n.params["shape"] for n in graph.nodes.values() if n.type == "Input"]
    vocab = next(n.params["num_embeddings"] for n in graph.nodes.values() if n.type == "Embedding")
    back = same_model(model, tuple(shape), vocab)
    assert sorted(types(back)) == sorted(types(graph))


def test_batch_first_false_is_refused_with_the_fix() -> None:
    class TimeFirst(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, 8)
            self.rnn = nn.RNN(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.rnn(self.embedding(x))[0]

    with pytest.raises(ModelImportError, match=r"module 'rnn' \(RNN\) with batch_first=False.*batch_first=True"):
        import_with_weights(TimeFirst(), (STEPS,))


def test_a_state_used_in_torch_axis_order_is_refused_by_name() -> None:
    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, 8)
            self.gru = nn.GRU(8, 8, num_layers=2, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, h = self.gru(self.embedding(x))
            return h.sum(0)

    with pytest.raises(ModelImportError, match=r"sum of the h_n of module 'gru' \(\(layers·directions\)×N×H "
                                               r"in torch\).*h_n\[-1\]"):
        import_with_weights(Flat(), (STEPS,))


def test_ids_reaching_an_embedding_through_other_operations_are_refused_by_name() -> None:
    class Shifted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.embedding(x + 1)

    with pytest.raises(ModelImportError, match=r"^module 'embedding' \(Embedding\) takes integer ids .* reads it "
                                               r"directly$"):
        import_with_weights(Shifted(), (STEPS,))


class StateOf(nn.Module):
    """A GRU classifier reading its final state in one of torch's ways (or d2l's LM returning it)."""

    def __init__(self, layers: int, read: str) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 8)
        self.gru = nn.GRU(8, 6, num_layers=layers, batch_first=True)
        self.head = nn.Linear(6 * layers, 3)
        self.read = read

    def forward(self, x: torch.Tensor) -> Any:
        _, h = self.gru(self.embedding(x))
        if self.read == "squeeze":
            return self.head(h.squeeze(0))
        if self.read == "transpose":
            return self.head(h.transpose(0, 1).flatten(1))
        return self.head(h[-1]), h  # d2l's language model returns its state too


@pytest.mark.parametrize(("layers", "read"), [(1, "squeeze"), (2, "transpose")])
def test_squeezed_or_transposed_states_import_faithfully(layers: int, read: str) -> None:
    same_model(randomize(StateOf(layers, read)))


def test_returning_a_state_in_torch_axis_order_is_refused_with_the_fix() -> None:
    with pytest.raises(ModelImportError, match=r"^StateOf.forward returns the h_n of module 'gru' .* at position 1, "
                                               r"which an Output holds batch first: return its .transpose\(0, 1\)"):
        import_with_weights(StateOf(1, "return"), (STEPS,))
