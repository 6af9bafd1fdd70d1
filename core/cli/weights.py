"""``main.py weights SOURCE --from W [--json]``: the weights report alone (DESIGN.md §7, §11).

Compiles SOURCE, loads ``W`` into it (``DEFAULT``, a torchvision weights name, or a file) and
prints what was kept, reinitialised because the shape changed, missing and unexpected — the
report ``train --weights`` prints before training. Nothing is trained or written (a download
lands in torch hub's cache). A download draws a progress bar on stderr; ``--json`` prints one
object on stdout: ``{"source", "kept", "reinitialized", "missing", "unexpected"}``.
Exit status 0 when the weights were read (whatever fitted), 2 when they could not be resolved,
fetched or read, with one line on stderr. torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from core.cli.common import UsageError, load_or_fail
from core.cli.progress import cli_progress

if TYPE_CHECKING:
    from core.training.weights import InputPipeline, WeightsReport


def add_parser(sub: Any) -> None:
    p = sub.add_parser("weights", help="load pretrained weights into a source and report what fits",
                       description="Load weights W into SOURCE and report the tensors kept, reinitialized "
                                   "(shape changed, e.g. a new head), missing and unexpected. SOURCE: a project "
                                   "file, template:NAME or torchvision:NAME. W: DEFAULT or a torchvision weights "
                                   "name (IMAGENET1K_V2, ResNet18_Weights.IMAGENET1K_V1), downloaded into torch "
                                   "hub's cache, or a file (.pth/.pt: a state_dict, {'model': …}, "
                                   "{'state_dict': …}, a NetCanvas checkpoint or run folder; .safetensors). "
                                   "Set NETCANVAS_WEIGHTS_MIRROR to download from a mirror of "
                                   "https://download.pytorch.org/models/.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--from", dest="weights", required=True, metavar="W",
                   help="DEFAULT, a torchvision weights name, or a weights file / run folder")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    project = load_or_fail(args.source)
    from core.compiler import CompileError, compile_graph
    from core.training.weights import WeightsError, fetch, load_weights, project_arch, resolve

    try:
        spec = resolve(args.weights, project_arch(project))
    except WeightsError as exc:
        raise UsageError(str(exc)) from None
    try:
        model = compile_graph(project.graph)
    except CompileError as exc:
        raise UsageError(f"{args.source}: {exc}") from None
    label = spec.cache_path.name if spec.cache_path is not None else spec.label
    try:
        state, sha = fetch(spec, progress=cli_progress(sys.stderr, label))
    except WeightsError as exc:
        raise UsageError(str(exc)) from None
    report = load_weights(model, state, spec.label, sha)
    if args.json:
        print(json.dumps(report.to_dict()), flush=True)
    else:
        print(format_report(report, spec.transforms()))
    return 0


def format_report(report: WeightsReport, pipeline: InputPipeline | None = None) -> str:
    """The summary line, then each list with what it means, then the input the weights expect."""
    lines = [report.summary()]
    if report.sha256:
        lines.append(f"  sha256: {report.sha256}")
    if report.prefix:
        lines.append(f"  the file's key prefix {report.prefix!r} was stripped")
    if report.reinitialized:
        lines.append("  reinitialized (shape changed; left at their initial values):")
        for key in report.reinitialized:
            old, new = report.shapes.get(key, ((), ()))
            lines.append(f"    {key}: file {list(old)} → network {list(new)}")
    if report.missing:
        lines.append("  missing (not in the file; left at their initial values):")
        lines += [f"    {key}" for key in report.missing]
    if report.unexpected:
        lines.append("  unexpected (in the file, not in the network; unused):")
        lines += [f"    {key}" for key in report.unexpected]
    if pipeline is not None:
        lines.append(f"  input these weights expect: resize {pipeline.resize} → centre crop {pipeline.crop}, "
                     f"mean {list(pipeline.mean)}, std {list(pipeline.std)}")
    return "\n".join(lines)


__all__ = ["add_parser", "format_report", "run"]
