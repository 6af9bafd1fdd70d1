"""Token data: sequences of int64 token ids, held on the device like :class:`~.base.InMemorySource`.

A :class:`TokenSource` is what the sequence tasks train on (``modality = "tokens"``): the text
of a file (:mod:`.text`) or a generated set (:mod:`.sequences`), already cut into samples of
``T`` tokens. Its ``target`` says what a label is:

- ``"next-token"`` (language models): ``y`` is ``x`` shifted by one token, ``(B, T)``; the
  classes are the vocabulary, so ``num_classes`` is the vocabulary size V;
- ``"class"`` (sequence classification): one class per sequence, ``y`` is ``(B,)``.

Batches are an index gather on the device (no DataLoader, no per-sample Python); shuffling
draws from the run's generator and DDP ranks keep their ``[rank::world]`` slice of the same
global plan, exactly as the image sources do (:func:`.base.epoch_plan`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.training.data.base import (
    Augment,
    BatchPlan,
    BatchStream,
    DatasetError,
    DataSource,
    epoch_plan,
    pick_split,
    spread,
)

UNK = "<unk>"
TARGETS = ("next-token", "class")
TOKENIZERS = ("char", "word")
WORD = re.compile(r"\w+|[^\w\s]")  # words, and each punctuation mark as a token of its own


def check_tokenize(tokenize: str) -> str:
    if tokenize not in TOKENIZERS:
        raise DatasetError(f"tokenize must be 'char' or 'word', got {tokenize!r}")
    return tokenize


def normalize(text: str) -> str:
    """Windows and old Mac line endings become ``\\n`` (so a CRLF file has the vocabulary of an LF one)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_tokens(text: str, tokenize: str) -> list[str]:
    """``text`` as tokens: its characters, or its words and punctuation marks (whitespace dropped)."""
    text = normalize(text)
    return list(text) if tokenize == "char" else WORD.findall(text)


@dataclass
class TokenSplit:
    """One split: int64 inputs ``(N, T)`` and targets ``(N, T)`` (next-token) or ``(N,)`` (class)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device) -> TokenSplit:
        return TokenSplit(self.x.to(device), self.y.to(device))


def windows(ids: torch.Tensor, seq_len: int) -> TokenSplit:
    """Cut a 1-D token stream into next-token samples: window ``i`` holds tokens
    ``[i·T, i·T + T]`` (T + 1 of them); ``x`` is its first T, ``y`` its last T.

    The inputs do not overlap and every token after the first is a target exactly once (d2l's
    sequential partition); a trailing remainder shorter than T + 1 tokens is dropped.
    """
    t = int(seq_len)
    count = max(0, (int(ids.numel()) - 1) // t)
    body = ids[: count * t + 1]
    x = body[:-1].reshape(count, t) if count else torch.zeros((0, t), dtype=torch.int64)
    y = body[1:].reshape(count, t) if count else torch.zeros((0, t), dtype=torch.int64)
    return TokenSplit(x.contiguous(), y.contiguous())


class TokenStream(BatchStream):
    """One epoch of ``(x, y)`` token batches gathered on the device."""

    def __init__(self, split: TokenSplit, plan: BatchPlan, rank: int, world: int) -> None:
        super().__init__(plan, rank, world)
        self.split = split

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.split.x.device
        for step in range(len(self)):
            idx = self.local(self.plan.global_batch(step)).to(device, non_blocking=True)
            yield self.split.x.index_select(0, idx), self.split.y.index_select(0, idx)


class TokenSource(DataSource):
    """Token sequences of length ``seq_len`` over ``vocab`` (id → token), in memory.

    ``separator`` joins decoded tokens (``""`` for characters, ``" "`` for words); ``classes``
    are the vocabulary for ``target == "next-token"`` and the class names for ``"class"``.
    """

    modality = "tokens"

    def __init__(self, name: str, vocab: Sequence[str], seq_len: int, target: str, train: TokenSplit,
                 val: TokenSplit, classes: Sequence[str] = (), separator: str = "", tokenize: str = "char",
                 notes: Sequence[str] = ()) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.name = name
        self.vocab = tuple(vocab)
        self.seq_len = int(seq_len)
        self.sample_shape = (self.seq_len,)
        self.mean, self.std = (), ()
        self.target = target
        self.classes = self.vocab if target == "next-token" else tuple(classes)
        self.separator = separator
        self.tokenize = tokenize
        self.notes = list(notes)
        self.in_memory = True
        self._cpu = (train, val)
        self.train, self.val = train, val
        self._index = {tok: i for i, tok in enumerate(self.vocab)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------------------ text ↔ ids

    def encode(self, text: str) -> list[int]:
        """``text`` → token ids; a token outside the vocabulary becomes ``<unk>`` (id 0)."""
        unk = self._index.get(UNK, 0)
        return [self._index.get(tok, unk) for tok in split_tokens(text, self.tokenize)]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids → text, joined by :attr:`separator`; ids outside the vocabulary read ``<unk>``."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        v = len(self.vocab)
        return self.separator.join(self.vocab[i] if 0 <= i < v else UNK for i in values)

    # ------------------------------------------------------------------------------ DataSource

    def split(self, name: str) -> TokenSplit:
        return pick_split(name, self.train, self.val)

    def count(self, split: str) -> int:
        return len(self.split(split))

    def class_counts(self, split: str = "train") -> list[int]:
        """Samples per class (class target), or occurrences of each token as a target (next-token)."""
        y = self._cpu[0 if split == "train" else 1].y
        return torch.bincount(y.reshape(-1), minlength=self.num_classes).tolist()

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        """``n`` samples spread over the split as int64 ``(n, T)`` on the CPU, and a label each
        (the class, or for next-token the last target token)."""
        data = self._cpu[0 if split == "train" else 1]
        idx = spread(n, len(data))
        y = data.y[idx]
        labels = y[:, -1] if y.ndim == 2 else y
        return data.x[idx].clone(), labels.tolist()

    def report(self) -> str | None:
        return "; ".join(self.notes) or None

    def to(self, device: torch.device, channels_last: bool = False) -> TokenSource:
        self.train, self.val = self._cpu[0].to(device), self._cpu[1].to(device)
        return self

    def batches(self, split: str, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: Augment = Augment(), rank: int = 0, world: int = 1,
                drop_last: bool = False) -> BatchStream:
        data = self.split(split)
        if data.x.device != device:
            self.to(device)
            data = self.split(split)
        return TokenStream(data, epoch_plan(len(data), batch_size, generator, world, drop_last), rank, world)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update({"modality": self.modality, "target": self.target, "seq_len": self.seq_len,
                     "vocab_size": self.vocab_size, "vocab": list(self.vocab), "tokenize": self.tokenize})
        return info
