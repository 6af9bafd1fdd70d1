"""``main.py evaluate SOURCE|RUN_DIR``: a run folder's checkpoint on its own data (the numbers the run
reported), one JSON object with --json, the text report, a SOURCE with --weights, and exit statuses."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.cli.evaluate import format_text
from core.training.evaluate import EVALUATION_FILE, Evaluation, from_confusion
from tests.conftest import ROOT

DEMO = str(ROOT / "resources" / "demo_lenet.json")
DATA = ["--dataset", "synthetic:3,32,32,10", "--train-size", "64", "--val-size", "32"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch run of the demo LeNet on a tiny synthetic set (10 classes, so top-5 is reported)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", DEMO, *DATA, "--batch-size", "32", "--device", "cpu", "--epochs", "1", "--json",
                 "--quiet", "--out", str(run)]) == 0
    return run


def _last_epoch(run: Path) -> dict[str, str]:
    with (run / "metrics.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))[-1]


def test_run_folder_json_is_one_object_with_the_runs_numbers(run_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (run_dir / EVALUATION_FILE).unlink(missing_ok=True)
    assert main(["evaluate", str(run_dir), "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert len(lines) == 1 and captured.err == ""
    d = json.loads(lines[0])
    assert {"accuracy", "top5", "classes", "per_class", "confusion", "most_confused"} <= set(d)
    assert len(d["classes"]) == 10 and len(d["confusion"]) == 10 and sum(map(sum, d["confusion"])) == 32
    assert set(d["per_class"][0]) == {"class", "precision", "recall", "f1", "support"}
    # the same checkpoint on the same validation set: what the run reported for its last epoch
    last = _last_epoch(run_dir)
    assert d["accuracy"] == pytest.approx(float(last["val_acc"]))
    assert d["top5"] == pytest.approx(float(last["val_top5"]))
    assert d["epoch"] == 1 and d["checkpoint"] == "last.pt"
    saved = Evaluation.load(run_dir / EVALUATION_FILE)  # the run's own data: saved for the Evaluation tab
    assert saved.confusion == d["confusion"] and saved.count == 32


def test_best_checkpoint_leaves_the_runs_evaluation_alone(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run_dir), "--json", "--quiet"]) == 0
    last = json.loads(capsys.readouterr().out)
    saved = (run_dir / EVALUATION_FILE).read_bytes()
    assert main(["evaluate", str(run_dir), "--checkpoint", "best.pt", "--json", "--quiet"]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["checkpoint"] == "best.pt" and best["accuracy"] == last["accuracy"]  # one epoch: the same weights
    assert (run_dir / EVALUATION_FILE).read_bytes() == saved


def test_text_report(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run_dir), "--quiet"]) == 0
    out = capsys.readouterr().out
    accuracy = float(_last_epoch(run_dir)["val_acc"])
    assert f"accuracy {accuracy:.2%}" in out and "top-5 " in out and "epoch 1 (last.pt)" in out
    assert "class    precision  recall     f1  support" in out
    assert "confusion matrix (rows = true class, columns = predicted):" in out
    assert "most confused (true → predicted):" in out or "no sample was misclassified" in out
    matrix = out.split("columns = predicted):\n", 1)[1].splitlines()
    # "class 0" … "class 9" shortened would all read "clas": the columns are numbered instead
    assert matrix[0].split() == [str(i) for i in range(10)] and matrix[1].startswith("0 class 0")
    assert len(matrix) == 11


def test_a_wide_matrix_shows_the_classes_with_the_most_errors() -> None:
    k = 14
    confusion = np.eye(k, dtype=np.int64) * 20
    confusion[12, 3] = 9  # the only errors: classes 12 and 3, then 5 → 7
    confusion[5, 7] = 2
    ev = from_confusion(confusion, [f"c{i:02d}" for i in range(k)], top5=0.9)
    text = format_text(ev)
    matrix = text.split("whole matrix):\n", 1)[1].splitlines()
    assert "the 10 of 14 classes with the most errors" in text and len(matrix) == 11
    shown = [row.split()[0] for row in matrix[1:]]
    assert matrix[0].split() == shown  # short names label the columns too
    assert {"c03", "c12", "c05", "c07"} <= set(shown) and shown == sorted(shown)
    assert "c12 → c03: 9 (31% of c12)" in text and "top-5 90.00%" in text


def test_source_with_the_runs_weights_matches_the_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", DEMO, "--weights", str(run_dir / "checkpoints" / "last.pt"), *DATA, "--device", "cpu",
                 "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["accuracy"] == pytest.approx(float(_last_epoch(run_dir)["val_acc"]))
    assert d["weights"]["kept"] > 0 and d["weights"]["reinitialized"] == [] and "run" not in d


def test_source_loads_the_weights_its_project_file_records(run_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    project = json.loads(Path(DEMO).read_text(encoding="utf-8"))
    project["weights"] = {"source": str(run_dir / "checkpoints" / "last.pt")}
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(project), encoding="utf-8")
    assert main(["evaluate", str(path), *DATA, "--device", "cpu", "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["accuracy"] == pytest.approx(float(_last_epoch(run_dir)["val_acc"])) and d["weights"]["kept"] > 0

    project["weights"] = {"source": ""}
    path.write_text(json.dumps(project), encoding="utf-8")
    assert main(["evaluate", str(path), *DATA, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "weights.source" in err and err.count("\n") == 1


def test_source_without_weights_and_train_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "template:lenet5", "--dataset", "synthetic:1,28,28,10", "--train-size", "12",
                 "--val-size", "8", "--split", "train", "--device", "cpu", "--json", "--quiet"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["split"] == "train" and d["count"] == 12 and 0 <= d["top5"] <= 1 and "weights" not in d


@pytest.mark.parametrize("args, words", [
    (["evaluate", "no/such/file.json"], "no such file"),
    (["evaluate", DEMO, "--dataset", "nope"], "unknown dataset 'nope'"),
    (["evaluate", DEMO, "--batch-size", "0"], "--batch-size must be at least 1"),
])
def test_unreadable_input_exits_2_with_one_line(args: list[str], words: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_folders_that_are_no_runs_and_weights_on_a_run(tmp_path: Path, run_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is a folder but not a run folder" in capsys.readouterr().err
    (tmp_path / "graph.json").write_text("{}", encoding="utf-8")  # a run killed before its first epoch
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and err.count("\n") == 1
    assert main(["evaluate", str(run_dir), "--weights", "DEFAULT"]) == 2
    assert "--weights applies to a SOURCE" in capsys.readouterr().err


def test_data_the_network_cannot_take_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", DEMO, "--dataset", "synthetic:3,32,32,4", "--train-size", "8", "--val-size", "8",
                 "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "output has 10 values per sample but the dataset synthetic:3,32,32,4 has 4 classes" in err
    assert err.count("\n") == 1


def test_the_evaluate_parser_does_not_import_torch() -> None:
    code = ("import argparse, sys, core.cli.evaluate as e; e.add_parser(argparse.ArgumentParser().add_subparsers()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
