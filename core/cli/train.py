"""``main.py train SOURCE [options] [--json]``: headless training (DESIGN.md §7, §9).

Options override the project's ``training`` section. Without ``--json`` a progress line runs on
stderr and one line per epoch goes to stdout; with ``--json`` stdout holds exactly one JSON object
per epoch (``epoch, train_loss, train_acc, val_loss, val_acc, lr, images_per_s, seconds``; accuracies
as fractions) and everything else goes to stderr. Each run writes a run folder (``--out``, default
``runs/<name>-<time>``). ``--resume RUN_DIR`` continues a run from its last checkpoint.
The dataset, optimizer, schedule, loss and precision options and the settings they read are built
from their declarations (:mod:`core.training.options`).

Tasks (issue 14): ``--task language-model`` trains on token sequences (``sentences``, the default
then, or ``text:FILE`` with ``--tokenize char|word``) as long as the graph's Input; the epoch lines
add ``val_ppl`` and the text generated from ``--prompt`` at ``--temperature`` (``--generate-length``
tokens), and the JSON lines add ``val_perplexity`` and ``generated``. ``--task
sequence-classification`` trains a classifier on ``brackets`` or ``digitsum``. Rates of token data
are in tokens per second.

Fine-tuning (issue 13): ``--weights W`` loads pretrained weights (``DEFAULT``, a torchvision
weights name, a file or run folder; :mod:`core.training.weights`) after compiling and before the
first batch, and prints the report first (with ``--json`` the first stdout line is
``{"weights": {"source", "kept", "reinitialized", "missing", "unexpected"}}``); ``--replace-head``
gives the head the opened dataset's class count; ``--freeze`` and ``--lr-mult`` take node ids and
block ids (:mod:`core.finetune`). An unknown id is a usage error naming the closest ids.
At the end of a run that trained an epoch the run folder gets its ``evaluation.json``.

Under ``torchrun --nproc_per_node=N`` the run uses DistributedDataParallel; rank 0 prints and saves.
Exit status: 0 trained (or stopped early by early stopping), 1 training failed (plain message),
2 usage or unreadable input, 130 interrupted with Ctrl-C (the last epoch checkpoint is kept).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from core.cli.common import UsageError, load_or_fail

# Options that are no declared training option (the data source's details and the run's plumbing).
_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--data-root",), {"dest": "data_root", "metavar": "DIR",
                        "help": "where mnist/fashion-mnist/cifar10 files are (or are downloaded to)"}),
    (("--grad-clip",), {"type": float, "dest": "grad_clip", "metavar": "NORM"}),
    (("--early-stopping",), {"type": int, "dest": "early_stopping", "metavar": "PATIENCE"}),
    (("--device",), {"help": "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"}),
    (("--crop-padding",), {"type": int, "dest": "crop_padding", "help": "random-crop padding in pixels"}),
    (("--train-size",), {"type": int, "dest": "train_size", "help": "samples to generate (shapes, synthetic) "
                                                                     "or to keep (others)"}),
    (("--val-size",), {"type": int, "dest": "val_size"}),
    (("--val-fraction",), {"type": float, "dest": "val_fraction", "help": "folder: share held out for validation"}),
    (("--val-folder",), {"dest": "val_folder", "metavar": "DIR", "help": "folder: a separate validation folder"}),
    (("--workers",), {"type": int, "help": "DataLoader workers for folder datasets"}),
    (("--threads",), {"type": int, "metavar": "N", "help": "CPU threads torch computes with (default: torch's "
                                                           "choice; 1 is often fastest for a small model on a "
                                                           "busy machine)"}),
]
_FLAGS = [  # (option, config key, value when given)
    ("--channels-last", "channels_last", True), ("--no-channels-last", "channels_last", False),
    ("--compile", "compile", True), ("--no-augment", "augment", False), ("--hflip", "hflip", True),
    ("--no-hflip", "hflip", False), ("--no-download", "download", False), ("--deterministic", "deterministic", True),
]


def _choices_help(registry: Mapping[str, Any]) -> str:
    """``name: doc`` of every option of ``registry``, for ``-h`` (``%`` doubled: argparse formats help with it)."""
    return "; ".join(f"{name}: {option.doc}" for name, option in registry.items()).replace("%", "%%")


def declared_options() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The ``train`` options read from the declarations in :mod:`core.training.options` (read at
    each call, so a newly declared optimizer is a choice at once): the dataset, the optimizer,
    schedule, loss and precision choices, and every declared setting that has a flag."""
    from core.training import options as o
    from core.training.tasks import TASKS

    default = o.DATASETS.get("shapes")
    dataset_help = ", ".join(f"{d.usage} (default)" if d is default else d.usage for d in o.DATASETS.values())
    task_help = "; ".join(f"{t.name}: {t.doc} (datasets {', '.join(t.datasets)})" for t in TASKS.values())
    out: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("--task",), {"metavar": "TASK", "help": f"what the network learns (default classification): {task_help}"
                       .replace("%", "%%")}),
        (("--dataset",), {"help": dataset_help + " (a token task without --dataset takes its first)"}),
        (("--tokenize",), {"choices": ("char", "word"), "help": "text:FILE: character or word tokens (default char)"}),
        (("--prompt",), {"metavar": "TEXT", "help": "language models: the start of the text generated after each "
                                                    "epoch (default: the validation text's first tokens)"}),
    ]
    by_key = {p.key: p for p in o.all_params() if p.flag is not None and p.kind in (int, float)}
    placed: set[str] = set()

    def params(keys: Sequence[str]) -> None:
        for key in keys:
            p = by_key.get(key)
            if p is not None and key not in placed:
                placed.add(key)
                extra = {"metavar": p.metavar} if p.metavar else {}
                help_ = p.doc.replace("%", "%%")
                out.append(((p.flag or "",), {"type": p.kind, "dest": p.key, "help": help_, **extra}))

    # the order of ``-h`` before the options were declared: general settings, then each choice
    # after the settings that come before it there
    params(["epochs", "batch_size", "lr"])
    out.append((("--optimizer",), {"choices": tuple(o.OPTIMIZERS), "help": _choices_help(o.OPTIMIZERS)}))
    params([p.key for p in o.params_of(o.OPTIMIZERS)])
    out.append((("--schedule",), {"choices": tuple(o.SCHEDULES), "help": _choices_help(o.SCHEDULES)}))
    params([p.key for p in o.params_of(o.SCHEDULES)])
    out.append((("--loss",), {"choices": tuple(o.LOSSES), "help": _choices_help(o.LOSSES)}))
    params([p.key for p in o.params_of(o.LOSSES)])
    out.append((("--amp",), {"nargs": "?", "const": "auto", "choices": tuple(o.AMP_MODES),
                             "help": "mixed precision on CUDA (bf16 where supported, else fp16 with a grad "
                                     "scaler): " + _choices_help(o.AMP_MODES)}))
    out.append((("--gan-loss",), {"choices": tuple(o.GAN_LOSSES), "dest": "gan_loss",
                                  "help": "GANs' adversarial loss (default bce): " + "; ".join(
                                      f"{k}: {v}" for k, v in o.GAN_LOSSES.items()).replace("%", "%%")}))
    params(list(by_key))
    return out


