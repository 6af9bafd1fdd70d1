"""Story d: train the LeNet-5 demo in the window and look at what it learned.

A user opens the Training dock, presses F5 (Train › Start Training), watches the curves and the
feature maps, opens Predictions (sample 0 named with its true class, its Grad-CAM over it),
Filters and Runs; stops a longer run and resumes it; extends a finished run with more epochs.
Training is a viewer: the demo stays unmodified unless the user changes a setting. The dataset is
the demo's own (shapes), cut to a few hundred images so the whole story takes seconds.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from core.project import load_project
from gui.document import Document
from tests.journeys.conftest import DEMO, assert_not_clipped, open_window, settle, trigger

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

TINY = {"train_size": 256, "val_size": 64, "batch_size": 64, "epochs": 1, "probe_interval": 0.0, "device": "cpu"}


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Qt wrappers a story leaves behind are collected here, on the GUI thread (not the training thread)."""
    yield
    gc.collect()


def demo_doc() -> Document:
    """The bundled demo as shipped, with its training cut to a few hundred images."""
    project = load_project(DEMO)
    project.training = {**project.training, **TINY}
    doc = Document.from_project(project)
    doc.path = DEMO  # opened from the app's resources, as the editor opens it
    return doc


def click_tab(qtbot, panel, widget) -> None:
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(panel.tabs.indexOf(widget)).center())
    settle()
    assert panel.tabs.currentWidget() is widget and widget.isVisible()


def click_run(qtbot, panel, path: Path) -> None:
    tree = panel.runs.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.toolTip(0) == str(path):
            tree.scrollToItem(item)
            qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())
            assert [r.path for r in panel.runs.selected()] == [path]
            return
    raise AssertionError(f"{path.name} is not in the runs list")


def run_row(panel, path: Path) -> dict[str, str]:
    """The Runs list's row of a run, as the user reads it (column title → text)."""
    tree = panel.runs.tree
    titles = [tree.headerItem().text(c) for c in range(tree.columnCount())]
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.toolTip(0) == str(path):
            return {t: item.text(c) for c, t in enumerate(titles)}
    raise AssertionError(f"{path.name} is not in the runs list")


def finish(qtbot, panel, start) -> object:
    """Do ``start`` (a click, a shortcut) and wait for the run it starts to end."""
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        start()
    panel.worker.wait()
    settle()
    return blocker.args[0]


def covers(view_range: list[list[float]], xs: np.ndarray, ys: np.ndarray) -> bool:
    (x0, x1), (y0, y1) = view_range
    ys = ys[np.isfinite(ys)]
    return x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1


