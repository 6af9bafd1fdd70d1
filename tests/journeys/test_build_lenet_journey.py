"""Journey a: build LeNet-5 from an empty canvas as a student would, make the two classic mistakes,
fix them from the Problems panel, undo and redo everything, save, close, reopen, restart.

Everything goes through what the user touches: the File menu, Ctrl+K and Enter in the palette, a
palette drag onto the canvas, mouse drags between ports, a click on a wire and Delete, the Fix
buttons, Ctrl+Z / Ctrl+Shift+Z, and the assertions read what the window shows (card texts, the
status bar, the title's modified mark, the Problems rows, the canvas's share of the window).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from core.graph import Edge
from core.project import graph_to_dict, load_project
from gui.canvas.view import LAYER_MIME
from tests.journeys.conftest import DEMO, assert_not_clipped, canvas_share, open_window, settle, trigger


def mouse(view, kind: QEvent.Type, scene_pt: QPointF, buttons=Qt.MouseButton.LeftButton) -> None:
    vp = view.viewport()
    local = QPointF(view.mapFromScene(scene_pt))
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    QApplication.sendEvent(vp, QMouseEvent(kind, local, QPointF(vp.mapToGlobal(local.toPoint())), button, buttons,
                                           Qt.KeyboardModifier.NoModifier))


def drag(view, a: QPointF, b: QPointF) -> None:
    view.centerOn((a + b) / 2)
    mouse(view, QEvent.Type.MouseButtonPress, a)
    for i in range(1, 7):
        mouse(view, QEvent.Type.MouseMove, a + (b - a) * (i / 6))
    mouse(view, QEvent.Type.MouseButtonRelease, b, Qt.MouseButton.NoButton)


def add_by_search(window, layer_type: str) -> str:
    """Ctrl+K, type the layer's name, Enter: the layer is added after the selected node."""
    QTest.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.palette_panel.search
    QTest.keyClicks(window.palette_panel.search, layer_type)
    QTest.keyClick(window.palette_panel.search, Qt.Key.Key_Return)
    settle(5)
    (new_id,) = window.doc.selection
    assert window.doc.graph.nodes[new_id].type == layer_type
    assert window.statusBar().currentMessage().startswith(f"Added {new_id}")
    return new_id


