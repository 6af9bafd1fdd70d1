"""DCGAN (Radford et al., 2015): a generator and a discriminator drawn on one canvas.

Each network is a top-level group (``generator`` labelled "Generator", ``discriminator`` labelled
"Discriminator") with its own Input and Output and no wire between them: the GAN task feeds the
generator's images to the discriminator (:func:`core.gan_graph.split_gan` tells them apart by
these groups). The generator turns noise ``z`` (100×1×1) into an image with 4×4 transposed
convolutions, BatchNorm and ReLU, ending in Tanh (pixels in [-1, 1]); the discriminator halves the
size with 4×4 stride-2 convolutions and LeakyReLU(0.2) (BatchNorm after the first) down to one
logit per image. There is no Sigmoid: the GAN loss is BCE-with-logits (or hinge).

DCGAN's initialisation is set on the nodes, where the user sees and can change it: every
convolution starts from N(0, 0.02) (``init = normal(0.02)``; the convolutions have no bias, as in
the paper). BatchNorm keeps torch's start (scale 1, shift 0) where the paper draws the scale from
N(1, 0.02): node inits draw around 0, and the 2 % spread makes no visible difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.project import Project
from core.sources import SourceError
from templates.builder import COLUMN_WIDTH, Builder, conv_params
from templates.registry import add_template

NOISE_SHAPE = (100, 1, 1)
# ngf = ndf. The usual 32×32 DCGAN has 64 (1.7 M parameters, 36 MMACs a sample); half of it costs a
# quarter and learns on the CPU: on the GAN task's plain shapes (one thread, ~0.25 s a step of 64) rings
# and circles are recognisable after 10 epochs of 20,000 images, triangles, stars and crosses by 20.
# So the 32×32 template trains 10 epochs. Batches of 32 gave grids of about the same quality for the
# same number of generator steps (half the epochs), not better ones.
# width=64 builds the usual size (on the classification set's shapes its discriminator won at once).
CPU_WIDTH = 32
DCGAN_INIT = "normal(0.02)"
# Adam at 2e-4 with β1 = 0.5: the DCGAN paper's settings (β1 = 0.9 oscillates).
GAN_TRAINING: dict[str, Any] = {
    "task": "gan", "optimizer": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "weight_decay": 0.0,
    "schedule": "constant", "augment": False,
}


def _conv(b: Builder, kind: str, node_id: str, x: str, out: int, k: int, s: int, p: int) -> str:
    x = b.add(kind, node_id, conv_params(out, k, s, p, bias=False), inputs=x)
    b.graph.set_init(node_id, DCGAN_INIT)
    return x


def _generator(b: Builder, image_shape: Sequence[int], widths: Sequence[int], first_kernel: int) -> None:
    """z → ConvT(k=first_kernel, s1) → ConvT(4, s2, p1) … → ConvT to the image's channels → Tanh."""
    with b.group("generator", "Generator"):
        x = b.input(NOISE_SHAPE, "noise")
        size = first_kernel
        for i, width in enumerate(widths, start=1):
            k, s, p = (first_kernel, 1, 0) if i == 1 else (4, 2, 1)
            with b.group(f"generator.block{i}", f"ConvTranspose {k}×{k} · {width} → BN → ReLU ({size}×{size})"):
                x = _conv(b, "ConvTranspose2d", f"generator.block{i}.deconv", x, width, k, s, p)
                x = b.chain(x, [("BatchNorm2d", f"generator.block{i}.bn", None),
                                ("ReLU", f"generator.block{i}.relu", {"inplace": True})])
            size *= 2
        c, h, w = image_shape
        with b.group("generator.to_image", f"ConvTranspose 4×4 · {c} → Tanh ({h}×{w}, pixels in [-1, 1])"):
            x = _conv(b, "ConvTranspose2d", "generator.to_image.deconv", x, c, 4, 2, 1)
            x = b.add("Tanh", "generator.to_image.tanh", inputs=x)
        b.output(x, "fake_image")


