"""From a project to a ready :class:`~core.training.engine.Trainer` (shared by the CLI and the GUI).

:func:`build_trainer` analyses a *copy* of the graph (the user may keep editing the original),
compiles it with the run's seed, opens the dataset sized to the graph's Input (folder images are
decoded to that size) and wires the run folder. Every problem is raised as one of the plain
errors :class:`TrainingFailure`, :class:`DatasetError` or :class:`ConfigError`.

:class:`TrainingSession` is the one run both front-ends drive: the CLI on its main thread
(``main.py train``), the GUI's :class:`gui.training.worker.TrainingWorker` on its training thread.
It adds what a run needs around the build: resuming a run folder with overrides, carrying loaded
weights, control requested before the trainer exists, and a run that never raises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.training import distributed as ddp
from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, DataSource, open_dataset
from core.training.engine import Trainer, seed_everything
from core.training.events import Callbacks, RunInfo, RunSummary
from core.training.health import TrainingFailure
from core.training.runs import RunFolder, RunFolderError, load_checkpoint


def build_trainer(project: Any, config: TrainConfig, callbacks: Callbacks | None = None, *,
                  run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                  dist: ddp.DistContext | None = None, log: Callable[[str], None] | None = None,
                  data: DataSource | None = None) -> Trainer:
    """Compile ``project``'s graph and open its dataset (or use ``data``, already opened — the GUI
    keeps the one it previewed); see the module docstring."""
    from core.analysis import analyze
    from core.compiler import CompileError, compile_graph
    from core.project import project_to_dict

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
    shape = analysis.input_shape
    if data is None:
        if dist is None:
            data = open_data(config, shape, log)
        elif dist.local_rank == 0:  # one process per node downloads; the others wait, then read the files
            try:
                data = open_data(config, shape, log)
            finally:
                ddp.barrier()
        else:
            ddp.barrier()
            data = open_data(config, shape, log)
    project_dict = project_to_dict(_with_graph(project, graph))  # the copy that trains, not the live graph
    project_dict["training"] = config.to_dict(only_changed=True)
    return Trainer(model, data, config, callbacks, run_dir=run_dir, project=project_dict, analysis=analysis,
                   graph=graph, resume_from=resume_from, dist=dist)


def open_data(config: TrainConfig, input_shape: Sequence[int] | None,
              log: Callable[[str], None] | None = None) -> DataSource:
    """The data source ``config`` names (folder images are decoded to the graph's Input size)."""
    shape = tuple(input_shape) if input_shape is not None and len(input_shape) == 3 else None
    return open_dataset(config.dataset, root=config.data_root, seed=config.seed, train_size=config.train_size,
                        val_size=config.val_size, val_fraction=config.val_fraction, image_shape=shape,
                        val_folder=config.val_folder, download=config.download, workers=config.workers, log=log)


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
    """

    def __init__(self, project: Any | None, config: TrainConfig | None, callbacks: Callbacks | None = None, *,
                 run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, data: DataSource | None = None,
                 weights: tuple[Any, Any] | None = None, dist: ddp.DistContext | None = None,
                 step: Callable[[str], None] | None = None, log: Callable[[str], None] | None = None,
                 built: Callable[[Trainer], None] | None = None) -> None:
        if project is None and resume_from is None:
            raise ValueError("TrainingSession needs a project or a run folder to resume")
        # Copied here, on the caller's thread: the user may go on editing the live graph meanwhile.
        self.project = _with_graph(project, project.graph.copy()) if project is not None else None
        self.config = config
        self.overrides = dict(overrides or {})
        self.callbacks = callbacks or Callbacks()
        self.run_dir, self.resume_from, self.data = run_dir, resume_from, data
        self.weights, self.dist = weights, dist
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
        trainer = build_trainer(project, config, self._callbacks(), run_dir=self.run_dir,
                                resume_from=self.resume_from, dist=self.dist, log=self._log, data=self.data)
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
            return self._ended("failed", f"Cannot start training: {type(exc).__name__}: {exc}", started)
        if self.stopped:  # before the first batch: no run folder for a run that never ran
            return self._ended("stopped", "", started)
        if self._built is not None:
            self._built(trainer)
        self._say("Training…")
        summary = trainer.run()
        self.mismatch = trainer.mismatch
        return summary

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


def resume_settings(run_dir: str | Path) -> tuple[Any, TrainConfig]:
    """The project (graph.json) and the settings (from the last checkpoint) of a run folder."""
    from core.project import ProjectError, project_from_dict

    folder = RunFolder(run_dir)
    try:
        ckpt = load_checkpoint(folder.path)
        project = project_from_dict(folder.read_json("graph.json"))
    except (RunFolderError, ProjectError) as exc:
        raise TrainingFailure(f"Cannot resume from {folder.path}: {exc}") from None
    try:
        config = TrainConfig.from_dict(ckpt.get("config", {}))
    except ConfigError as exc:
        raise TrainingFailure(f"Cannot resume from {folder.path}: {exc}") from None
    return project, config


def _with_graph(project: Any, graph: Any) -> Any:
    from core.project import Project

    return Project(graph=graph, name=project.name, training=dict(project.training), extra=dict(project.extra))


__all__ = ["DatasetError", "TrainingSession", "build_trainer", "carry_message", "open_data", "resume_settings"]
