"""Segmentation in the training engine: per-pixel losses (cross-entropy with an ignore index, Dice,
both), pixel accuracy, the per-pixel confusion matrix and IoU, best epoch by mean IoU, early
stopping, live mask probes and the refusals — each checked against an independent computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.training import Callbacks, TrainConfig, Trainer, seed_everything
from core.training.data.base import InMemorySource, Split, spread
from core.training.health import TrainingFailure
from core.training.optim import build_loss
from core.training.options import LOSSES
from core.training.pixel_metrics import pixel_confusion, pixel_scores
from core.training.runs import RunFolder

K, SIDE = 3, 8


class FakeMasks(InMemorySource):
    """A tiny mask dataset: images whose channel 0 is bright where the class-1 square is and channel 1
    where the class-2 square is; the border pixels are ignored (255) in some masks."""

    target = "mask"
    ignore_index = 255

    def __init__(self, train: int = 48, val: int = 16, seed: int = 0) -> None:
        self.palette = ((0, 0, 0), (255, 0, 0), (0, 255, 0))
        super().__init__("fake-seg", ("background", "one", "two"), self._make(train, seed), self._make(val, seed + 1))

    @staticmethod
    def _make(n: int, seed: int) -> Split:
        gen = torch.Generator().manual_seed(seed)
        masks = torch.zeros((n, SIDE, SIDE), dtype=torch.int64)
        for i in range(n):
            for cls in (1, 2):
                r, c = torch.randint(0, SIDE - 3, (2,), generator=gen).tolist()
                masks[i, r:r + 3, c:c + 3] = cls
            if i % 3 == 0:
                masks[i, 0, :] = 255  # an unlabelled row
        images = torch.randint(0, 60, (n, 3, SIDE, SIDE), generator=gen, dtype=torch.uint8)
        images[:, 0][masks == 1] += 180
        images[:, 1][masks == 2] += 180
        return Split(images, masks)

    def class_counts(self, split: str = "train") -> list[int]:
        masks = self.split(split).labels
        return [int((masks == c).sum()) for c in range(self.num_classes)]

    def preview(self, n: int = 16, split: str = "train") -> tuple[torch.Tensor, list[int]]:
        data = self._cpu[0 if split == "train" else 1]
        idx = spread(n, len(data))
        return data.images[idx].clone(), [1] * len(idx)

    def preview_masks(self, n: int = 16, split: str = "train") -> torch.Tensor:
        data = self._cpu[0 if split == "train" else 1]
        return data.labels[spread(n, len(data))].to(torch.uint8)


def fcn(classes: int = K) -> nn.Module:
    """A tiny fully convolutional net keeping the H×W (no BatchNorm, no dropout: deterministic)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 1))


def cfg(**kw: object) -> TrainConfig:
    base = {"task": "segmentation", "dataset": "shapes-seg", "epochs": 2, "batch_size": 8, "lr": 0.05,
            "optimizer": "adam", "device": "cpu"}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def run(config: TrainConfig, model: nn.Module | None = None, data=None, probes: bool = False, **kw):
    seed_everything(config.seed)
    names = ("run_started", "epoch_end", "warning", "finished", "failed") + (("probe",) if probes else ())
    events: dict[str, list] = {k: [] for k in names}
    trainer = Trainer(model if model is not None else fcn(), data if data is not None else FakeMasks(), config,
                      Callbacks(**{k: v.append for k, v in events.items()}), **kw)
    return trainer.run(), events, trainer


def _masks(n: int = 4, seed: int = 0, ignore: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, K, 5, 6, generator=gen)
    y = torch.randint(0, K, (n, 5, 6), generator=gen)
    if ignore:
        y[torch.rand(n, 5, 6, generator=gen) < 0.25] = 255
    return logits, y


# ------------------------------------------------------------------------------------------- losses


