"""The inspector keeps the forms of the node types it has shown and shows them again with another
node's values (issue 11: a click on a node of another type built and destroyed a whole form).

Each test drives the real panel through the document's selection and undo stack and reads what a
user reads: texts, values, which widgets are visible, and where they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLabel, QLineEdit, QSpinBox, QToolButton, QWidget

from core.project import load_project
from gui import commands
from gui.document import Document
from gui.panels.inspector import InspectorPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


@pytest.fixture
def doc(qtbot):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


def _panel(qtbot, doc: Document, kept: int = 8, setup: Any = None) -> InspectorPanel:
    """A shown panel on ``doc``; ``setup(panel)`` runs before it takes the document."""
    panel = InspectorPanel()
    panel.kept_forms = kept
    if setup is not None:
        setup(panel)
    qtbot.addWidget(panel)
    panel.resize(330, 900)
    panel.set_document(doc)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def _settle() -> None:
    """Run the queued layouts and the deletions of the rows a refresh replaced."""
    QApplication.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def _seen(panel: InspectorPanel) -> list[tuple[Any, ...]]:
    """What the user sees in the body on show: each visible widget's kind, text or value, state and place."""
    _settle()
    body = panel.body
    out: list[tuple[Any, ...]] = []
    for w in body.findChildren(QWidget):
        if not w.isVisibleTo(body):
            continue
        geo = w.geometry()
        where = (w.mapTo(body, geo.topLeft() - w.pos()).x(), w.mapTo(body, geo.topLeft() - w.pos()).y(),
                 geo.width(), geo.height())
        if isinstance(w, QLabel):
            pixmap = w.pixmap()
            what: Any = (w.text(), None if pixmap.isNull() else pixmap.toImage())
        elif isinstance(w, QLineEdit):
            what = (w.text(), bool(w.property("invalid")))  # unset and False look the same
        elif isinstance(w, QSpinBox):
            what = w.value()
        elif isinstance(w, QCheckBox | QToolButton):
            what = (w.text(), w.isChecked())
        elif isinstance(w, QComboBox):
            what = (w.currentText(), [w.itemText(i) for i in range(w.count())])
        else:
            what = None
        out.append((type(w).__name__, what, w.isEnabled(), where))
    return out


def test_a_type_shown_before_comes_back_in_its_own_widgets_with_the_new_nodes_values(qtbot, doc):
    panel = _panel(qtbot, doc)
    doc.set_selection(["conv1"])
    body, editor = panel.body, panel.editors["out_channels"]
    assert editor.box.value() == 6 and panel.id_edit.text() == "conv1"
    doc.set_selection(["relu1"])  # another type: its own form; the Conv2d form waits hidden
    assert panel.body is not body and body.isHidden() and "out_channels" not in panel.editors
    assert panel.id_edit.text() == "relu1" and panel.frozen_box is not None and panel.frozen_box.isVisible()
    doc.set_selection(["conv2"])
    assert panel.body is body and panel.editors["out_channels"] is editor and not body.isHidden()
    assert panel.id_edit.text() == "conv2" and editor.box.value() == 16
    assert panel.inferred_labels["in_channels"].text().startswith("6")
    assert panel.stats["shape"].text() == "16×10×10"
    assert [w for w in panel.widget().findChildren(QWidget) if w.parent() is panel.widget() and w.isVisible()] == [body]

    depth = doc.undo_stack.count()
    editor.box.setValue(24)  # the edit goes to the node on show, as one command
    assert doc.undo_stack.count() == depth + 1 and doc.undo_stack.undoText() == "Set conv2.out_channels = 24"
    assert doc.graph.nodes["conv2"].params["out_channels"] == 24
    assert doc.graph.nodes["conv1"].params["out_channels"] == 6
    assert panel.stats["shape"].text() == "24×10×10"
    assert doc.analysis.nodes["conv2"].out_shapes[0] == (24, 10, 10)
    doc.undo_stack.undo()
    assert editor.box.value() == 16 and panel.stats["shape"].text() == "16×10×10"
    doc.undo_stack.redo()
    assert editor.box.value() == 24