def drop_from_palette(window, layer_type: str, scene_pt: QPointF) -> str:
    """What a drag from the palette delivers to the canvas: the layer's type under our MIME type."""
    before = set(window.doc.graph.nodes)
    data = QMimeData()
    data.setData(LAYER_MIME, layer_type.encode())
    view = window.view
    view.centerOn(scene_pt)
    local = QPointF(view.mapFromScene(scene_pt))
    enter = QDragEnterEvent(local.toPoint(), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert enter.isAccepted()
    QApplication.sendEvent(view.viewport(), QDropEvent(local, Qt.DropAction.CopyAction, data,
                                                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    settle(5)
    (new_id,) = set(window.doc.graph.nodes) - before
    return new_id


def problem_rows(window) -> list[tuple[str, str]]:
    tree = window.problems.tree
    return [(tree.topLevelItem(i).text(0), tree.topLevelItem(i).text(1)) for i in range(tree.topLevelItemCount())]


def click_fix(window, row: int = 0) -> str:
    button = window.problems.fix_buttons[row]
    assert_not_clipped(button)
    text = button.text()
    button.click()
    settle(5)
    return text


def shown_shape(window, node_id: str) -> str:
    """The output shape as the card on the canvas and the inspector show it."""
    window.view.select_nodes([node_id])
    settle(5)
    inspector = window.inspector.stats["shape"].text()
    assert window.view.canvas.nodes[node_id].shape_text == inspector
    return inspector


def test_build_lenet_from_an_empty_canvas_fix_undo_save_reopen(qtbot, isolated: Path, monkeypatch) -> None:
    window = open_window(qtbot)
    trigger(window, "File", "New")
    doc = window.doc
    assert set(doc.graph.nodes) == {"input", "output"}
    assert not window.isWindowModified()
    start = json.dumps(graph_to_dict(doc.graph), sort_keys=True)

    # The student's LeNet: 1×28×28 digits.
    window.view.select_nodes(["input"])
    field = window.inspector.editors["shape"].field
    field.selectAll()
    QTest.keyClicks(field, "1 x 28 x 28")
    QTest.keyClick(field, Qt.Key.Key_Return)
    assert field.text() == "1 × 28 × 28"
    assert doc.graph.nodes["input"].params["shape"] == [1, 28, 28]
    assert window.isWindowModified() and window.windowTitle().startswith("Untitled")

    # Ctrl+K, a name, Enter: each layer lands after the selected one, so a chain grows.
    window.view.select_nodes(["input"])
    conv1 = add_by_search(window, "Conv2d")
    window.inspector.editors["out_channels"].box.setValue(6)
    window.inspector.editors["kernel_size"].fields[0].setValue(5)  # linked: 5×5
    window.inspector.editors["padding"].fields[0].setValue(2)
    add_by_search(window, "ReLU")
    add_by_search(window, "MaxPool2d")
    conv2 = add_by_search(window, "Conv2d")
    window.inspector.editors["out_channels"].box.setValue(16)
    window.inspector.editors["kernel_size"].fields[0].setValue(5)
    window.inspector.editors["padding"].fields[0].setValue(0)
    assert shown_shape(window, conv2) == "16×10×10"  # ⌊(14 − 5 + 0)/1⌋ + 1
    add_by_search(window, "ReLU")
    pool2 = add_by_search(window, "MaxPool2d")
    assert shown_shape(window, pool2) == "16×5×5"
    assert shown_shape(window, conv1) == "6×28×28"
    window.view.select_nodes([pool2])
    # Mistake 1: a Linear straight after the feature maps (no Flatten).
    fc1 = add_by_search(window, "Linear")
    window.inspector.editors["out_features"].box.setValue(120)
    flatten_rows = [r for r in problem_rows(window) if "Flatten" in r[1]]
    assert len(flatten_rows) == 1, problem_rows(window)
    flatten_row = problem_rows(window).index(flatten_rows[0])
    assert "Flatten" in click_fix(window, flatten_row)
    (flat,) = [n for n in doc.graph.nodes.values() if n.type == "Flatten"]
    assert doc.graph.predecessors(fc1) == [flat.id]
    assert shown_shape(window, fc1) == "120"
    assert not [r for r in problem_rows(window) if "Flatten" in r[1]]

    # The head: one layer dragged from the palette, then wired by dragging between ports.
    window.view.select_nodes([fc1])
    relu = add_by_search(window, "ReLU")
    fc_out = drop_from_palette(window, "Linear", window.view.canvas.nodes[relu].pos() + QPointF(0, 260))
    assert doc.graph.predecessors(fc_out) == []
    sc = window.view.canvas
    drag(window.view, sc.nodes[relu].out_port_pos(0), sc.nodes[fc_out].in_port_pos(0))
    assert doc.graph.predecessors(fc_out) == [relu]
    window.view.select_nodes([fc_out])
    window.inspector.editors["out_features"].box.setValue(10)

    # The Output still listens to the Input: click that wire, Delete, and wire the head to it.
    edge_item = sc.edges[Edge("input", "output")]
    mid = edge_item.path.pointAtPercent(0.5)
    window.view.centerOn(mid)
    mouse(window.view, QEvent.Type.MouseButtonPress, mid)
    mouse(window.view, QEvent.Type.MouseButtonRelease, mid, Qt.MouseButton.NoButton)
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    assert doc.graph.predecessors("output") == []
    drag(window.view, sc.nodes[fc_out].out_port_pos(0), sc.nodes["output"].in_port_pos(0))
    assert doc.graph.predecessors("output") == [fc_out]
    assert doc.analysis.ok and shown_shape(window, "output") == "10"
    assert window.problems_label.text() == "No problems"
    assert "params" in window.totals_label.text() and "≥" not in window.totals_label.text()
    built = json.dumps(graph_to_dict(doc.graph), sort_keys=True)

    # Undo everything with Ctrl+Z back to the empty canvas, redo it all with Ctrl+Shift+Z.
    window.view.setFocus()
    steps = doc.undo_stack.index()
    for _ in range(steps):
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert json.dumps(graph_to_dict(doc.graph), sort_keys=True) == start
    assert not window.isWindowModified()
    for _ in range(steps):
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert json.dumps(graph_to_dict(doc.graph), sort_keys=True) == built
    assert window.isWindowModified()

    # Save As: the file's name becomes the project's and the title's; the mark goes.
    target = isolated / "lenet_mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    trigger(window, "File", "Save As")
    assert target.exists() and not window.isWindowModified()
    assert "lenet_mine.json" in window.windowTitle()
    share_before = canvas_share(window)
    window.close()

    # Restart: the saved layout, then File › Open Recent brings the network back as it was.
    again = open_window(qtbot)
    assert canvas_share(again) == pytest.approx(share_before, abs=0.02)
    again.files._open_recent(target)
    settle()
    assert json.dumps(graph_to_dict(again.doc.graph), sort_keys=True) == built
    assert again.doc.analysis.ok and not again.isWindowModified()
    assert set(again.view.canvas.nodes) == set(again.doc.graph.nodes)


def test_a_project_file_with_the_wrong_in_features_is_fixed_from_the_problems_panel(qtbot, isolated: Path) -> None:
    data = json.loads(DEMO.read_text(encoding="utf-8"))
    for node in data["graph"]["nodes"]:
        if node["id"] == "fc1":
            node.setdefault("params", {})["in_features"] = 500  # the classic slip: 16·5·5 is 400
    path = isolated / "wrong_in_features.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    window = open_window(qtbot, restore_layout=False)
    assert window.files.open_path(path, ask=False)
    settle()
    rows = problem_rows(window)
    assert any(node == "fc1" and "in_features" in text for node, text in rows), rows
    assert window.problems_label.text().startswith("1 error")
    fix = click_fix(window, [n for n, _ in rows].index("fc1"))
    assert fix.endswith("set in_features to 400")
    assert window.doc.analysis.ok and window.problems_label.text() == "No problems"
    assert window.isWindowModified()
    assert load_project(path).graph.nodes["fc1"].params["in_features"] == 500  # the file waits for Save
