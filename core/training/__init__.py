"""Training: data sources, the engine, probes and distributed runs (no Qt; DESIGN.md §3, §9).

Typical use::

    from core.training import TrainConfig, Trainer, Callbacks, open_dataset
    data = open_dataset("shapes")
    summary = Trainer(model, data, TrainConfig(epochs=5), Callbacks(epoch_end=print)).run()

:func:`build_trainer` does the same from a project (compile a copy of the graph, open the data,
run folder); :class:`TrainingSession` is the one run both front-ends drive around it (the CLI on
its main thread, the GUI's worker on its training thread).
"""

from core.training.config import ConfigError, TrainConfig
from core.training.data import DatasetError, DataSource, check_fit, open_dataset
from core.training.engine import Trainer, available_devices, resolve_device, seed_everything
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
from core.training.session import TrainingSession, build_trainer

__all__ = [
    "BatchProgress", "Callbacks", "ConfigError", "DataSource", "DatasetError", "EpochMetrics", "NodeStats",
    "ProbeData", "RunInfo", "RunSummary", "TrainConfig", "Trainer", "TrainingFailure", "TrainingSession",
    "available_devices", "build_trainer", "check_fit", "open_dataset", "resolve_device", "seed_everything",
]
