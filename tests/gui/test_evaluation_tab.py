"""The Training dock's Evaluation tab (gui/training/evaluation.py, gui/training/confusion.py).

The views are driven with evaluations made here (a known confusion matrix with per-sample lists)
and, for Evaluate / Cancel, with a run folder trained in a second; what is asserted is what the
user reads: the empty-state sentence, the axis names, a cell's hover text, the sample grid, the
table's order after a heading click, the exported files and the one-line problems.
"""

from __future__ import annotations

import csv
import gc
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QImage

from core.graph import Graph
from core.project import Project
from core.training import Callbacks, TrainConfig, TrainingSession
from core.training.data import synthetic_source
from core.training.evaluate import EVALUATION_FILE, Evaluation, from_confusion
from gui.training import evaluation as evaluation_module
from gui.training.confusion import cell_tooltip
from gui.training.evaluation import EMPTY_TEXT, EvaluationView, RunContext

CLASSES = ["circle", "square", "triangle", "star"]
# rows = true class: 2 squares taken for circles, 4 triangles for stars, …
MATRIX = [[5, 0, 1, 0],
          [2, 6, 0, 0],
          [0, 0, 3, 4],
          [0, 1, 0, 7]]


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()


def known_evaluation() -> Evaluation:
    """MATRIX with one sample per count, in class order, confidences falling within each cell."""
    ev = from_confusion(np.asarray(MATRIX), CLASSES, top5=None)
    truth, pred, conf = [], [], []
    for t, row in enumerate(MATRIX):
        for p, n in enumerate(row):
            for k in range(n):
                truth.append(t)
                pred.append(p)
                conf.append(0.9 - 0.1 * k)
    ev.truth, ev.predicted, ev.confidence = truth, pred, conf
    return ev


def shown_view(qtbot) -> EvaluationView:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1300, 460)
    view.show()
    qtbot.waitExposed(view)
    return view


def click_cell(qtbot, view: EvaluationView, row: int, col: int) -> None:
    qtbot.mouseClick(view.matrix, Qt.MouseButton.LeftButton, pos=view.matrix.cell_rect(row, col).center().toPoint())


def table_column(view: EvaluationView, column: int) -> list[str]:
    model = view.table.model()
    return [model.index(r, column).data() for r in range(model.rowCount())]


def tiny_run(folder: Path) -> Path:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 4})
    g.add_node("Output", "output")
    for a, b in (("input", "flat"), ("flat", "fc"), ("fc", "output")):
        g.add_edge(a, b)
    config = TrainConfig(dataset="synthetic:3,8,8,4", train_size=64, val_size=40, batch_size=32, epochs=1,
                         device="cpu", probe_interval=0.0)
    summary = TrainingSession(Project(graph=g, name="tiny"), config, Callbacks(), run_dir=folder,
                              evaluate=False).run()  # the tab evaluates it
    assert summary.status == "completed"
    return folder


def test_before_any_run_the_tab_says_what_to_do(qtbot):
    view = shown_view(qtbot)
    assert view.empty.isVisible() and view.empty.text() == EMPTY_TEXT
    assert "Evaluate" in view.empty.text() and "Runs tab" in view.empty.text()
    assert not view.b_evaluate.isEnabled() and not view.b_csv.isVisible() and not view.b_png.isVisible()


def test_the_matrix_names_every_class_on_both_axes_and_says_what_a_cell_holds(qtbot):
    view = shown_view(qtbot)
    view.show_evaluation(known_evaluation())
    assert view.matrix.isVisible() and not view.empty.isVisible()
    view.matrix.grab()  # paints it (what the user sees), recording where the names went
    labels = view.matrix.drawn_labels
    area = QRect(QPoint(0, 0), view.matrix.size())
    for axis in ("true", "predicted"):
        drawn = [lab for lab in labels if lab.axis == axis]
        assert [lab.text for lab in drawn] == CLASSES  # whole names, none elided
        assert all(area.contains(lab.rect) for lab in drawn), [lab.rect for lab in drawn]
    # Row names sit left of their rows, column names above their columns.
    for lab in labels:
        cell = view.matrix.cell_rect(lab.index, lab.index)
        if lab.axis == "true":
            assert lab.rect.right() < cell.left() and cell.top() <= lab.rect.center().y() <= cell.bottom()
        else:
            assert lab.rect.bottom() < cell.top() and cell.left() <= lab.rect.center().x() <= cell.right()
    assert cell_tooltip(CLASSES, MATRIX, 1, 0) == "true square, predicted circle: 2 samples (25% of square)"
    assert cell_tooltip(CLASSES, MATRIX, 0, 2) == "true circle, predicted triangle: 1 sample (17% of circle)"
    assert cell_tooltip(CLASSES, MATRIX, 3, 3).endswith("7 samples (88% of star) — correct")
    centre = view.matrix.cell_rect(2, 3).center()
    assert view.matrix.cell_at(centre) == (2, 3)
    assert "accuracy <b>72.4%</b>" in view.summary.text()  # 21 of 29