def _hand_cross_entropy(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-pixel cross-entropy written out: −Σ q·log p over the labelled pixels, q the smoothed one-hot."""
    logp = logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1]).log_softmax(-1)
    target = y.reshape(-1)
    keep = target != 255
    logp, target = logp[keep], target[keep]
    q = torch.full_like(logp, smoothing / logp.shape[1])
    q[torch.arange(len(target)), target] += 1 - smoothing
    return -(q * logp).sum(-1).mean()


def _hand_dice(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 − mean over classes of (2·Σ p·g + 1) / (Σ p + Σ g + 1) over the labelled pixels, by loops."""
    p = logits.softmax(1)
    keep = y != 255
    scores = []
    for c in range(logits.shape[1]):
        pc = p[:, c][keep]
        gc = (y[keep] == c).float()
        scores.append((2 * (pc * gc).sum() + 1) / (pc.sum() + gc.sum() + 1))
    return 1 - torch.stack(scores).mean()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_pixel_cross_entropy_against_a_hand_computation(smoothing: float) -> None:
    logits, y = _masks()
    loss, single = build_loss(cfg(label_smoothing=smoothing), K, "mask")
    assert float(single(logits, y)) == pytest.approx(float(_hand_cross_entropy(logits, y, smoothing)), rel=1e-5)
    # and against torch's own ignore_index mean
    ref = F.cross_entropy(logits, y, ignore_index=255, label_smoothing=smoothing)
    assert float(loss(logits, y)) == pytest.approx(float(ref), rel=1e-5)


def test_dice_and_ce_dice_against_hand_computations() -> None:
    logits, y = _masks(seed=3)
    _, dice = build_loss(cfg(loss="dice"), K, "mask")
    _, both = build_loss(cfg(loss="ce_dice", label_smoothing=0.1), K, "mask")
    assert float(dice(logits, y)) == pytest.approx(float(_hand_dice(logits, y)), rel=1e-5)
    assert float(both(logits, y)) == pytest.approx(
        float(_hand_cross_entropy(logits, y, 0.1) + _hand_dice(logits, y)), rel=1e-5)
    # a perfect prediction has Dice loss ≈ 0; the gradient flows to the logits
    perfect = F.one_hot(torch.where(y == 255, 0, y), K).permute(0, 3, 1, 2).float() * 50
    assert float(dice(perfect, y)) < 1e-3
    logits.requires_grad_(True)
    dice(logits, y).backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    # ignored pixels do not matter: changing their logits changes nothing
    other = logits.detach().clone()
    other[:, :, y[0] == 255] += 5.0
    assert float(dice(other, y)) == pytest.approx(float(dice(logits.detach(), y)), rel=1e-6)


def test_dice_on_class_labels_is_the_same_formula() -> None:
    gen = torch.Generator().manual_seed(1)
    logits, y = torch.randn(6, 4, generator=gen), torch.randint(0, 4, (6,), generator=gen)
    p = logits.softmax(1)
    g = F.one_hot(y, 4).float()
    hand = 1 - ((2 * (p * g).sum(0) + 1) / (p.sum(0) + g.sum(0) + 1)).mean()
    _, single = build_loss(cfg(task="classification", dataset="shapes", loss="dice"), 4, "class")
    assert float(single(logits, y)) == pytest.approx(float(hand), rel=1e-6)
    assert {"dice", "ce_dice"} <= set(LOSSES)


def test_a_batch_without_labelled_pixels_is_zero_not_nan() -> None:
    logits = torch.randn(2, K, 4, 4)
    y = torch.full((2, 4, 4), 255)
    _, single = build_loss(cfg(), K, "mask")
    assert float(single(logits, y)) == 0.0


def test_one_hot_losses_are_refused_for_masks() -> None:
    with pytest.raises(TrainingFailure, match="segmentation task trains with cross_entropy, dice, ce_dice"):
        build_loss(cfg(loss="mse"), K, "mask")


# ------------------------------------------------------------------------------------------ metrics


def _numpy_scores(y: np.ndarray, pred: np.ndarray, k: int) -> tuple[np.ndarray, float, list[float | None]]:
    keep = y != 255
    conf = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y[keep].tolist(), pred[keep].tolist(), strict=True):
        conf[t, p] += 1
    ious: list[float | None] = []
    for c in range(k):
        inter = int(((y == c) & (pred == c) & keep).sum())
        union = int((((y == c) | (pred == c)) & keep).sum())
        ious.append(inter / union if union else None)
    return conf, float((y[keep] == pred[keep]).mean()), ious


