"""The text epoch lines of ``main.py train`` for the segmentation and GAN tasks: each task's own
figures, worded as users read them (pixel accuracy and mIoU; D and G losses, D(x), D(G(z)))."""

from __future__ import annotations

import pytest

from core.cli.train import _Reporter
from core.training.events import EpochMetrics


def _metrics(**kw: object) -> EpochMetrics:
    base: dict[str, object] = dict(epoch=2, epochs=5, train_loss=0.5, train_acc=0.9, val_loss=0.4, val_acc=0.91,
                                   val_top5=None, lr=0.001, images_per_s=120.0, seconds=3.0, eta_s=9.0,
                                   data_wait=0.0)
    base.update(kw)
    return EpochMetrics(**base)  # type: ignore[arg-type]


def test_segmentation_line_says_pixel_accuracy_and_miou(capsys: pytest.CaptureFixture[str]) -> None:
    _Reporter(as_json=False, progress=False, main=True).epoch(_metrics(val_miou=0.7123, val_pixel_acc=0.91))
    out = capsys.readouterr().out
    assert "val loss 0.4000 pixel acc 91.00% mIoU 0.7123" in out
    assert out.count("91.00%") == 1  # pixel accuracy is the accuracy: said once


def test_gan_line_has_its_four_numbers_and_no_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    m = _metrics(val_loss=None, val_acc=None, d_loss=0.36, g_loss=3.14, d_real=0.872, d_fake=0.137)
    _Reporter(as_json=False, progress=False, main=True).epoch(m)
    out = capsys.readouterr().out
    assert "d_loss 0.3600  g_loss 3.1400  D(x) 0.872  D(G(z)) 0.137" in out
    assert "val" not in out and "acc" not in out


def test_json_line_carries_the_task_keys() -> None:
    seg = _metrics(val_miou=0.5, val_pixel_acc=0.8).json_line()
    assert seg["val_miou"] == 0.5 and seg["val_pixel_acc"] == 0.8 and "d_loss" not in seg
    gan = _metrics(val_loss=None, val_acc=None, d_loss=0.3, g_loss=2.0, d_real=0.8, d_fake=0.2).json_line()
    assert {k: gan[k] for k in ("d_loss", "g_loss", "d_real", "d_fake")} == {
        "d_loss": 0.3, "g_loss": 2.0, "d_real": 0.8, "d_fake": 0.2}
