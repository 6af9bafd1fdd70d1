"""``main.py export SOURCE [--network generator|discriminator] -o FILE``: ``.py`` (standalone Python),
``.onnx`` or ``.json`` (the project).

A GAN project (two networks, :mod:`core.gan_graph`) is exported one network at a time: a user
exporting a GAN wants the generator to make images with (or the discriminator to judge them), never
one module whose forward takes noise *and* an image. So ``--network`` picks it, and a ``.py`` or
``.onnx`` export of a GAN without ``--network`` is refused with one line saying to choose; the
generator's file loads the ``"generator"`` state_dict of the run's checkpoint. A ``.json`` export
without ``--network`` writes the whole project, as for any project.

SOURCE may also be a run folder: its ``graph.json`` is exported, and an ``.onnx`` file holds the
trained weights of ``checkpoints/last.pt`` (the ``--network``'s state_dict of a GAN run, the
``"model"`` of another); after a ``.py`` a second line says how to load them.

Exit status (DESIGN.md §7): 0 written, 1 when the network has error diagnostics (nothing is
written for ``.py``/``.onnx``; a ``.json`` project file is written anyway, errors and all, since
saving a half-built network is legitimate), 2 for usage errors, unreadable sources, an unknown
extension or missing ONNX packages, with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.cli.common import UsageError, load_or_fail
from core.compiler import CompileError
from core.export import EXTENSIONS, ExportError, export_project
from core.project import Project


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="write a network as Python source, ONNX or a project file",
                       description="Export SOURCE (a project file, template:NAME, torchvision:NAME or a run "
                                   "folder, whose trained weights go into an .onnx file). "
                                   "The format follows FILE's extension: .py = one standalone Python file "
                                   "that needs only torch; .onnx = an ONNX model with a dynamic batch axis; "
                                   ".json = a NetCanvas project file.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="ends in " + ", ".join(EXTENSIONS))
    p.add_argument("--network", choices=("generator", "discriminator"),
                   help="a GAN project: export this network alone (required for .py and .onnx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    target = Path(args.output)
    ext = target.suffix.lower()
    if ext not in EXTENSIONS:
        raise UsageError(f"{args.output}: unknown export format — the file name must end in "
                         f"{', '.join(EXTENSIONS)}")
    model = None
    from_run = Path(args.source).is_dir()
    if from_run:
        from core.training.gan_sample import NetworkLoadError

        try:
            project, model = _from_run(args.source, args.network, ext)
        except NetworkLoadError as exc:  # the network or its weights: the run's problem, exit 1
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        project = _gan_network(load_or_fail(args.source), args.source, args.network, ext)
    try:
        written = export_project(project, target, model=model)
    except CompileError as exc:
        print(f"error: {args.source}: {exc}", file=sys.stderr)
        return 1
    except ExportError as exc:
        raise UsageError(f"{args.output}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {written}")
    if from_run and ext == ".py":  # the file holds the architecture; say where the trained weights are
        ckpt = Path(args.source) / "checkpoints" / "last.pt"
        print(f"its trained weights: model.load_state_dict(torch.load({str(ckpt)!r}, weights_only=True)"
              f"[{(args.network or 'model')!r}])")
    return 0


def _from_run(run_dir: str, network: str | None, ext: str) -> tuple[Project, Any]:
    """A run folder's project (the network ``--network`` names of a GAN) and, for ONNX, its trained
    model (the checkpoint's weights go into the file)."""
    from core.training.gan_sample import NetworkLoadError, load_run_network, run_project
    from core.training.runs import RunFolderError

    try:
        project = _gan_network(run_project(run_dir), run_dir, network, ext)
        if ext != ".onnx":
            return project, None
        return load_run_network(run_dir, network)
    except NetworkLoadError:
        raise
    except RunFolderError as exc:  # not a run folder, no checkpoint, no such weights: exit 2
        raise UsageError(str(exc)) from None


def _gan_network(project: Project, source: str, network: str | None, ext: str) -> Project:
    """The project to export: the one network ``--network`` names of a GAN, or ``project`` itself."""
    from core.gan_graph import GanGraphError, is_gan_graph, network_project

    if network is None:
        if ext != ".json" and is_gan_graph(project.graph):
            raise UsageError(f"{source} is a GAN (a generator and a discriminator): export one network with "
                             f"--network generator or --network discriminator")
        return project
    try:
        return network_project(project, network)
    except GanGraphError as exc:
        raise UsageError(f"{source}: --network applies to a GAN project, and this is not one: {exc}") from None
