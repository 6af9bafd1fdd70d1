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
2×2 grid (jittered, never overlapping another): d2l's FCN predicts from a 2×2 feature map at this
size (stride 32) and paints each cell with its transposed convolution, so objects laid out on that
grid are what a stride-32 network can segment at all — the receptive-field diagnostic and U-Net's
finer outputs show the difference on harder data. Colours are random per shape and background, so
the shape's outline, never its colour, decides the class. Deterministic for a seed.

Folders of images and masks (``segfolder:DIR``) and Pascal VOC (``voc[:DIR]``) are read in
:mod:`core.training.data.seg_files`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from core.training.data.shapes import _LEVELS

# Index 0 is background; the others are shapes of shapes.py's kinds (its level functions draw them).
SHAPES_SEG_CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle", "star", "cross")
SHAPES_SEG_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48))
SHAPES_SEG_SIZE = 64
SHAPES_SEG_TRAIN, SHAPES_SEG_VAL = 2000, 300
IGNORE_INDEX = 255
_CELLS = 2  # the scene is a _CELLS × _CELLS grid; each shape sits in its own cell
MIN_RADIUS, MAX_RADIUS = 9.0, 14.0  # pixels (a circle of 18 to 28 px across)
JITTER = 3.0  # largest shift of a shape's centre from its cell's centre, in pixels
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
    theta = torch.rand((n, cells), generator=gen) * (2 * math.pi)

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
    for c in range(cells):
        rows = occupied[:, c].nonzero().flatten()
        if rows.numel() == 0:
            continue
        m = rows.numel()
        cy = (c // _CELLS + 0.5) * cell + jitter[rows, c, 0]
        cx = (c % _CELLS + 0.5) * cell + jitter[rows, c, 1]
        r = radius[rows, c].view(m, 1, 1)
        cos, sin = torch.cos(theta[rows, c]).view(m, 1, 1), torch.sin(theta[rows, c]).view(m, 1, 1)
        xs = coords.view(1, 1, size) - cx.view(m, 1, 1)
        ys = coords.view(1, size, 1) - cy.view(m, 1, 1)
        u = (xs * cos + ys * sin) / r  # shape-local coordinates, 1.0 = the radius
        v = (-xs * sin + ys * cos) / r
        level = torch.empty_like(u)
        kind = kinds[rows, c]
        for index, name in enumerate(SHAPES_SEG_CLASSES[1:], start=1):
            pick = kind == index
            if bool(pick.any()):
                level[pick] = _LEVELS[name](u[pick], v[pick])
        alpha = (0.5 - level * r).clamp(0.0, 1.0)  # one-pixel anti-aliasing
        image[rows] = torch.lerp(image[rows], fg[rows, c].view(m, 3, 1, 1).expand(m, 3, size, size),
                                 alpha.unsqueeze(1).expand(m, 3, size, size))
        inside = alpha >= 0.5  # the mask labels a pixel with the shape covering at least half of it
        mask[rows] = torch.where(inside, kind.view(m, 1, 1).to(torch.uint8), mask[rows])
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
    return round(float(a.sqrt().median()), 2)
