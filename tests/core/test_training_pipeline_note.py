"""A run whose Input size is not the one the recorded pretrained weights were trained at says so.

The project records torchvision's ResNet-18 ImageNet weights (trained at 224×224) while its Input is
the demo LeNet's 3×32×32: the session opens the folder through the weights' pipeline, and the
engine adds :func:`core.training.data.check_pipeline`'s sentence to the run's notes — the
``run_started`` event's ``notes`` and a ``warning`` event, which the CLI prints on stderr and the
Training dock shows. It is advice, not a failure: the run still trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.project import load_project, save_project
from core.training import TrainConfig, TrainingSession
from core.training.events import Callbacks, RunInfo
from tests.conftest import ROOT

pytest.importorskip("torchvision")

RESNET = "ResNet18_Weights.IMAGENET1K_V1"
SENTENCE = ("The weights were trained at 224×224; your Input is 32×32 — accuracy may drop; "
            "set the Input to 3×224×224.")


def _folder(root: Path) -> Path:
    """Ten classes (the demo LeNet's outputs) of two small noisy images each."""
    rng = np.random.default_rng(0)
    for k in range(10):
        (root / f"c{k}").mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 256, (40 + 3 * i, 50, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{k}" / f"{i}.png")
    return root


def _config(root: Path) -> TrainConfig:
    return TrainConfig(dataset=f"folder:{root}", epochs=1, batch_size=4, device="cpu", workers=0,
                       val_fraction=0.5, probe_interval=0.0)


def test_a_run_notes_the_weights_input_size_and_still_trains(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pics")
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.extra["weights"] = {"source": RESNET}  # what loading ResNet-18's ImageNet weights records
    infos: list[RunInfo] = []
    warnings: list[str] = []
    callbacks = Callbacks(run_started=infos.append, warning=warnings.append)
    summary = TrainingSession(project, _config(root), callbacks, evaluate=False).run()
    assert summary.status == "completed" and summary.epochs_done == 1
    assert SENTENCE in warnings
    assert infos and SENTENCE in infos[0].notes


def test_no_note_without_recorded_weights(tmp_path: Path) -> None:
    root = _folder(tmp_path / "pics")
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    warnings: list[str] = []
    summary = TrainingSession(project, _config(root), Callbacks(warning=warnings.append), evaluate=False).run()
    assert summary.status == "completed"
    assert not [w for w in warnings if "weights were trained" in w]


def test_the_cli_prints_the_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    root = _folder(tmp_path / "pics")
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.extra["weights"] = {"source": RESNET}
    path = save_project(project, tmp_path / "lenet.json")
    code = main(["train", str(path), "--dataset", f"folder:{root}", "--val-fraction", "0.5", "--batch-size", "4",
                 "--device", "cpu", "--epochs", "1", "--workers", "0", "--out", str(tmp_path / "run"),
                 "--no-weights"])  # the recorded torchvision weights' pipeline, without fetching them (offline here)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"warning: {SENTENCE}" in captured.err.splitlines()
    assert "epoch   1/1" in captured.out
