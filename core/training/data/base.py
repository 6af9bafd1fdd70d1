"""Data sources: what the engine trains on, and how batches reach the device.

A :class:`DataSource` knows its classes, per-sample shape, counts, per-channel mean/std and can
show a few samples (:meth:`DataSource.preview`). :meth:`DataSource.batches` yields normalised
float batches on the device for one epoch.

Small datasets (:class:`InMemorySource`) sit on the device as uint8 tensors: a batch is an index
gather, then augmentation (random crop with zero padding, horizontal flip) and normalisation run
batched on the device — no DataLoader, no per-sample Python. Folder datasets stream uint8 batches
through a DataLoader (see :mod:`core.training.data.folder`) and then share the same device-side
augmentation.

Randomness (shuffling, crop offsets, flips) comes from one CPU ``torch.Generator`` the engine owns
and checkpoints, so a resumed run draws exactly what an uninterrupted one would. Under DDP every
rank draws the same global plan and keeps its own slice (``[rank::world]``), so N processes with
batch B/N see exactly the samples and augmentations one process sees with batch B.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F


class DatasetError(Exception):
    """A dataset that cannot be opened or used; ``str()`` says what is wrong and what to do."""


@dataclass(frozen=True)
class Augment:
    """On-device augmentation settings (the d2l/CIFAR classics)."""

    crop_padding: int = 0  # random crop of the original size from the image zero-padded by this
    hflip: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip


@dataclass
class Split:
    """One split held in memory: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class BatchPlan:
    """The global index order of one epoch and the random augmentation draws per global batch."""

    order: torch.Tensor  # int64 indices into the split, global (all ranks)
    batch_size: int  # global batch size
    drop_last: bool

    @property
    def steps(self) -> int:
        n = int(self.order.numel())
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def global_batch(self, step: int) -> torch.Tensor:
        return self.order[step * self.batch_size:(step + 1) * self.batch_size]


class DataSource:
    """Base class: metadata, preview and the epoch batch stream. Subclasses fill the fields."""

    name: str = ""
    # What a sample is, matched against the task's (core.training.tasks): "image" (uint8 C×H×W) or
    # "tokens" (int64 token ids, T per sample: core.training.data.tokens.TokenSource).
    modality: str = "image"
    # What a sample's target is, matched against the task's: "class" (one label per sample),
    # "next-token" (token sources) or "mask" (a class per pixel: core.training.data.segmentation).
    target: str = "class"
    classes: Sequence[str] = ()
    sample_shape: tuple[int, ...] = (0, 0, 0)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    in_memory: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_to_idx(self) -> dict[str, int]:
        """Class name → label, as torchvision's datasets call it (folders: sorted subfolder names)."""
        return {name: i for i, name in enumerate(self.classes)}

    def count(self, split: str) -> int:
        raise NotImplementedError

    @property
    def train_count(self) -> int:
        return self.count("train")

    @property
    def val_count(self) -> int:
        return self.count("val")

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        """``n`` samples (spread over the split) as uint8 ``(n, C, H, W)`` on the CPU, and labels."""
        raise NotImplementedError

    def class_counts(self, split: str = "train") -> list[int]:
        raise NotImplementedError

    def report(self) -> str | None:
        """Anything the user should know about the data (skipped files…), or ``None``."""
        return None

    def to(self, device: torch.device, channels_last: bool = False) -> DataSource:
        """Move in-memory data to ``device`` (no-op for streamed sources); ``channels_last`` stores
        the images NHWC so batches come out in the layout the model runs in, without a copy."""
        return self

    def batches(self, split: str, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: Augment = Augment(), rank: int = 0, world: int = 1,
                drop_last: bool = False) -> BatchStream:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Plain-JSON metadata, for run folders and the GUI's dataset panel."""
        return {"name": self.name, "classes": list(self.classes), "sample_shape": list(self.sample_shape),
                "train_count": self.train_count, "val_count": self.val_count,
                "mean": [round(m, 4) for m in self.mean], "std": [round(s, 4) for s in self.std],
                "in_memory": self.in_memory}


