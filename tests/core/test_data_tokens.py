"""Token data (issue 14): text files, the generated sentences/brackets/digitsum sets, their batches,
the task check of open_dataset and the modality-aware check_fit. Tests write their own files."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core.training.data import DatasetError, TokenSource, check_fit, open_dataset, parse_spec
from core.training.data.sequences import (
    BRACKET_CLASSES,
    is_balanced,
    sentences_source,
    sentences_vocab_size,
)
from core.training.data.text import text_source
from core.training.data.tokens import UNK, split_tokens

CPU = torch.device("cpu")
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 6


def _write(tmp_path: Path, text: str | bytes, name: str = "book.txt") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


# ------------------------------------------------------------------------------------ text files


def test_text_file_char_level_windows_shift_by_one(tmp_path: Path) -> None:
    path = _write(tmp_path, TEXT)
    src = open_dataset(f"text:{path}", task="language-model", seq_len=10, val_fraction=0.1)
    assert isinstance(src, TokenSource)
    assert src.modality == "tokens" and src.target == "next-token"
    assert src.sample_shape == (10,) and src.seq_len == 10
    assert src.vocab[0] == UNK and src.classes == src.vocab and src.num_classes == len(src.vocab)
    assert src.separator == "" and src.mean == () and src.std == ()
    n = len(TEXT)
    n_val = round(n * 0.1)
    assert src.count("train") == (n - n_val - 1) // 10
    assert src.count("val") == (n_val - 1) // 10
    train = src.split("train")
    # y is x shifted by one token, and consecutive windows continue the text.
    assert torch.equal(train.x[:, 1:], train.y[:, :-1])
    assert torch.equal(train.x[1:, 0], train.y[:-1, -1])
    assert src.decode(train.x[0]) + src.decode(train.x[1]) == TEXT[:20]
    assert src.decode(train.y[0]) == TEXT[1:11]
    # Vocabulary from the training part, most frequent first: the space leads this text.
    assert src.vocab[1] == " "


def test_vocabulary_comes_from_the_training_part_only(tmp_path: Path) -> None:
    path = _write(tmp_path, "abab" * 50 + "xyz" * 10)
    src = text_source(path, seq_len=5, val_fraction=0.15)
    assert "x" not in src.vocab and set(src.vocab) == {UNK, "a", "b"}
    assert int((src.split("val").x == 0).sum()) > 0  # unseen letters read <unk>
    assert "<unk>" in (src.report() or "")


def test_word_level_splits_punctuation_and_round_trips(tmp_path: Path) -> None:
    path = _write(tmp_path, TEXT)
    src = open_dataset(f"text:{path}", task="lm", seq_len=8, tokenize="word")
    assert isinstance(src, TokenSource)
    assert src.separator == " " and "," in src.vocab and "times" in src.vocab
    sentence = "it was the age of wisdom , it was the epoch of belief ."
    assert src.decode(src.encode(sentence)) == sentence
    assert src.encode("zebra was") == [0, src.vocab.index("was")]
    assert split_tokens("Hi, you!", "word") == ["Hi", ",", "you", "!"]


def test_char_round_trip_with_non_ascii_and_crlf(tmp_path: Path) -> None:
    text = "Grüße aus Köln — 東京も 🙂 ça va.\r\n" * 20
    path = _write(tmp_path, text)
    src = open_dataset(f"text:{path}", task="language-model", seq_len=12)
    assert isinstance(src, TokenSource)
    assert "\r" not in src.vocab and "\n" in src.vocab and "🙂" in src.vocab and "東" in src.vocab
    s = "Köln 東京 🙂\n"
    assert src.decode(src.encode(s)) == s
    assert src.decode(src.encode("a\r\nb")) == src.decode(src.encode("a\nb"))
    lf = open_dataset(f"text:{_write(tmp_path, text.replace(chr(13), ''), 'lf.txt')}", task="language-model",
                      seq_len=12)
    assert isinstance(lf, TokenSource) and lf.vocab == src.vocab
    assert torch.equal(lf.split("train").x, src.split("train").x)


def test_utf8_bom_is_not_a_token(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + ("hello world " * 20).encode())
    src = text_source(path, seq_len=5)
    assert "\ufeff" not in src.vocab


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty"),
    (b"  \n\n ", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file (a zero byte at offset 8)"),
    (b"abc\xff\xfe" + b"def" * 50, "not UTF-8 text (byte 3 is 0xff)"),
    (b"one short line\n", "too short for one training and one validation sample of T=35"),
])
def test_unusable_files_are_one_sentence_naming_the_file(tmp_path: Path, content: bytes, expected: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DatasetError) as info:
        open_dataset(f"text:{path}", task="language-model")
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_file_folder_and_no_argument(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"text:{tmp_path / 'nope.txt'}", task="language-model")
    with pytest.raises(DatasetError, match="is a folder"):
        open_dataset(f"text:{tmp_path}", task="language-model")
    with pytest.raises(DatasetError, match="text needs a file"):
        parse_spec("text")
    with pytest.raises(DatasetError, match="takes no argument"):
        parse_spec("brackets:5")


def test_one_line_file_without_validation(tmp_path: Path) -> None:
    path = _write(tmp_path, "a single line of text without a newline at the end")
    src = text_source(path, seq_len=7, val_fraction=0.0)
    assert src.count("val") == 0 and src.count("train") == (len("a single line of text without a newline at "
                                                                "the end") - 1) // 7
    with pytest.raises(DatasetError, match=r"too short for one training sample of T=60 characters"):
        text_source(path, seq_len=60, val_fraction=0.0)


def test_validation_takes_at_least_one_sample_and_sizes_cap(tmp_path: Path) -> None:
    path = _write(tmp_path, "x" * 100)
    src = text_source(path, seq_len=10, val_fraction=0.01)  # 1 % is 1 char: raised to T + 1
    assert src.count("val") == 1
    capped = text_source(_write(tmp_path, TEXT, "b.txt"), seq_len=10, train_size=3, val_size=2)
    assert capped.count("train") == 3 and capped.count("val") == 2


def test_unknown_tokenizer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="tokenize must be 'char' or 'word'"):
        open_dataset("sentences", task="language-model", tokenize="bpe")


# --------------------------------------------------------------------------------- generated sets


@pytest.mark.parametrize("tokenize", ["char", "word"])
def test_sentences_are_seeded_and_sized(tokenize: str) -> None:
    a = open_dataset("sentences", task="language-model", seed=3, train_size=40, val_size=7, tokenize=tokenize)
    b = open_dataset("sentences", task="language-model", seed=3, train_size=40, val_size=7, tokenize=tokenize)
    c = open_dataset("sentences", task="language-model", seed=4, train_size=40, val_size=7, tokenize=tokenize)
    assert isinstance(a, TokenSource) and isinstance(b, TokenSource) and isinstance(c, TokenSource)
    assert a.count("train") == 40 and a.count("val") == 7 and a.seq_len == 35
    assert torch.equal(a.split("train").x, b.split("train").x) and a.vocab == b.vocab
    assert not torch.equal(a.split("train").x, c.split("train").x)
    assert not torch.equal(a.split("train").x[:7], a.split("val").x)  # validation is other text
    assert a.vocab_size == sentences_vocab_size(tokenize) == c.vocab_size
    assert int((a.split("train").x == 0).sum()) == 0  # the grammar never yields <unk>
    text = a.decode(a.split("train").x[:4].reshape(-1))
    assert "." in text and text == text.lower()


def test_sentences_vocab_size_is_the_same_for_any_size() -> None:
    tiny = sentences_source(seed=9, train=1, val=1)
    assert tiny.vocab_size == sentences_vocab_size("char") == 27


def test_brackets_half_balanced_and_labelled_right() -> None:
    src = open_dataset("brackets", task="sequence-classification", seed=1, train_size=400, val_size=50)
    assert isinstance(src, TokenSource)
    assert src.target == "class" and tuple(src.classes) == BRACKET_CLASSES and src.sample_shape == (32,)
    assert src.class_counts("train") == [200, 200]
    x, y = src.split("train").x, src.split("train").y
    for row, label in zip(x.tolist(), y.tolist(), strict=True):
        text = src.decode(row)
        assert len(text) == 32 and set(text) <= set("()[]")
        assert is_balanced(text) == bool(label)
    # The unbalanced ones are not told apart by counting alone: many have as many openers as closers.
    unbalanced = [src.decode(r) for r, lab in zip(x.tolist(), y.tolist(), strict=True) if not lab]
    even = sum(t.count("(") + t.count("[") == 16 for t in unbalanced)
    assert even > len(unbalanced) // 3
    with pytest.raises(DatasetError, match="even length T"):
        open_dataset("brackets", task="sequence-classification", seq_len=7)


def test_digitsum_labels_are_the_sum_mod_10() -> None:
    src = open_dataset("digitsum", task="sequence-classification", seed=2, train_size=300, val_size=30,
                       seq_len=6)
    assert isinstance(src, TokenSource) and src.sample_shape == (6,)
    split = src.split("train")
    digits = torch.tensor([[int(ch) for ch in src.decode(row)] for row in split.x.tolist()])
    assert torch.equal(digits.sum(1) % 10, split.y)
    again = open_dataset("digitsum", task="sequence-classification", seed=2, train_size=300, val_size=30,
                         seq_len=6)
    assert isinstance(again, TokenSource) and torch.equal(again.split("val").x, src.split("val").x)


# ------------------------------------------------------------------------------------ batches


def test_batches_shuffle_with_the_generator_and_slice_by_rank() -> None:
    src = open_dataset("digitsum", task="sequence-classification", train_size=20, val_size=4, seq_len=5)
    plain = list(src.batches("train", 8, CPU, None))
    assert len(plain) == 3 and [len(x) for x, _ in plain] == [8, 8, 4]
    x0, y0 = plain[0]
    assert x0.dtype == torch.int64 and y0.dtype == torch.int64 and x0.shape == (8, 5) and y0.shape == (8,)
    assert torch.equal(x0, src.split("train").x[:8])

    def run(rank: int, world: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(src.batches("train", 8, CPU, torch.Generator().manual_seed(5), rank=rank, world=world))

    whole = run(0, 1)
    halves = [run(r, 2) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == len(whole)
    merged = torch.stack([halves[0][0][0], halves[1][0][0]], 1).reshape(8, 5)  # [rank::world] interleaves
    assert torch.equal(merged, whole[0][0])
    assert not torch.equal(whole[0][0], x0)  # shuffled
    assert len(list(src.batches("train", 8, CPU, None, drop_last=True))) == 2


def test_next_token_batches_keep_the_shift() -> None:
    src = sentences_source(seed=0, train=30, val=5, seq_len=9)
    for x, y in src.batches("train", 7, CPU, torch.Generator().manual_seed(1)):
        assert x.shape == y.shape and x.shape[1] == 9
        assert torch.equal(x[:, 1:], y[:, :-1])
    x, labels = src.preview(4)
    assert x.shape == (4, 9) and x.dtype == torch.int64 and len(labels) == 4
    assert labels[0] == int(src.split("train").y[0, -1])
    assert sum(src.class_counts("train")) == 30 * 9
    info = src.describe()
    assert info["modality"] == "tokens" and info["vocab_size"] == src.vocab_size and info["sample_shape"] == [9]


# -------------------------------------------------------------------------------- task and fit


def test_a_task_refuses_the_other_modality_in_one_sentence() -> None:
    with pytest.raises(DatasetError) as info:
        open_dataset("shapes", task="sequence-classification")
    assert str(info.value).startswith("The sequence-classification task needs token data (brackets, digitsum); "
                                      "shapes is images")
    with pytest.raises(DatasetError, match="The classification task needs image data"):
        open_dataset("brackets")
    with pytest.raises(DatasetError, match="The language-model task needs text"):
        open_dataset("digitsum", task="language-model")


def _analysis(input_shape: list[int], output: list[int]) -> SimpleNamespace:
    return SimpleNamespace(input_shape=input_shape, output_shapes=[output])


def test_check_fit_for_tokens_names_the_fix() -> None:
    lm = sentences_source(train=2, val=1, seq_len=35)
    v = lm.vocab_size
    assert check_fit(lm, _analysis([35], [35, v])) is None
    wrong_in = check_fit(lm, _analysis([3, 32, 32], [35, v]))
    assert wrong_in is not None and "set the Input shape to [35]" in wrong_in.message
    assert wrong_in.fixes[0].value == [35]
    wrong_v = check_fit(lm, _analysis([35], [35, 10]))
    assert wrong_v is not None and f"set the last layer's output width to {v}" in wrong_v.message
    flat = check_fit(lm, _analysis([35], [v]))
    assert flat is not None and f"T×V (35×{v})" in flat.message
    cls = open_dataset("brackets", task="sequence-classification", train_size=2, val_size=2)
    assert check_fit(cls, _analysis([32], [2])) is None
    per_step = check_fit(cls, _analysis([32], [32, 2]))
    assert per_step is not None and "take the last step (Select) or the mean over time (Mean)" in per_step.message
    wide = check_fit(cls, _analysis([32], [10]))
    assert wide is not None and "has 2 classes but the network's output has 10 values" in wide.message


def test_check_fit_asks_for_an_embedding_row_per_token() -> None:
    from core.analysis import analyze
    from core.graph import Graph

    data = sentences_source(train=2, val=1, seq_len=35, tokenize="word")
    v = data.vocab_size
    g = Graph()
    g.add_node("Input", "input", {"shape": [35]})
    g.add_node("Embedding", "embed", {"num_embeddings": 27, "embedding_dim": 8})
    g.add_node("GRU", "rnn", {"hidden_size": 16})
    g.add_node("Linear", "head", {"out_features": v})
    g.add_node("Output", "out")
    for a, b in (("input", "embed"), ("embed", "rnn"), ("rnn", "head"), ("head", "out")):
        g.add_edge(a, b)
    found = check_fit(data, analyze(g), g)
    assert found is not None
    assert found.message == (f"the dataset sentences has {v} token ids but embed has 27 embeddings: "
                             f"set embed.num_embeddings to {v}")
    assert [(f.node, f.param, f.value) for f in found.fixes] == [("embed", "num_embeddings", v)]
    g.set_param("embed", "num_embeddings", v)
    assert check_fit(data, analyze(g), g) is None
