"""core.training.evaluate: metrics against a hand computation, top-5, per-sample lists in dataset
order, confusion cells, CSV/JSON round trips, folder datasets with an unreadable file, sample
images, cancel/progress, and a run folder's evaluation.json."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.project import load_project
from core.training import Callbacks, TrainConfig, TrainingSession
from core.training.data import InMemorySource, Split, open_dataset, synthetic_source
from core.training.evaluate import (
    EVALUATION_FILE,
    Evaluation,
    EvaluationCancelled,
    EvaluationError,
    evaluate,
    evaluate_run,
    from_confusion,
    load_run_evaluation,
    load_run_model,
    open_run_data,
    sample_images,
)
from core.training.weights import InputPipeline
from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo_lenet.json"


class _Table(nn.Module):
    """Answers sample i (its 1×1×1 image holds i) with row i of a fixed logits table."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(logits, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the images are normalised with mean 0 and std 1: x = pixel / 255
        index = (x.flatten(1)[:, 0] * 255).round().long()
        return self.table[index]


def _indexed(truth: list[int], classes: int) -> InMemorySource:
    """One 1×1×1 image per sample holding its own index; labels ``truth`` (the validation split)."""
    images = torch.arange(len(truth), dtype=torch.uint8).view(-1, 1, 1, 1)
    split = Split(images, torch.tensor(truth, dtype=torch.long))
    return InMemorySource("indexed", [f"c{i}" for i in range(classes)], train=split, val=split,
                          mean=(0.0,), std=(1.0,))


def _one_hot(predictions: list[int], classes: int) -> list[list[float]]:
    return [[3.0 if c == p else 0.0 for c in range(classes)] for p in predictions]


# truth and predictions of 10 samples over 4 classes; class 3 is never predicted
TRUTH = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
PRED = [0, 0, 1, 1, 1, 2, 0, 2, 2, 2]


def test_metrics_match_a_hand_computation() -> None:
    data = _indexed(TRUTH, 4)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")  # a class never predicted must not warn (0/0)
        ev = evaluate(_Table(_one_hot(PRED, 4)), data, batch_size=3)
    # rows = true class:  [2 1 0 0] / [0 2 0 0] / [1 0 3 0] / [0 0 1 0]
    assert ev.confusion == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 3, 0], [0, 0, 1, 0]]
    assert ev.accuracy == pytest.approx(7 / 10)
    assert ev.top5 is None  # fewer than six classes
    by_name = {c.name: c for c in ev.per_class}
    expected = {  # precision = diagonal / column sum, recall = diagonal / row sum
        "c0": (2 / 3, 2 / 3, 2 / 3, 3), "c1": (2 / 3, 1.0, 0.8, 2),
        "c2": (3 / 4, 3 / 4, 3 / 4, 4), "c3": (0.0, 0.0, 0.0, 1),
    }
    for name, (p, r, f1, support) in expected.items():
        got = by_name[name]
        assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f1)) and got.support == support
    assert ev.truth == TRUTH and ev.predicted == PRED and ev.indices is None and ev.count == 10
    softmax_of_3 = math.exp(3) / (math.exp(3) + 3)
    assert ev.confidence == pytest.approx([softmax_of_3] * 10)
    assert ev.split == "val" and ev.dataset == "indexed"
    assert ev.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0.75 + 0) / 4)


def test_per_class_formulas_against_per_sample_counting() -> None:
    gen = np.random.default_rng(3)
    truth = gen.integers(0, 7, 400)
    pred = np.where(gen.random(400) < 0.6, truth, gen.integers(0, 7, 400))
    confusion = np.zeros((7, 7), dtype=np.int64)
    np.add.at(confusion, (truth, pred), 1)
    ev = from_confusion(confusion, [str(i) for i in range(7)], top5=None)
    for c, row in enumerate(ev.per_class):
        tp = int(np.sum((truth == c) & (pred == c)))
        predicted, actual = int(np.sum(pred == c)), int(np.sum(truth == c))
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        assert (row.precision, row.recall, row.support) == pytest.approx((p, r, actual))
        assert row.f1 == pytest.approx(2 * p * r / (p + r) if p + r else 0.0)
    assert ev.accuracy == pytest.approx(float(np.mean(truth == pred)))


def test_top5_counts_the_true_class_among_the_five_largest() -> None:
    truth = [0, 0, 0]
    # class 0 ranks first, fifth and sixth among 7 logits
    logits = [[9, 1, 2, 3, 4, 5, 6], [3, 1, 2, 4, 5, 6, 7], [1, 2, 3, 4, 5, 6, 7]]
    ev = evaluate(_Table([[float(v) for v in row] for row in logits]), _indexed(truth, 7))
    assert ev.top5 == pytest.approx(2 / 3) and ev.accuracy == pytest.approx(1 / 3)
    assert json.loads(json.dumps(evaluate(_Table(_one_hot(PRED, 4)), _indexed(TRUTH, 4)).to_dict()))["top5"] is None


