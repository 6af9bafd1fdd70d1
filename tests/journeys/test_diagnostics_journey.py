"""Journey: breaking a network on purpose and reading what the editor says about it.

A user deletes ResNet-50's Stage 4: the Problems panel shows one error, the root cause, with a
Fix button whose whole text is readable, and one click makes the network valid again; while the
error stands, the status bar's totals say they are partial ("≥"). *Delete and Reconnect* removes
a middle layer and joins its input to its output in one undoable edit. A stride changed on one
side of a residual block gets a fix for the Add it breaks; LeNet without its Flatten gets one
diagnostic with one fix, not one per Linear; a MaxPool2d's unset stride shows the 2 2 torch uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from core.analysis import Severity
from gui.canvas.metrics import CARD_H, CARD_W, NODE_H, NODE_W
from gui.main_window import MainWindow
from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger

pytest.importorskip("templates")

SMALL = QSize(1280, 720)


@pytest.fixture
def resnet50(qtbot, isolated) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    """ResNet-50 as File › Open Template opens it, at 1280×720 (the tightest Problems panel)."""
    window = open_window(qtbot, SMALL)
    assert window.files.open_template_named("resnet50")
    settle()
    assert window.doc.analysis.ok and "layer4" in window.scene.cards
    yield window


def click_scene(window: MainWindow, scene_pt: QPointF) -> None:
    """A left click where ``scene_pt`` is on the screen (scrolled into view first)."""
    view = window.view
    view.centerOn(scene_pt)
    settle(0)
    pt = view.mapFromScene(scene_pt)
    assert view.viewport().rect().contains(pt), "the point is not on the screen"
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pt)
    settle()


def click_node(window: MainWindow, node_id: str) -> None:
    window.view.center_on_node(node_id)
    item = window.scene.nodes[node_id]
    click_scene(window, item.mapToScene(QPointF(NODE_W / 2, NODE_H / 2)))
    assert window.scene.selected_node_ids() == [node_id]


def press(window: MainWindow, key: Qt.Key, mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    window.activateWindow()
    window.view.setFocus()
    QTest.keyClick(window.view, key, mods)
    settle()


def undo(window: MainWindow) -> None:
    window.activateWindow()
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle()


def problem_rows(window: MainWindow) -> list[tuple[str, str, str]]:
    """(severity, node, problem text) of each row the Problems panel shows."""
    tree = window.problems.tree
    rows = []
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        sev = next(d.severity.value for d in window.problems.diagnostics or [] if (d.node or "") == item.text(0))
        rows.append((sev, item.text(0), item.text(1)))
    return rows


def fix_button(window: MainWindow, row: int = 0) -> QPushButton:
    """The Fix button of a row, after raising the Problems tab as a user would."""
    window.problems_dock.show()
    window.problems_dock.raise_()
    settle()
    tree = window.problems.tree
    button = tree.itemWidget(tree.topLevelItem(row), 2)
    assert isinstance(button, QPushButton), f"row {row} has no Fix button"
    return button


def assert_fully_readable(button: QPushButton) -> None:
    """The whole "Fix: …" text fits the button both ways (no "set in features" for "set in_features")."""
    assert_not_clipped(button)
    assert button.height() >= button.sizeHint().height(), \
        f"“{button.text()}” is {button.height()} px tall, needs {button.sizeHint().height()}"
    shown = button.parentWidget().rect()  # the tree's viewport: the whole button is on screen
    assert shown.contains(button.geometry()), f"the Fix button {button.geometry()} leaves the panel {shown}"


def test_deleting_stage_4_is_one_error_whose_fix_makes_the_network_valid(resnet50: MainWindow) -> None:
    window, doc = resnet50, resnet50.doc
    card = window.scene.cards["layer4"]
    click_scene(window, card.mapToScene(QPointF(CARD_W / 2, CARD_H / 2)))
    assert card.isSelected()
    press(window, Qt.Key.Key_Delete)
    assert "layer4" not in doc.graph.groups and "layer4.0.conv1" not in doc.graph.nodes

    rows = problem_rows(window)
    errors = [r for r in rows if r[0] == "error"]
    assert len(errors) == 1 and len(rows) <= 4, rows  # not 1 error + 141 warnings
    assert errors[0][1] == "avgpool"
    assert "141 layers" in errors[0][2] and "layer3.5.relu_2" in errors[0][2]
    assert window.problems.summary.text().startswith("1 error, 0 warnings")
    # the totals leave out what is cut off, and say so
    totals = window.totals_label.text()
    assert totals.startswith("≥ ") and "≥ " in totals.split("·")[1], totals
    assert window.problems_label.text() == "1 error, 0 warnings"

    button = fix_button(window)
    assert button.text() == "Fix: connect layer3.5.relu_2 → avgpool"
    assert_fully_readable(button)
    # the message wraps onto as many lines as it needs rather than ending in "…"
    tree = window.problems.tree
    item = tree.topLevelItem(0)
    lines = tree.fontMetrics().boundingRect(0, 0, tree.header().sectionSize(1) - 8, 10_000,
                                            int(Qt.TextFlag.TextWordWrap), item.text(1))
    assert lines.height() > tree.fontMetrics().height()  # at 1280×720 it takes two lines
    assert tree.visualItemRect(item).height() >= lines.height() + 6  # + the theme's item padding
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    assert doc.analysis.ok and doc.graph.predecessors("avgpool") == ["layer3.5.relu_2"]
    assert window.problems_label.text() == "No problems"
    assert "≥" not in window.totals_label.text()
    assert doc.undo_stack.undoText() == "Fix: connect layer3.5.relu_2 → avgpool"

    undo(window)  # the fix, then the deletion, each one step
    assert [r[1] for r in problem_rows(window) if r[0] == "error"] == ["avgpool"]
    undo(window)
    assert doc.analysis.ok and "layer4" in doc.graph.groups


def test_delete_and_reconnect_a_middle_layer_and_a_block(resnet50: MainWindow) -> None:
    window, doc = resnet50, resnet50.doc
    before = doc.analysis.total_params
    # a whole bottleneck in the middle of Stage 3: its input feeds both its conv and its shortcut
    window.view.select_nodes(doc.graph.group_nodes("layer3.5"))
    assert "Delete and Reconnect" in [a.text().replace("&", "") for a in window.edit_menu.actions()]
    assert window.act_delete_reconnect.shortcut().toString() == "Ctrl+Shift+Del"
    press(window, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert "layer3.5.conv1" not in doc.graph.nodes
    assert doc.graph.predecessors("avgpool") == ["layer4.2.relu_2"]
    assert "layer3.4.relu_2" in doc.graph.predecessors("layer4.0.conv1")
    assert doc.analysis.ok and doc.analysis.total_params < before
    assert window.problems_label.text() == "No problems"
    assert doc.undo_stack.undoText() == "Delete and reconnect 10 nodes"
    # one layer, found with Ctrl+F and removed the same way
    window.focus_node("layer2.1.relu")
    press(window, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.graph.predecessors("layer2.1.conv2") == ["layer2.1.bn1"]
    assert doc.analysis.ok and doc.undo_stack.undoText() == "Delete and reconnect layer2.1.relu"
    undo(window)
    undo(window)
    assert doc.analysis.ok and doc.analysis.total_params == before and "layer3.5" in doc.graph.groups
    # an Add has two inputs: nothing single to carry on, and the status bar says why
    window.focus_node("layer1.0.add")
    trigger(window, "Edit", "Delete and Reconnect")
    assert "layer1.0.add" in doc.graph.nodes
    message = window.statusBar().currentMessage()
    assert message.startswith("Cannot delete and reconnect: layer1.0.add has 2 inputs"), message


def test_a_stride_change_breaks_the_add_and_its_fix_repairs_it(resnet50: MainWindow) -> None:
    window, doc = resnet50, resnet50.doc
    window.focus_node("layer2.0.conv2")
    stride = window.inspector.editors["stride"]
    stride.fields[0].setValue(1)  # type: ignore[attr-defined]  # linked: both axes
    settle()
    assert doc.graph.nodes["layer2.0.conv2"].params["stride"] == 1
    errors = [r for r in problem_rows(window) if r[0] == "error"]
    assert [e[1] for e in errors] == ["layer2.0.add"], errors
    assert "512×56×56 from layer2.0.bn3" in errors[0][2] and "512×28×28 from layer2.0.downsample.1" in errors[0][2]
    button = fix_button(window)
    assert button.text() == "Fix: stride=1 gives 56×56"  # on the shortcut's 1×1 conv: it follows the edit
    assert_fully_readable(button)
    assert window.totals_label.text().startswith("≥ ")
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    assert doc.graph.nodes["layer2.0.downsample.0"].params["stride"] == 1
    assert doc.analysis.ok and doc.analysis.nodes["layer2.0.relu_2"].output_shape == (512, 56, 56)


def test_an_identity_shortcut_gets_a_strided_1x1_conv(qtbot, isolated) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, SMALL)
    assert window.files.open_template_named("resnet18")
    settle()
    doc = window.doc
    window.focus_node("layer1.0.conv1")
    window.inspector.editors["stride"].fields[0].setValue(2)  # type: ignore[attr-defined]
    settle()
    button = fix_button(window)
    assert button.text() == "Fix: insert a 1×1 Conv2d with stride 2 after maxpool"
    assert_fully_readable(button)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    assert doc.analysis.ok
    new = next(n for n in doc.graph.predecessors("layer1.0.add") if n not in ("layer1.0.bn2",))
    assert doc.graph.nodes[new].type == "Conv2d" and doc.graph.predecessors(new) == ["maxpool"]


def test_lenet_without_its_flatten_is_one_diagnostic_with_one_fix(qtbot, isolated) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, SMALL)
    doc = window.doc
    before = doc.analysis.total_params
    click_node(window, "flatten")
    # Delete and Reconnect refuses: pool2's 16×5×5 map does not fit fc1 the way the flat 400 did
    press(window, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert "flatten" in doc.graph.nodes and doc.analysis.ok
    assert window.statusBar().currentMessage().startswith("Cannot delete and reconnect: joining pool2 to fc1 "
                                                          "does not fit")
    press(window, Qt.Key.Key_Delete)
    # fc1 lost its input: one error, and its fix joins the nearest open output
    rows = problem_rows(window)
    assert [r[:2] for r in rows if r[0] != "info"] == [("error", "fc1")], rows
    button = fix_button(window)
    assert button.text() == "Fix: connect pool2 → fc1"
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    # now every Linear acts on pool2's 16×5×5 map: one diagnostic at the root, one fix
    rows = problem_rows(window)
    assert len(rows) == 1 and rows[0][:2] == ("warning", "fc1"), rows  # not one per Linear
    assert "fc2 and fc3 after it" in rows[0][2]
    assert len(window.problems.fix_buttons) == 1
    button = fix_button(window)
    assert button.text() == "Fix: insert Flatten (16×5×5 → 400)"
    assert_fully_readable(button)
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    settle()
    a = doc.analysis
    assert a.ok and not [d for d in a.diagnostics if d.severity is not Severity.INFO]
    assert a.total_params == before


@pytest.mark.parametrize("size", [QSize(1600, 1000), SMALL])
def test_a_wrong_in_features_fix_is_readable(qtbot, isolated, size: QSize) -> None:  # type: ignore[no-untyped-def]
    from core.project import load_project
    from gui.document import Document
    from tests.journeys.conftest import ROOT

    doc = Document.from_project(load_project(ROOT / "resources" / "examples" / "lenet_mistake.json"))
    window = open_window(qtbot, size, doc)
    button = fix_button(window)
    assert button.text() == "Fix: set in_features to 400"
    assert_fully_readable(button)


def test_maxpool_shows_the_stride_in_effect(qtbot, isolated) -> None:  # type: ignore[no-untyped-def]
    window = open_window(qtbot, SMALL)
    doc = window.doc
    click_node(window, "pool2")
    window.palette_search()
    QTest.keyClicks(window.palette_panel.search, "MaxPool2d")
    QTest.keyClick(window.palette_panel.search, Qt.Key.Key_Return)  # a MaxPool2d after pool2, torch's defaults
    settle()
    new = doc.selection[0] if doc.selection else window.scene.selected_node_ids()[0]
    assert doc.graph.nodes[new].type == "MaxPool2d" and "stride" not in doc.graph.nodes[new].params
    window.view.select_nodes([new])
    settle()
    stride = window.inspector.editors["stride"]
    assert stride.default.isChecked()  # type: ignore[attr-defined]
    shown = [f.text() for f in stride.inner.fields]  # type: ignore[attr-defined]
    assert shown == ["2", "2"], shown  # kernel_size 2, not a greyed 1 1
    assert "kernel_size" in stride.default.toolTip()  # type: ignore[attr-defined]
    # the same stride after the kernel grows: still the kernel size
    window.inspector.editors["kernel_size"].fields[0].setValue(3)  # type: ignore[attr-defined]
    settle()
    assert [f.text() for f in window.inspector.editors["stride"].inner.fields] == ["3", "3"]  # type: ignore[attr-defined]