def test_a_kept_form_looks_exactly_like_a_new_one(qtbot, doc):
    """Texts, values, enabled states, visible widgets and their places: a form shown again vs one
    built for that node in a panel that keeps nothing (and in the same panel after a refused edit)."""
    kept = _panel(qtbot, doc)
    fresh = _panel(qtbot, doc, kept=1)
    # A refused id and a refused value in conv1's form, then away and to conv2 / pool2 / fc2.
    doc.set_selection(["conv1"])
    kept.id_edit.setText("conv2")
    kept.id_edit.editingFinished.emit()
    kept.editors["out_channels"].refused.emit("out_channels must be positive")
    assert not kept.id_error.isHidden() and not kept.param_error.isHidden()
    bodies = {"Conv2d": kept.body}
    for node in ("pool1", "relu1", "conv2", "fc1", "pool2", "relu2", "fc2", "conv1", "flatten", "relu4"):
        doc.set_selection([node])
        node_type = doc.graph.nodes[node].type
        assert bodies.setdefault(node_type, kept.body) is kept.body  # a type shown before: its form again
        assert fresh.body is not kept.body and _seen(kept) == _seen(fresh), node
    assert kept.id_error.isHidden() and kept.param_error.isHidden()
    assert not kept.id_edit.property("invalid")


def test_a_node_with_an_init_of_its_own_does_not_leave_it_in_the_next_nodes_choices(qtbot, doc):
    doc.graph.nodes["conv1"].init = "custom_init"  # as a file from a newer version may hold
    panel = _panel(qtbot, doc)
    doc.set_selection(["conv1"])
    assert panel.init_box.currentText() == "custom_init"
    doc.set_selection(["relu1"])
    doc.set_selection(["conv2"])
    items = [panel.init_box.itemText(i) for i in range(panel.init_box.count())]
    assert "custom_init" not in items and panel.init_box.currentText() == doc.graph.nodes["conv2"].init


def test_a_hidden_form_edits_nothing_and_the_oldest_form_goes_past_the_limit(qtbot, doc):
    panel = _panel(qtbot, doc, kept=2)
    doc.set_selection(["conv1"])
    conv_body, conv_editor = panel.body, panel.editors["out_channels"]
    doc.set_selection(["relu1"])
    depth = doc.undo_stack.count()
    conv_editor.box.setValue(99)  # a signal from the hidden form (a focus-out as it hides, say)
    assert doc.undo_stack.count() == depth and doc.graph.nodes["conv1"].params["out_channels"] == 6
    doc.set_selection(["conv2"])
    assert panel.body is conv_body and conv_editor.box.value() == 16  # the model's value, not 99
    doc.set_selection(["relu1"])
    doc.set_selection(["pool1"])  # a third type with room for two: the Conv2d form goes
    _settle()
    doc.set_selection(["conv1"])
    assert panel.body is not conv_body and panel.editors["out_channels"].box.value() == 6
    _settle()
    bodies = [w for w in panel.widget().findChildren(QWidget) if w.parent() is panel.widget()]
    kept = [f.body for f in (*panel._forms.values(), *panel._summaries.values())]
    assert len(panel._forms) == 2 and list(panel._summaries) == ["overview"]
    assert sorted(map(id, bodies)) == sorted(map(id, kept))  # the kept forms (two types, the overview) only


def test_rename_and_its_undo_while_the_form_is_hidden(qtbot, doc):
    panel = _panel(qtbot, doc)
    doc.set_selection(["conv1"])
    body = panel.body
    doc.set_selection(["relu1"])
    assert commands.try_push(doc, lambda: commands.RenameNodeCommand(doc, "conv1", "features.first")) is None
    doc.set_selection(["features.first"])
    assert panel.body is body and panel.id_edit.text() == "features.first" and panel.node_id == "features.first"
    doc.undo_stack.undo()  # renamed back while on show
    assert panel.node_id == "conv1" and panel.id_edit.text() == "conv1"
    panel.id_edit.setText("first")  # the user renames it in the kept form
    panel.id_edit.editingFinished.emit()
    assert "first" in doc.graph.nodes and panel.id_edit.text() == "first" and panel.id_error.isHidden()


