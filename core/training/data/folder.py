"""Image folders: one subfolder per class (torchvision's ``ImageFolder`` layout), streamed.

``ROOT/<class>/<image>``; classes are the subfolder names sorted (so ``class_to_idx`` matches
torchvision). Validation comes from ``ROOT/train`` + ``ROOT/val`` (or ``test``) when both exist,
from a separate folder when one is given, or from a per-class split of ``val_fraction`` drawn
with the seed. Images are decoded with Pillow in DataLoader workers, converted to the graph's
channels (RGB or grey), resized so the shorter side fits and centre-cropped to the graph's
input size, and sent to the device as uint8 through pinned memory; crop/flip augmentation and
normalisation then run batched on the device like the in-memory sources.

With pretrained weights, an :class:`~core.training.weights.InputPipeline` (from torchvision's
``weights.transforms()``) makes the images what the weights were trained on: the shorter side is
resized to the pipeline's ``resize`` (256 for ResNet-18) and centre-cropped to the Input's H×W
(224), with torchvision's own size and offset arithmetic and interpolation, and normalised with
the pipeline's mean/std; the uint8 images equal ``weights.transforms()``'s before its float steps.

A file that cannot be decoded is skipped, counted and named in :meth:`FolderSource.report`,
never fatal; so is a class subfolder without images (it is left out of the classes, and said so).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from core.training.data.base import (
    Augment,
    BatchPlan,
    BatchStream,
    DatasetError,
    DataSource,
    Normalizer,
    apply_augment,
    draw_augment,
    epoch_plan,
)

if TYPE_CHECKING:  # weights.py imports torchvision machinery the data sources never need at run time
    from core.training.weights import InputPipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# How many files the preview (and so the engine's pre-flight forward pass) tries, spread over the
# folder, before it decides none can be read: a few bad files at the ends must not hide a healthy folder
PREVIEW_TRIES = 64


# torchvision's InterpolationMode values → Pillow's filters (torchvision's own ``pil_modes_mapping``)
INTERPOLATIONS = {"nearest": 0, "nearest-exact": 0, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5, "lanczos": 1}


def decode_image(path: str, shape: tuple[int, int, int], resize: int | None = None,
                 interpolation: str = "bilinear") -> np.ndarray:
    """Decode, convert, resize and centre-crop to ``shape`` = (C, H, W) → uint8 CHW.

    ``resize=None``: the shorter side is scaled so the image just covers H×W. ``resize=N``: the
    shorter side becomes N as torchvision's ``Resize(N)`` makes it (the longer side truncated, not
    rounded), then the centre H×W is cut with ``CenterCrop``'s offsets; an image that would then
    not cover H×W (a crop wider than the resize) is scaled to cover it instead.
    """
    from PIL import Image

    c, h, w = shape
    mode = "L" if c == 1 else "RGB"
    with Image.open(path) as opened:
        if resize is None:
            opened.draft(mode, (w, h))  # JPEG: decode at a reduced scale when the target is small
            img = opened.convert(mode)
            scale = max(w / img.width, h / img.height)
            size = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.BILINEAR)
            left, top = (size[0] - w) // 2, (size[1] - h) // 2
        else:
            img, size = _resize_like_torchvision(opened, mode, (w, h), resize, interpolation)
            # torchvision's CenterCrop rounds the offset (Python's round: halves to even)
            left, top = round((size[0] - w) / 2.0), round((size[1] - h) / 2.0)
        img = img.crop((left, top, left + w, top + h))
        arr = np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only arrays)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def _resize_like_torchvision(opened: Any, mode: str, target: tuple[int, int], resize: int,
                             interpolation: str) -> tuple[Any, tuple[int, int]]:
    """``opened`` with its shorter side resized to ``resize`` as torchvision's ``Resize`` does it
    (the size from the full image; ``interpolation`` through Pillow, which antialiases), or scaled
    to just cover ``target`` (W, H) when that would not cover it. Returns the image and its size."""
    from PIL import Image

    full_w, full_h = opened.size
    size = _pipeline_size(full_w, full_h, resize)
    filt = Image.Resampling(INTERPOLATIONS.get(interpolation, 2))
    if size[0] < target[0] or size[1] < target[1]:  # a crop larger than the resize: cover it instead
        scale = max(target[0] / full_w, target[1] / full_h)
        size = (max(target[0], round(full_w * scale)), max(target[1], round(full_h * scale)))
    # JPEG: decode at a reduced scale (1/2 … 1/8) that leaves the shorter side ≥ twice the resize, and
    # resize from the box the full image maps to (so no sub-pixel shift when the scale does not divide
    # the size): a large photo decodes several times faster and differs from decoding it whole by a
    # level or two (tests/core/test_weights_pipeline.py measures it); other formats decode whole
    wanted = (2 * size[0], 2 * size[1])
    drafted = opened.draft(mode, wanted) if full_w >= wanted[0] and full_h >= wanted[1] else None
    img = opened.convert(mode)
    if drafted is None and img.size == size:
        return img, size
    return img.resize(size, filt, box=drafted[1] if drafted else None), size


def _pipeline_size(width: int, height: int, resize: int) -> tuple[int, int]:
    """torchvision's ``Resize([resize])`` output (W, H): the shorter side ``resize``, the longer truncated."""
    if width <= height:
        return resize, int(resize * height / width)
    return int(resize * width / height), resize


