"""Sequence models (issue 14): d2l's RNN language model and an LSTM sequence classifier.

- ``rnn-lm``: "Dive into Deep Learning"'s recurrent language model (chapters 9–10) with a learned
  embedding in place of one-hot input: token ids (T,) → Embedding → GRU, LSTM or plain RNN
  (deep when ``num_layers`` > 1) → Linear to the vocabulary at every step (T×V). It trains on
  the generated ``sentences`` (no download) with d2l's gradient clipping at norm 1; point it at a
  text file (``text:FILE``) for real work and set ``num_classes`` to that file's vocabulary size.
- ``lstm-classifier``: token ids → Embedding → LSTM (optionally bidirectional) → the last step or
  the mean over time → Linear to the classes; it trains on the generated ``brackets`` set
  (balanced or not).

The vocabulary size V of the default data is a constant here (templates import no torch, and
the generated sets' vocabulary is fixed by their grammar); ``tests/core/test_templates_sequence.py``
checks each one against the data source.
"""

from __future__ import annotations

from typing import Any

from core.errors import SourceError
from core.project import Project
from templates.builder import Builder
from templates.registry import add_template

# Vocabulary sizes of the generated sets (core.training.data.sequences), <unk> included.
SENTENCES_VOCAB = {"char": 27, "word": 110}
BRACKETS_VOCAB = 5  # <unk> ( ) [ ]
TEXT_SEQ_LEN = 35  # d2l's num_steps
CLASS_SEQ_LEN = 32  # the generated classification sets' default length
CELLS = {"gru": "GRU", "lstm": "LSTM", "rnn": "RNN"}
POOLINGS = ("last", "mean")


def _cell(cell: str) -> str:
    key = str(cell).lower()
    if key not in CELLS:
        raise SourceError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    return CELLS[key]


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError(f"{name} must be a positive integer, got {value!r}")
    return value


def _start(seq_len: int, hidden_size: int, num_layers: int, dropout: float) -> tuple[Builder, str, dict[str, Any]]:
    """A builder with the (T,) token-id Input, and the recurrent layer's params as a user would set them."""
    b = Builder()
    x = b.input((_positive("seq_len", seq_len),))
    params: dict[str, Any] = {"hidden_size": _positive("hidden_size", hidden_size)}
    layers = _positive("num_layers", num_layers)
    if layers != 1:
        params["num_layers"] = layers
        if dropout:
            params["dropout"] = float(dropout)
    return b, x, params


def rnn_lm(*, num_classes: int | None = None, cell: str = "gru", hidden_size: int = 256, num_layers: int = 1,
           embedding_dim: int = 32, dropout: float = 0.0, seq_len: int = TEXT_SEQ_LEN, tokenize: str = "char",
           bidirectional: bool = False) -> Project:
    """d2l's RNN language model; ``num_classes`` is the vocabulary size V (default: the sentences')."""
    if bidirectional:
        raise SourceError("a language model cannot be bidirectional: reading the sequence backwards shows it the "
                          "very tokens it must predict; use lstm-classifier for a bidirectional model")
    if tokenize not in SENTENCES_VOCAB:
        raise SourceError(f"tokenize must be 'char' or 'word', got {tokenize!r}")
    vocab = _positive("num_classes", SENTENCES_VOCAB[tokenize] if num_classes is None else num_classes)
    kind = _cell(cell)
    b, x, rnn = _start(seq_len, hidden_size, num_layers, dropout)
    layers = int(rnn.get("num_layers", 1))
    with b.group("encoder", f"Embedding → {kind} (the hidden state carries the prefix)"):
        x = b.chain(x, [("Embedding", "embedding", {"num_embeddings": vocab,
                                                    "embedding_dim": _positive("embedding_dim", embedding_dim)}),
                        (kind, "rnn", rnn)])
    with b.group("decoder", "Linear to the vocabulary at every step (T×V logits)"):
        if dropout and layers == 1:
            x = b.add("Dropout", "dropout", {"p": float(dropout)}, inputs=x)
        x = b.add("Linear", "linear", {"out_features": vocab}, inputs=x)  # on T×H: per time step
    b.output(x)
    deep = f"{layers}-layer " if layers > 1 else ""
    # d2l trains its RNN language models with SGD and clips gradients at norm 1; Adam reaches a
    # low perplexity in fewer epochs of the small generated set, which is what a first run needs.
    training = {"task": "language-model", "dataset": "sentences", "tokenize": tokenize, "epochs": 8,
                "batch_size": 32, "optimizer": "adam", "lr": 0.005, "grad_clip": 1.0}
    return b.project(f"{deep}{kind} language model", training)


def lstm_classifier(*, num_classes: int = 2, vocab_size: int = BRACKETS_VOCAB, hidden_size: int = 64,
                    num_layers: int = 1, embedding_dim: int = 16, bidirectional: bool = False,
                    pooling: str = "last", seq_len: int = CLASS_SEQ_LEN) -> Project:
    """Embedding → LSTM → last step (or mean over time) → Linear(classes), on the brackets set."""
    if pooling not in POOLINGS:
        raise SourceError(f"pooling must be 'last' or 'mean', got {pooling!r}")
    b, x, lstm = _start(seq_len, hidden_size, num_layers, 0.0)
    if bidirectional:
        lstm["bidirectional"] = True
    with b.group("encoder", "Embedding → LSTM" + (" (both directions)" if bidirectional else "")):
        x = b.chain(x, [("Embedding", "embedding", {"num_embeddings": _positive("vocab_size", vocab_size),
                                                    "embedding_dim": _positive("embedding_dim", embedding_dim)}),
                        ("LSTM", "lstm", lstm)])
    with b.group("head", "Last step → Linear" if pooling == "last" else "Mean over time → Linear"):
        if pooling == "last":
            x = b.add("Select", "last_step", {"dim": 1, "index": -1}, inputs=x)
        else:
            x = b.add("Mean", "mean_over_time", {"dim": [1]}, inputs=x)
        x = b.add("Linear", "fc", {"out_features": num_classes}, inputs=x)
    b.output(x)
    training = {"task": "sequence-classification", "dataset": "brackets", "epochs": 5, "batch_size": 64,
                "optimizer": "adam", "lr": 0.005, "grad_clip": 1.0}
    return b.project(("Bidirectional " if bidirectional else "") + "LSTM sequence classifier", training)


add_template("rnn-lm", "RNN language model",
             "d2l's recurrent language model: token ids → Embedding → GRU (or LSTM, plain RNN; deep with "
             "num_layers) → Linear to the vocabulary at every step. Trains on generated sentences with "
             "gradient clipping; num_classes is the vocabulary size.",
             (TEXT_SEQ_LEN,), SENTENCES_VOCAB["char"], rnn_lm)
add_template("lstm-classifier", "LSTM sequence classifier",
             "Token ids → Embedding → LSTM (bidirectional option) → last step or mean over time → Linear. "
             "Trains on generated bracket strings: balanced or not.",
             (CLASS_SEQ_LEN,), 2, lstm_classifier)

__all__ = ["BRACKETS_VOCAB", "SENTENCES_VOCAB", "lstm_classifier", "rnn_lm"]