def test_a_form_shown_again_starts_at_its_top(qtbot, doc):
    panel = _panel(qtbot, doc)
    panel.resize(330, 160)  # the Conv2d form scrolls
    doc.set_selection(["conv1"])
    _settle()
    bar = panel.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())
    doc.set_selection(["relu1"])
    doc.set_selection(["conv2"])
    _settle()
    assert bar.value() == 0 and panel.body.mapTo(panel.viewport(), panel.body.rect().topLeft()).y() == 0


def test_an_id_being_typed_is_not_given_to_another_node_of_its_type(qtbot, doc):
    panel = _panel(qtbot, doc)
    doc.set_selection(["conv1"])
    body = panel.body
    panel.activateWindow()
    panel.id_edit.setFocus()
    qtbot.waitUntil(panel.id_edit.hasFocus)
    panel.id_edit.setText("half typed")
    doc.set_selection(["conv2"])  # e.g. by Find: conv1's form is not reused for conv2
    assert panel.body is not body and panel.id_edit.text() == "conv2"
    assert panel.editors["out_channels"].box.value() == 16
    assert "conv1" in doc.graph.nodes and "half typed" not in doc.graph.nodes


def _fresh_summary(doc: Document, qtbot, ids: list[str]) -> list[tuple[Any, ...]]:
    """What a new panel shows for the selection ``ids`` (its summary form built for them)."""
    other = _panel(qtbot, doc)
    doc.set_selection(ids)
    seen = _seen(other)
    other.set_document(Document.new())  # stop following doc's selection
    return seen


def test_the_totals_and_the_overview_are_kept_and_show_each_selections_values(qtbot, doc):
    panel = _panel(qtbot, doc)
    overview = panel.body
    doc.set_selection(["conv1", "conv2"])
    totals = panel.body
    assert totals is not overview and panel.stats["types"].text() == "2 × Conv2d"
    doc.set_selection(["fc1", "relu3", "fc2"])  # another several-node selection: the same body, new values
    assert panel.body is totals and panel.node_id is None
    params = sum(doc.analysis.nodes[i].params or 0 for i in ("fc1", "relu3", "fc2"))
    assert f"{params:,}" in panel.stats["parameters"].text()
    assert panel.stats["types"].text() == "2 × Linear, 1 × ReLU"
    assert _seen(panel) == _fresh_summary(doc, qtbot, ["fc1", "relu3", "fc2"])  # as a new one shows it
    doc.set_selection(["fc1", "relu3", "fc2"])
    doc.set_selection([])  # nothing selected: the overview, kept
    assert panel.body is overview and panel.stats["nodes"].text() == str(len(doc.graph.nodes))
    doc.set_selection(["conv1"])
    doc.set_selection(["conv1", "pool1"])
    assert panel.body is totals and panel.stats["types"].text() == "1 × Conv2d, 1 × MaxPool2d"
    assert "2 nodes selected" in [w.text() for w in panel.body.findChildren(QLabel)]
    _settle()
    bodies = [w for w in panel.widget().findChildren(QWidget) if w.parent() is panel.widget()]
    assert len(bodies) == 3  # the Conv2d form, the overview and the totals


def test_the_kept_totals_follow_a_theme_switch(qtbot, doc):
    from gui.theme import DARK, LIGHT, apply_theme, current_theme

    panel = _panel(qtbot, doc)
    doc.set_selection(["conv1", "conv2"])
    light = panel.body
    try:
        apply_theme(DARK)
        panel.set_document(doc)  # as the window does on a theme switch
        assert panel.body is not light and "2 nodes selected" in [w.text() for w in panel.body.findChildren(QLabel)]
        dark = panel.body
        doc.set_selection(["conv1", "conv2", "pool1"])
        assert panel.body is dark and panel.stats["types"].text() == "2 × Conv2d, 1 × MaxPool2d"
    finally:
        apply_theme(LIGHT)
    assert current_theme() is LIGHT