def pipeline_resize(pipeline: InputPipeline, shape: Sequence[int]) -> int:
    """The shorter side to resize to before cropping ``shape``'s H×W: the weights' ``resize`` when the
    Input is their crop size, otherwise scaled with it, so the crop keeps the share of the image the
    weights saw (224 of 256 for ResNet-18: a 160×160 Input resizes to 183)."""
    side = max(int(shape[-2]), int(shape[-1]))
    if side == pipeline.crop or pipeline.crop <= 0:
        return max(side, int(pipeline.resize))
    return max(side, round(pipeline.resize * side / pipeline.crop))


class _Files(Dataset[tuple[np.ndarray | None, int, str]]):
    """Decodes one file per item; a failure returns ``None`` instead of raising."""

    def __init__(self, items: Sequence[tuple[str, int]], shape: tuple[int, int, int], resize: int | None = None,
                 interpolation: str = "bilinear") -> None:
        self.items = list(items)
        self.shape = shape
        self.resize, self.interpolation = resize, interpolation

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[np.ndarray | None, int, str]:
        path, label = self.items[index]
        try:
            return decode_image(path, self.shape, self.resize, self.interpolation), label, path
        except Exception:  # any decoder error means "unreadable": skip it, the report names it
            return None, label, path


def _collate(batch: Sequence[tuple[np.ndarray | None, int, str]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                            torch.Tensor, list[str]]:
    keep = [i for i, item in enumerate(batch) if item[0] is not None]
    bad = [item[2] for item in batch if item[0] is None]
    if keep:
        x = torch.from_numpy(np.stack([batch[i][0] for i in keep]))  # type: ignore[misc]
    else:
        x = torch.zeros((0, 0, 0, 0), dtype=torch.uint8)
    y = torch.tensor([batch[i][1] for i in keep], dtype=torch.int64)
    return x, y, torch.tensor(keep, dtype=torch.int64), bad


class _PlanSampler:
    """A batch sampler whose plan changes each epoch (so persistent workers can be reused)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class FolderStream(BatchStream):
    def __init__(self, source: FolderSource, split: str, plan: BatchPlan, normalize: Normalizer,
                 augment: Augment, generator: torch.Generator | None, device: torch.device,
                 rank: int, world: int) -> None:
        super().__init__(plan, rank, world)
        self.source, self.split, self.normalize = source, split, normalize
        self.augment, self.generator, self.device = augment, generator, device

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        globals_ = [self.plan.global_batch(s) for s in range(len(self))]
        draws = [draw_augment(self.augment, int(g.numel()), self.generator) if self.augment.active else {}
                 for g in globals_]  # drawn up front, in step order, like the in-memory stream
        loader, sampler = self.source.loader(self.split, self.device)
        sampler.batches = [self.local(g).tolist() for g in globals_]
        for step, (x, y, keep, bad) in enumerate(loader):
            if bad:
                self.source.skipped.update(bad)
            if keep.numel() == 0:
                continue
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if draws[step]:
                x = apply_augment(x, self.augment, {k: self.local(v)[keep] for k, v in draws[step].items()})
            yield self.normalize(x), y


class FolderSource(DataSource):
    """Images under ``root/<class>/``; see the module docstring for the split rules and ``pipeline``."""

    def __init__(self, root: Path, shape: tuple[int, int, int] = (3, 224, 224), val_root: Path | None = None,
                 val_fraction: float = 0.1, seed: int = 0, workers: int | None = None,
                 pipeline: InputPipeline | None = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"folder:{root}: no such folder; give a folder with one subfolder per class")
        if val_root is None:
            for train_name, val_name in (("train", "val"), ("train", "validation"), ("train", "test")):
                if _has_classes(root / train_name) and _has_classes(root / val_name):
                    root, val_root = root / train_name, root / val_name
                    break
        self.root, self.val_root = root, val_root
        self.name = f"folder:{root}"
        self.sample_shape: tuple[int, int, int] = (int(shape[0]), int(shape[1]), int(shape[2]))
        if self.sample_shape[0] not in (1, 3):
            raise DatasetError(f"folder:{root}: images can be loaded with 1 (grey) or 3 (RGB) channels, but the "
                               f"graph's Input asks for {self.sample_shape[0]}; set the Input shape's first "
                               "value to 1 or 3")
        classes, items, self.empty_classes = _scan(root)
        if not classes:
            raise DatasetError(f"folder:{root}: no class subfolders with images found; put each class's images "
                               f"in its own subfolder, e.g. {root / 'cats'} and {root / 'dogs'}")
        self.classes = tuple(classes)
        if val_root is not None:
            val_classes, val_items, _empty = _scan(Path(val_root))
            unknown = sorted(set(val_classes) - set(classes))
            if unknown:
                raise DatasetError(f"the validation folder {val_root} has classes the training folder lacks: "
                                   f"{', '.join(unknown)}")
            remap = {i: classes.index(name) for i, name in enumerate(val_classes)}
            self._items = {"train": items, "val": [(p, remap[y]) for p, y in val_items]}
        else:
            self._items = dict(zip(("train", "val"), _split(items, len(classes), val_fraction, seed), strict=True))
        self.mean = IMAGENET_MEAN if self.sample_shape[0] == 3 else (0.5,)
        self.std = IMAGENET_STD if self.sample_shape[0] == 3 else (0.25,)
        self.pipeline = pipeline
        self.resize: int | None = None  # the shorter side before the centre crop; None: just cover the Input
        self.interpolation = "bilinear"
        if pipeline is not None:
            self.resize = pipeline_resize(pipeline, self.sample_shape)
            self.interpolation = pipeline.interpolation
            if len(pipeline.mean) == len(pipeline.std) == self.sample_shape[0]:
                # a grey Input keeps its own statistics: RGB weights' first layer is re-initialised for it anyway
                self.mean, self.std = tuple(pipeline.mean), tuple(pipeline.std)
        self.in_memory = False
        cpus = os.cpu_count() or 1
        self.workers = min(8, max(0, cpus - 1)) if workers is None else max(0, int(workers))
        self.skipped: set[str] = set()
        self._loaders: dict[tuple[str, str], tuple[DataLoader[Any], _PlanSampler]] = {}
        self._normalizers: dict[str, Normalizer] = {}

    def count(self, split: str) -> int:
        return len(self._items[split])

    def class_counts(self, split: str = "train") -> list[int]:
        counts = [0] * self.num_classes
        for _, label in self._items[split]:
            counts[label] += 1
        return counts

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        items = self._items[split]
        images: list[torch.Tensor] = []
        labels: list[int] = []
        for i in _spread(len(items), n, PREVIEW_TRIES + n):
            if len(images) == n:
                break
            path, label = items[i]
            try:
                images.append(torch.from_numpy(self.decode(path)))
                labels.append(label)
            except Exception:  # unreadable: counted like in training
                self.skipped.add(path)
        if not images:
            return torch.zeros((0, *self.sample_shape), dtype=torch.uint8), []
        return torch.stack(images), labels

    def decode(self, path: str) -> np.ndarray:
        """One file as the network sees it before normalisation (uint8 CHW): the preview and the
        evaluation's sample grid show exactly what training feeds."""
        return decode_image(path, self.sample_shape, self.resize, self.interpolation)

    def report(self) -> str | None:
        parts = []
        if self.empty_classes:
            shown = ", ".join(self.empty_classes[:5]) + (f" and {len(self.empty_classes) - 5} more"
                                                         if len(self.empty_classes) > 5 else "")
            plural = len(self.empty_classes) != 1
            parts.append(f"left out the class folder{'s' * plural} {shown} (no images in {'them' if plural else 'it'})")
        if self.skipped:
            names = sorted(self.skipped)
            shown = ", ".join(os.path.relpath(p, self.root.parent) for p in names[:3])
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"skipped {len(names)} unreadable image{'s' * (len(names) != 1)}: {shown}{more}")
        return "; ".join(parts) or None

    def loader(self, split: str, device: torch.device) -> tuple[DataLoader[Any], _PlanSampler]:
        key = (split, str(device))
        if key not in self._loaders:
            sampler = _PlanSampler()
            workers = self.workers
            loader: DataLoader[Any] = DataLoader(
                _Files(self._items[split], self.sample_shape, self.resize, self.interpolation),
                batch_sampler=sampler, num_workers=workers,
                collate_fn=_collate, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                prefetch_factor=4 if workers > 0 else None)
            self._loaders[key] = (loader, sampler)
        return self._loaders[key]

    def batches(self, split: str, batch_size: int, device: torch.device, generator: torch.Generator | None,
                augment: Augment = Augment(), rank: int = 0, world: int = 1,
                drop_last: bool = False) -> BatchStream:
        plan = epoch_plan(self.count(split), batch_size, generator, world, drop_last)
        if str(device) not in self._normalizers:
            self._normalizers[str(device)] = Normalizer(self.mean, self.std, device)
        return FolderStream(self, split, plan, self._normalizers[str(device)], augment, generator, device, rank,
                            world)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["root"] = str(self.root)
        d["val_root"] = str(self.val_root) if self.val_root else None
        d["skipped"] = len(self.skipped)
        d["empty_classes"] = list(self.empty_classes)
        if self.pipeline is not None:
            d["pipeline"] = self.pipeline.to_dict()
            d["resize"] = self.resize  # the pipeline's, scaled when the Input is not its crop size
        return d


