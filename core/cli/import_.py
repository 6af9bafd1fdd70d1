"""``main.py import SOURCE -o FILE.json``: an editable project file from a model (DESIGN.md §7).

``SOURCE`` is usually ``torchvision:NAME`` (e.g. ``torchvision:resnet50``) or an ONNX file
(``model.onnx``: its initializers are written beside the project as a ``state_dict``,
``model.pt`` for ``-o model.json``, which the compiled project loads with ``strict=True``; a model
with several inputs becomes one Input node per input, and ``--input-shape`` is repeated, once per
input in the file's order, where the file leaves sizes open);
a Python file (``lm.py``, e.g. one ``main.py export`` wrote) gives the ``nn.Module`` class it
defines (``--class NAME``, default the last that builds without arguments) for the
``--input-shape`` given (required: ``35`` for a sequence of 35 token ids);
project files and ``template:NAME`` work too (the result is the same project, laid out again only
if it has no positions). Prints one line: nodes, groups, parameters, MACs and the files written.

Exit status: 0 written, 1 written but the network has error diagnostics, 2 for usage errors,
unknown names or models the importer cannot represent (one line on stderr naming the
operation and the module path).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.analysis import analyze
from core.cli.common import UsageError, load_or_fail
from core.layers.spec import fmt_shape
from core.layout import lay_out
from core.project import Project, save_project
from core.units import human


def add_parser(sub: Any) -> None:
    p = sub.add_parser("import", help="import a model (torchvision:NAME, FILE.onnx) as an editable project file",
                       description="Trace SOURCE with torch.fx and write it as a NetCanvas project: one node per "
                                   "layer (ids = module paths, so the weights' keys are kept), one group per "
                                   "module. SOURCE: torchvision:NAME (any traceable classification or segmentation "
                                   "model), FILE.onnx (its weights go to FILE.pt beside the project), FILE.py (an "
                                   "nn.Module it defines; an input its Embedding reads is token ids), template:NAME "
                                   "or a project file.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("-o", "--output", required=True, metavar="FILE.json", help="the project file to write")
    p.add_argument("--input-shape", metavar="C,H,W", action="append",
                   help="per-sample input shape for torchvision:NAME or an .onnx file whose sizes are not fixed "
                        "(default: the model's own, e.g. 3,224,224), required for FILE.py (token ids: the "
                        "sequence length T, e.g. 35); repeat it for a model with several inputs, one per input "
                        "in the model's order")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="for FILE.py: the nn.Module class to import (default: the last one the file defines "
                        "that builds without arguments, the network of a file NetCanvas exported)")
    p.set_defaults(func=run)


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("×", ",").replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise UsageError(f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 3,224,224")
    return shape


def _is_onnx(source: str) -> bool:
    return source.lower().endswith(".onnx") and not source.startswith(("template:", "torchvision:"))


def _load_onnx(source: str, input_shapes: list[str] | None) -> tuple[Project, dict[str, Any]]:
    from core.importer.errors import ModelImportError
    from core.importer.onnx_import import import_onnx_project

    shapes = [_shape(text) for text in input_shapes] if input_shapes else None
    try:
        return import_onnx_project(source, shapes)
    except ModelImportError as exc:
        text = str(exc)
        raise UsageError(text if text.startswith(source) else f"{source}: {text}") from None


def _write_weights(state: dict[str, Any], target: Path) -> Path:
    """The ONNX file's weights as a ``state_dict`` file, written like a project (atomically)."""
    import io

    import torch

    from core.project import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write_bytes(target, buffer.getvalue())
    except OSError as exc:
        raise UsageError(f"{target}: cannot write: {exc.strerror or exc}") from None
    return target


def _is_python(source: str) -> bool:
    return source.lower().endswith(".py") and not source.startswith(("template:", "torchvision:"))


def _load_python(source: str, input_shapes: list[str] | None, class_name: str | None) -> Project:
    """``FILE.py``: the network class it defines, for the input shapes given (the file does not say them)."""
    from core.importer.errors import ModelImportError
    from core.importer.python_file import import_python

    if not input_shapes:
        raise UsageError(f"{source}: give the per-sample input shape with --input-shape (e.g. 35 for a sequence "
                         f"of 35 token ids, 3,32,32 for an image), once per forward input")
    try:
        return import_python(source, [_shape(text) for text in input_shapes], class_name)
    except ModelImportError as exc:
        text = str(exc)
        raise UsageError(text if text.startswith(source) else f"{source}: {text}") from None


def _load(source: str, input_shapes: list[str] | None) -> Project:
    if not input_shapes:
        return load_or_fail(source)
    if not source.startswith("torchvision:"):
        raise UsageError(f"--input-shape applies to torchvision:NAME and .onnx sources only, not {source!r}")
    if len(input_shapes) > 1:
        raise UsageError(f"{source} has one input, but --input-shape was given {len(input_shapes)} times")
    from core.importer import import_torchvision
    from core.sources import SourceError

    try:
        return import_torchvision(source.split(":", 1)[1], _shape(input_shapes[0]))
    except SourceError as exc:
        raise UsageError(f"{source}: {exc}") from None


def _inputs(shapes: Any) -> str:
    """``input 3×224×224``, or ``inputs 3×64×64 and 3×64×64`` for a model with several."""
    shown = [fmt_shape(s) if s is not None else "?" for s in shapes]
    return f"input {shown[0]}" if len(shown) == 1 else f"inputs {', '.join(shown[:-1])} and {shown[-1]}"


def run(args: argparse.Namespace) -> int:
    target = Path(args.output)
    if target.suffix.lower() != ".json":
        raise UsageError(f"{args.output}: the project file name must end in .json")
    state: dict[str, Any] | None = None
    if args.class_name is not None and not _is_python(args.source):
        raise UsageError(f"--class applies to FILE.py sources only, not {args.source!r}")
    if _is_onnx(args.source):
        project, state = _load_onnx(args.source, args.input_shape)
    elif _is_python(args.source):
        project = _load_python(args.source, args.input_shape, args.class_name)
    else:
        project = _load(args.source, args.input_shape)
    if all(n.pos is None for n in project.graph.nodes.values()):
        lay_out(project.graph, wrap=False)
    try:
        written = save_project(project, target)
    except OSError as exc:
        raise UsageError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    weights = f" + weights {_write_weights(state, target.with_suffix('.pt'))}" if state else ""
    result = analyze(project.graph)
    print(f"{project.name}: {len(project.graph.nodes)} nodes, {len(project.graph.groups)} groups, "
          f"{_inputs(result.input_shapes or (result.input_shape,))}, {result.total_params:,} parameters "
          f"({human(result.total_params)}), {human(result.macs)}MACs → {written}{weights}")
    return 0 if result.ok else 1