def test_most_confused_samples_csv_and_json_object() -> None:
    ev = evaluate(_Table(_one_hot(PRED, 4)), _indexed(TRUTH, 4))
    # three cells with one error each, in class order; the diagonal is never "confused"
    assert ev.most_confused() == [("c0", "c1", 1), ("c2", "c0", 1), ("c3", "c2", 1)]
    assert ev.most_confused(1) == [("c0", "c1", 1)]
    assert ev.samples(0, 1) == [2] and ev.samples(2, 2) == [5, 7, 8] and ev.samples(1, 0) == []
    assert ev.to_csv().splitlines() == [
        "class,precision,recall,f1,support", "c0,0.666667,0.666667,0.666667,3", "c1,0.666667,1,0.8,2",
        "c2,0.75,0.75,0.75,4", "c3,0,0,0,1"]
    d = json.loads(json.dumps(ev.to_dict()))
    assert {"accuracy", "top5", "classes", "per_class", "confusion", "most_confused"} <= set(d)
    assert d["per_class"][1] == {"class": "c1", "precision": pytest.approx(2 / 3), "recall": 1.0, "f1": 0.8,
                                 "support": 2}
    assert d["most_confused"][0] == {"true": "c0", "predicted": "c1", "count": 1}
    assert "truth" not in d and d["count"] == 10


def test_save_and_load_round_trip_and_bad_files(tmp_path: Path) -> None:
    ev = evaluate(_Table(_one_hot(PRED, 4)), _indexed(TRUTH, 4))
    path = tmp_path / "ev.json"
    ev.save(path)
    back = Evaluation.load(path)
    assert back.confusion == ev.confusion and back.per_class == ev.per_class and back.accuracy == ev.accuracy
    assert back.truth == ev.truth and back.predicted == ev.predicted and back.samples(2, 0) == [6]
    assert back.confidence == pytest.approx(ev.confidence, abs=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["ev.json"]  # no temporary file left

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"cannot read .*bad\.json"):
        Evaluation.load(bad)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["confusion"] = [[1, 2], [3]]
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(EvaluationError) as info:
        Evaluation.load(bad)
    assert "confusion: expected a 4×4 matrix" in str(info.value) and "\n" not in str(info.value)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["samples"]["predicted"] = data["samples"]["predicted"][:-1]
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(EvaluationError, match="one entry per sample"):
        Evaluation.load(bad)


def test_output_width_that_is_not_the_class_count_is_one_line() -> None:
    with pytest.raises(EvaluationError) as info:
        evaluate(_Table(_one_hot(PRED, 5)), _indexed(TRUTH, 4))
    assert str(info.value) == "the network's output has 5 values per sample but the dataset indexed has 4 classes"


def test_progress_cancel_and_mode_restored() -> None:
    data = synthetic_source((3, 8, 8), 3, train=8, val=20)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    model.train()
    seen: list[tuple[int, int]] = []
    ev = evaluate(model, data, batch_size=8, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(8, 20), (16, 20), (20, 20)] and model.training and ev.count == 20
    calls = iter([False, True])
    with pytest.raises(EvaluationCancelled):
        evaluate(model, data, batch_size=8, cancel=lambda: next(calls))


def test_flat_input_and_train_split() -> None:
    data = synthetic_source((1, 4, 4), 2, train=12, val=4)
    model = nn.Linear(16, 2)  # takes the 16 pixels flattened, like an MLP whose Input is (16,)
    ev = evaluate(model, data, split="train", input_shape=(16,))
    assert ev.split == "train" and ev.count == 12 and sum(map(sum, ev.confusion)) == 12


def _folder(root: Path) -> Path:
    from PIL import Image

    for name, colour in (("cat", (250, 10, 10)), ("dog", (10, 10, 250))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 12), colour).save(root / name / f"{i}.png")
    (root / "dog" / "1.png").write_bytes(b"not an image")  # skipped, as in training
    return root


