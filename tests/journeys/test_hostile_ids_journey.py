"""Journey: a project whose layer is called ``training`` (issue 11, item 7).

Torch already uses that name on every module, so the network could not be built. The Problems
panel says so on the layer's row, with a readable *Fix: rename training to training_* button; one
click renames the layer (its card follows), the network is valid again, and Ctrl+Z brings the old
name back.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtTest import QTest

from core.project import load_project
from gui.document import Document
from tests.journeys.conftest import ROOT, open_window, settle
from tests.journeys.test_diagnostics_journey import assert_fully_readable, fix_button, problem_rows, undo


def test_a_layer_named_training_is_an_error_whose_fix_renames_it(qtbot, isolated) -> None:  # type: ignore[no-untyped-def]
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.graph.rename_node("conv1", "training")
    window = open_window(qtbot, QSize(1280, 720), Document.from_project(project))
    doc = window.doc
    rows = [r for r in problem_rows(window) if r[0] != "info"]
    assert [r[:2] for r in rows] == [("error", "training")], rows
    assert "torch already uses the name 'training' on every module" in rows[0][2]
    button = fix_button(window)
    assert button.text() == "Fix: rename training to training_"
    assert_fully_readable(button)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    assert doc.analysis.ok and not [r for r in problem_rows(window) if r[0] == "error"]
    assert "training_" in window.scene.nodes and "training" not in window.scene.nodes
    assert doc.graph.successors("input") == ["training_"]
    undo(window)
    assert "training" in window.scene.nodes
    assert [r[:2] for r in problem_rows(window) if r[0] != "info"] == [("error", "training")]
