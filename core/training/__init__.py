"""Training: data sources, the engine, probes and distributed runs (no Qt; DESIGN.md §3, §9).

Typical use::

    from core.training import TrainConfig, Trainer, Callbacks, open_dataset
    data = open_dataset("shapes")
    summary = Trainer(model, data, TrainConfig(epochs=5), Callbacks(epoch_end=print)).run()

:func:`build_trainer` does the same from a project (compile a copy of the graph, open the data,
run folder); :class:`TrainingSession` is the one run both front-ends drive around it (the CLI on
its main thread, the GUI's worker on its training thread).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Where each public name lives. They are imported when first used (PEP 562): ``core.training.options``
# and ``core.training.config`` are torch-free, and importing them (the editor's Summary panel, the
# CLI's parser) must not import torch through this package, which takes seconds.
_WHERE = {
    "ConfigError": "config", "TrainConfig": "config",
    "DatasetError": "data", "DataSource": "data", "check_fit": "data", "open_dataset": "data",
    "Trainer": "engine", "available_devices": "engine", "resolve_device": "devices", "seed_everything": "engine",
    "BatchProgress": "events", "Callbacks": "events", "EpochMetrics": "events", "NodeStats": "events",
    "ProbeData": "events", "RunInfo": "events", "RunSummary": "events",
    "TrainingFailure": "health",
    "ClassStats": "evaluate", "Evaluation": "evaluate", "EvaluationError": "evaluate", "evaluate": "evaluate",
    "evaluate_run": "evaluate", "TokenEvaluation": "evaluate", "evaluate_tokens": "evaluate",
    "generate": "generate", "TaskOption": "tasks", "task_option": "tasks",
    "TrainingSession": "session", "build_trainer": "session",
    "InputPipeline": "weights", "WeightsCancelled": "weights", "WeightsError": "weights",
    "WeightsReport": "weights", "WeightsSpec": "weights", "apply_weights": "weights", "load_weights": "weights",
    "project_arch": "weights", "project_weights": "weights", "set_project_weights": "weights",
}

if TYPE_CHECKING:
    from core.training.config import ConfigError, TrainConfig
    from core.training.data import DatasetError, DataSource, check_fit, open_dataset
    from core.training.devices import resolve_device
    from core.training.engine import Trainer, available_devices, seed_everything
    from core.training.evaluate import (
        ClassStats,
        Evaluation,
        EvaluationError,
        TokenEvaluation,
        evaluate,
        evaluate_run,
        evaluate_tokens,
    )
    from core.training.events import (
        BatchProgress,
        Callbacks,
        EpochMetrics,
        NodeStats,
        ProbeData,
        RunInfo,
        RunSummary,
    )
    from core.training.generate import generate
    from core.training.health import TrainingFailure
    from core.training.session import TrainingSession, build_trainer
    from core.training.tasks import TaskOption, task_option
    from core.training.weights import (
        InputPipeline,
        WeightsCancelled,
        WeightsError,
        WeightsReport,
        WeightsSpec,
        apply_weights,
        load_weights,
        project_arch,
        project_weights,
        set_project_weights,
    )


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'core.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"core.training.{where}"), name)
    globals()[name] = value  # once
    return value


__all__ = [
    "BatchProgress", "Callbacks", "ConfigError", "DataSource", "DatasetError", "EpochMetrics", "InputPipeline",
    "NodeStats", "ProbeData", "RunInfo", "RunSummary", "TrainConfig", "Trainer", "TrainingFailure", "TrainingSession",
    "WeightsCancelled", "WeightsError", "WeightsReport", "WeightsSpec", "apply_weights", "available_devices",
    "build_trainer", "check_fit", "load_weights", "open_dataset", "project_arch", "project_weights",
    "resolve_device", "seed_everything", "set_project_weights",
]
__all__ += ["ClassStats", "Evaluation", "EvaluationError", "evaluate", "evaluate_run"]
__all__ += ["TaskOption", "TokenEvaluation", "evaluate_tokens", "generate", "task_option"]