def test_a_clicked_cell_lists_its_samples_most_confident_first(qtbot, tmp_path):
    view = shown_view(qtbot)
    ev = known_evaluation()
    view.show_evaluation(ev)
    data = synthetic_source((3, 8, 8), 4, train=8, val=len(ev.truth))
    view.run_dir = tmp_path
    view.context = RunContext(tmp_path, None, None, data)  # opened: the images are read from it
    click_cell(qtbot, view, 2, 3)
    assert view.matrix.selected == (2, 3)
    assert view.grid_title.text().startswith("true triangle, predicted star: 4 samples (57% of triangle).")
    qtbot.waitUntil(lambda: view.grid.count() == 4 and view.grid.item(0).icon().availableSizes() != [],
                    timeout=10_000)
    assert [view.grid.item(i).text() for i in range(4)] == ["90%", "80%", "70%", "60%"]
    first = ev.samples(2, 3)[0]
    assert view.grid.item(0).toolTip() == f"sample {first}: true triangle, predicted star with probability 90.0%"
    # A pair in "most confused" shows its cell too.
    assert "triangle → star</a> (4)" in view.pairs.text()
    view.pairs.linkActivated.emit("1,0")
    assert view.matrix.selected == (1, 0)
    qtbot.waitUntil(lambda: view.grid.count() == 2 and view.grid.item(0).text() == "90%", timeout=10_000)


def test_the_table_sorts_by_a_clicked_heading(qtbot):
    view = shown_view(qtbot)
    ev = known_evaluation()
    view.show_evaluation(ev)
    assert table_column(view, 0) == CLASSES  # class order first
    header = view.table.horizontalHeader()
    f1_col = 3
    assert view.model.headerData(f1_col, Qt.Orientation.Horizontal) == "F1"
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(f1_col) + header.sectionSize(f1_col) // 2, 5))
    by_f1 = sorted(ev.per_class, key=lambda c: c.f1)
    assert table_column(view, 0) == [c.name for c in by_f1]  # weakest first
    assert table_column(view, f1_col) == [f"{c.f1:.3f}" for c in by_f1]
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(f1_col) + header.sectionSize(f1_col) // 2, 5))
    assert table_column(view, 0) == [c.name for c in reversed(by_f1)]


