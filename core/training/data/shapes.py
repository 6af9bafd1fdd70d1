"""``shapes``: the built-in, download-free dataset of 10 procedurally drawn geometric shapes.

Every image is 3×32×32: one shape (random position, size, rotation and colour) on a random
background (flat colour plus a soft gradient), with Gaussian pixel noise. Generation is vectorised
with torch (a signed "level" function per class evaluated on the pixel grid, anti-aliased by one
pixel) so 20,000 + 4,000 images take about a second, and it is deterministic for a given seed.

Rotation-invariant look-alikes were chosen apart on purpose: the diamond is an elongated rhombus
(a rotated square would be a square), the ellipse is clearly oval, the bar is thin. The difficulty
(see the constants below) is tuned so that LeNet-5 needs a few epochs to pass 90 % validation
accuracy rather than one.

The GAN task draws the same shapes *plain* (``plain=True``): one light colour on black, with no
gradient or noise. A generator learns the whole image, and on the classification set it spends
itself on backgrounds and noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

CLASSES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "bar", "ellipse")
SIZE = 32
_CHUNK = 4096
# Difficulty, tuned so LeNet-5 (resources/demo_lenet.json, SGD 0.05 + momentum) passes 90 % validation
# accuracy in about three epochs of 20,000 images — not in the first. Wider jitter or smaller shapes
# make the task much harder for LeNet's position-dependent classifier.
GAP = 0.05  # half the smallest per-channel contrast between shape and background
DARK_ON_LIGHT = 0.5  # share of images with a dark shape on a light background
MIN_RADIUS = 7.5  # pixels; the largest is 0.36 × the image size
JITTER = 4.0  # largest shift of the shape's centre from the image centre, in pixels
NOISE = 0.04  # largest per-image noise std (added to 0.02), in [0, 1] intensity units


def generate(count: int, seed: int, size: int = SIZE, plain: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images as uint8 ``(N, 3, size, size)`` and int64 labels, balanced over the classes.

    ``plain`` draws each shape in one light colour on black, without gradient or noise."""
    gen = torch.Generator().manual_seed(int(seed))
    labels = torch.arange(count) % len(CLASSES)
    labels = labels[torch.randperm(count, generator=gen)]
    images = torch.empty((count, 3, size, size), dtype=torch.uint8)
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        images[start:stop] = _draw(labels[start:stop], gen, size, plain)
    return images, labels


def _draw(labels: torch.Tensor, gen: torch.Generator, size: int, plain: bool = False) -> torch.Tensor:
    n = labels.numel()

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand((n, *shape), generator=gen)

    # Shape geometry: radius in pixels, centre kept so most of the shape stays in the frame.
    radius = MIN_RADIUS + rand() * (size * 0.36 - MIN_RADIUS)
    reach = (size / 2 - radius * 0.7).clamp_min(0).clamp_max(JITTER)
    cx = size / 2 + (rand() * 2 - 1) * reach
    cy = size / 2 + (rand() * 2 - 1) * reach
    theta = rand() * (2 * math.pi)

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    xs = coords.view(1, 1, size) - cx.view(n, 1, 1)
    ys = coords.view(1, size, 1) - cy.view(n, 1, 1)
    cos, sin = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
    r = radius.view(n, 1, 1)
    u = (xs * cos + ys * sin) / r  # shape-local coordinates, 1.0 = the radius
    v = (-xs * sin + ys * cos) / r
    level = _level(labels, u, v)  # < 0 inside, roughly the distance to the edge in radii
    alpha = (0.5 - level * r).clamp(0.0, 1.0).unsqueeze(1)  # one-pixel anti-aliasing

    # Colours: every channel of the shape is lighter than the background by at least
    # 2 × GAP (or darker, for a share of the images), so the outline always reads, while hue and
    # brightness vary freely.
    lo = rand(3) * (0.5 - GAP)
    hi = 0.5 + GAP + rand(3) * (0.5 - GAP)
    dark = (rand() < DARK_ON_LIGHT).view(n, 1)
    fg = torch.where(dark, lo, hi)
    bg = torch.where(dark, hi, lo)

    # Background: a flat colour plus a soft linear gradient in a random direction.
    g_angle = rand() * (2 * math.pi)
    g_amp = (rand() * 0.25).view(n, 1, 1)
    grad = (torch.cos(g_angle).view(n, 1, 1) * (coords.view(1, 1, size) / size - 0.5)
            + torch.sin(g_angle).view(n, 1, 1) * (coords.view(1, size, 1) / size - 0.5)) * g_amp
    image = (bg.view(n, 3, 1, 1) + grad.unsqueeze(1)).clamp_(0, 1)
    if plain:  # a light colour on black: the same draws, so labels and outlines match the natural set
        return (alpha * hi.view(n, 3, 1, 1)).mul_(255).round_().to(torch.uint8)
    image.lerp_(fg.view(n, 3, 1, 1).expand_as(image), alpha.expand_as(image))
    noise_std = (0.02 + rand() * NOISE).view(n, 1, 1, 1)
    # Noise from a small bank of Gaussian fields (a random one per image) instead of fresh normals
    # per pixel: drawing normals is the slowest step, and the reuse is invisible to a network.
    bank = torch.randn((min(n, 256), 3, size, size), generator=gen)
    pick = torch.randint(0, bank.shape[0], (n,), generator=gen)
    image.add_(bank[pick].mul_(noise_std))
    return image.clamp_(0, 1).mul_(255).round_().to(torch.uint8)