class Normalizer:
    """uint8 batch → float32 ``(x / 255 − mean) / std`` as one multiply-add on the device."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device) -> None:
        m = torch.tensor(mean, dtype=torch.float32)
        s = torch.tensor(std, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * s)).view(1, -1, 1, 1).to(device)
        self.shift = (-m / s).view(1, -1, 1, 1).to(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x.to(torch.float32), self.scale)


def draw_augment(augment: Augment, n: int, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Random draws for ``n`` samples (CPU, from the run's data generator)."""
    draws: dict[str, torch.Tensor] = {}
    if augment.crop_padding > 0:
        draws["shift"] = torch.randint(0, 2 * augment.crop_padding + 1, (n, 2), generator=generator)
    if augment.hflip:
        draws["flip"] = torch.rand(n, generator=generator) < 0.5
    return draws


def apply_augment(x: torch.Tensor, augment: Augment, draws: dict[str, torch.Tensor], fill: int = 0) -> torch.Tensor:
    """Crop-with-padding and flip a uint8 ``(B, C, H, W)`` batch on its device, per sample; the
    padding is ``fill`` (0 for images; segmentation masks pad with their ignore index)."""
    if "shift" in draws:
        p = augment.crop_padding
        b, c, h, w = x.shape
        padded = F.pad(x, (p, p, p, p), value=fill)
        shift = draws["shift"].to(x.device, non_blocking=True)
        rows = (shift[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, c, h, w)
        cols = (shift[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, c, h, w)
        x = _crop(padded, rows, cols)
    if "flip" in draws:
        flip = draws["flip"].to(x.device, non_blocking=True).view(-1, 1, 1, 1)
        x = torch.where(flip, x.flip(3), x)
    return x


def apply_mask_augment(masks: torch.Tensor, augment: Augment, draws: dict[str, torch.Tensor],
                       fill: int) -> torch.Tensor:
    """The same crop and flip as :func:`apply_augment` with the same ``draws``, on uint8 masks
    ``(B, H, W)`` padded with ``fill``: image and mask stay aligned pixel for pixel."""
    return apply_augment(masks.unsqueeze(1), augment, draws, fill).squeeze(1)


def _crop(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Each sample's window of its padded image: two gathers, rows first, then columns."""
    b, c, h, _ = rows.shape
    pw = padded.shape[3]
    by_rows = padded.gather(2, rows[:, :, :, :1].expand(b, c, h, pw))
    return by_rows.gather(3, cols)


def gather(images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``images[idx]`` keeping the storage layout: NHWC-stored images give a channels_last batch
    (``index_select`` alone would return a plain NCHW copy)."""
    if images.ndim == 4 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
        return images.permute(0, 2, 3, 1).index_select(0, idx).permute(0, 3, 1, 2)
    return images.index_select(0, idx)


class BatchStream:
    """One epoch of ``(x, y)`` batches on the device: ``len()`` is the number of steps."""

    def __init__(self, plan: BatchPlan, rank: int, world: int) -> None:
        self.plan = plan
        self.rank = rank
        self.world = world

    def __len__(self) -> int:
        return self.plan.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def local(self, global_idx: torch.Tensor) -> torch.Tensor:
        return global_idx[self.rank::self.world] if self.world > 1 else global_idx


class InMemoryStream(BatchStream):
    def __init__(self, split: Split, plan: BatchPlan, normalize: Normalizer, augment: Augment,
                 generator: torch.Generator | None, rank: int, world: int) -> None:
        super().__init__(plan, rank, world)
        self.split = split
        self.normalize = normalize
        self.augment = augment
        self.generator = generator

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.split.images.device
        for step in range(len(self)):
            gidx = self.plan.global_batch(step)
            draws = draw_augment(self.augment, int(gidx.numel()), self.generator) if self.augment.active else {}
            idx = self.local(gidx).to(device, non_blocking=True)
            x = gather(self.split.images, idx)
            y = self.split.labels.index_select(0, idx)
            if draws:
                x = apply_augment(x, self.augment, {k: self.local(v) for k, v in draws.items()})
            yield self.normalize(x), y


class InMemorySource(DataSource):
    """A dataset held as uint8 tensors (on the CPU until :meth:`to` moves it to the device)."""

    def __init__(self, name: str, classes: Sequence[str], train: Split, val: Split,
                 mean: Sequence[float] = (), std: Sequence[float] = (), notes: Sequence[str] = ()) -> None:
        self.name = name
        self.classes = tuple(classes)
        self.train, self.val = train, val
        c, h, w = train.images.shape[1:]
        self.sample_shape = (int(c), int(h), int(w))
        if mean and std:
            self.mean, self.std = tuple(mean), tuple(std)
        else:
            self.mean, self.std = channel_stats(train.images)
        self.notes = list(notes)
        self._cpu = (train, val)
        self._normalizers: dict[str, Normalizer] = {}
        self.in_memory = True

    def split(self, name: str) -> Split:
        return pick_split(name, self.train, self.val)

    def count(self, split: str) -> int:
        return len(self.split(split))

    def class_counts(self, split: str = "train") -> list[int]:
        labels = self._cpu[0 if split == "train" else 1].labels
        return torch.bincount(labels, minlength=self.num_classes).tolist()

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        data = self._cpu[0 if split == "train" else 1]
        idx = spread(n, len(data))
        return data.images[idx].clone(), data.labels[idx].tolist()

    def report(self) -> str | None:
        return "; ".join(self.notes) or None

    def to(self, device: torch.device, channels_last: bool = False) -> InMemorySource:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.train = Split(self._cpu[0].images.to(device, memory_format=fmt), self._cpu[0].labels.to(device))
        self.val = Split(self._cpu[1].images.to(device, memory_format=fmt), self._cpu[1].labels.to(device))
        return self

    def batches(self, split: str, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: Augment = Augment(), rank: int = 0, world: int = 1,
                drop_last: bool = False) -> BatchStream:
        data = self.split(split)
        if data.images.device != device:
            self.to(device)
            data = self.split(split)
        key = str(device)
        if key not in self._normalizers:
            self._normalizers[key] = Normalizer(self.mean, self.std, device)
        return InMemoryStream(data, epoch_plan(len(data), batch_size, generator, world, drop_last),
                              self._normalizers[key], augment, generator, rank, world)


_S = TypeVar("_S")


def pick_split(name: str, train: _S, val: _S) -> _S:
    """``train`` or ``val`` by name; anything else is a programming error."""
    if name not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {name!r}")
    return train if name == "train" else val


def spread(n: int, length: int) -> torch.Tensor:
    """Up to ``n`` indices spread evenly over ``range(length)`` (a preview shows the whole split)."""
    n = max(0, min(n, length))
    return torch.linspace(0, length - 1, n).round().long() if n else torch.zeros(0, dtype=torch.long)


def epoch_plan(n: int, batch_size: int, generator: torch.Generator | None, world: int,
               drop_last: bool) -> BatchPlan:
    """One epoch over ``n`` samples: shuffled by ``generator`` (in order without one), sharded."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return shard_plan(order, batch_size, world, drop_last)


def shard_plan(order: torch.Tensor, batch_size: int, world: int, drop_last: bool) -> BatchPlan:
    """A plan whose global batches split evenly over ``world`` ranks.

    Like ``DistributedSampler``, the order is padded by wrapping around so every rank runs the
    same number of steps with the same local batch size (a rank that ran one step more would
    hang the others in the gradient all-reduce).
    """
    if world > 1:
        if batch_size % world:
            raise DatasetError(f"the batch size {batch_size} must be a multiple of the number of processes "
                               f"({world}): it is the global batch, split evenly over them")
        n = int(order.numel())
        # batch_size is a multiple of world, so a multiple-of-world total leaves every batch,
        # the last partial one included, evenly divisible.
        total = (n // batch_size) * batch_size if drop_last else math.ceil(n / world) * world
        if total > n:
            order = torch.cat([order, order[: total - n]])
        order = order[:total]
    return BatchPlan(order, batch_size, drop_last)


def channel_stats(images: torch.Tensor, limit: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, from up to ``limit`` evenly spaced samples."""
    n = images.shape[0]
    step = max(1, n // limit)
    x = images[::step].to(torch.float32).div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)
