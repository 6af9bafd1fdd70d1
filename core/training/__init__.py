"""Training: data sources, the engine, probes and distributed runs (no Qt; DESIGN.md §3, §9).

Typical use::

    from core.training import TrainConfig, Trainer, Callbacks, open_dataset
    data = open_dataset("shapes")
    summary = Trainer(model, data, TrainConfig(epochs=5), Callbacks(epoch_end=print)).run()

:func:`prepare_run` does the same from a project (compile, analysis, data, run folder) for the
CLI and the GUI.
"""

from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, DataSource, check_fit, open_dataset
from core.training.engine import Trainer, resolve_device, seed_everything
from core.training.events import (
    BatchProgress,
    Callbacks,
    EpochMetrics,
    NodeStats,
    ProbeData,
    RunInfo,
    RunSummary,
)
from core.training.health import TrainingFailure

__all__ = [
    "BatchProgress", "Callbacks", "ConfigError", "DataSource", "DatasetError", "EpochMetrics", "NodeStats",
    "ProbeData", "RunInfo", "RunSummary", "TrainConfig", "Trainer", "TrainingFailure", "check_fit",
    "open_dataset", "resolve_device", "seed_everything",
]