def _has_classes(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())


def _spread(count: int, first: int, most: int) -> Iterator[int]:
    """Indices into ``count`` items: ``first`` evenly spread, then more spread between them, up to
    ``most`` distinct indices in all."""
    seen: set[int] = set()
    for size in (first, most):
        for i in np.linspace(0, count - 1, min(size, count)).round().astype(int) if count else []:
            if int(i) not in seen and len(seen) < most:
                seen.add(int(i))
                yield int(i)


def _scan(root: Path) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """The classes with images, every image as (path, class index), and the class folders without images."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items: list[tuple[str, int]] = []
    kept: list[str] = []
    empty: list[str] = []
    for name in classes:
        files = sorted(str(f) for f in (root / name).rglob("*")
                       if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if files:
            items.extend((f, len(kept)) for f in files)
            kept.append(name)
        else:
            empty.append(name)
    return kept, items, empty


def _split(items: Sequence[tuple[str, int]], num_classes: int, fraction: float,
           seed: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Per-class hold-out split: every class keeps some training and (if it can) validation images."""
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {fraction}")
    gen = torch.Generator().manual_seed(int(seed))
    by_class: list[list[tuple[str, int]]] = [[] for _ in range(num_classes)]
    for item in items:
        by_class[item[1]].append(item)
    train: list[tuple[str, int]] = []
    val: list[tuple[str, int]] = []
    for group in by_class:
        perm = torch.randperm(len(group), generator=gen).tolist()
        k = min(len(group) - 1, max(1, round(fraction * len(group)))) if fraction > 0 and len(group) > 1 else 0
        val.extend(group[i] for i in sorted(perm[:k]))
        train.extend(group[i] for i in sorted(perm[k:]))
    return train, val
