"""From a project to a ready :class:`~core.training.engine.Trainer` (shared by the CLI and the GUI).

:func:`build_trainer` analyses a *copy* of the graph (the user may keep editing the original),
compiles it with the run's seed, opens the dataset sized to the graph's Input (folder images are
decoded to that size) and wires the run folder. Every problem is raised as one of the plain
errors :class:`TrainingFailure`, :class:`DatasetError` or :class:`ConfigError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.training import distributed as ddp
from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, open_dataset
from core.training.engine import Trainer, seed_everything
from core.training.events import Callbacks
from core.training.health import TrainingFailure
from core.training.runs import RunFolder, RunFolderError, load_checkpoint


def build_trainer(project: Any, config: TrainConfig, callbacks: Callbacks | None = None, *,
                  run_dir: str | Path | None = None, resume_from: str | Path | None = None,
                  dist: ddp.DistContext | None = None, log: Callable[[str], None] | None = None) -> Trainer:
    """Compile ``project``'s graph and open its dataset; see the module docstring."""
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
    data = open_dataset(config.dataset, root=config.data_root, seed=config.seed, train_size=config.train_size,
                        val_size=config.val_size, val_fraction=config.val_fraction,
                        image_shape=tuple(shape) if shape is not None and len(shape) == 3 else None,
                        val_folder=config.val_folder, download=config.download, workers=config.workers, log=log)
    project_dict = project_to_dict(_with_graph(project, graph))  # the copy that trains, not the live graph
    project_dict["training"] = config.to_dict(only_changed=True)
    return Trainer(model, data, config, callbacks, run_dir=run_dir, project=project_dict, analysis=analysis,
                   graph=graph, resume_from=resume_from, dist=dist)


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


__all__ = ["DatasetError", "build_trainer", "resume_settings"]
