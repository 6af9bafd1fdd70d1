"""``main.py train --task segmentation`` and ``main.py evaluate RUN_DIR`` of a segmentation run: the
epoch's val_miou and val_pixel_acc in the JSON line, the run's per-pixel evaluation (the numbers
the run reported), the text report, and the refusals' exit statuses."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import pytest

from core.cli import main
from core.training.data.segmentation import SHAPES_SEG_CLASSES

K = len(SHAPES_SEG_CLASSES)
DATA = ["--task", "segmentation", "--dataset", "shapes-seg", "--train-size", "32", "--val-size", "16",
        "--batch-size", "16", "--device", "cpu"]


def _project(path: Path, head: int = K, stride: int = 1) -> str:
    nodes = [{"id": "input", "type": "Input", "params": {"shape": [3, 64, 64]}},
             {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1,
                                                          "stride": stride}},
             {"id": "relu1", "type": "ReLU"},
             {"id": "head", "type": "Conv2d", "params": {"out_channels": head, "kernel_size": 1}},
             {"id": "output", "type": "Output"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(nodes)]
    path.write_text(json.dumps({"format": "netcanvas-project", "version": 1, "name": "tiny segmenter",
                                "graph": {"nodes": nodes, "edges": edges}}), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 1-epoch run of a tiny segmenter on shapes-seg, and what ``train --json`` printed."""
    root = tmp_path_factory.mktemp("seg")
    run = root / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["train", _project(root / "seg.json"), *DATA, "--epochs", "1", "--json", "--quiet",
                     "--out", str(run)]) == 0
    return run, printed.getvalue()


@pytest.fixture
def run_dir(trained: tuple[Path, str]) -> Path:
    return trained[0]


def test_train_json_line_has_mean_iou_and_pixel_accuracy(trained: tuple[Path, str]) -> None:
    run, printed = trained
    lines = [json.loads(line) for line in printed.splitlines() if line.strip()]
    assert len(lines) == 1 and {"val_miou", "val_pixel_acc"} <= set(lines[0])
    assert lines[0]["val_acc"] == lines[0]["val_pixel_acc"]
    summary = json.loads((run / "run.json").read_text())
    assert summary["best_val_miou"] == pytest.approx(lines[0]["val_miou"], abs=1e-6)


def test_evaluate_run_json_has_per_class_iou(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    last = json.loads((run_dir / "run.json").read_text())["last"]
    assert out["miou"] == pytest.approx(last["val_miou"], abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(last["val_pixel_acc"], abs=1e-6)
    assert [row["class"] for row in out["per_class"]] == list(SHAPES_SEG_CLASSES)
    assert all("iou" in row for row in out["per_class"]) and out["count"] == 16
    assert out["pixels"] == sum(map(sum, out["confusion"]))


def test_evaluate_run_text(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "pixel accuracy" in text and "mean IoU" in text and "16 images" in text
    assert all(name in text for name in SHAPES_SEG_CLASSES)


def test_an_output_at_another_size_exits_1_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", _project(tmp_path / "half.json", stride=2), *DATA, "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "64×64" in err
