"""Segmentation data: images with a class per pixel (``target == "mask"``).

:class:`SegmentationSource` holds uint8 images ``(N, C, H, W)`` and uint8 masks ``(N, H, W)`` in
memory (on the device once :meth:`~SegmentationSource.to` moves them). A batch is an index gather of
both, then the same random crop (masks padded with ``ignore_index``) and the same horizontal flip
for image and mask, drawn from the engine's generator exactly as the classification sources draw
theirs, so a resumed run sees the same augmentations and DDP ranks keep their slice of one global
plan. Batches come out as ``(x, y)``: ``x`` float normalised ``(B, C, H, W)``, ``y`` int64
``(B, H, W)`` class ids (``ignore_index`` = 255 where a pixel has no label).

``shapes-seg`` (:func:`shapes_seg_source`) is generated here: 3×64×64 scenes of one to three shapes
of :data:`SHAPES_SEG_CLASSES`' kinds on a random background. Each shape sits in its own cell of a
2×2 grid (jittered, never overlapping another), upright but tilted: d2l's FCN predicts from a 2×2
feature map at this size (stride 32) and paints each cell with its transposed convolution, so
objects laid out on that grid are what a stride-32 network can segment at all. Even knowing every
cell's class, the best single mask per class and cell scores a mean IoU of about 0.75 on these
scenes (0.66 with shapes at any angle, 16–28 px and jittered by 3 px): the sizes, jitter and tilt
below keep a stride-32 FCN's reachable mIoU well above 0.6; U-Net's full-resolution output goes
further. Colours are random per shape and background, so the shape's outline, never its colour,
decides the class. Deterministic for a seed.

Folders of images and masks (``segfolder:DIR``) and Pascal VOC (``voc[:DIR]``) are read in
:mod:`core.training.data.seg_files`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from core.training.data.base import (
    Augment,
    BatchPlan,
    BatchStream,
    DataSource,
    Normalizer,
    apply_augment,
    apply_mask_augment,
    channel_stats,
    draw_augment,
    epoch_plan,
    gather,
    pick_split,
    spread,
)
from core.training.data.shapes import _LEVELS

# Index 0 is background; the others are shapes of shapes.py's kinds (its level functions draw them).
SHAPES_SEG_CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle", "star", "cross")
SHAPES_SEG_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48))
SHAPES_SEG_SIZE = 64
SHAPES_SEG_TRAIN, SHAPES_SEG_VAL = 2000, 300
IGNORE_INDEX = 255
_CELLS = 2  # the scene is a _CELLS × _CELLS grid; each shape sits in its own cell
MIN_RADIUS, MAX_RADIUS = 10.0, 14.0  # pixels (a circle of 20 to 28 px across)
JITTER = 2.0  # largest shift of a shape's centre from its cell's centre, in pixels
TILT = 0.35  # largest rotation of a shape either way, in radians (20°: upright, tilted)
GAP = 0.12  # smallest per-channel contrast between a shape and the background, in [0, 1] units
_CHUNK = 512  # scenes drawn at once (bounds the per-object pixel grids' memory)


def generate_scenes(count: int, seed: int, size: int = SHAPES_SEG_SIZE
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` scenes: uint8 images ``(N, 3, size, size)``, uint8 masks ``(N, size, size)`` and
    the pixel area of every shape drawn (float, one entry per object, for ``typical_object_px``)."""
    gen = torch.Generator().manual_seed(int(seed) % 2**64)
    images = torch.empty((count, 3, size, size), dtype=torch.uint8)
    masks = torch.empty((count, size, size), dtype=torch.uint8)
    areas: list[torch.Tensor] = []
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        images[start:stop], masks[start:stop], area = _draw_scenes(stop - start, gen, size)
        areas.append(area)
    return images, masks, torch.cat(areas) if areas else torch.zeros(0)