def test_train_the_demo_watch_it_and_resume_and_extend_runs(qtbot, isolated):
    window = open_window(qtbot, doc=demo_doc())
    window.training.set_runs_root(isolated / "runs")
    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=30_000)
    panel = dock.panel
    panel.settings.wait_for_data()
    settle()
    assert dock.isVisible() and panel.isVisible()
    window.view.select_nodes(["conv1", "conv2"])  # watch the two convolutions
    assert panel.maps.nodes == ["conv1", "conv2"]

    # F5 through the window's action: the demo trains, and stays unmodified (training is not editing).
    start = next(a for a in window.training_menu.actions() if a.shortcut() == QKeySequence("F5"))
    assert start.text().replace("&", "") == "Start Training"
    first = finish(qtbot, panel, start.trigger)
    assert first.status == "completed" and first.epochs_done == 1
    assert not window.doc.is_modified() and not window.isWindowModified()
    assert "*" not in window.windowTitle().replace("[*]", "")
    assert panel.progress_text.text().startswith("Finished · 1 epoch")
    assert_not_clipped(panel.progress_text)

    # Curves: every point of the loss and accuracy curves inside its plot's view.
    xs, ys = panel.plots.c_step.getOriginalDataset()
    assert xs is not None and len(xs) == 4  # 256 images / batch 64
    assert covers(panel.plots.loss_plot.getPlotItem().getViewBox().viewRange(), np.asarray(xs), np.asarray(ys))
    xs, ys = panel.plots.c_val_acc.getOriginalDataset()
    assert xs is not None and len(xs) == 1
    assert covers(panel.plots.acc_plot.getPlotItem().getViewBox().viewRange(), np.asarray(xs), np.asarray(ys))
    # Feature maps: a channel grid per watched convolution (6 and 16 channels).
    panel.maps.render()
    assert panel.maps.sections["conv1"].mosaic.count == 6 and panel.maps.sections["conv1"].mosaic.isVisible()
    assert panel.maps.sections["conv2"].mosaic.count == 16

    # Predictions, first open: sample 0 with its true class, and the Grad-CAM heat over it.
    click_tab(qtbot, panel, panel.predict)
    view = panel.predict
    truth = panel.settings.data.classes[view.sample_labels[0]]
    assert view.source_label.text() == f"dataset sample 0 · label {truth}"
    assert_not_clipped(view.source_label)
    view.flush()  # computed on its worker thread
    assert [p.name for p in view.predictions] == [b.name for b in view.bars.predictions] and len(view.predictions) == 5
    assert view.cam is not None and float(view.cam.heatmap.max()) > 0
    assert view.cam_view.isVisible() and view.cam_view.image is not None
    assert view.cam_view.image != view.image_view.image  # the overlay, not the bare image

    # Filters: conv1's kernels as tiles.
    click_tab(qtbot, panel, panel.filters)
    assert panel.filters.combo.currentText() == "conv1"
    assert panel.filters.mosaic.count == 6 and panel.filters.mosaic.isVisible()

    # Runs: the run is listed as completed, 1 of 1 epochs.
    click_tab(qtbot, panel, panel.runs)
    run1 = Path(first.run_dir)
    assert run_row(panel, run1)["Status"] == "completed" and run_row(panel, run1)["Epochs"] == "1/1"

    # A longer run, stopped (Shift+F5) after its first checkpoint, then resumed from the Runs list.
    panel.settings.epochs.setValue(6)
    stop = next(a for a in window.training_menu.actions() if a.shortcut() == QKeySequence("Shift+F5"))

    def start_then_stop() -> None:
        start.trigger()
        qtbot.waitUntil(lambda: (panel.run_dir / "checkpoints" / "last.pt").is_file(), timeout=60_000)
        stop.trigger()

    stopped = finish(qtbot, panel, start_then_stop)
    run2 = Path(stopped.run_dir)
    assert stopped.status == "stopped" and stopped.epochs_done < 6
    assert panel.progress_text.text().startswith("Stopped")
    panel.runs.refresh()
    assert run_row(panel, run2)["Status"] == "stopped"
    click_run(qtbot, panel, run2)
    assert panel.runs.b_resume.isEnabled()
    resumed = finish(qtbot, panel, lambda: qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton))
    assert resumed.status == "completed" and resumed.epochs_done == 6
    assert panel.progress_text.text().startswith("Finished · 6 epochs")
    assert run_row(panel, run2)["Epochs"] == "6/6"

    # Extend the finished first run: Epochs at what it has done says so; at 3 it trains two more.
    click_run(qtbot, panel, run1)
    started = run_row(panel, run1)["Started"]
    panel.settings.epochs.setValue(1)
    qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton)
    assert not panel.running and "Set Epochs above 1" in panel.problem_text
    assert panel.banner_text.isVisible()
    panel.settings.epochs.setValue(3)
    extended = finish(qtbot, panel, lambda: qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton))
    assert extended.status == "completed" and extended.epochs_done == 3 and Path(extended.run_dir) == run1
    assert panel.progress_text.text().startswith("Finished · 3 epochs")
    assert not panel.banner_text.isVisible()
    panel.runs.refresh()
    assert run_row(panel, run1)["Epochs"] == "3/3" and run_row(panel, run1)["Started"] == started
    assert len(panel.runs.records) == 2  # extended in place, not a new run
