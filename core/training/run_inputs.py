"""What a run starts from: the data source its settings name, and the project and settings of a run folder.

Kept apart from :mod:`core.training.session` (which re-exports these names) so that modules the
session itself calls at a run's end, like :mod:`core.training.evaluate`, can open a run's data
without importing the session back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.training import distributed as ddp
from core.training.config import ConfigError, TrainConfig
from core.training.data import DataSource, open_dataset
from core.training.health import TrainingFailure
from core.training.runs import RunFolder, RunFolderError, load_checkpoint

if TYPE_CHECKING:
    from core.training.weights import InputPipeline


def open_data(config: TrainConfig, input_shape: Sequence[int] | None,
              log: Callable[[str], None] | None = None, pipeline: InputPipeline | None = None) -> DataSource:
    """The data source ``config`` names (folder images are decoded to the graph's Input size, through
    the pretrained weights' ``pipeline`` when given: :func:`core.training.weights.project_pipeline`).
    A token task's sequences are as long as the graph's Input (its first dimension: T)."""
    shape = tuple(input_shape) if input_shape is not None and len(input_shape) == 3 else None
    return open_dataset(config.dataset, root=config.data_root, seed=config.seed, train_size=config.train_size,
                        val_size=config.val_size, val_fraction=config.val_fraction, image_shape=shape,
                        val_folder=config.val_folder, download=config.download, workers=config.workers, log=log,
                        pipeline=pipeline, task=config.task, seq_len=sequence_length(config, input_shape),
                        tokenize=config.tokenize)


def sequence_length(config: TrainConfig, input_shape: Sequence[int] | None) -> int | None:
    """T for a token task: the graph Input's first dimension (``None``: the dataset's default)."""
    from core.training.tasks import task_option

    if task_option(config.task).modality != "tokens" or not input_shape:
        return None
    t = input_shape[0]
    return int(t) if isinstance(t, int) and t > 0 else None


def task_dataset(config: TrainConfig) -> TrainConfig:
    """``config`` with the task's default dataset where it still names the image default (``shapes``)
    under a token task: ``--task language-model`` without ``--dataset`` trains on ``sentences``
    (a project file does not store the default dataset, so only the caller knows whether ``shapes``
    was asked for: the CLI applies this when no ``--dataset`` was given)."""
    from core.training.tasks import task_option

    task = task_option(config.task)
    if task.modality != "image" and config.dataset == TrainConfig().dataset:
        return config.updated(dataset=task.default_dataset)
    return config


def open_shared_data(config: TrainConfig, input_shape: Sequence[int] | None, dist: ddp.DistContext | None = None,
                     log: Callable[[str], None] | None = None,
                     pipeline: InputPipeline | None = None) -> DataSource:
    """:func:`open_data`, with one process per node opening first under DDP (it downloads; the
    others wait at a barrier, then read the files)."""
    if dist is None:
        return open_data(config, input_shape, log, pipeline)
    if dist.local_rank == 0:
        try:
            return open_data(config, input_shape, log, pipeline)
        finally:
            ddp.barrier()
    ddp.barrier()
    return open_data(config, input_shape, log, pipeline)


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


__all__ = ["open_data", "open_shared_data", "resume_settings", "sequence_length", "task_dataset"]