def _draw_scenes(n: int, gen: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cells = _CELLS * _CELLS
    cell = size / _CELLS
    # Which cells hold a shape: 1–3 of the 4, chosen at random per scene.
    shapes_in = torch.randint(1, 4, (n,), generator=gen)
    ranks = torch.rand((n, cells), generator=gen).argsort(dim=1).argsort(dim=1)
    occupied = ranks < shapes_in.view(n, 1)  # (n, cells)
    kinds = torch.randint(1, len(SHAPES_SEG_CLASSES), (n, cells), generator=gen)
    radius = MIN_RADIUS + torch.rand((n, cells), generator=gen) * (MAX_RADIUS - MIN_RADIUS)
    jitter = (torch.rand((n, cells, 2), generator=gen) * 2 - 1) * JITTER
    theta = (torch.rand((n, cells), generator=gen) * 2 - 1) * TILT

    # Background: a random flat colour plus a soft gradient in a random direction.
    bg = torch.rand((n, 3), generator=gen)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    g_angle = torch.rand(n, generator=gen) * (2 * math.pi)
    g_amp = (torch.rand(n, generator=gen) * 0.2).view(n, 1, 1)
    grad = (torch.cos(g_angle).view(n, 1, 1) * (coords.view(1, 1, size) / size - 0.5)
            + torch.sin(g_angle).view(n, 1, 1) * (coords.view(1, size, 1) / size - 0.5)) * g_amp
    image = (bg.view(n, 3, 1, 1) + grad.unsqueeze(1)).clamp_(0, 1)
    # Each shape's colour: every channel at least GAP away from the background's, lighter or darker
    # at random where both fit, so the outline always reads while the colour says nothing.
    delta = GAP + torch.rand((n, cells, 3), generator=gen) * (1 - GAP)
    lighter = torch.rand((n, cells, 3), generator=gen) < 0.5
    base = bg.view(n, 1, 3)
    up, down = (base + delta).clamp(max=1.0), (base - delta).clamp(min=0.0)
    fits_up, fits_down = base + GAP <= 1.0, base - GAP >= 0.0
    fg = torch.where((lighter & fits_up) | ~fits_down, up, down)

    mask = torch.zeros((n, size, size), dtype=torch.uint8)
    areas: list[torch.Tensor] = []
    # A shape reaches at most 1.14 radii from its centre (the square's corners), its centre at most
    # JITTER from its cell's: only that window of the scene is evaluated (a third of the pixels).
    reach = math.ceil(1.15 * MAX_RADIUS + JITTER + 1)
    for c in range(cells):
        rows = occupied[:, c].nonzero().flatten()
        if rows.numel() == 0:
            continue
        m = rows.numel()
        centre_y, centre_x = (c // _CELLS + 0.5) * cell, (c % _CELLS + 0.5) * cell
        y0, y1 = max(0, int(centre_y) - reach), min(size, int(centre_y) + reach)
        x0, x1 = max(0, int(centre_x) - reach), min(size, int(centre_x) + reach)
        h, w = y1 - y0, x1 - x0
        cy = centre_y + jitter[rows, c, 0]
        cx = centre_x + jitter[rows, c, 1]
        r = radius[rows, c].view(m, 1, 1)
        cos, sin = torch.cos(theta[rows, c]).view(m, 1, 1), torch.sin(theta[rows, c]).view(m, 1, 1)
        xs = coords[x0:x1].view(1, 1, w) - cx.view(m, 1, 1)
        ys = coords[y0:y1].view(1, h, 1) - cy.view(m, 1, 1)
        u = (xs * cos + ys * sin) / r  # shape-local coordinates, 1.0 = the radius
        v = (-xs * sin + ys * cos) / r
        level = torch.empty_like(u)
        kind = kinds[rows, c]
        for index, name in enumerate(SHAPES_SEG_CLASSES[1:], start=1):
            pick = kind == index
            if bool(pick.any()):
                level[pick] = _LEVELS[name](u[pick], v[pick])
        alpha = (0.5 - level * r).clamp(0.0, 1.0)  # one-pixel anti-aliasing
        window = image[rows, :, y0:y1, x0:x1]
        image[rows, :, y0:y1, x0:x1] = torch.lerp(window, fg[rows, c].view(m, 3, 1, 1).expand(m, 3, h, w),
                                                  alpha.unsqueeze(1).expand(m, 3, h, w))
        inside = alpha >= 0.5  # the mask labels a pixel with the shape covering at least half of it
        mask[rows, y0:y1, x0:x1] = torch.where(inside, kind.view(m, 1, 1).to(torch.uint8), mask[rows, y0:y1, x0:x1])
        areas.append(inside.sum(dim=(1, 2)).to(torch.float32))
    noise_std = (0.01 + torch.rand(n, generator=gen) * 0.03).view(n, 1, 1, 1)
    bank = torch.randn((min(n, 128), 3, size, size), generator=gen)
    pick_noise = torch.randint(0, bank.shape[0], (n,), generator=gen)
    image.add_(bank[pick_noise].mul_(noise_std))
    out = image.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return out, mask, torch.cat(areas) if areas else torch.zeros(0)


def typical_object_px(areas: Sequence[float] | torch.Tensor) -> float | None:
    """Median over objects of √(area in pixels): the side of a typical object, or ``None`` for none."""
    a = torch.as_tensor(areas, dtype=torch.float32)
    a = a[a > 0]
    if a.numel() == 0:
        return None
    return float(a.sqrt().median())


def voc_colormap(count: int) -> tuple[tuple[int, int, int], ...]:
    """Pascal VOC's colour map (class ``i``'s bits spread over the high bits of R, G and B): VOC's
    palette for its 21 classes, and distinct colours for any other class count."""
    colours = []
    for i in range(count):
        r = g = b = 0
        c = i
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


@dataclass
class SegSplit:
    """One split held in memory: uint8 images ``(N, C, H, W)`` and uint8 masks ``(N, H, W)``."""

    images: torch.Tensor
    masks: torch.Tensor

    def __len__(self) -> int:
        return int(self.masks.shape[0])


class SegStream(BatchStream):
    """One epoch of ``(x, y)``: normalised images and int64 masks, augmented together."""

    def __init__(self, split: SegSplit, plan: BatchPlan, normalize: Normalizer, augment: Augment,
                 generator: torch.Generator | None, rank: int, world: int, ignore_index: int) -> None:
        super().__init__(plan, rank, world)
        self.split, self.normalize, self.augment = split, normalize, augment
        self.generator, self.ignore_index = generator, ignore_index

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.split.images.device
        for step in range(len(self)):
            gidx = self.plan.global_batch(step)
            # the same draws as the classification sources make, so a run's generator advances alike
            draws = draw_augment(self.augment, int(gidx.numel()), self.generator) if self.augment.active else {}
            idx = self.local(gidx).to(device, non_blocking=True)
            x = gather(self.split.images, idx)
            y = self.split.masks.index_select(0, idx)
            if draws:
                local = {k: self.local(v) for k, v in draws.items()}
                x = apply_augment(x, self.augment, local)
                y = apply_mask_augment(y, self.augment, local, self.ignore_index)
            yield self.normalize(x), y.long()


class SegmentationSource(DataSource):
    """Images and their masks in memory (see the module docstring): ``target == "mask"``."""

    target = "mask"

    def __init__(self, name: str, classes: Sequence[str], train: SegSplit, val: SegSplit,
                 palette: Sequence[tuple[int, int, int]] | None = None, ignore_index: int = IGNORE_INDEX,
                 typical_px: float | None = None, mean: Sequence[float] = (), std: Sequence[float] = (),
                 notes: Sequence[str] = ()) -> None:
        self.name = name
        self.classes = tuple(classes)
        self.train, self.val = train, val
        self._cpu = (train, val)
        c, h, w = train.images.shape[1:]
        self.sample_shape = (int(c), int(h), int(w))
        colours = tuple(palette) if palette is not None else ()
        if len(colours) < len(self.classes):
            colours = colours + voc_colormap(len(self.classes))[len(colours):]
        self.palette: tuple[tuple[int, int, int], ...] = tuple(tuple(int(v) for v in col)  # type: ignore[misc]
                                                               for col in colours[:len(self.classes)])
        self.ignore_index = int(ignore_index)
        self.typical_object_px = typical_px
        if mean and std:
            self.mean, self.std = tuple(mean), tuple(std)
        else:
            self.mean, self.std = channel_stats(train.images)
        self.notes = list(notes)
        self.in_memory = True
        self._normalizers: dict[str, Normalizer] = {}

    def split(self, name: str) -> SegSplit:
        return pick_split(name, self.train, self.val)

    def _cpu_split(self, name: str) -> SegSplit:
        return pick_split(name, *self._cpu)

    def count(self, split: str) -> int:
        return len(self.split(split))

    def class_counts(self, split: str = "train") -> list[int]:
        """Labelled pixels per class (ignored pixels are not counted)."""
        masks = self._cpu_split(split).masks
        counts = torch.bincount(masks.flatten().long(), minlength=256)
        return counts[:self.num_classes].tolist()

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        """``n`` images spread over the split, each labelled with its mask's most frequent
        non-background class (0 when it shows only background)."""
        data = self._cpu_split(split)
        idx = spread(n, len(data))
        return data.images[idx].clone(), [dominant_class(m, self.num_classes) for m in data.masks[idx]]

    def preview_masks(self, n: int = 16, split: str = "train") -> torch.Tensor:
        """The masks of :meth:`preview`'s samples: uint8 ``(n, H, W)`` on the CPU."""
        data = self._cpu_split(split)
        return data.masks[spread(n, len(data))].clone()

    def report(self) -> str | None:
        return "; ".join(self.notes) or None

    def to(self, device: torch.device, channels_last: bool = False) -> SegmentationSource:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.train, self.val = (SegSplit(s.images.to(device, memory_format=fmt), s.masks.to(device))
                                for s in self._cpu)
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
        return SegStream(data, epoch_plan(len(data), batch_size, generator, world, drop_last),
                         self._normalizers[key], augment, generator, rank, world, self.ignore_index)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(target=self.target, num_classes=self.num_classes, palette=[list(c) for c in self.palette],
                 ignore_index=self.ignore_index,
                 typical_object_px=None if self.typical_object_px is None else round(self.typical_object_px, 2),
                 mask_shape=list(self.sample_shape[1:]))
        return d


def dominant_class(mask: torch.Tensor, num_classes: int) -> int:
    """The most frequent class of ``mask`` other than background (0) and ignored pixels, or 0."""
    counts = torch.bincount(mask.flatten().long(), minlength=256)[1:num_classes]
    return int(counts.argmax()) + 1 if counts.numel() and int(counts.max()) > 0 else 0


def shapes_seg_source(seed: int = 0, train: int = SHAPES_SEG_TRAIN, val: int = SHAPES_SEG_VAL) -> SegmentationSource:
    """The built-in ``shapes-seg`` set; train and val come from different seeds (no shared scenes)."""
    tx, tm, areas = generate_scenes(train, (seed * 2 + 1) % 2**64)
    vx, vm, _ = generate_scenes(val, (seed * 2 + 2) % 2**64)
    return SegmentationSource("shapes-seg", SHAPES_SEG_CLASSES, SegSplit(tx, tm), SegSplit(vx, vm),
                              palette=SHAPES_SEG_PALETTE, typical_px=typical_object_px(areas))
