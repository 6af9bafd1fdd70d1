"""Story: open the DCGAN template, train it for two short epochs, watch its samples.

A student opens the DCGAN template: the canvas shows two networks side by side, labelled
Generator and Discriminator. In the Training dock the task is GAN (image generation), the
opened images raise no "doesn't fit" banner, and the tabs are the GAN's: Samples in, Predictions
and Evaluation out. With the Samples tab open, Start trains two tiny epochs on the built-in
shapes; the tab then shows the fixed-noise grid (the run folder's grid, at
its size, scaled up on screen), a slider through the two epochs ("Epoch 2 of 2"), and above the
grid the epoch's D(x), D(G(z)) and losses — the numbers the run reported. Going back to epoch 1
shows that epoch's grid and figures. "Save grid…" writes the shown grid. (Exporting the generator alone:
test_gan_export_journey.py.)
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from core.sources import load_source
from gui.document import Document
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

# what the story trains on: two epochs of two steps each (as the other journeys cut theirs)
SMALL = {"train_size": 64, "val_size": 16, "batch_size": 32, "epochs": 2, "probe_interval": 0.0, "device": "cpu",
         "threads": 1}


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt wrappers the story leaves behind are collected here, on the GUI thread (not the training thread)."""
    yield
    gc.collect()


def visible_tabs(panel) -> list[str]:
    bar = panel.tabs.tabBar()
    return [bar.tabText(i).replace("&&", "&") for i in range(bar.count()) if bar.isTabVisible(i)]


def group_label(scene, group_id: str) -> str:
    """What the canvas writes on a group: its frame's title when expanded, its card when collapsed."""
    if group_id in scene.frames:
        return scene.frames[group_id].title.label
    return scene.cards[group_id].label


def pixels(image: QImage) -> np.ndarray:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=rgb.sizeInBytes())
    return data.reshape(rgb.height(), rgb.bytesPerLine())[:, :rgb.width() * 3].copy()  # rgb dies on return


def test_train_the_dcgan_template_and_watch_its_samples(qtbot, isolated, monkeypatch) -> None:
    project = load_source("template:dcgan")
    project.training = {**project.training, **SMALL}
    window = open_window(qtbot, doc=Document.from_project(project))
    window.training.set_runs_root(isolated / "runs")
    doc = window.doc
    assert doc.analysis.ok, [e.message for e in doc.analysis.errors]
    # Two networks on the canvas, labelled as such (not elided)
    assert group_label(window.scene, "generator") == "Generator"
    assert group_label(window.scene, "discriminator") == "Discriminator"

    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=90_000)
    panel = dock.panel
    assert panel.settings.task.currentText() == "GAN (image generation)"
    tabs = visible_tabs(panel)
    assert "Samples" in tabs and "Predictions" not in tabs and "Evaluation" not in tabs
    # The opened images fit the discriminator: no classifier's "doesn't fit" banner for the GAN's canvas
    form = panel.settings
    assert form.wait_for_data() is not None
    settle()
    assert form.mismatch is None and not form.banner.isVisible()
    # What the generator learns is shown: the shapes drawn plain, a light colour on black, and the
    # dataset's tooltip says why they look unlike the classification set's
    assert form.dataset.currentText() == "Shapes (built-in)"
    assert "for GANs drawn plain" in form.dataset.itemData(form.dataset.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    tiles = form.preview.tiles
    assert tiles is not None and form.preview.isVisible() and len(tiles) >= 8
    corners = tiles[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners == 0).all() and (tiles.reshape(len(tiles), -1).max(axis=1) > 128).all()

    # The Samples tab, opened by its tab before the run: the user watches the grid arrive
    view = panel.task_views.samples
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(panel.tabs.indexOf(view)).center())
    settle()
    assert view.isVisible() and view.shown_image() is None

    # The real Start button: two short epochs
    samples: list = []
    epochs: list = []
    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as blocker:
        qtbot.mouseClick(panel.b_start, Qt.MouseButton.LeftButton)
        assert panel.worker is not None
        panel.worker.samples.connect(samples.append)
        panel.worker.epoch_ended.connect(epochs.append)
    panel.worker.wait()
    settle()
    summary = blocker.args[0]
    assert summary.status == "completed", panel.problem_text
    assert [m.epoch for m in epochs] == [1, 2] and samples and samples[-1].epoch == 2

    # The grid came live, through the worker's samples signal (a grid read back from the folder has no step)
    assert view.isVisible() and view.epochs[2].step == samples[-1].step > 0
    image = view.shown_image()
    assert image is not None
    saved = QImage(str(panel.run_dir / "samples" / "epoch_002.png"))
    assert not saved.isNull() and image.size() == saved.size()  # the run folder's grid of 64, 8×8 tiles
    n, _, h, w = samples[-1].images.shape
    assert n == 64 and image.width() == 8 * w + 7 * 2 and image.height() == 8 * h + 7 * 2
    shown = pixels(image)
    assert shown.std() > 1.0 and np.array_equal(shown, pixels(saved))  # a picture, the same as the folder's
    target = view.grid.target()  # on screen: scaled up (by whole pixels from twice the size), inside the view
    scale = target.width() / image.width()
    assert scale >= 1 and (scale < 2 or scale == int(scale))
    assert view.grid.rect().contains(target.toRect())

    # Slider and caption: epoch 2 of 2 with its figures
    assert (view.slider.minimum(), view.slider.maximum(), view.slider.value()) == (1, 2, 2)
    assert view.epoch_label.text() == "Epoch 2 of 2"
    last = summary.last
    assert last is not None and last.d_real is not None and last.d_fake is not None
    caption = view.caption.text()
    assert f"D(x) {last.d_real:.3f}" in caption and f"D(G(z)) {last.d_fake:.3f}" in caption
    assert f"d_loss {last.d_loss:.4f}" in caption and f"g_loss {last.g_loss:.4f}" in caption
    for widget in (view.epoch_label, view.save_button, view.caption):
        assert_not_clipped(widget)

    # Back to epoch 1: its own grid and figures
    view.slider.setFocus()
    qtbot.keyClick(view.slider, Qt.Key.Key_Left)
    settle()
    first = epochs[0]
    assert view.epoch_label.text() == "Epoch 1 of 2" and not view.follow
    assert f"D(x) {first.d_real:.3f}" in view.caption.text() and f"D(G(z)) {first.d_fake:.3f}" in view.caption.text()
    assert np.array_equal(pixels(view.shown_image()), pixels(QImage(str(panel.run_dir / "samples" / "epoch_001.png"))))

    # Save grid…: the shown grid, at its size
    out = isolated / "grid.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    qtbot.mouseClick(view.save_button, Qt.MouseButton.LeftButton)
    assert QImage(str(out)).size() == image.size()

    window.close()
