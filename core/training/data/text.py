"""``text:FILE``: character- or word-level language modelling on any UTF-8 text file.

The file is read whole, its line endings made ``\\n``, and split into tokens (characters, or
words and punctuation marks). The last ``val_fraction`` of the tokens is the validation text
(at least one sample of T + 1 tokens when a fraction is asked for), the rest the training text.
The vocabulary comes from the training text only, most frequent token first, with ``<unk>`` as
id 0 (validation tokens the training text never shows read ``<unk>``). Both parts are cut into
next-token samples by :func:`.tokens.windows`.

Every way a file can be unusable is one sentence naming the file: missing, a folder, empty,
binary, not UTF-8 (with the byte offset), or too short for one sample of the graph's length T.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.training.data.base import DatasetError
from core.training.data.tokens import UNK, WORD, TokenSource, TokenSplit, check_tokenize, normalize, windows

_BOM = b"\xef\xbb\xbf"


def build_vocab(tokens: Sequence[str] | Counter[str]) -> tuple[str, ...]:
    """``<unk>`` then the tokens by falling frequency (ties in code-point order, so it is deterministic)."""
    counts = tokens if isinstance(tokens, Counter) else Counter(tokens)
    counts.pop(UNK, None)
    return (UNK, *sorted(counts, key=lambda tok: (-counts[tok], tok)))


def encode_chars(text: str, vocab: Sequence[str]) -> torch.Tensor:
    """Characters → ids through a code-point lookup table (a Python loop over a large file is slow)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    keys = np.array([ord(tok) for tok in vocab if len(tok) == 1], dtype=np.uint32)
    ids = np.array([i for i, tok in enumerate(vocab) if len(tok) == 1], dtype=np.int64)
    if keys.size == 0:
        return torch.zeros(codes.size, dtype=torch.int64)
    order = np.argsort(keys)
    keys, ids = keys[order], ids[order]
    pos = np.clip(np.searchsorted(keys, codes), 0, keys.size - 1)
    out = np.where(keys[pos] == codes, ids[pos], 0)
    return torch.from_numpy(out.astype(np.int64))


def encode_tokens(tokens: Sequence[str], vocab: Sequence[str]) -> torch.Tensor:
    index = {tok: i for i, tok in enumerate(vocab)}
    return torch.tensor([index.get(tok, 0) for tok in tokens], dtype=torch.int64)


def read_text(path: Path) -> str:
    """The file as text, or a :class:`DatasetError` that names it and says what is wrong."""
    if not path.exists():
        raise DatasetError(f"text file {path} does not exist")
    if path.is_dir():
        raise DatasetError(f"{path} is a folder: text:FILE needs a UTF-8 text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    start = len(_BOM) if data.startswith(_BOM) else 0
    zero = data.find(b"\x00", start)
    if zero >= 0:
        raise DatasetError(f"{path} looks like a binary file (a zero byte at offset {zero}), not UTF-8 text")
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        raise DatasetError(f"{path} is not UTF-8 text (byte {at} is 0x{data[at]:02x}): save it as UTF-8") from None
    if not text.strip():
        raise DatasetError(f"{path} is empty: a language model needs some text to learn from")
    return normalize(text)


def text_source(path: str | Path, seq_len: int = 35, tokenize: str = "char", val_fraction: float = 0.1,
                train_size: int | None = None, val_size: int | None = None) -> TokenSource:
    """A next-token :class:`TokenSource` over the text of ``path`` (see the module doc)."""
    path = Path(path)
    check_tokenize(tokenize)
    t = int(seq_len)
    if t < 1:
        raise DatasetError(f"the sequence length T must be at least 1, got {t}")
    text = read_text(path)
    unit = "character" if tokenize == "char" else "word"
    if tokenize == "char":
        n = len(text)
    else:
        tokens = WORD.findall(text)
        n = len(tokens)
    n_val = max(round(n * val_fraction), t + 1) if val_fraction > 0 else 0
    if n - n_val < t + 1:
        need = "one training and one validation sample" if n_val else "one training sample"
        raise DatasetError(f"{path} has {n} {unit}s: too short for {need} of T={t} {unit}s (+1 to predict); "
                           f"use a longer text or a shorter Input length")
    cut = n - n_val
    if tokenize == "char":
        vocab = build_vocab(Counter(text[:cut]))
        ids = torch.cat([encode_chars(text[:cut], vocab), encode_chars(text[cut:], vocab)])
    else:
        vocab = build_vocab(Counter(tokens[:cut]))
        ids = encode_tokens(tokens, vocab)
    train, val = windows(ids[:cut], t), windows(ids[cut:], t)
    train = TokenSplit(train.x[:train_size], train.y[:train_size]) if train_size is not None else train
    val = TokenSplit(val.x[:val_size], val.y[:val_size]) if val_size is not None else val
    unknown = int((ids[cut:] == 0).sum())
    notes = [f"{n:,} {unit}s, vocabulary of {len(vocab):,} tokens"]
    if unknown:
        notes.append(f"{unknown:,} validation {unit}s never seen in the training text read {UNK}")
    return TokenSource(name=f"text:{path.name}", vocab=vocab, seq_len=t, target="next-token", train=train,
                       val=val, separator="" if tokenize == "char" else " ", tokenize=tokenize, notes=notes)