def test_confusion_and_scores_against_numpy() -> None:
    logits, y = _masks(n=6, seed=7)
    pred = logits.argmax(1)
    conf = pixel_confusion(y, pred, K, 255).view(K, K)
    ref, acc, ious = _numpy_scores(y.numpy(), pred.numpy(), K)
    assert conf.tolist() == ref.tolist()
    scores = pixel_scores(conf.tolist())
    assert scores.pixel_accuracy == pytest.approx(acc)
    assert scores.iou == pytest.approx(ious)
    assert scores.miou == pytest.approx(np.mean([v for v in ious if v is not None]))
    assert scores.pixels == int((y != 255).sum())


def test_scores_by_hand() -> None:
    # truth 0 0 1 1 | prediction 0 1 1 1, class 2 absent from both: IoU 1/2, 2/3, None
    scores = pixel_scores([[1, 1, 0], [0, 2, 0], [0, 0, 0]])
    assert scores.iou == pytest.approx((0.5, 2 / 3, None))
    assert scores.miou == pytest.approx((0.5 + 2 / 3) / 2)
    assert scores.pixel_accuracy == pytest.approx(0.75)
    empty = pixel_scores([[0, 0], [0, 0]])
    assert empty.miou is None and empty.pixel_accuracy is None and empty.iou == (None, None)


# ------------------------------------------------------------------------------------------- engine


def _by_hand(model: nn.Module, data: FakeMasks, split: str) -> tuple[np.ndarray, float, list[float | None]]:
    """The model's confusion, pixel accuracy and IoU on a split, computed outside the engine."""
    part = data._cpu[0 if split == "train" else 1]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    model.eval()
    with torch.no_grad():
        pred = model((part.images.float() / 255 - mean) / std).argmax(1)
    model.train()
    return _numpy_scores(part.labels.numpy(), pred.numpy(), K)


def test_epoch_metrics_match_an_independent_computation() -> None:
    data = FakeMasks()
    summary, ev, trainer = run(cfg(epochs=3), data=data)
    assert summary.status == "completed", summary.message
    last = ev["epoch_end"][-1]
    conf, acc, ious = _by_hand(trainer.model, data, "val")
    assert [list(r) for r in last.confusion] == conf.tolist()
    assert last.val_pixel_acc == pytest.approx(acc) and last.val_acc == last.val_pixel_acc
    assert last.val_iou == pytest.approx(ious)
    assert last.val_miou == pytest.approx(np.mean([v for v in ious if v is not None]))
    assert last.val_miou > 0.5  # the squares are easy: it learnt something
    line = last.json_line()
    assert {"val_miou", "val_pixel_acc"} <= set(line)
    # best epoch: the highest val_miou, and the summary carries it
    best = max(ev["epoch_end"], key=lambda m: m.val_miou)
    assert summary.best_epoch == best.epoch and summary.best_val_miou == pytest.approx(best.val_miou)
    assert [m.best for m in ev["epoch_end"]].count(True) >= 1


def test_train_accuracy_counts_labelled_pixels_only() -> None:
    # a learning rate too small to move the weights: the training pass scores a fixed model
    data = FakeMasks()
    summary, ev, trainer = run(cfg(epochs=1, optimizer="sgd", lr=1e-12, momentum=0.0, augment=False), data=data)
    assert summary.ok
    _, acc, _ = _by_hand(trainer.model, data, "train")
    assert ev["epoch_end"][0].train_acc == pytest.approx(acc, abs=1e-6)


def test_best_epoch_follows_mean_iou_and_early_stopping_says_so(tmp_path: Path) -> None:
    # a learning rate so large the net falls apart after its best epoch
    summary, ev, _ = run(cfg(epochs=8, lr=5.0, optimizer="sgd", early_stopping=2), run_dir=tmp_path / "r")
    assert summary.ok
    mious = [m.val_miou for m in ev["epoch_end"]]
    best = summary.best_epoch
    assert best is not None and mious[best - 1] == max(mious)
    if summary.status == "early_stopped":
        assert any("mean IoU has not improved" in w for w in ev["warning"])


