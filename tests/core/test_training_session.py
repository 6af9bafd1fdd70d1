"""TrainingSession (what the GUI's worker thread runs): builds from a project copy, never raises,
honours stop/probes requested before the build finished, reuses an opened dataset."""

from __future__ import annotations

import threading
from pathlib import Path

from core.project import load_project
from core.training import Callbacks, TrainConfig, TrainingSession
from core.training.data import synthetic_source
from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo_lenet.json"


def _config(**kw: object) -> TrainConfig:
    base = {"dataset": "synthetic:3,32,32,10", "train_size": 32, "val_size": 16, "epochs": 1, "batch_size": 16,
            "device": "cpu", "probe_interval": 0.0}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_session_trains_a_copy_with_probes_and_given_data(tmp_path: Path) -> None:
    project = load_project(DEMO)
    data = synthetic_source((3, 32, 32), 10, train=32, val=16)
    events: dict[str, list] = {"probe": [], "finished": [], "epoch_end": []}
    session = TrainingSession(project, _config(), Callbacks(**{k: v.append for k, v in events.items()}),
                              run_dir=tmp_path / "run", data=data)
    session.set_probes(["conv1", "relu1"])  # before the build: applied when training starts
    project.graph.set_param("conv1", "out_channels", 7)  # editing the live graph does not touch the run
    summary = session.run()
    assert summary.status == "completed" and events["finished"] == [summary]
    assert session.data is data
    assert events["probe"] and events["probe"][0].activations["conv1"].shape[1] == 6
    assert (tmp_path / "run" / "graph.json").is_file()


def test_session_build_problems_are_plain_failures() -> None:
    project = load_project(DEMO)
    project.graph.set_param("fc1", "in_features", 5)  # contradicts the inferred 400: an error diagnostic
    failed: list[str] = []
    summary = TrainingSession(project, _config(), Callbacks(failed=failed.append)).run()
    assert summary.status == "failed" and failed == [summary.message]
    assert "errors to fix before training" in summary.message and "Traceback" not in summary.message

    mismatch = TrainingSession(load_project(DEMO), _config(dataset="synthetic:1,28,28,10"))
    assert mismatch.run().status == "failed"
    assert mismatch.mismatch is not None and mismatch.mismatch.fixes[0].param == "shape"


def test_stop_requested_before_start() -> None:
    session = TrainingSession(load_project(DEMO), _config(epochs=3))
    session.stop()
    worker = threading.Thread(target=session.run)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert session.trainer is not None and session.trainer.history == []
