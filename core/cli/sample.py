"""``main.py sample RUN_DIR [-n N] -o FILE.png [--seed S] [--nrow R]``: new images from a trained
GAN's generator (DESIGN.md §7).

The generator of RUN_DIR (its ``graph.json`` and the ``"generator"`` weights of
``checkpoints/last.pt``) is fed ``N`` noise vectors z ~ N(0, 1) of its Input's shape, drawn from a
generator seeded with ``--seed`` (the same seed gives the same grid; without one every call
differs), and the images are written as one PNG grid of ``--nrow`` images per row (default: a
square). Exit status: 0 written, 1 the run's generator cannot be built or loaded (its graph does
not compile, or its weights do not fit it), 2 usage or unreadable input — a missing or foreign
folder, a run that is not a GAN, a bad ``-n``/``--nrow``, an output that cannot be written — with
one line on stderr.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import UsageError

MAX_SAMPLES = 10_000  # a grid of 100×100 images; more is a mistake, not a picture


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sample", help="a PNG grid of new images from a trained GAN's generator",
                       description="Generate images with the generator of RUN_DIR (a GAN run folder that "
                                   "main.py train or the Training dock wrote) and save them as one PNG grid.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the GAN run folder")
    p.add_argument("-n", type=int, default=64, dest="n", help="how many images (default 64)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.png", help="the grid to write (PNG)")
    p.add_argument("--seed", type=int, help="seed of the noise: the same seed gives the same images")
    p.add_argument("--nrow", type=int, help="images per row (default: a square grid)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    if not 1 <= args.n <= MAX_SAMPLES:
        raise UsageError(f"-n must be between 1 and {MAX_SAMPLES:,}, got {args.n}")
    if args.nrow is not None and args.nrow < 1:
        raise UsageError(f"--nrow must be at least 1, got {args.nrow}")
    target = Path(args.output)
    if target.suffix.lower() != ".png":
        raise UsageError(f"{args.output}: the grid is written as PNG, so the file name must end in .png")
    if not target.parent.is_dir():
        raise UsageError(f"{args.output}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise UsageError(f"{args.output} is a folder: give a file name ending in .png")

    from core.training.gan_sample import NetworkLoadError, load_generator, sample, save_grid
    from core.training.runs import RunFolderError

    if not Path(args.run_dir).is_dir():
        raise UsageError(f"{args.run_dir}: no such run folder")
    try:
        generator, noise_shape = load_generator(args.run_dir)
    except NetworkLoadError as exc:  # a GAN run whose generator does not build or load: 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RunFolderError as exc:  # not a run, not a GAN, unreadable files: the input's fault, 2
        raise UsageError(str(exc)) from None
    images = sample(generator, noise_shape, args.n, seed=args.seed)
    try:
        written = save_grid(images, target, nrow=args.nrow)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    n, c, h, w = images.shape
    print(f"wrote {written} ({n} images of {c}×{h}×{w})")
    return 0