def test_resume_keeps_the_best_mean_iou(tmp_path: Path) -> None:
    run_ok, ev1, _ = run(cfg(epochs=2), run_dir=tmp_path / "r")
    resumed, ev2, _ = run(cfg(epochs=3), run_dir=tmp_path / "r", resume_from=tmp_path / "r")
    assert run_ok.ok and resumed.ok and resumed.epochs_done == 3
    everything = ev1["epoch_end"] + ev2["epoch_end"]
    assert resumed.best_val_miou == pytest.approx(max(m.val_miou for m in everything))
    # metrics.csv keeps each epoch's mean IoU and pixel accuracy (the curves of a finished run)
    rows = RunFolder(tmp_path / "r").read_metrics()
    assert [r["val_miou"] for r in rows] == pytest.approx([m.val_miou for m in everything])
    assert [r["val_pixel_acc"] for r in rows] == pytest.approx([m.val_pixel_acc for m in everything])


def test_probes_carry_masks_without_probed_nodes() -> None:
    data = FakeMasks()
    summary, ev, trainer = run(cfg(epochs=1, probe_interval=0.0, probe_samples=4), data=data, probes=True)
    assert summary.ok and ev["probe"]
    p = ev["probe"][-1]
    assert p.masks_true is not None and p.masks_pred is not None
    assert p.masks_true.dtype == torch.uint8 and p.masks_true.shape == (4, SIDE, SIDE)
    assert torch.equal(p.masks_true, data.preview_masks(4, "val"))
    assert p.masks_pred.dtype == torch.uint8 and p.masks_pred.shape == (4, SIDE, SIDE)
    assert p.probabilities.shape == (4, K)
    assert torch.allclose(p.probabilities.sum(1), torch.ones(4), atol=1e-5)
    # the last probe saw the model as it ended (no step after the epoch's last report)
    images, _ = data.preview(4, "val")
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = trainer.model.eval()((images.float() / 255 - mean) / std).argmax(1)
    assert torch.equal(p.masks_pred, pred.to(torch.uint8))


def test_an_output_of_the_wrong_size_is_refused_in_one_sentence() -> None:
    small = nn.Sequential(nn.Conv2d(3, K, 3, stride=2, padding=1))
    summary, ev, _ = run(cfg(), model=small)
    assert summary.status == "failed" and ev["failed"] == [summary.message]
    assert "3×4×4 per image" in summary.message and "3×8×8" in summary.message
    assert "\n" not in summary.message


def test_class_labels_are_refused_for_the_segmentation_task() -> None:
    from core.training.data import synthetic_source

    summary, _, _ = run(cfg(), data=synthetic_source((3, 8, 8), 3, train=8, val=4))
    assert summary.status == "failed" and "needs images with masks" in summary.message


def test_shapes_seg_with_crops_and_flips_against_an_independent_computation() -> None:
    """The built-in shapes-seg, augmented (crops pad the masks with the ignore index): the
    validation metrics are the trained model's on the validation masks, computed by hand."""
    from core.training.data import open_dataset

    data = open_dataset("shapes-seg", train_size=32, val_size=8, task="segmentation")
    k = data.num_classes
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 1))
    summary, ev, trainer = run(cfg(epochs=1, batch_size=16, crop_padding=4, hflip=True), model=model, data=data)
    assert summary.ok, summary.message
    m = ev["epoch_end"][0]
    val = data._cpu_split("val")  # type: ignore[attr-defined]
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = trainer.model.eval()((val.images.float() / 255 - mean) / std).argmax(1)
    truth = val.masks.long().numpy()
    keep = truth != 255
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (truth[keep], pred.numpy()[keep]), 1)
    assert [list(r) for r in m.confusion] == conf.tolist()
    assert m.val_pixel_acc == pytest.approx(np.trace(conf) / conf.sum())
    assert len(m.val_iou) == k and m.val_miou is not None and 0 <= m.val_miou <= 1
    assert 0 <= m.train_acc <= 1 and np.isfinite(m.train_loss)