def _discriminator(b: Builder, image_shape: Sequence[int], widths: Sequence[int], last_kernel: int) -> None:
    """image → Conv(4, s2, p1) + LeakyReLU(0.2) [+ BN from the second] … → Conv to 1 logit → Flatten."""
    with b.group("discriminator", "Discriminator"):
        x = b.input(image_shape, "image")
        size = image_shape[1]
        for i, width in enumerate(widths, start=1):
            size //= 2
            bn = " → BN" if i > 1 else ""
            with b.group(f"discriminator.block{i}", f"Conv 4×4 · {width} · s2{bn} → LeakyReLU 0.2 ({size}×{size})"):
                x = _conv(b, "Conv2d", f"discriminator.block{i}.conv", x, width, 4, 2, 1)
                if i > 1:  # DCGAN: no BatchNorm on the discriminator's first layer
                    x = b.add("BatchNorm2d", f"discriminator.block{i}.bn", inputs=x)
                x = b.add("LeakyReLU", f"discriminator.block{i}.act", {"negative_slope": 0.2, "inplace": True},
                          inputs=x)
        with b.group("discriminator.head", f"Conv {last_kernel}×{last_kernel} → 1 logit (real or fake)"):
            x = _conv(b, "Conv2d", "discriminator.head.conv", x, 1, last_kernel, 1, 0)
            x = b.add("Flatten", "discriminator.head.flatten", inputs=x)
        b.output(x, "logit")


def _side_by_side(b: Builder) -> None:
    """Put the discriminator beside the generator, from the top row (the builder stacks top-level
    groups one under the other; two independent networks read better next to each other)."""
    g = b.graph
    d_nodes = g.group_nodes("discriminator")
    g_nodes = g.group_nodes("generator")
    right = max(g.nodes[n].pos[0] for n in g_nodes if g.nodes[n].pos is not None)  # type: ignore[index]
    top = min(g.nodes[n].pos[1] for n in d_nodes if g.nodes[n].pos is not None)  # type: ignore[index]
    for n in d_nodes:
        pos = g.nodes[n].pos
        if pos is not None:
            g.set_position(n, (pos[0] + right + 2 * COLUMN_WIDTH, pos[1] - top))


def _dcgan(name: str, image_shape: tuple[int, int, int], g_widths: Sequence[int], d_widths: Sequence[int],
           first_kernel: int, training: dict[str, Any]) -> Project:
    b = Builder()
    _generator(b, image_shape, g_widths, first_kernel)
    _discriminator(b, image_shape, d_widths, first_kernel)
    _side_by_side(b)
    return b.project(name, {**GAN_TRAINING, **training})


def _widths(width: int, blocks: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """DCGAN's widths from ``width`` (the paper's ngf = ndf): the generator narrows by halves to
    ``width``, the discriminator widens from ``width`` by doubling."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 1024:
        raise SourceError(f"DCGAN width must be an integer from 1 to 1024, got {width!r}")
    d = tuple(width * 2 ** i for i in range(blocks))
    return d[::-1], d


def dcgan(*, width: int = CPU_WIDTH) -> Project:
    """32×32 RGB (shapes, CIFAR-10): 100×1×1 → 4×4·4w → 8×8·2w → 16×16·w → 3×32×32 (w = ``width``); D mirrors it."""
    g, d = _widths(width, 3)
    return _dcgan("DCGAN 32×32", (3, 32, 32), g, d, 4, {"dataset": "shapes", "epochs": 10, "batch_size": 64})


def dcgan_mnist(*, width: int = CPU_WIDTH) -> Project:
    """28×28 grey (MNIST, Fashion-MNIST): 100×1×1 → 7×7·2w → 14×14·w → 1×28×28; D mirrors it."""
    g, d = _widths(width, 2)
    return _dcgan("DCGAN 28×28 (MNIST)", (1, 28, 28), tuple(2 * v for v in g), d, 7,
                  {"dataset": "mnist", "epochs": 5, "batch_size": 128})


add_template("dcgan", "DCGAN (32×32 colour)",
             "A generative adversarial network: a generator (noise 100×1×1 → transposed convs with "
             "BatchNorm and ReLU → Tanh image 3×32×32) and a discriminator (strided convs with "
             "LeakyReLU 0.2 → one logit), DCGAN's N(0, 0.02) init. Trains on shapes or CIFAR-10. "
             "Option width (default 32, CPU-sized; 64 is the usual GPU size).",
             (3, 32, 32), 1, dcgan)
add_template("dcgan-mnist", "DCGAN (28×28 grey)",
             "DCGAN sized for MNIST and Fashion-MNIST: noise 100×1×1 → 7×7 → 14×14 → a 1×28×28 Tanh image; "
             "the discriminator halves it twice and answers one logit. Option width (default 32; 64 is usual).",
             (1, 28, 28), 1, dcgan_mnist)

__all__ = ["CPU_WIDTH", "DCGAN_INIT", "GAN_TRAINING", "NOISE_SHAPE", "dcgan", "dcgan_mnist"]