def _level(labels: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-pixel level function for each image's class: negative inside the shape.

    Each class's formula is evaluated only on the images of that class (10× less work than
    evaluating all of them everywhere and selecting).
    """
    out = torch.empty_like(u)
    for index, name in enumerate(CLASSES):
        mask = labels == index
        if bool(mask.any()):
            out[mask] = _LEVELS[name](u[mask], v[mask])
    return out


def _polar(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.sqrt(u * u + v * v), torch.atan2(v, u)


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    au, av = u.abs(), v.abs()
    return torch.minimum(torch.maximum(au - 1.0, av - 0.3), torch.maximum(av - 1.0, au - 0.3))


_LEVELS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "circle": lambda u, v: torch.sqrt(u * u + v * v) - 1.0,
    "square": lambda u, v: torch.maximum(u.abs(), v.abs()) - 0.8,
    "triangle": lambda u, v: _polygon(*_polar(u, v), 3, 1.1),
    "star": lambda u, v: _star(*_polar(u, v)),
    "cross": _cross,
    "ring": lambda u, v: (torch.sqrt(u * u + v * v) - 0.78).abs() - 0.22,
    "diamond": lambda u, v: (u.abs() + v.abs() / 0.5 - 1.0) * 0.45,
    "hexagon": lambda u, v: _polygon(*_polar(u, v), 6, 0.95),
    "bar": lambda u, v: torch.maximum(u.abs() - 1.0, v.abs() - 0.2),
    "ellipse": lambda u, v: (torch.sqrt(u * u + (v / 0.5) ** 2) - 1.0) * 0.5,
}


def _polygon(rho: torch.Tensor, phi: torch.Tensor, sides: int, circumradius: float) -> torch.Tensor:
    """Regular polygon: the edge lies at ``apothem / cos(angle to the nearest edge normal)``."""
    sector = 2 * math.pi / sides
    local = torch.remainder(phi, sector) - sector / 2
    apothem = circumradius * math.cos(math.pi / sides)
    return rho * torch.cos(local) - apothem


def _star(rho: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    return rho - _star_radius(phi)


def _star_radius(phi: torch.Tensor) -> torch.Tensor:
    """Five-pointed star: the radius falls linearly from the tips (1.0) to the notches (0.45)."""
    t = torch.remainder(phi * 5 / (2 * math.pi), 1.0)
    tri = 1.0 - (2 * t - 1.0).abs()
    return 0.45 + 0.55 * tri
