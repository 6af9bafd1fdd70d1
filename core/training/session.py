"""From a project to a ready :class:`~core.training.engine.Trainer` (shared by the CLI and the GUI).

:func:`build_trainer` analyses a *copy* of the graph (the user may keep editing the original),
compiles it with the run's seed, opens the dataset sized to the graph's Input (folder images are
decoded to that size) and wires the run folder. Every problem is raised as one of the plain
errors :class:`TrainingFailure`, :class:`DatasetError` or :class:`ConfigError`.

:class:`TrainingSession` is the one run both front-ends drive: the CLI on its main thread
(``main.py train``), the GUI's :class:`gui.training.worker.TrainingWorker` on its training thread.
It adds what a run needs around the build: resuming a run folder with overrides, carrying loaded
weights or loading pretrained ones, control requested before the trainer exists, the run's
evaluation at its end, and a run that never raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.training import distributed as ddp
from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, DataSource
from core.training.engine import Trainer, seed_everything
from core.training.events import Callbacks, RunInfo, RunSummary
from core.training.health import TrainingFailure
from core.training.run_inputs import open_data, open_shared_data, resume_settings


@dataclass(frozen=True)
class WeightsLoad:
    """Weights to load into the compiled model before the first batch: ``spec`` is what
    :func:`core.training.weights.apply_weights` takes (``DEFAULT``, an enum name, a file), ``arch``
    the torchvision model the graph mirrors (``None``: the project's, :func:`project_arch`);
    ``progress(done, total)`` hears a download's bytes, ``cancel()`` ends it."""

    spec: str
    arch: str | None = None
    progress: Callable[[int, int], None] | None = None
    cancel: Callable[[], bool] | None = None


def build_trainer(project: Any, config: TrainConfig, callbacks: Callbacks | None = None, *,
                  run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                  dist: ddp.DistContext | None = None, log: Callable[[str], None] | None = None,
                  data: DataSource | None = None, weights: WeightsLoad | None = None) -> Trainer:
    """Compile ``project``'s graph, load ``weights`` into it (raising
    :class:`core.training.weights.WeightsError`) and open its dataset (or use ``data``, already
    opened — the GUI keeps the one it previewed); see the module docstring. The ``gan`` task builds a
    :class:`core.training.gan.GanTrainer` (a Trainer of the generator and the discriminator the graph
    holds, :func:`core.training.gan.build_gan_trainer`); every other task takes a graph with one Input."""
    from core.analysis import analyze
    from core.compiler import CompileError, compile_graph
    from core.project import project_to_dict
    from core.training.tasks import task_option

    if task_option(config.task).target == "gan":  # two networks trained against each other
        if weights is not None:
            raise TrainingFailure("Pretrained weights are not loaded into a GAN's networks: start the GAN fresh "
                                  "(or carry an earlier run's weights in the canvas).")
        from core.training.gan import build_gan_trainer

        return build_gan_trainer(project, config, callbacks, run_dir=run_dir, resume_from=resume_from, dist=dist,
                                 log=log, data=data)
    graph = project.graph.copy()
    inputs = [n.id for n in graph.nodes.values() if n.type == "Input"]
    if len(inputs) > 1:  # the data sources give one tensor per sample, and the engine feeds one
        raise TrainingFailure(f"Training takes a network with one Input, and this one has {len(inputs)} "
                              f"({', '.join(inputs)}): export it to Python (File › Export to Python…, or main.py "
                              f"export) and train it with your own loop, or train each branch as its own network.")
    analysis = analyze(graph)
    if not analysis.ok:
        lines = "; ".join(d.message for d in analysis.errors[:3])
        more = f" (and {len(analysis.errors) - 3} more)" if len(analysis.errors) > 3 else ""
        raise TrainingFailure(f"The network has errors to fix before training: {lines}{more}.")
    seed_everything(config.seed)
    try:
        model = compile_graph(graph, seed=config.seed, analysis=analysis)
    except CompileError as exc:
        raise TrainingFailure(str(exc)) from None
    trained = _with_graph(project, graph)  # the copy that trains, not the live graph
    report = None
    if weights is not None:
        from core.training.weights import apply_weights, project_arch, set_project_weights

        arch = weights.arch if weights.arch is not None else project_arch(project)
        report = apply_weights(model, weights.spec, arch, weights.progress, weights.cancel)
        set_project_weights(trained, report)  # the run's graph.json says where its weights came from
    if data is None:
        from core.training.weights import project_pipeline

        # torchvision weights (loaded now or recorded by the project): their resize/crop/mean/std
        data = open_shared_data(config, analysis.input_shape, dist, log, project_pipeline(trained))
    project_dict = project_to_dict(trained)
    project_dict["training"] = config.to_dict(only_changed=True)
    return Trainer(model, data, config, callbacks, run_dir=run_dir, project=project_dict, analysis=analysis,
                   graph=graph, resume_from=resume_from, dist=dist, weights=report)


class TrainingSession:
    """One run from a project (or a run folder to resume): what the CLI runs on its main thread and
    the GUI's worker runs on its training thread.

    Cheap to create (on the GUI thread: the graph is copied here, so later edits never reach the run).
    :meth:`build` compiles the copy, opens the data (or takes ``data``, already opened), carries the
    unchanged layers' ``weights`` from an earlier run, and raises :class:`TrainingFailure`,
    :class:`DatasetError` or :class:`ConfigError` for a plain problem (the CLI turns those into exit
    statuses). :meth:`run` builds if that has not happened and trains; it never raises — a problem
    while building ends like a training failure, with ``failed(message)`` and a failed summary.

    ``project``/``config`` may be left out when ``resume_from`` names a run folder: its graph and
    settings are then read inside :meth:`build`, on the training thread. ``overrides`` (more epochs,
    another device) apply to the settings either way. A resumed run keeps the time it was first
    started (the runs list dates a run by its ``config.json``, which the engine rewrites).

    ``step(text)`` hears the setup steps ("Opening shapes and compiling…", "Training…"), ``log(text)``
    what the data source says while it opens (downloads); ``built(trainer)`` runs once the model exists, on
    the building thread, before its first batch (the GUI takes a copy for predictions there).

    :meth:`stop`, :meth:`pause`, :meth:`resume` and :meth:`set_probes` may be called from any
    thread at any time, also before the build has finished; they then apply when training starts (a
    stop before the first batch ends the run with status ``stopped`` and no epoch).
    ``mismatch`` holds the data/graph mismatch (with its ``Fix`` list) when that is why it failed;
    ``carried`` the :class:`core.compiler.CarryReport` of the loaded weights.

    Fine-tuning: ``weights_spec`` (``DEFAULT``, a torchvision enum name, a file) is loaded into the
    compiled model before the first batch (:class:`WeightsLoad`; ``weights_arch`` the torchvision
    model, default the project's; ``weights_progress`` hears a download). The report is
    ``weights_report``, the ``weights`` event, and the run folder's ``config.json`` and ``graph.json``
    record it; a :class:`core.training.weights.WeightsError` is raised by :meth:`build` (one line).
    A token task opens sequences as long as the graph's Input.
    With ``evaluate`` (the default) a classifier's run that trained an epoch writes its ``evaluation.json``
    (:func:`core.training.evaluate.evaluate_run`) before ``finished`` is emitted; ``evaluation``
    holds it, and a failure there is a warning.
    """

    def __init__(self, project: Any | None, config: TrainConfig | None, callbacks: Callbacks | None = None, *,
                 run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, data: DataSource | None = None,
                 weights: tuple[Any, Any] | None = None, dist: ddp.DistContext | None = None,
                 step: Callable[[str], None] | None = None, log: Callable[[str], None] | None = None,
                 built: Callable[[Trainer], None] | None = None, weights_spec: str | None = None,
                 weights_arch: str | None = None, weights_progress: Callable[[int, int], None] | None = None,
                 evaluate: bool = True) -> None:
        if project is None and resume_from is None:
            raise ValueError("TrainingSession needs a project or a run folder to resume")
        # Copied here, on the caller's thread: the user may go on editing the live graph meanwhile.
        self.project = _with_graph(project, project.graph.copy()) if project is not None else None
        self.config = config
        self.overrides = dict(overrides or {})
        self.callbacks = callbacks or Callbacks()
        self.run_dir, self.resume_from, self.data = run_dir, resume_from, data
        self.weights, self.dist = weights, dist
        self.weights_spec, self.weights_arch, self.weights_progress = weights_spec, weights_arch, weights_progress
        self.weights_report: Any = None
        self.evaluate = evaluate
        self.evaluation: Any = None
        self._step, self._log, self._built = step, log, built
        self.trainer: Trainer | None = None
        self.mismatch: Any = None
        self.carried: Any = None
        self._lock = threading.Lock()
        self._stopped = False
        self._paused = False
        self._probes: list[str] = []

    # ------------------------------------------------------------------- control (any thread)

    def stop(self) -> None:
        """End the run before its next batch (the last epoch checkpoint is kept)."""
        with self._lock:
            self._stopped = True
            if self.trainer is not None:
                self.trainer.stop()

    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self.trainer is not None:
                self.trainer.resume()

    def set_probes(self, node_ids: Sequence[str]) -> None:
        with self._lock:
            self._probes = list(node_ids)
            if self.trainer is not None:
                self.trainer.set_probes(self._probes)

    @property
    def stopped(self) -> bool:
        """A stop was asked for."""
        with self._lock:
            return self._stopped

    # --------------------------------------------------------------------------- the run's thread

    def build(self) -> Trainer:
        """Compile, open the data, carry loaded weights: the :class:`Trainer`, ready to run (see above)."""
        if self.trainer is not None:
            return self.trainer
        project, config = self.project, self.config
        if project is None or config is None:
            assert self.resume_from is not None
            read_project, read_config = resume_settings(self.resume_from)
            project, config = project or read_project, config or read_config
        config = config.updated(**self.overrides) if self.overrides else config
        self.config = config
        self._say(f"Opening {config.dataset} and compiling…")
        load = None
        if self.weights_spec is not None and self.resume_from is None:  # a resumed run has its checkpoint
            load = WeightsLoad(self.weights_spec, self.weights_arch, self.weights_progress, lambda: self.stopped)
        trainer = build_trainer(project, config, self._callbacks(), run_dir=self.run_dir,
                                resume_from=self.resume_from, dist=self.dist, log=self._log, data=self.data,
                                weights=load)
        if trainer.weights is not None:
            self.weights_report = trainer.weights
            self.callbacks.emit("weights", trainer.weights)
        if self.evaluate:
            trainer.before_finish = lambda summary: self._evaluate_run(trainer, summary)
        if self.weights is not None and self.resume_from is None:
            from core.compiler import carry_weights

            self.carried = carry_weights(self.weights[0], trainer.model, self.weights[1], trainer.graph)
            self.callbacks.emit("warning", carry_message(self.carried))
        with self._lock:
            self.trainer = trainer
            self.data = trainer.data
            trainer.set_probes(self._probes)
            if self._paused:
                trainer.pause()
            if self._stopped:
                trainer.stop()
        return trainer

    def run(self) -> RunSummary:
        """Build (unless :meth:`build` ran) and train; never raises (see the class docstring)."""
        started = time.perf_counter()
        try:
            trainer = self.build()
        except (TrainingFailure, DatasetError, ConfigError) as exc:
            return self._ended("failed", str(exc), started)
        except Exception as exc:  # a plain line for the window, never a traceback
            if _weights_error(exc):  # its message is already the plain line
                return self._ended("failed", str(exc), started)
            return self._ended("failed", f"Cannot start training: {type(exc).__name__}: {exc}", started)
        if self.stopped:  # before the first batch: no run folder for a run that never ran
            return self._ended("stopped", "", started)
        if self._built is not None:
            self._built(trainer)
        self._say("Training…")
        summary = trainer.run()
        self.mismatch = trainer.mismatch
        return summary

    def _evaluate_run(self, trainer: Trainer, summary: RunSummary) -> None:
        """Write the run's ``evaluation.json`` (per-class table, confusion matrix) once it trained an
        epoch; a problem there is a warning, never a failed run."""
        if summary.epochs_done < 1 or summary.status == "failed" or trainer.run_dir is None:
            return
        if trainer.next_token:  # a language model has no classes to tabulate: metrics.csv holds its perplexity
            return
        if trainer.task.target == "gan":  # nothing to classify: the run's samples/ grids show what it learnt
            return
        if trainer.dist is not None and not trainer.dist.main:
            return
        if not (trainer.run_dir / "checkpoints" / "last.pt").is_file():
            return
        cfg = trainer.cfg
        # The model in memory is the one last.pt holds unless the run stopped mid-epoch or its last
        # epoch was not a checkpoint epoch: then the evaluation reads last.pt.
        saved_last = summary.epochs_done % cfg.checkpoint_every == 0 or summary.epochs_done == cfg.epochs
        model = trainer.model if summary.status != "stopped" and saved_last else None
        try:
            from core.training.evaluate import evaluate_run

            self._say("Evaluating…")
            self.evaluation = evaluate_run(trainer.run_dir, model=model, data=trainer.data,
                                           device=str(getattr(trainer, "device", cfg.device)))
        except Exception as exc:  # the run itself succeeded: say so, keep it
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.callbacks.emit("warning", f"The run trained, but its evaluation failed: {first}")

    def _say(self, text: str) -> None:
        if self._step is not None:
            self._step(text)

    def _callbacks(self) -> Callbacks:
        """The caller's callbacks, with ``run_started`` first giving a resumed run back its start time."""
        if self.resume_from is None:
            return self.callbacks
        config_file = Path(self.resume_from) / "config.json"
        try:
            first_started: float | None = config_file.stat().st_mtime
        except OSError:
            first_started = None
        theirs = self.callbacks.run_started

        def run_started(info: RunInfo) -> None:
            if first_started is not None:
                with contextlib.suppress(OSError):
                    os.utime(config_file, (first_started, first_started))
            if theirs is not None:
                theirs(info)

        return dataclasses.replace(self.callbacks, run_started=run_started)

    def _ended(self, status: str, message: str, started: float) -> RunSummary:
        summary = RunSummary(status=status, epochs_done=0, best_epoch=None, best_val_acc=None, last=None,
                             run_dir=str(self.run_dir) if self.run_dir else None,
                             seconds=time.perf_counter() - started, message=message)
        if status == "failed":
            self.callbacks.emit("failed", message)
        self.callbacks.emit("finished", summary)
        return summary


def carry_message(report: Any) -> str:
    """What a run that starts from loaded weights says (a :class:`core.compiler.CarryReport`)."""
    kept, fresh = len(report.kept), list(report.reinitialized)
    text = f"Starting from the loaded weights: {kept} layer{'s' * (kept != 1)} kept their weights"
    if fresh:
        shown = ", ".join(fresh[:5]) + (f" and {len(fresh) - 5} more" if len(fresh) > 5 else "")
        text += f"; {shown} start{'s' * (len(fresh) == 1)} fresh (changed since that run)"
    return text + "."


def _weights_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a :class:`core.training.weights.WeightsError` (looked up only if that module
    was imported: a session without weights never imports it)."""
    module = sys.modules.get("core.training.weights_download")
    error = getattr(module, "WeightsError", None)
    return error is not None and isinstance(exc, error)


def _with_graph(project: Any, graph: Any) -> Any:
    from core.project import Project

    return Project(graph=graph, name=project.name, training=dict(project.training), extra=dict(project.extra))


__all__ = ["DatasetError", "TrainingSession", "WeightsLoad", "build_trainer", "carry_message", "open_data",
           "open_shared_data", "resume_settings"]
