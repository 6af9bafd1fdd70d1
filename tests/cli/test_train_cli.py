"""``main.py train``: JSON lines, run folder, resume, overrides and exit statuses 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import ROOT

DEMO = str(ROOT / "resources" / "demo_lenet.json")
SMALL = ["--dataset", "synthetic:3,32,32,10", "--train-size", "64", "--val-size", "32", "--batch-size", "32",
         "--device", "cpu"]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.slow
def test_json_lines_and_run_folder_subprocess(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "main.py", "train", DEMO, *SMALL, "--epochs", "2", "--json",
                          "--out", str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = _json_lines(out.stdout)  # stdout holds nothing but the JSON objects
    assert [line["epoch"] for line in lines] == [1, 2]
    for line in lines:
        assert {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "seconds"} <= set(line)
        assert 0 <= line["train_acc"] <= 1 and 0 <= line["val_acc"] <= 1 and line["lr"] == 0.05
    run = tmp_path / "run"
    for name in ("config.json", "graph.json", "metrics.csv", "run.json", "checkpoints/last.pt"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())["training"]
    assert config["dataset"] == "synthetic:3,32,32,10" and config["epochs"] == 2  # options override the project
    graph = json.loads((run / "graph.json").read_text())
    assert graph["format"] == "netcanvas-project" and any(n["id"] == "conv1" for n in graph["graph"]["nodes"])
    assert "Traceback" not in out.stderr


def test_resume_continues_from_the_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = str(tmp_path / "run")
    assert main(["train", DEMO, *SMALL, "--epochs", "1", "--json", "--out", run, "--optimizer", "adam",
                 "--lr", "0.001"]) == 0
    first = _json_lines(capsys.readouterr().out)
    assert [line["epoch"] for line in first] == [1]
    assert main(["train", "--resume", run, "--epochs", "2", "--json"]) == 0
    captured = capsys.readouterr()
    second = _json_lines(captured.out)
    assert [line["epoch"] for line in second] == [2] and second[0]["lr"] == 0.001  # the run's own settings
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3


def test_progress_output_without_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", DEMO, *SMALL, "--epochs", "1", "--out", str(tmp_path / "r"), "--amp"]) == 0
    captured = capsys.readouterr()
    assert "epoch   1/1  train loss" in captured.out and "top-5" in captured.out
    assert "training on CPU" in captured.err and "Mixed precision needs a CUDA GPU" in captured.err
    assert "completed: 1 epoch(s)" in captured.err


def test_dataset_that_does_not_fit_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", DEMO, "--dataset", "synthetic:1,28,28,5", "--train-size", "8", "--val-size", "4",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1
    assert "1×28×28" in err and "set the Input shape to [1, 28, 28]" in err and "fc3.out_features to 5" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("args", "words"), [
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--dataset", "synthetic:3,32"], "four positive integers"),
    (["--epochs", "0"], "training.epochs"),
    (["--seed", str(2**70)], "torch accepts seeds from 0 to 2**64 - 1"),  # was an overflow traceback
    (["--lr", "nan"], "training.lr: must be a finite number, got nan"),  # was accepted
    (["--lr", "inf"], "training.lr: must be a finite number, got inf"),
    (["--grad-clip", "nan"], "training.grad_clip: must be a finite number"),
    (["--dataset", "mnist:{tmp}", "--no-download"], "MNIST/raw"),
])
def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["train", DEMO, *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_source_and_resume_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    assert "needs a SOURCE" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "Cannot resume" in capsys.readouterr().err


def test_a_new_run_never_writes_into_an_existing_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["train", DEMO, *SMALL, "--epochs", "1", "--json", "--out", str(run)]) == 0
    capsys.readouterr()
    before = {f.relative_to(run): f.read_bytes() for f in run.rglob("*") if f.is_file()}
    for more in (["--lr", "0.01"],  # would have succeeded and replaced the run silently
                 ["--dataset", "synthetic:1,28,28,5"]):  # would have failed and wiped its metrics
        assert main(["train", DEMO, *SMALL, "--epochs", "1", "--out", str(run), *more]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"error: {run} already holds a run, which was left as it is: give a new folder for this "
                       f"run, or continue that one with --resume {run}")
        assert {f.relative_to(run): f.read_bytes() for f in run.rglob("*") if f.is_file()} == before
    # continuing it in place is what --resume is for
    assert main(["train", "--resume", str(run), "--out", str(run), "--epochs", "2", "--json"]) == 0
    assert [line["epoch"] for line in _json_lines(capsys.readouterr().out)] == [2]


def test_the_engine_refuses_a_taken_run_folder_without_touching_it(tmp_path: Path) -> None:
    import torch

    from core.training import TrainConfig
    from core.training.data import synthetic_source
    from core.training.engine import Trainer
    from core.training.runs import RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_json("run.json", {"status": "completed"})
    folder.write_metrics([{"epoch": 1, "train_loss": 1.0}])
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    summary = Trainer(model, synthetic_source((1, 4, 4), 2, train=4, val=2), TrainConfig(epochs=1, device="cpu"),
                      run_dir=folder.path).run()
    assert summary.status == "failed" and "already holds a run" in summary.message
    assert folder.read_json("run.json") == {"status": "completed"} and len(folder.read_metrics()) == 1
    assert not (folder.path / "config.json").exists()
