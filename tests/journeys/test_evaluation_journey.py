"""Story (issue 13): train the demo for an epoch and see where it errs, in the Evaluation tab.

A user trains the LeNet-5 demo (shapes, cut to a few hundred images), opens the Training dock's
Evaluation tab: the 10×10 confusion matrix with every class named on both axes, whole and on
screen; clicks the busiest mistake and gets a grid of exactly those samples with their predicted
probabilities; sorts the per-class table by F1; clicks a sample and lands in Predictions on it.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QKeySequence

from core.training.evaluate import EVALUATION_FILE
from gui.training.evaluation import MAX_GRID
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger
from tests.journeys.test_training_journey import click_tab, demo_doc, finish

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()


def test_train_then_see_where_it_errs(qtbot, isolated):
    window = open_window(qtbot, doc=demo_doc())
    window.training.set_runs_root(isolated / "runs")
    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=30_000)
    panel = dock.panel
    panel.settings.wait_for_data()
    view = dock.evaluation
    assert view is not None and panel.tabs.tabText(panel.tabs.indexOf(view)) == "Evaluation"

    # Before any run the tab says what to do.
    click_tab(qtbot, panel, view)
    assert view.empty.isVisible() and "press Evaluate" in view.empty.text()

    start = next(a for a in window.training_menu.actions() if a.shortcut() == QKeySequence("F5"))
    summary = finish(qtbot, panel, start.trigger)
    assert summary.status == "completed"
    run = Path(summary.run_dir)
    assert (run / EVALUATION_FILE).is_file()  # evaluated at the end of the run
    qtbot.waitUntil(lambda: view.evaluation is not None and not view.busy, timeout=30_000)
    settle()
    ev = view.evaluation
    classes = panel.settings.data.classes
    assert ev.classes == list(classes) and len(ev.confusion) == 10 and ev.count == 64
    assert view.matrix.isVisible() and not view.empty.isVisible()
    assert view.summary.text().startswith(f"<b>{run.name}</b> · epoch 1 · validation set, 64 samples")

    # Every class named on both axes, whole (not elided) and on screen (not cut by the dock).
    view.matrix.grab()
    seen = view.matrix.visibleRegion().boundingRect()
    for axis in ("true", "predicted"):
        labels = [lab for lab in view.matrix.drawn_labels if lab.axis == axis]
        assert [lab.text for lab in labels] == list(classes)
        for lab in labels:
            assert seen.contains(lab.rect), f"{axis} label {lab.text} at {lab.rect} outside {seen}"
    assert QRect(QPoint(0, 0), view.matrix.size()).contains(view.matrix.cell_rect(9, 9).toAlignedRect())
    for button in (view.b_evaluate, view.b_csv, view.b_png):
        assert_not_clipped(button)

    # The busiest mistake (or, after one epoch with none, the fullest cell): its samples, that many.
    cells = [(n, t, p) for t, row in enumerate(ev.confusion) for p, n in enumerate(row) if n]
    errors = [c for c in cells if c[1] != c[2]]
    n, t, p = max(errors or cells)
    qtbot.mouseClick(view.matrix, Qt.MouseButton.LeftButton, pos=view.matrix.cell_rect(t, p).center().toPoint())
    assert view.grid_title.text().startswith(f"true {classes[t]}, predicted {classes[p]}: {n} sample")
    qtbot.waitUntil(lambda: view.grid.count() == min(n, MAX_GRID) and view.grid.item(0).text().endswith("%"),
                    timeout=30_000)
    shown = [float(view.grid.item(i).text().rstrip("%")) for i in range(view.grid.count())]
    assert shown == sorted(shown, reverse=True)  # the most confident first
    assert view.grid.isVisible()

    # The per-class table, sorted by F1 with a click on its heading: the weakest class first.
    header = view.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(3) + header.sectionSize(3) // 2, 5))
    model = view.table.model()
    f1 = [float(model.index(r, 3).data()) for r in range(model.rowCount())]
    assert f1 == sorted(f1) and model.rowCount() == 10
    worst = min(ev.per_class, key=lambda c: (c.f1, ev.classes.index(c.name)))
    assert model.index(0, 3).data() == f"{worst.f1:.3f}"

    # A sample opens in Predictions, named as it was in the grid, with the run's model on it.
    item = view.grid.item(0)
    qtbot.mouseClick(view.grid.viewport(), Qt.MouseButton.LeftButton, pos=view.grid.visualItemRect(item).center())
    settle()
    predict = panel.predict
    assert panel.tabs.currentWidget() is predict
    predict.flush()
    index = item.toolTip().split(":")[0]  # "sample 17"
    assert predict.source_label.text().startswith(f"{index} of {run.name}'s val set · true {classes[t]}")
    assert predict.truth == t and len(predict.predictions) == 5
    assert predict.predictions[0].name == classes[p]  # what the evaluation said it predicted
    assert predict.cam is not None

    # Back in the tab, Evaluate measures the run again (on a worker thread), to the same numbers.
    click_tab(qtbot, panel, view)
    assert view.evaluation is ev and view.b_evaluate.isEnabled()
    qtbot.mouseClick(view.b_evaluate, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)  # (the unit tests hold it to see progress and Cancel)
    assert view.evaluation is not ev and view.evaluation.confusion == ev.confusion
    assert view.problem.isHidden() and view.b_evaluate.isEnabled() and not view.b_cancel.isVisible()