def declared_flags() -> list[tuple[str, str, bool]]:
    """``(option, config key, value)`` of every declared on/off setting that has a flag (``--nesterov``
    sets True; ``--train-frozen-bn`` turns ``frozen_bn_eval``, on by default, off)."""
    from core.training.options import all_params

    return [(p.flag, p.key, p.flag_value) for p in all_params() if p.flag is not None and p.kind is bool]


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a network headless (one JSON line per epoch with --json)",
                       description="Train SOURCE (a project file, template:NAME or torchvision:NAME) on a dataset. "
                                   "Options override the project's training settings.")
    p.add_argument("source", nargs="?", metavar="SOURCE", help="what to train (optional with --resume)")
    for names, kwargs in [*declared_options(), *_OPTIONS]:
        p.add_argument(*names, default=None, **kwargs)
    from core.training.options import all_params

    docs = {p.flag: (p.doc if p.flag_value else f"turns off the default: {p.doc}").replace("%", "%%")
            for p in all_params() if p.flag is not None}
    for option, key, value in [*declared_flags(), *_FLAGS]:
        p.add_argument(option, dest=f"flag_{option[2:].replace('-', '_')}", action="store_const", const=(key, value),
                       default=None, help=docs.get(option))
    p.add_argument("--aux-weights", dest="aux_weights", metavar="W,W", help="loss weights of auxiliary outputs")
    p.add_argument("--weights", metavar="W", help="start from pretrained weights: DEFAULT or a torchvision weights "
                                                   "name (IMAGENET1K_V2), downloaded into torch hub's cache, or a "
                                                   ".pth/.pt/.safetensors file or run folder")
    p.add_argument("--no-weights", dest="no_weights", action="store_true",
                   help="start fresh although the project records pretrained weights (which it loads otherwise)")
    p.add_argument("--freeze", metavar="NODE_OR_BLOCK[,…]", help="freeze these nodes or blocks (e.g. layer1,layer2)")
    p.add_argument("--lr-mult", dest="lr_mult", metavar="NODE_OR_BLOCK=X[,…]",
                   help="learning-rate multipliers per node or block (e.g. fc=10,layer4=2)")
    p.add_argument("--replace-head", dest="replace_head", action="store_true",
                   help="give the last Linear (or 1×1 conv) the dataset's class count (its weights start fresh)")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch on stdout")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<name>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings given on the command line."""
    out: dict[str, Any] = {}
    for names, kwargs in [*declared_options(), *_OPTIONS]:
        key = kwargs.get("dest", names[0][2:].replace("-", "_"))
        value = getattr(args, key, None)
        if value is not None:
            out[key] = value
    for option, _key, _value in [*declared_flags(), *_FLAGS]:
        given = getattr(args, f"flag_{option[2:].replace('-', '_')}", None)
        if given is not None:
            out[given[0]] = given[1]
    if args.aux_weights is not None:
        try:
            out["aux_weights"] = [float(v) for v in args.aux_weights.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"--aux-weights: expected numbers separated by commas, got {args.aux_weights!r}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from core.training import distributed as ddp
    from core.training.config import ConfigError, TrainConfig
    from core.training.data import DatasetError, parse_spec
    from core.training.health import TrainingFailure
    from core.training.run_inputs import task_dataset
    from core.training.runs import default_run_dir, holds_run, taken_message
    from core.training.session import TrainingSession, resume_settings

    if args.source is None and args.resume is None:
        raise UsageError("train needs a SOURCE (a project file, template:NAME or torchvision:NAME) or --resume RUN_DIR")
    tuning = [flag for flag, given in (("--weights", args.weights is not None), ("--freeze", args.freeze is not None),
                                       ("--lr-mult", args.lr_mult is not None), ("--replace-head", args.replace_head))
              if given]
    if tuning and args.resume is not None:
        raise UsageError(f"{', '.join(tuning)} cannot be combined with --resume: the run continues with the "
                         "network and weights of its checkpoint")
    try:
        if args.resume is not None:
            project, config = resume_settings(args.resume)
            if args.source is not None:
                project = load_or_fail(args.source)
        else:
            project = load_or_fail(args.source)
            config = TrainConfig.from_dict(project.training)
        config = config.updated(**overrides(args))
        if args.dataset is None:  # a token task on the image default: the task's own first dataset
            config = task_dataset(config)
        parse_spec(config.dataset)
    except (ConfigError, DatasetError) as exc:
        raise UsageError(str(exc)) from None
    except TrainingFailure as exc:
        raise UsageError(str(exc)) from None
    _fine_tune_edits(project, args)
    if args.weights is not None and args.no_weights:
        raise UsageError("--weights and --no-weights contradict each other: give one")
    if args.weights is None and not args.no_weights and args.resume is None:
        args.weights = _recorded_weights(project)
    weights_label, weights_error = _check_weights(project, args.weights)

    # Before a byte is allocated: a network too big for this machine is one sentence, exit 1 (the
    # file is fine, the run cannot happen here).
    from core.analysis import analyze
    from core.memory_guard import training_device_problem

    problem = training_device_problem(analyze(project.graph), config.device, config.batch_size, config.optimizer)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        ctx = ddp.from_env(config.device)
    except (RuntimeError, ValueError) as exc:
        print(f"error: cannot join the distributed run: {exc}", file=sys.stderr)
        return 1
    main_rank = ctx is None or ctx.main
    if args.out is not None and holds_run(args.out) and not _same_folder(args.out, args.resume):
        ddp.shutdown()
        raise UsageError(taken_message(args.out))
    run_dir = args.out or args.resume or str(default_run_dir(project.name or "run"))
    report = _Reporter(args.json, progress=not args.quiet, main=main_rank)
    data = None
    if args.replace_head:
        data = _replace_head(project, config, ctx, report.note)
    progress = None
    if weights_label is not None and main_rank:
        from core.cli.progress import cli_progress

        progress = cli_progress(sys.stderr, weights_label)
    session = TrainingSession(project, config, report.callbacks(), run_dir=run_dir, resume_from=args.resume,
                              dist=ctx, log=report.note, data=data, weights_spec=args.weights,
                              weights_progress=progress)
    usage_errors: tuple[type[Exception], ...] = (DatasetError, *weights_error)
    try:
        session.build()
    except usage_errors as exc:
        ddp.shutdown()
        raise UsageError(str(exc)) from None
    except TrainingFailure as exc:
        ddp.shutdown()
        if main_rank:
            print(f"error: {exc}", file=sys.stderr)
        return 1
    previous = _install_sigint(session.stop)
    try:
        summary = session.run()
    finally:
        _restore_sigint(previous)
        ddp.shutdown()
    if summary.status == "failed":
        if main_rank and _head_mismatch(session.mismatch):
            print("hint: --replace-head gives the head the dataset's class count", file=sys.stderr)
        return 1
    if main_rank and not args.json:
        last = summary.last
        if last is not None and last.d_loss is not None:  # a GAN has no validation: its last figures
            best = (f"last epoch D(x) {last.d_real:.3f}, D(G(z)) {last.d_fake:.3f}; "
                    f"sample it with: main.py sample {run_dir} -n 64 -o grid.png")
        elif summary.best_val_miou is not None:
            best = f"best validation mIoU {summary.best_val_miou:.4f} at epoch {summary.best_epoch}"
        elif summary.best_val_perplexity is not None:
            best = f"best validation perplexity {summary.best_val_perplexity:.2f} at epoch {summary.best_epoch}"
        else:
            best = ("best validation accuracy " + (f"{summary.best_val_acc:.2%} at epoch {summary.best_epoch}"
                                                   if summary.best_val_acc is not None else "—"))
        print(f"{summary.status}: {summary.epochs_done} epoch(s) in {summary.seconds:.1f} s; "
              f"{best}; run folder {run_dir}", file=sys.stderr)
    return 130 if summary.status == "stopped" else 0


def _fine_tune_edits(project: Any, args: argparse.Namespace) -> None:
    """``--freeze`` and ``--lr-mult`` on the project's graph (every id checked before any change)."""
    from core.finetune import FineTuneError, freeze, parse_ids, parse_lr_mults, set_lr_mults

    for option, text in (("--freeze", args.freeze), ("--lr-mult", args.lr_mult)):
        if text is None:
            continue
        try:
            if option == "--freeze":
                ids = parse_ids(text)
                if not ids:
                    raise FineTuneError("expected node or block ids separated by commas (e.g. layer1,layer2)")
                freeze(project.graph, ids)
            else:
                set_lr_mults(project.graph, parse_lr_mults(text))
        except (KeyError, FineTuneError) as exc:
            raise UsageError(f"{option}: {exc}") from None


def _recorded_weights(project: Any) -> str | None:
    """The weights the project file records (loaded again as if given with --weights), said on stderr."""
    from core.project import ProjectError

    try:
        from core.training.weights import recorded_source

        source = recorded_source(project)
    except ProjectError as exc:
        raise UsageError(str(exc)) from None
    if source is not None:
        print(f"starting from the weights the project records: {source} (--no-weights starts fresh)",
              file=sys.stderr)
    return source


def _check_weights(project: Any, spec: str | None) -> tuple[str | None, tuple[type[Exception], ...]]:
    """Resolve ``--weights`` before anything is opened (a bad name fails at once, exit 2): the label of
    its progress bar and the error class a fetch raises (none without ``--weights``)."""
    if spec is None:
        return None, ()
    from core.training.weights import WeightsError, project_arch, resolve

    try:
        resolved = resolve(spec, project_arch(project))
    except WeightsError as exc:
        raise UsageError(f"--weights: {exc}") from None
    label = resolved.cache_path.name if resolved.cache_path is not None else resolved.label
    return label, (WeightsError,)


def _replace_head(project: Any, config: Any, ctx: Any, log: Any) -> Any:
    """Open the dataset and give the graph's head its class count (``--replace-head``): the data,
    which the session then trains on."""
    from core.analysis import analyze
    from core.finetune import FineTuneError, replace_head
    from core.training import distributed as ddp
    from core.training.data import DatasetError
    from core.training.run_inputs import open_shared_data

    try:
        data = open_shared_data(config, analyze(project.graph).input_shape, ctx, log)
        edit = replace_head(project.graph, data.num_classes)
    except (DatasetError, FineTuneError) as exc:
        ddp.shutdown()
        raise UsageError(f"--replace-head: {exc}" if isinstance(exc, FineTuneError) else str(exc)) from None
    if edit.old_out != edit.new_out and (ctx is None or ctx.main):
        log(f"replaced the head: {edit.node_id}.{edit.param} {edit.old_out} → {edit.new_out} "
            f"({data.name} has {data.num_classes} classes)")
    _fit_embeddings(project.graph, data, log if ctx is None or ctx.main else None)
    return data


def _fit_embeddings(graph: Any, data: Any, log: Any) -> None:
    """Token data: the input Embedding gets a vector for each of the dataset's token ids too (a
    language model's vocabulary is both its head's width and its Embedding's rows)."""
    from core.analysis import analyze
    from core.training.data import check_fit

    mismatch = check_fit(data, analyze(graph), graph)
    for fix in mismatch.fixes if mismatch is not None else ():
        if getattr(fix, "param", None) == "num_embeddings":
            graph.set_param(fix.node, fix.param, fix.value)
            if log is not None:
                log(f"resized the embedding: {fix.node}.num_embeddings → {fix.value} "
                    f"({data.name} has {fix.value} token ids)")


def _head_mismatch(mismatch: Any) -> bool:
    """Whether a failed run's data/graph mismatch is the class count (a fix on the head)."""
    return mismatch is not None and any(getattr(f, "param", None) in ("out_features", "out_channels")
                                        for f in getattr(mismatch, "fixes", ()))


def _same_folder(out: str, resume: str | None) -> bool:
    """Whether ``--out`` names the run folder being resumed (a folder, or the folder of a checkpoint in it)."""
    if resume is None:
        return False
    r = Path(resume)
    folder = r.parent.parent if r.is_file() and r.parent.name == "checkpoints" else r
    try:
        return Path(out).resolve() == folder.resolve()
    except OSError:
        return False


class _Reporter:
    """Turns engine events into the CLI's output (JSON lines or a progress line)."""

    def __init__(self, as_json: bool, progress: bool, main: bool) -> None:
        self.as_json = as_json
        self.progress = progress and main  # the progress line and the start line
        self.main = main  # other DDP ranks print nothing
        self.tty = sys.stderr.isatty()
        self._line = False
        self.seq_len = 0  # T of token data (rates in tokens per second), 0 for images

    def callbacks(self) -> Any:
        from core.training.events import Callbacks

        return Callbacks(run_started=self.started, batch=self.batch, epoch_end=self.epoch, warning=self.warning,
                         failed=self.failed, weights=self.weights)

    def _clear(self) -> None:
        if self._line:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
            self._line = False

    def note(self, message: str) -> None:
        if self.main:
            self._clear()
            print(message, file=sys.stderr, flush=True)

    def weights(self, report: Any) -> None:
        """The weights report, before the first epoch: the first stdout line with ``--json``."""
        if not self.main:
            return
        self._clear()
        if self.as_json:
            print(json.dumps({"weights": report.to_dict()}), flush=True)
        else:
            print(report.summary(), file=sys.stderr, flush=True)

    def started(self, info: Any) -> None:
        tokens = info.dataset.get("modality") == "tokens"
        self.seq_len = int(info.dataset["sample_shape"][0]) if tokens else 0
        if not self.progress:
            return
        ds = info.dataset
        shape = "×".join(map(str, ds["sample_shape"]))
        kind = (f"{ds.get('vocab_size', len(ds['classes']))} tokens" if ds.get("target") == "next-token"
                else f"{len(ds['classes'])} classes")
        where = f" × {info.world_size} processes" if info.world_size > 1 else ""
        resumed = f", resuming at epoch {info.start_epoch}" if info.start_epoch > 1 else ""
        precision = info.amp if info.amp != "off" else "float32"
        print(f"training on {info.device_name} ({info.device}{where}, {precision}): {ds['name']} {shape}, "
              f"{kind}, {ds['train_count']:,} train / {ds['val_count']:,} val; "
              f"{info.trainable_params:,} trainable parameters; run folder {info.run_dir}{resumed}",
              file=sys.stderr, flush=True)

    def batch(self, p: Any) -> None:
        if not self.progress or not self.tty:
            return
        width = 24
        done = int(width * p.step / max(p.steps, 1))
        bar = "█" * done + "·" * (width - done)
        rate = f"{p.images_per_s * self.seq_len:,.0f} tok/s" if self.seq_len else f"{p.images_per_s:,.0f} img/s"
        print(f"\repoch {p.epoch}/{p.epochs} {bar} {p.step}/{p.steps}  loss {p.loss:.4f}  "
              f"{rate}  ETA {_clock(p.eta_s)}\033[K", end="", file=sys.stderr, flush=True)
        self._line = True

    def epoch(self, m: Any) -> None:
        if not self.main:
            return
        self._clear()
        if self.as_json:
            print(json.dumps(m.json_line()), flush=True)
            return
        if m.d_loss is not None:  # a GAN: its own four numbers, no accuracy
            print(f"epoch {m.epoch:>3}/{m.epochs}  d_loss {m.d_loss:.4f}  g_loss {m.g_loss:.4f}  "
                  f"D(x) {m.d_real:.3f}  D(G(z)) {m.d_fake:.3f}  lr {m.lr:.3g}  {m.images_per_s:,.0f} img/s  "
                  f"{m.seconds:.1f} s", flush=True)
            return
        val = (f"val loss {m.val_loss:.4f} acc {m.val_acc:6.2%}" if m.val_loss is not None else "no validation set")
        if m.val_miou is not None and m.val_loss is not None:  # pixel accuracy is the accuracy here
            val = f"val loss {m.val_loss:.4f} pixel acc {m.val_pixel_acc:6.2%} mIoU {m.val_miou:.4f}"
        top5 = f" top-5 {m.val_top5:6.2%}" if m.val_top5 is not None else ""
        ppl = f" val_ppl {m.val_perplexity:.2f}" if m.val_perplexity is not None else ""
        star = " *" if m.best else ""
        rate = (f"{m.images_per_s * self.seq_len:,.0f} tok/s" if self.seq_len
                else f"{m.images_per_s:,.0f} img/s")
        print(f"epoch {m.epoch:>3}/{m.epochs}  train loss {m.train_loss:.4f} acc {m.train_acc:6.2%}  {val}{top5}{ppl}  "
              f"lr {m.lr:.3g}  {rate}  {m.seconds:.1f} s{star}", flush=True)
        if m.generated:
            print(f"  generated: {_one_line(m.generated)}", flush=True)

    def warning(self, message: str) -> None:
        if self.main:
            self._clear()
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def failed(self, message: str) -> None:
        if self.main:
            self._clear()
            print(f"error: {message}", file=sys.stderr, flush=True)


def _one_line(text: str, width: int = 160) -> str:
    """Generated text on one line: newlines shown as ⏎, cut at ``width`` characters."""
    flat = text.replace("\r\n", "\n").replace("\n", " ⏎ ")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _install_sigint(stop: Any) -> Any:
    """First Ctrl-C stops after the current batch; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(_sig: int, _frame: FrameType | None) -> None:
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr, flush=True)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    return signal.signal(signal.SIGINT, handler)


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
