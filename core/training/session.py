"""From a project to a ready :class:`~core.training.engine.Trainer` (shared by the CLI and the GUI).

:func:`build_trainer` analyses a *copy* of the graph (the user may keep editing the original),
compiles it with the run's seed, opens the dataset sized to the graph's Input (folder images are
decoded to that size) and wires the run folder. Every problem is raised as one of the plain
errors :class:`TrainingFailure`, :class:`DatasetError` or :class:`ConfigError`.
:class:`TrainingSession` wraps both steps for a worker thread (the GUI's QThread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.training import distributed as ddp
from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, DataSource, open_dataset
from core.training.engine import Trainer, seed_everything
from core.training.events import Callbacks, RunSummary
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
        def open_data() -> DataSource:
            return open_dataset(config.dataset, root=config.data_root, seed=config.seed,
                                train_size=config.train_size, val_size=config.val_size,
                                val_fraction=config.val_fraction,
                                image_shape=tuple(shape) if shape is not None and len(shape) == 3 else None,
                                val_folder=config.val_folder, download=config.download, workers=config.workers,
                                log=log)

        if dist is None:
            data = open_data()
        elif dist.local_rank == 0:  # one process per node downloads; the others wait, then read the files
            try:
                data = open_data()
            finally:
                ddp.barrier()
        else:
            ddp.barrier()
            data = open_data()
    project_dict = project_to_dict(_with_graph(project, graph))  # the copy that trains, not the live graph
    project_dict["training"] = config.to_dict(only_changed=True)
    return Trainer(model, data, config, callbacks, run_dir=run_dir, project=project_dict, analysis=analysis,
                   graph=graph, resume_from=resume_from, dist=dist)


class TrainingSession:
    """A run to start from a worker thread: cheap to create on the GUI thread, builds (compiles,
    opens the data) and trains inside :meth:`run`, which never raises — a problem while building
    ends like a training failure, with ``failed(message)`` and a failed summary.

    :meth:`stop`, :meth:`pause`, :meth:`resume` and :meth:`set_probes` may be called from any
    thread at any time, also before the build has finished; they then apply when training starts.
    ``mismatch`` holds the data/graph mismatch (with its ``Fix`` list) when that is why it failed.
    """

    def __init__(self, project: Any, config: TrainConfig, callbacks: Callbacks | None = None, *,
                 run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                 data: DataSource | None = None) -> None:
        # Copied here, on the caller's thread: the user may go on editing the live graph meanwhile.
        self.project = _with_graph(project, project.graph.copy())
        self.config = config
        self.callbacks = callbacks or Callbacks()
        self.run_dir, self.resume_from, self.data = run_dir, resume_from, data
        self.trainer: Trainer | None = None
        self.mismatch: Any = None
        self._lock = threading.Lock()
        self._stopped = False
        self._paused = False
        self._probes: list[str] = []

    def stop(self) -> None:
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

    def set_probes(self, node_ids: list[str]) -> None:
        with self._lock:
            self._probes = list(node_ids)
            if self.trainer is not None:
                self.trainer.set_probes(self._probes)

    def run(self) -> RunSummary:
        started = time.perf_counter()
        try:
            trainer = build_trainer(self.project, self.config, self.callbacks, run_dir=self.run_dir,
                                    resume_from=self.resume_from, data=self.data)
        except (TrainingFailure, DatasetError, ConfigError) as exc:
            return self._failed(str(exc), started)
        except Exception as exc:  # a plain line for the window, never a traceback
            return self._failed(f"Cannot start training: {type(exc).__name__}: {exc}", started)
        with self._lock:
            self.trainer = trainer
            self.data = trainer.data
            trainer.set_probes(self._probes)
            if self._paused:
                trainer.pause()
            if self._stopped:
                trainer.stop()
        summary = trainer.run()
        self.mismatch = trainer.mismatch
        return summary

    def _failed(self, message: str, started: float) -> RunSummary:
        summary = RunSummary(status="failed", epochs_done=0, best_epoch=None, best_val_acc=None, last=None,
                             run_dir=str(self.run_dir) if self.run_dir else None,
                             seconds=time.perf_counter() - started, message=message)
        self.callbacks.emit("failed", message)
        self.callbacks.emit("finished", summary)
        return summary


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


__all__ = ["DatasetError", "TrainingSession", "build_trainer", "resume_settings"]