def test_folder_dataset_keeps_dataset_indices_past_an_unreadable_file(tmp_path: Path) -> None:
    data = open_dataset(f"folder:{_folder(tmp_path / 'pets')}", image_shape=(3, 8, 8), val_fraction=0.0,
                        workers=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    ev = evaluate(model, data, split="train", batch_size=4)
    assert ev.classes == ["cat", "dog"] and ev.count == 5
    assert ev.indices == [0, 1, 2, 3, 5] and ev.truth == [0, 0, 0, 1, 1]
    assert "1 unreadable image" in (data.report() or "")
    cell = ev.samples(1, ev.predicted[-1])
    assert 5 in cell and 4 not in cell
    images = sample_images(data, [0, 5], split="train")
    assert [img.shape for img in images] == [(8, 8, 3), (8, 8, 3)]
    assert images[0][0, 0].tolist() == [250, 10, 10] and images[1][0, 0].tolist() == [10, 10, 250]


def test_sample_images_in_memory_and_out_of_range() -> None:
    data = _indexed(TRUTH, 4)
    images = sample_images(data, [7, 2])
    assert [img.shape for img in images] == [(1, 1, 1)] * 2 and [int(i[0, 0, 0]) for i in images] == [7, 2]
    with pytest.raises(EvaluationError, match="sample 10 is out of range"):
        sample_images(data, [10])


def test_evaluate_run_writes_evaluation_json(tmp_path: Path) -> None:
    config = TrainConfig(dataset="synthetic:3,32,32,10", train_size=32, val_size=24, epochs=1, batch_size=16,
                         device="cpu", probe_interval=0.0)
    run = tmp_path / "run"
    summary = TrainingSession(load_project(DEMO), config, Callbacks(), run_dir=run).run()
    assert summary.status == "completed"
    ev = evaluate_run(run)
    assert ev.count == 24 and len(ev.classes) == 10 and ev.top5 is not None
    assert ev.extra == {"run": str(run), "epoch": 1, "checkpoint": "last.pt"}
    back = load_run_evaluation(run)
    assert back is not None and back.confusion == ev.confusion and back.extra["epoch"] == 1
    assert json.loads((run / EVALUATION_FILE).read_text(encoding="utf-8"))["accuracy"] == ev.accuracy
    assert load_run_evaluation(tmp_path) is None
    with pytest.raises(EvaluationError) as info:
        evaluate_run(tmp_path / "nowhere")
    assert "no checkpoint" in str(info.value) and "\n" not in str(info.value)


def test_a_shapes_run_is_evaluated_on_its_own_validation_set(tmp_path: Path) -> None:
    config = TrainConfig(dataset="shapes", train_size=64, val_size=40, epochs=1, batch_size=32, device="cpu",
                         probe_interval=0.0)
    summary = TrainingSession(load_project(DEMO), config, Callbacks(), run_dir=tmp_path / "run").run()
    assert summary.status == "completed" and summary.last is not None
    # generated without its training split, normalised with the statistics the run recorded:
    # the very numbers the run reported for its last epoch
    ev = evaluate_run(tmp_path / "run", save=False)
    assert ev.count == 40 and ev.dataset == "shapes"
    assert ev.accuracy == pytest.approx(summary.last.val_acc) and ev.top5 == pytest.approx(summary.last.val_top5)


def test_a_folder_run_opens_with_its_pipeline_and_is_refused_when_its_classes_changed(tmp_path: Path) -> None:
    from PIL import Image

    root = _folder(tmp_path / "pets")
    config = TrainConfig(dataset=f"folder:{root}", epochs=1, batch_size=4, device="cpu", workers=0,
                         val_fraction=0.34, probe_interval=0.0)
    project = load_project(DEMO)
    project.graph.set_param("fc3", "out_features", 2)
    run = tmp_path / "run"
    assert TrainingSession(project, config, Callbacks(), run_dir=run).run().status == "completed"
    assert evaluate_run(run, save=False).classes == ["cat", "dog"]

    # a run whose folder was decoded with pretrained weights' pipeline is evaluated with that pipeline
    recorded = json.loads((run / "config.json").read_text(encoding="utf-8"))
    pipeline = InputPipeline(resize=40, crop=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    recorded["dataset"].update(pipeline=pipeline.to_dict(), mean=list(pipeline.mean), std=list(pipeline.std))
    (run / "config.json").write_text(json.dumps(recorded), encoding="utf-8")
    _project, config, _model, _ckpt = load_run_model(run)
    data = open_run_data(run, config, (3, 32, 32))
    assert data.pipeline == pipeline and data.resize == 40 and data.mean == pipeline.mean
    recorded["dataset"]["pipeline"] = {"resize": "big"}
    (run / "config.json").write_text(json.dumps(recorded), encoding="utf-8")
    with pytest.raises(EvaluationError, match=r"dataset\.pipeline must hold resize, crop, mean and std"):
        evaluate_run(run)
    del recorded["dataset"]["pipeline"]
    (run / "config.json").write_text(json.dumps(recorded), encoding="utf-8")

    (root / "bird").mkdir()
    Image.new("RGB", (10, 12), (0, 200, 0)).save(root / "bird" / "0.png")
    with pytest.raises(EvaluationError) as info:
        evaluate_run(run)
    assert "does not have the classes the run trained on (2 in the run, 3 here: new bird)" in str(info.value)
    assert not (run / EVALUATION_FILE).exists() or Evaluation.load(run / EVALUATION_FILE).classes == ["cat", "dog"]
