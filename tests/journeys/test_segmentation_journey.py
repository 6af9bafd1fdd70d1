"""Story: open the U-Net template, train it one short epoch on shapes with masks, look at its masks.

A student opens the U-Net template: its training section already says Semantic segmentation on
the built-in shapes with masks. In the Training dock the tabs are the segmentation task's
(Segmentation and Evaluation in, Predictions out) and the second plot is the mean IoU on a 0–1
axis. Start trains one tiny epoch; the headline reads "best val mIoU …". The Segmentation tab
shows a probe sample three times (the image, the true mask over it, the predicted mask over it,
each at the data's 64×64), a legend naming the data's classes, and one IoU row per class with
the numbers the run reported. Clicking a pixel draws the head's receptive field there (the box
the analysis's field gives, clipped to the image) and says in words what the head sees; U-Net's
head sees more than a typical shape, so no warning shows. Loading the run's weights for the next run
raises no problem (a mask model has no class predictions to show).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt

from core.explain import rf_region
from core.training.data.segmentation import SHAPES_SEG_CLASSES
from gui.training.segmentation_view import fmt_iou, head_field
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

pytest.importorskip("templates")

# one epoch of two small steps (as the other journeys cut theirs); probes at every reported step
SMALL = {"train_size": 32, "val_size": 16, "batch_size": 16, "epochs": 1, "probe_interval": 0.0, "device": "cpu",
         "threads": 1}
SIZE = 64


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt wrappers the story leaves behind are collected here, on the GUI thread (not the training thread)."""
    yield
    gc.collect()


def visible_tabs(panel) -> list[str]:
    bar = panel.tabs.tabBar()
    return [bar.tabText(i).replace("&&", "&") for i in range(bar.count()) if bar.isTabVisible(i)]


def test_train_the_unet_template_and_look_at_its_masks(qtbot, isolated) -> None:
    window = open_window(qtbot)
    window.training.set_runs_root(isolated / "runs")
    assert window.files.open_template_named("unet")
    settle()
    doc = window.doc
    assert doc.analysis.ok, [e.message for e in doc.analysis.errors]
    assert doc.project.training["task"] == "segmentation"
    doc.project.training = {**doc.project.training, **SMALL}

    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=30_000)
    panel = dock.panel
    form = panel.settings
    assert form.task.currentText() == "Semantic segmentation"
    tabs = visible_tabs(panel)
    assert "Segmentation" in tabs and "Evaluation" in tabs and "Predictions" not in tabs
    plots = panel.plots
    acc = plots.acc_plot.getPlotItem()
    assert "Mean IoU" in acc.titleLabel.text and acc.getAxis("left").labelText == "IoU"

    data = form.wait_for_data()
    settle()
    assert data is not None and tuple(data.classes) == SHAPES_SEG_CLASSES

    # The real Start button: one short epoch.
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        qtbot.mouseClick(panel.b_start, Qt.MouseButton.LeftButton)
    panel.worker.wait()
    settle()
    summary = blocker.args[0]
    assert summary.status == "completed", panel.problem_text
    last = summary.last
    assert last is not None and last.val_miou is not None and len(last.val_iou) == len(SHAPES_SEG_CLASSES)
    assert f"best val mIoU {summary.best_val_miou:.2f}" in panel.progress_text.text()
    assert_not_clipped(panel.progress_text)

    # The mean-IoU curve: the epoch's point on a 0..1 axis.
    xs, ys = plots.c_val_acc.getOriginalDataset()
    assert xs is not None and list(xs) == [1.0] and ys[0] == pytest.approx(last.val_miou)
    low, high = acc.getViewBox().viewRange()[1]
    assert low == pytest.approx(-0.02) and high == pytest.approx(1.02)

    # The Segmentation tab: image, truth and prediction of a probe sample at the data's size.
    bar = panel.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i) == "Segmentation")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    settle()
    view = panel.task_views.segmentation
    assert view.isVisible() and view.latest is not None and view.renders >= 1
    assert view.latest.masks_true is not None and view.latest.masks_pred is not None
    for picture in view.views:
        assert picture.isVisible() and picture.image is not None
        assert (picture.image.width(), picture.image.height()) == (SIZE, SIZE)
        assert picture.target().width() > SIZE  # scaled up on screen
    assert view.truth_view.image != view.image_view.image  # the mask is blended over the image
    assert view.legend_text().replace("■", "").split() == list(SHAPES_SEG_CLASSES)

    # One IoU row per class, with the numbers the run reported.
    rows = [(view.table.item(r, 0).text(), view.table.item(r, 1).text()) for r in range(view.table.rowCount())]
    assert rows == [(name, fmt_iou(v)) for name, v in zip(SHAPES_SEG_CLASSES, last.val_iou, strict=True)]
    assert f"mean IoU <b>{last.val_miou:.2f}</b>" in view.summary.text()

    # A click on the image: the head's receptive field there, on all three pictures, and in words.
    head, rf, out_hw = head_field(doc.analysis, doc.graph)  # type: ignore[misc]
    assert out_hw == (SIZE, SIZE)  # the head paints every pixel: its pixel is the clicked one
    target = view.image_view.target()
    scale = target.width() / SIZE
    qtbot.mouseClick(view.image_view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(target.left() + 20.5 * scale), int(target.top() + 40.5 * scale)))
    settle()
    assert view.clicked_at == (40, 20)
    expected = rf_region(rf, (40, 20), (SIZE, SIZE))
    for picture in view.views:
        box = picture.rects[0][0]
        assert (box.top(), box.left(), box.bottom(), box.right()) == (
            expected.top, expected.left, expected.bottom + 1, expected.right + 1)
    assert view.field.text().startswith(f"At pixel (40, 20) the head ({head}) sees {int(rf.size[0])}×")
    # U-Net's head sees more than a typical shape (~17 px): no warning.
    assert min(rf.size) > data.typical_object_px and not view.diagnostic.isVisible()
    assert bar.tabRect(index).width() >= bar.fontMetrics().horizontalAdvance("Segmentation")

    # The run's weights, loaded for the next run: no class-prediction failure for a mask model.
    assert panel.load_weights(Path(summary.run_dir)) and panel.problem_text == ""