def test_export_csv_and_png_write_whole_files_or_say_why_not(qtbot, tmp_path, monkeypatch):
    view = shown_view(qtbot)
    ev = known_evaluation()
    view.show_evaluation(ev)
    target = tmp_path / "table.csv"
    monkeypatch.setattr(evaluation_module.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(view.b_csv, Qt.MouseButton.LeftButton)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["class", "precision", "recall", "f1", "support"] and [r[0] for r in rows[1:]] == CLASSES
    picture = tmp_path / "matrix.png"
    monkeypatch.setattr(evaluation_module.QFileDialog, "getSaveFileName", lambda *a, **k: (str(picture), ""))
    qtbot.mouseClick(view.b_png, Qt.MouseButton.LeftButton)
    image = QImage(str(picture))
    assert not image.isNull() and image.width() > 4 * 40 and image.height() > 4 * 40
    assert view.problem.isHidden()
    # A folder where the file should go: one line naming it, nothing written.
    blocked = tmp_path / "a-folder.csv"
    blocked.mkdir()
    assert view.export_csv(blocked) is False
    assert view.problem.isVisible() and str(blocked) in view.problem.text() and "\n" not in view.problem.text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


def test_a_run_folder_is_read_or_evaluated_with_progress_and_cancel(qtbot, tmp_path, monkeypatch):
    run = tiny_run(tmp_path / "run")
    view = shown_view(qtbot)
    view.set_run(run)
    assert view.empty.isVisible() and "has not been evaluated yet: press Evaluate" in view.empty.text()
    assert view.b_evaluate.isEnabled()

    # Cancel: the job waits (opening the run) until the Cancel click has happened.
    gate = threading.Event()
    real_open = evaluation_module.open_run

    def slow_open(run_dir):
        gate.wait(10)
        return real_open(run_dir)

    monkeypatch.setattr(evaluation_module, "open_run", slow_open)
    qtbot.mouseClick(view.b_evaluate, Qt.MouseButton.LeftButton)
    assert view.b_cancel.isVisible() and view.progress.isVisible() and not view.b_evaluate.isEnabled()
    qtbot.mouseClick(view.b_cancel, Qt.MouseButton.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)
    assert view.problem.text() == "Evaluation cancelled." and view.evaluation is None
    assert not (run / EVALUATION_FILE).exists() and not view.b_cancel.isVisible()

    qtbot.mouseClick(view.b_evaluate, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.evaluation is not None, timeout=30_000)
    assert view.problem.isHidden() and view.matrix.isVisible()
    assert view.evaluation.count == 40 and len(view.evaluation.classes) == 4
    assert (run / EVALUATION_FILE).is_file() and view.summary.text().startswith("<b>run</b> · epoch 1")
    # The next time the run is shown, its file is read (no new evaluation).
    again = shown_view(qtbot)
    again.set_run(run)
    assert not again.busy and again.evaluation is not None and again.evaluation.confusion == view.evaluation.confusion

    # A cell's images come from the run's data, opened once for the evaluation.
    cells = [(t, p) for t, row in enumerate(view.evaluation.confusion) for p, n in enumerate(row) if n]
    t, p = cells[0]
    click_cell(qtbot, view, t, p)
    n = view.evaluation.confusion[t][p]
    qtbot.waitUntil(lambda: view.grid.count() == n and view.grid.item(0).text().endswith("%"), timeout=10_000)


def test_an_unreadable_evaluation_file_is_one_line_and_evaluate_still_works(qtbot, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / EVALUATION_FILE).write_text("{not json", encoding="utf-8")
    view = shown_view(qtbot)
    view.set_run(run)
    assert view.problem.isVisible() and EVALUATION_FILE in view.problem.text() and "\n" not in view.problem.text()
    assert view.b_evaluate.isEnabled()
    # Evaluating a folder without a checkpoint fails in one line, too.
    view.evaluate()
    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)
    assert view.problem.text().startswith("Evaluation failed: ") and "\n" not in view.problem.text()


def test_hovering_a_cell_shows_what_it_holds_and_the_keys_walk_the_matrix(qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    view = shown_view(qtbot)
    view.show_evaluation(known_evaluation())
    matrix = view.matrix
    pos = matrix.cell_rect(2, 3).center().toPoint()
    QApplication.sendEvent(matrix, QHelpEvent(QEvent.Type.ToolTip, pos, matrix.mapToGlobal(pos)))
    qtbot.waitUntil(QToolTip.isVisible, timeout=2000)
    assert QToolTip.text() == "true triangle, predicted star: 4 samples (57% of triangle)"
    QToolTip.hideText()
    # Arrows move the marked cell, Enter lists its samples (the same as a click).
    matrix.setFocus()
    matrix.select(0, 0)
    for key in (Qt.Key.Key_Down, Qt.Key.Key_Down, Qt.Key.Key_Right, Qt.Key.Key_Right, Qt.Key.Key_Right,
                Qt.Key.Key_Right):  # the last one stops at the edge
        qtbot.keyClick(matrix, key)
    assert matrix.selected == (2, 3)
    with qtbot.waitSignal(matrix.cell_clicked) as clicked:
        qtbot.keyClick(matrix, Qt.Key.Key_Return)
    assert clicked.args == [2, 3]
    assert view.grid_title.text().startswith("true triangle, predicted star")


def test_the_theme_switch_restyles_the_tab(qtbot):
    from gui.theme import DARK, LIGHT, apply_theme

    view = shown_view(qtbot)
    try:
        apply_theme(DARK)
        view.set_theme(DARK)
        assert DARK.text_dim in view.empty.styleSheet() and DARK.error in view.problem.styleSheet()
    finally:
        apply_theme(LIGHT)
    view.set_theme(LIGHT)
    assert LIGHT.text_dim in view.empty.styleSheet()
