"""The Training dock's "Samples" tab for GANs (gui/training/gan_view.py).

The view is fed GanSamples and EpochMetrics events made here with known pixels and figures; what is
asserted is what the user sees: the grid's size and pixels (grey for one channel, gaps between the
tiles, crisp whole-pixel scaling on screen), the slider's range and its "Epoch N of M" label, the
caption's D(x)/D(G(z))/losses of the shown epoch, following the newest epoch until the user moves
back, a run folder's saved grids, and "Save grid…" writing a PNG (and refusing plainly).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from PySide6.QtGui import QColor, QImage

from core.training.events import EpochMetrics, GanSamples
from core.training.gan_sample import GAP, GAP_VALUE
from gui.training.gan_view import EMPTY_TEXT, GanSamplesView, png_bytes


def samples(epoch: int, step: int = 3, n: int = 16, c: int = 1, size: int = 8, fill: int | None = None) -> GanSamples:
    if fill is None:
        images = torch.arange(n * c * size * size, dtype=torch.int64).remainder(256).to(torch.uint8)
        images = images.reshape(n, c, size, size)
    else:
        images = torch.full((n, c, size, size), fill, dtype=torch.uint8)
    return GanSamples(epoch=epoch, step=step, global_step=step * epoch, images=images)


def metrics(epoch: int, epochs: int = 3, d_real: float = 0.71, d_fake: float = 0.28) -> EpochMetrics:
    return EpochMetrics(epoch=epoch, epochs=epochs, train_loss=2.5, train_acc=0.0, val_loss=None, val_acc=None,
                        val_top5=None, lr=2e-4, images_per_s=100.0, seconds=1.0, eta_s=0.0, data_wait=0.0,
                        d_loss=1.1234, g_loss=1.3766, d_real=d_real, d_fake=d_fake)


@pytest.fixture
def view(qtbot) -> GanSamplesView:  # type: ignore[no-untyped-def]
    v = GanSamplesView()
    qtbot.addWidget(v)
    v.resize(520, 520)
    v.show()
    qtbot.waitExposed(v)
    v.run_started(types.SimpleNamespace(epochs=3), None)
    return v


def test_grey_samples_show_as_grey_in_cores_grid_layout(view: GanSamplesView) -> None:
    images = torch.zeros((9, 1, 4, 4), dtype=torch.uint8)
    images[4] = 200  # the middle tile of a 3×3 grid
    view.add_samples(GanSamples(epoch=1, step=1, global_step=1, images=images))
    image = view.shown_image()
    assert image is not None
    assert image.size().width() == 3 * 4 + 2 * GAP == image.size().height()
    assert image.pixelColor(4 + GAP, 4 + GAP) == QColor(200, 200, 200)  # grey levels, not a colour map
    assert image.pixelColor(4, 4) == QColor(GAP_VALUE, GAP_VALUE, GAP_VALUE)  # the gap between tiles
    assert image.pixelColor(0, 0) == QColor(0, 0, 0)


def test_samples_the_grid_cannot_show_are_refused_in_one_line(view: GanSamplesView) -> None:
    view.add_samples(samples(1, fill=5))
    view.add_samples(GanSamples(epoch=2, step=1, global_step=9, images=torch.zeros((4, 2, 3, 3), dtype=torch.uint8)))
    assert view.problem.isVisibleTo(view) and "epoch 2" in view.problem.text() and "these have 2" in view.problem.text()
    assert view.slider.maximum() == 1 and view.shown_image() is not None  # the last good grid stays


def test_empty_then_live_grid_and_caption(view: GanSamplesView) -> None:
    assert view.caption.text() == EMPTY_TEXT
    assert not view.save_button.isEnabled()
    view.add_samples(samples(1, step=5))
    image = view.shown_image()
    assert image is not None and image.size().width() == 4 * 8 + 3 * GAP == image.size().height()
    assert "in progress (step 5)" in view.caption.text()
    assert view.epoch_label.text() == "Epoch 1 of 3"
    view.add_epoch(metrics(1))
    assert view.caption.text() == "Epoch 1: D(x) 0.710 · D(G(z)) 0.280 · d_loss 1.1234 · g_loss 1.3766"
    # on screen: scaled by whole pixels (the 38-px grid in a ~500-px view: ×12), centred
    target = view.grid.target()
    assert target.width() == image.width() * int(target.width() // image.width())
    assert target.width() >= 4 * image.width()
    shot = view.grid.grab().toImage()
    centre = shot.pixelColor(int(target.left()) + 2, int(target.top()) + 2)
    assert centre == QColor(0, 0, 0)  # the first pixel (value 0) is a crisp square, not blurred with its neighbour


def test_slider_keeps_one_grid_per_epoch_and_follows_until_moved_back(view: GanSamplesView) -> None:
    view.add_samples(samples(1, fill=10))
    view.add_samples(samples(1, step=9, fill=20))  # the epoch's last grid replaces the earlier one
    view.add_epoch(metrics(1, d_real=0.9))
    view.add_samples(samples(2, fill=30))
    view.add_epoch(metrics(2, d_real=0.6))
    assert (view.slider.minimum(), view.slider.maximum(), view.slider.value()) == (1, 2, 2)
    assert view.shown_image().pixelColor(0, 0).red() == 30  # type: ignore[union-attr]
    view.show_epoch(1)  # the user goes back
    assert view.shown_image().pixelColor(0, 0).red() == 20  # type: ignore[union-attr]
    assert "D(x) 0.900" in view.caption.text() and view.epoch_label.text() == "Epoch 1 of 3"
    view.add_samples(samples(3, fill=40))  # a new epoch does not pull the user forward
    assert view.slider.value() == 1 and view.slider.maximum() == 3
    view.show_epoch(3)  # back at the end: following again
    view.add_samples(samples(3, step=8, fill=50))
    assert view.slider.value() == 3 and view.shown_image().pixelColor(0, 0).red() == 50  # type: ignore[union-attr]
    view.clear()
    assert view.shown_image() is None and view.caption.text() == EMPTY_TEXT


def test_colour_samples_and_a_run_folder_opened_later(view: GanSamplesView, tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    for epoch, value in ((1, 60), (2, 120)):
        grid = QImage(20, 10, QImage.Format.Format_RGB888)
        grid.fill(QColor(value, 0, 0))
        (tmp_path / "samples" / f"epoch_{epoch:03d}.png").write_bytes(png_bytes(grid))
    (tmp_path / "samples" / "notes.txt").write_text("not a grid")
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,d_loss,g_loss,d_real,d_fake\n"
                                          "1,2.0,1.0,1.0,0.8,0.2\n2,2.0,0.9,1.1,0.75,0.35\n")
    view.run_started(types.SimpleNamespace(epochs=2), str(tmp_path))
    assert (view.slider.maximum(), view.slider.value()) == (2, 2)
    assert view.shown_image().pixelColor(0, 0).red() == 120  # type: ignore[union-attr]
    assert view.caption.text() == "Epoch 2: D(x) 0.750 · D(G(z)) 0.350 · d_loss 0.9000 · g_loss 1.1000"
    view.add_samples(samples(3, c=3))  # a resumed run goes on from there, in colour
    assert view.slider.maximum() == 3 and view.epoch_label.text() == "Epoch 3 of 3"
    assert view.shown_image().size().width() == 4 * 8 + 3 * GAP  # type: ignore[union-attr]


def test_save_grid_writes_the_shown_png_and_refuses_plainly(view: GanSamplesView, tmp_path: Path) -> None:
    assert not view.save_grid(tmp_path / "none.png")
    assert view.problem.text() == "There is no grid to save yet." and not (tmp_path / "none.png").exists()
    view.add_samples(samples(1, fill=77))
    out = tmp_path / "grid.png"
    assert view.save_grid(out)
    saved = QImage(str(out))
    assert saved.size() == view.shown_image().size() and saved.pixelColor(0, 0).red() == 77  # type: ignore[union-attr]
    assert not view.save_grid(tmp_path / "missing" / "grid.png")
    assert view.problem.isVisibleTo(view) and "Cannot write" in view.problem.text()
    assert not (tmp_path / "missing").exists()


def test_samples_throttle_keeps_the_latest_and_each_epochs_last() -> None:
    from gui.training.worker import SamplesThrottle

    got: list[GanSamples] = []
    throttle = SamplesThrottle(got.append, interval=3600.0)  # nothing is due again within the test
    throttle.samples(samples(1, step=1))  # the first goes at once
    throttle.samples(samples(1, step=2))
    throttle.samples(samples(1, step=3))  # held: replaces step 2
    assert [(s.epoch, s.step) for s in got] == [(1, 1)]
    throttle.samples(samples(2, step=1))  # a new epoch: epoch 1's last grid is sent first, this one held
    assert [(s.epoch, s.step) for s in got] == [(1, 1), (1, 3)]
    throttle.flush()  # the run's end (or an epoch's figures, a pause)
    throttle.flush()
    assert [(s.epoch, s.step) for s in got] == [(1, 1), (1, 3), (2, 1)] and throttle.sent == 3
