"""Evaluating segmentation networks: the per-pixel confusion, IoU and pixel accuracy of
``evaluate_masks`` against numpy, the JSON/CSV of a per-pixel Evaluation and its round trip, a
run folder's evaluation.json, and ``main.py evaluate RUN_DIR`` in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.compiler import compile_graph
from core.project import project_from_dict
from core.training import Callbacks, Trainer, seed_everything
from core.training.evaluate import (
    EVALUATION_FILE,
    Evaluation,
    EvaluationError,
    evaluate_masks,
    evaluate_run,
    from_confusion,
    load_run_evaluation,
)
from tests.core.test_training_segmentation import SIDE, FakeMasks, K, _numpy_scores, cfg, fcn

PROJECT = {
    "format": "netcanvas-project", "version": 1, "name": "tiny segmenter",
    "graph": {
        "nodes": [
            {"id": "input", "type": "Input", "params": {"shape": [3, SIDE, SIDE]}},
            {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
            {"id": "relu1", "type": "ReLU"},
            {"id": "head", "type": "Conv2d", "params": {"out_channels": K, "kernel_size": 1}},
            {"id": "output", "type": "Output"},
        ],
        "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "relu1"},
                  {"from": "relu1", "to": "head"}, {"from": "head", "to": "output"}],
    },
}


def _predict(model: nn.Module, data: FakeMasks, split: str = "val") -> np.ndarray:
    part = data._cpu[0 if split == "train" else 1]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    with torch.no_grad():
        return model.eval()((part.images.float() / 255 - mean) / std).argmax(1).numpy()


def test_evaluate_masks_against_numpy() -> None:
    torch.manual_seed(0)
    data, model = FakeMasks(), fcn()
    ev = evaluate_masks(model, data, batch_size=5)
    truth = data._cpu[1].labels.numpy()
    conf, acc, ious = _numpy_scores(truth, _predict(model, data), K)
    assert ev.per_pixel and ev.confusion == conf.tolist() and ev.count == 16
    assert ev.pixel_accuracy == pytest.approx(acc) and ev.accuracy == pytest.approx(acc)
    assert [c.iou for c in ev.per_class] == pytest.approx(ious)
    assert ev.miou == pytest.approx(np.mean([v for v in ious if v is not None]))
    assert [c.support for c in ev.per_class] == [int((truth == c).sum()) for c in range(K)]
    out = ev.to_dict()
    assert out["miou"] == ev.miou and out["pixel_accuracy"] == ev.pixel_accuracy
    assert out["pixels"] == int((truth != 255).sum())
    assert [row["iou"] for row in out["per_class"]] == [c.iou for c in ev.per_class]
    assert ev.to_csv().splitlines()[0] == "class,precision,recall,f1,support,iou"


def test_a_classifier_evaluation_has_no_pixel_keys() -> None:
    ev = from_confusion(np.array([[2, 1], [0, 3]]), ["a", "b"], top5=None)
    assert "miou" not in ev.to_dict() and "iou" not in ev.to_dict()["per_class"][0]


def test_per_pixel_round_trip_and_absent_class(tmp_path: Path) -> None:
    ev = from_confusion(np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]]), ["bg", "a", "b"], top5=None, per_pixel=True)
    ev.images = 3
    assert ev.per_class[2].iou is None and ev.miou == pytest.approx((5 / 8 + 4 / 7) / 2)
    ev.save(tmp_path / "e.json")
    back = Evaluation.load(tmp_path / "e.json")
    assert back.per_pixel and back.miou == ev.miou and back.count == 3
    assert [c.iou for c in back.per_class] == [c.iou for c in ev.per_class]
    assert json.loads((tmp_path / "e.json").read_text())["per_class"][2]["iou"] is None


def test_a_wrong_output_size_is_one_line() -> None:
    with pytest.raises(EvaluationError) as info:
        evaluate_masks(nn.Conv2d(3, K, 3, stride=2, padding=1), FakeMasks())
    assert "3×4×4 per image" in str(info.value) and "3×8×8" in str(info.value) and "\n" not in str(info.value)


def _train_run(run: Path) -> tuple[object, FakeMasks]:
    project = project_from_dict(PROJECT)
    config = cfg(epochs=2)
    seed_everything(config.seed)
    model = compile_graph(project.graph, seed=config.seed)
    data = FakeMasks()
    summary = Trainer(model, data, config, Callbacks(), run_dir=run, project=PROJECT).run()
    assert summary.status == "completed", summary.message
    return summary, data


def test_evaluate_run_writes_the_per_pixel_evaluation(tmp_path: Path) -> None:
    summary, data = _train_run(tmp_path / "run")
    ev = evaluate_run(tmp_path / "run", data=data)
    assert ev.per_pixel and ev.extra == {"run": str(tmp_path / "run"), "epoch": 2, "checkpoint": "last.pt"}
    last = summary.last  # type: ignore[attr-defined]
    assert ev.miou == pytest.approx(last.val_miou) and ev.pixel_accuracy == pytest.approx(last.val_pixel_acc)
    assert ev.confusion == [list(r) for r in last.confusion]
    back = load_run_evaluation(tmp_path / "run")
    assert back is not None and back.miou == pytest.approx(ev.miou)
    saved = json.loads((tmp_path / "run" / EVALUATION_FILE).read_text(encoding="utf-8"))
    assert {"miou", "pixel_accuracy"} <= set(saved) and "iou" in saved["per_class"][0]
