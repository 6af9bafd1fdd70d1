"""Sequence templates (issue 14): d2l's RNN language model and the LSTM sequence classifier analyse
cleanly with exact parameter counts, their defaults fit their generated data, and one short epoch
trains through the engine."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.analysis import analyze
from core.compiler import compile_graph
from core.errors import SourceError
from core.training import TrainConfig, check_fit, open_dataset
from core.training.data.sequences import BRACKET_VOCAB, sentences_vocab_size
from core.training.session import TrainingSession
from templates import build_template, list_templates
from templates.sequence import BRACKETS_VOCAB, SENTENCES_VOCAB

CASES = [
    ("rnn-lm", {}),
    ("rnn-lm", {"cell": "lstm"}),
    ("rnn-lm", {"cell": "rnn", "num_layers": 2, "dropout": 0.1}),
    ("rnn-lm", {"cell": "lstm", "num_layers": 2, "tokenize": "word"}),
    ("lstm-classifier", {}),
    ("lstm-classifier", {"bidirectional": True, "pooling": "mean", "num_layers": 2}),
]


def test_vocabulary_constants_match_the_generated_data() -> None:
    assert SENTENCES_VOCAB == {t: sentences_vocab_size(t) for t in ("char", "word")}
    assert BRACKETS_VOCAB == len(BRACKET_VOCAB)
    infos = {info.name: info for info in list_templates()}
    assert infos["rnn-lm"].input_shape == (35,) and infos["rnn-lm"].num_classes == SENTENCES_VOCAB["char"]
    assert infos["lstm-classifier"].input_shape == (32,) and infos["lstm-classifier"].num_classes == 2


@pytest.mark.parametrize(("name", "options"), CASES)
def test_template_analyses_cleanly_with_exact_parameters(name: str, options: dict) -> None:
    project = build_template(name, **options)
    a = analyze(project.graph)
    assert a.ok and [d.message for d in a.diagnostics] == []
    model = compile_graph(project.graph)
    assert a.total_params == sum(p.numel() for p in model.parameters())
    config = TrainConfig.from_dict(project.training)
    assert config.extra == {} and config.grad_clip == 1.0  # d2l clips gradients
    data = open_dataset(config.dataset, task=config.task, tokenize=config.tokenize, train_size=4, val_size=2,
                        seq_len=a.input_shape[0])
    assert check_fit(data, a, project.graph) is None
    x, y = next(iter(data.batches("train", 4, torch.device("cpu"), None)))
    out = model(x)
    out = out[0] if isinstance(out, tuple | list) else out
    if config.task == "language-model":
        assert out.shape == (4, 35, data.num_classes) and y.shape == (4, 35)
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    else:
        assert out.shape == (4, 2) and y.shape == (4,)
        loss = torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    assert torch.isfinite(loss)


def test_rnn_lm_is_d2l_shaped() -> None:
    graph = build_template("rnn-lm").graph
    assert [n.type for n in graph.nodes.values()] == ["Input", "Embedding", "GRU", "Linear", "Output"]
    assert graph.nodes["rnn"].params["hidden_size"] == 256  # d2l's num_hiddens
    # GRU parameters: 3 gates × ((32 + 256)·256 + 2·256); embedding 27·32; linear 256·27 + 27.
    assert analyze(graph).total_params == 3 * ((32 + 256) * 256 + 2 * 256) + 27 * 32 + 256 * 27 + 27
    lstm = build_template("rnn-lm", cell="LSTM", num_classes=80).graph
    assert lstm.nodes["rnn"].type == "LSTM" and lstm.nodes["linear"].params["out_features"] == 80
    assert analyze(lstm).output_shapes[0] == (35, 80)


def test_bad_options_are_refused_in_a_sentence() -> None:
    with pytest.raises(SourceError, match="a language model cannot be bidirectional"):
        build_template("rnn-lm", bidirectional=True)
    with pytest.raises(SourceError, match="cell must be one of gru, lstm, rnn"):
        build_template("rnn-lm", cell="transformer")
    with pytest.raises(SourceError, match="pooling must be 'last' or 'mean'"):
        build_template("lstm-classifier", pooling="max")
    with pytest.raises(SourceError, match="hidden_size must be a positive integer"):
        build_template("lstm-classifier", hidden_size=0)


@pytest.mark.parametrize("name", ["rnn-lm", "lstm-classifier"])
def test_one_epoch_of_the_defaults_trains(name: str, tmp_path: Path) -> None:
    # The default data and settings; a narrower recurrent layer keeps the CPU test short (a GRU of
    # 256 units needs seconds per backward pass on a small CI machine).
    project = build_template(name, hidden_size=48)
    training = {**project.training, "epochs": 1, "train_size": 320, "val_size": 32, "device": "cpu",
                "generate_length": 20}
    failed: list[object] = []
    from core.training import Callbacks

    ended: list[object] = []
    session = TrainingSession(project, TrainConfig.from_dict(training),
                              Callbacks(failed=failed.append, epoch_end=ended.append), run_dir=tmp_path / "run")
    summary = session.run()
    assert summary.status == "completed", failed
    (metrics,) = ended
    if name == "rnn-lm":
        # One short epoch already beats guessing uniformly over the 27 characters.
        assert metrics.val_perplexity is not None and metrics.val_perplexity < SENTENCES_VOCAB["char"]
        assert metrics.generated
    else:
        assert metrics.val_acc is not None and 0.0 <= metrics.val_acc <= 1.0
