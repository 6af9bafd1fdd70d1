"""``main.py evaluate SOURCE|RUN_DIR [--weights W] [--dataset D] [--json]``: where a classifier errs
(DESIGN.md §7, §11).

A RUN_DIR (a folder ``main.py train`` or the Training dock wrote) is evaluated with its last
checkpoint (``--checkpoint best.pt`` for the best one) on the data and settings it trained with,
and the result is also saved as the run's ``evaluation.json`` (what the Evaluation tab shows) when
that data and checkpoint are the run's own (no ``--dataset``, ``last.pt``). A SOURCE (a project
file, ``template:NAME``, ``torchvision:NAME``) is compiled fresh and evaluated with the weights
``--weights`` names, or with those its project file records; ``--dataset`` overrides the data
either way.

Text mode prints accuracy, top-5 (six classes or more), macro F1, the per-class table, the most
confused pairs and the confusion matrix (a wide one shows the classes with the most errors).
``--json`` prints exactly one JSON object on stdout (:meth:`Evaluation.to_dict`, with ``weights``
when weights were loaded); progress and notes go to stderr. A language model (training task
``language-model``) reports its loss per token, ``perplexity`` and ``token_accuracy``
(:class:`~core.training.evaluate.TokenEvaluation`; it writes no ``evaluation.json``); a sequence
classifier is evaluated like an image classifier. A segmentation network (task ``segmentation``)
is evaluated per pixel (:func:`~core.training.evaluate.evaluate_masks`): pixel accuracy, mean IoU
and each class's IoU beside its precision and recall, and the confusion matrix of pixels; ``--json``
adds ``pixel_accuracy``, ``miou`` and ``per_class[i].iou``.
Exit status: 0 evaluated, 1 the network cannot be evaluated on that data (errors in the graph, an
output that does not match the classes), 2 usage or unreadable input (one line), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from core.cli.common import UsageError, load_or_fail

MATRIX_CLASSES = 10  # the widest confusion matrix printed in full; wider ones show the most confused
PAIRS = 5


def add_parser(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="accuracy, per-class table and confusion matrix of a run or a network",
                       description="Evaluate a run folder's checkpoint on its own data, or SOURCE (a project "
                                   "file, template:NAME or torchvision:NAME) with --weights, on --dataset.")
    p.add_argument("source", metavar="SOURCE|RUN_DIR", help="a run folder, or what to evaluate")
    p.add_argument("--weights", metavar="W", help="SOURCE only: DEFAULT, a torchvision weights enum, or a "
                                                  ".pth/.pt/.safetensors file or run folder")
    p.add_argument("--dataset", metavar="D", help="the data to evaluate on (default: the run's or the project's)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--checkpoint", default="last.pt", choices=("last.pt", "best.pt"),
                   help="RUN_DIR: which checkpoint (default last.pt)")
    p.add_argument("--split", choices=("val", "train"), help="default: val (train when there is no validation set)")
    p.add_argument("--device", help="auto (default: the run's or the project's device), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, dest="batch_size", default=256)
    p.add_argument("--data-root", dest="data_root", metavar="DIR", help="where mnist/fashion-mnist/cifar10 files are")
    p.add_argument("--train-size", type=int, dest="train_size",
                   help="shapes/synthetic: training samples generated, as in training (the normalisation reads them)")
    p.add_argument("--val-size", type=int, dest="val_size", help="samples to evaluate (generated sets: to generate)")
    p.add_argument("--val-folder", dest="val_folder", metavar="DIR", help="folder: a separate validation folder")
    p.add_argument("--workers", type=int, help="DataLoader workers for folder datasets")
    p.add_argument("--no-download", dest="download", action="store_false", default=None,
                   help="never download a dataset")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def is_run_folder(path: str) -> bool:
    """Whether ``path`` is a folder that holds a run (its graph or its checkpoints)."""
    p = Path(path)
    return p.is_dir() and ((p / "graph.json").is_file() or (p / "checkpoints").is_dir())


def run(args: argparse.Namespace) -> int:
    from core.training.config import ConfigError
    from core.training.data import DatasetError, parse_spec
    from core.training.evaluate import (
        EvaluationError,
        evaluate,
        evaluate_masks,
        evaluate_tokens,
        open_eval_data,
        open_run_data,
    )
    from core.training.run_inputs import task_dataset
    from core.training.tasks import task_option

    as_run = is_run_folder(args.source)
    if not as_run and Path(args.source).is_dir():
        raise UsageError(f"{args.source} is a folder but not a run folder (no graph.json or checkpoints/ in it)")
    if as_run and args.weights is not None:
        raise UsageError("--weights applies to a SOURCE: a run folder is evaluated with its own checkpoint "
                         f"(evaluate its graph with weights: main.py evaluate {Path(args.source) / 'graph.json'} "
                         "--weights …)")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    overrides = {k: v for k, v in (("dataset", args.dataset), ("data_root", args.data_root),
                                   ("train_size", args.train_size),
                                   ("val_size", args.val_size), ("val_folder", args.val_folder),
                                   ("workers", args.workers), ("download", args.download),
                                   ("device", args.device)) if v is not None}
    weights: Any = None
    pipeline: Any = None
    try:
        if as_run:
            project, config, model, ckpt, analysis = _from_run(args.source, args.checkpoint)
        else:
            project, config, model, analysis = _from_source(args.source)
            ckpt = None
        config = config.updated(**overrides)
        if args.dataset is None:  # a token task on the image default: the task's own first dataset
            config = task_dataset(config)
        parse_spec(config.dataset)
        if not as_run:
            weights, pipeline = _load_weights(model, project, args.weights, quiet=args.quiet, source=args.source)
        note = None if args.quiet else _note
        own_data = as_run and not ({"dataset", "train_size", "val_size", "val_folder"} & set(overrides))
        if as_run:
            data = open_run_data(args.source, config, analysis.input_shape, note)
        else:  # folder images as the loaded weights expect them (their resize, crop, mean, std)
            data = open_eval_data(config, analysis.input_shape, note, pipeline)
    except (ConfigError, DatasetError) as exc:
        raise UsageError(str(exc)) from None
    except EvaluationError as exc:
        raise UsageError(f"{args.source}: {exc}") from None
    except _Exit as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    split = args.split or ("val" if data.val_count else "train")
    bar = _Progress(enabled=not args.quiet and sys.stderr.isatty())
    target = task_option(config.task).target
    language_model = target == "next-token"
    try:
        if language_model:
            ev: Any = evaluate_tokens(model, data, split=split, device=config.device, batch_size=args.batch_size,
                                      progress=bar)
        elif target == "mask":
            ev = evaluate_masks(model, data, split=split, device=config.device, batch_size=args.batch_size,
                                ignore_index=config.ignore_index, progress=bar)
        else:
            ev = evaluate(model, data, split=split, device=config.device, batch_size=args.batch_size,
                          progress=bar, input_shape=analysis.input_shape)
    except EvaluationError as exc:
        bar.clear()
        print(f"error: {args.source}: {exc}", file=sys.stderr)
        return 1
    bar.clear()
    if ckpt is not None:
        ev.extra = {"run": str(Path(args.source)), "epoch": int(ckpt.get("epoch", 0)), "checkpoint": args.checkpoint}
    if language_model:  # no class table: nothing for evaluation.json (the Evaluation tab's file)
        print(json.dumps(ev.to_dict()) if args.json else format_tokens(ev, source=args.source))
        return 0
    if ckpt is not None:
        # evaluation.json is the run's own evaluation (what the run wrote at its end): only the
        # last checkpoint on the run's data replaces it
        if own_data and args.checkpoint == "last.pt" and split == ("val" if data.val_count else "train"):
            _save_quietly(ev, Path(args.source), quiet=args.quiet or args.json)
    report = data.report()
    if report and not args.quiet:
        _note(f"{data.name}: {report}")
    if args.json:
        out = ev.to_dict()
        if weights is not None:
            out["weights"] = weights.to_dict()
        print(json.dumps(out))
    else:
        print(format_masks(ev, source=args.source) if ev.per_pixel else format_text(ev, source=args.source))
    return 0


def _from_run(run_dir: str, checkpoint: str) -> tuple[Any, Any, Any, dict[str, Any], Any]:
    from core.analysis import analyze
    from core.training.evaluate import load_run_model

    project, config, model, ckpt = load_run_model(run_dir, checkpoint)
    return project, config, model, ckpt, analyze(project.graph)


def _from_source(source: str) -> tuple[Any, Any, Any, Any]:
    from core.analysis import analyze
    from core.compiler import CompileError, compile_graph
    from core.training.config import TrainConfig

    project = load_or_fail(source)
    config = TrainConfig.from_dict(project.training)
    analysis = analyze(project.graph)
    if not analysis.ok:
        first = analysis.errors[0]
        more = f" (and {len(analysis.errors) - 1} more)" if len(analysis.errors) > 1 else ""
        raise _Exit(1, f"{source}: the network has errors to fix before it can be evaluated: "
                       f"{first.message}{more}")
    try:
        model = compile_graph(project.graph, seed=config.seed, analysis=analysis)
    except CompileError as exc:
        raise _Exit(1, f"{source}: {exc}") from None
    return project, config, model, analysis


def _load_weights(model: Any, project: Any, spec: str | None, quiet: bool, source: str) -> tuple[Any, Any]:
    """Load ``--weights`` (or the weights the project file records) into ``model``: the report and
    the input pipeline the weights expect (torchvision's; ``None`` for a file), or ``(None, None)``
    when there were none to load. A source that cannot be read is a :class:`UsageError`."""
    from core.cli.progress import cli_progress
    from core.project import ProjectError
    from core.training.weights import WeightsError, fetch, load_weights, project_arch, project_weights, resolve

    if spec is not None:
        text = spec
    else:
        try:
            recorded = project_weights(project)
        except ProjectError as exc:
            raise UsageError(f"{source}: {exc}") from None
        if recorded is None:
            return None, None
        text = str(recorded["source"])
    where = "--weights" if spec is not None else f"{source}: weights.source"
    try:
        resolved = resolve(text, project_arch(project))
        label = resolved.cache_path.name if resolved.cache_path is not None else resolved.label
        state, sha = fetch(resolved, progress=None if quiet else cli_progress(sys.stderr, label))
    except WeightsError as exc:
        raise UsageError(f"{where} {text}: {exc}") from None
    report = load_weights(model, state, resolved.label, sha)
    if not quiet:
        _note(report.summary())
    return report, resolved.transforms()


def _save_quietly(ev: Any, run_dir: Path, quiet: bool) -> None:
    from core.training.evaluate import EVALUATION_FILE

    try:
        ev.save(run_dir / EVALUATION_FILE)
    except OSError as exc:  # a read-only run folder: the evaluation itself still stands
        _note(f"could not save {run_dir / EVALUATION_FILE}: {exc}")
        return
    if not quiet:
        _note(f"saved {run_dir / EVALUATION_FILE}")


# ------------------------------------------------------------------------------------------ text


def format_text(ev: Any, source: str = "") -> str:
    """The text report: headline, per-class table, most confused pairs, confusion matrix."""
    where = f" — {ev.extra['run']}, epoch {ev.extra['epoch']} ({ev.extra['checkpoint']})" if "run" in ev.extra \
        else (f" — {source}" if source else "")
    split = "validation" if ev.split == "val" else "training"
    lines = [f"{ev.dataset}, {split} split, {ev.count:,} samples{where}"]
    top5 = f"   top-5 {ev.top5:.2%}" if ev.top5 is not None else ""
    lines.append(f"accuracy {ev.accuracy:.2%}{top5}   macro F1 {ev.macro_f1:.3f}")
    lines += ["", *_class_table(ev)]
    pairs = ev.most_confused(PAIRS)
    if pairs:
        width = max(len(t) for t, _p, _n in pairs)
        lines += ["", "most confused (true → predicted):"]
        lines += [f"  {t:<{width}} → {p}: {n:,} ({n / max(1, _support(ev, t)):.0%} of {t})" for t, p, n in pairs]
    else:
        lines += ["", "no sample was misclassified"]
    lines += ["", *_matrix(ev)]
    return "\n".join(lines)


def format_masks(ev: Any, source: str = "") -> str:
    """A segmentation's text report: where, pixel accuracy and mean IoU, the per-class table with
    IoU ("—" for a class absent from truth and prediction), the confusion matrix of pixels."""
    where = f" — {ev.extra['run']}, epoch {ev.extra['epoch']} ({ev.extra['checkpoint']})" if "run" in ev.extra \
        else (f" — {source}" if source else "")
    split = "validation" if ev.split == "val" else "training"
    pixels = sum(map(sum, ev.confusion))
    acc = f"{ev.pixel_accuracy:.2%}" if ev.pixel_accuracy is not None else "—"
    miou = f"{ev.miou:.3f}" if ev.miou is not None else "—"
    lines = [f"{ev.dataset}, {split} split, {ev.count:,} images ({pixels:,} labelled pixels){where}",
             f"pixel accuracy {acc}   mean IoU {miou}", ""]
    width = max(5, *(len(c.name) for c in ev.per_class))
    lines.append(f"{'class':<{width}}    IoU  precision  recall  pixels")
    for c in ev.per_class:
        iou = f"{c.iou:.3f}" if c.iou is not None else "—"
        lines.append(f"{c.name:<{width}}  {iou:>5}  {c.precision:>9.1%}  {c.recall:>6.1%}  {c.support:>7,}")
    lines += ["", *_matrix(ev)]
    return "\n".join(lines)


def format_tokens(ev: Any, source: str = "") -> str:
    """A language model's text report: where, then loss per token, perplexity and token accuracy."""
    where = f" — {ev.extra['run']}, epoch {ev.extra['epoch']} ({ev.extra['checkpoint']})" if "run" in ev.extra \
        else (f" — {source}" if source else "")
    split = "validation" if ev.split == "val" else "training"
    return (f"{ev.dataset}, {split} split, {ev.count:,} tokens{where}\n"
            f"loss {ev.loss:.4f} per token   perplexity {ev.perplexity:.2f}   token accuracy {ev.token_accuracy:.2%}")


def _support(ev: Any, name: str) -> int:
    return next(c.support for c in ev.per_class if c.name == name)


def _class_table(ev: Any) -> list[str]:
    width = max(5, *(len(c.name) for c in ev.per_class))
    out = [f"{'class':<{width}}  precision  recall     f1  support"]
    for c in ev.per_class:
        out.append(f"{c.name:<{width}}  {c.precision:>9.1%}  {c.recall:>6.1%}  {c.f1:>5.3f}  {c.support:>7,}")
    return out


def _matrix(ev: Any) -> list[str]:
    """The confusion matrix, rows = true class; over :data:`MATRIX_CLASSES` classes, those with the
    most errors (as true or predicted class), in class order."""
    k = len(ev.classes)
    shown = list(range(k))
    title = "confusion matrix (rows = true class, columns = predicted):"
    if k > MATRIX_CLASSES:
        errors = [sum(ev.confusion[i][j] + ev.confusion[j][i] for j in range(k) if j != i) for i in range(k)]
        shown = sorted(sorted(range(k), key=lambda i: (-errors[i], i))[:MATRIX_CLASSES])
        title = (f"confusion matrix, the {MATRIX_CLASSES} of {k} classes with the most errors (rows = true class, "
                 "columns = predicted; --json has the whole matrix):")
    cell = max(5, len(f"{max(max(row) for row in ev.confusion):,}") + 1)
    columns = [ev.classes[j][:cell - 1] for j in shown]
    names = [ev.classes[i][:14] for i in shown]
    if len(set(columns)) < len(columns):  # shortened names that collide ("class 1", "class 2"): numbers
        columns = [str(j) for j in shown]
        names = [f"{i:>{len(str(k - 1))}} {name}" for i, name in zip(shown, names, strict=True)]
    label = max(len(n) for n in names)
    head = " " * label + "".join(f"{c:>{cell}}" for c in columns)
    rows = [f"{name:<{label}}" + "".join(f"{ev.confusion[i][j]:>{cell},}" for j in shown)
            for i, name in zip(shown, names, strict=True)]
    return [title, head, *rows]


# ---------------------------------------------------------------------------------------- helpers


class _Exit(Exception):
    """A problem that exits with ``status`` (1: the network cannot be evaluated) after one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.shown = enabled, False
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:  # at most ten redraws a second
            return
        self.last = now
        width = 24
        filled = int(width * done / total)
        amount = f"{done:,}/{total:,} samples"
        print(f"\r{'█' * filled}{'·' * (width - filled)} {amount}\033[K", end="", file=sys.stderr, flush=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self.shown = False
