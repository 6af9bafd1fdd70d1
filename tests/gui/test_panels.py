"""Panel tests: palette search and drag data, inspector edits through commands, problems and fixes,
summary table and memory, code panel, parameter editors by kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from core.layers import Kind, get_spec
from core.project import load_project
from gui import commands
from gui.document import Document
from gui.panels.code import CodePanel
from gui.panels.inspector import InspectorPanel
from gui.panels.palette import LAYER_MIME, PalettePanel
from gui.panels.param_editors import EDITORS, IntEditor, OptionalEditor, ShapeEditor, TupleEditor, make_editor
from gui.panels.problems import ProblemsPanel
from gui.panels.summary import COLUMNS, SORT_ROLE, SummaryPanel

# The offscreen platform plugin warns that it cannot propagate size hints whenever a top-level
# widget is shown; that is about the headless plugin, not our code.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


@pytest.fixture
def doc(qtbot):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


# -- palette ------------------------------------------------------------------------------------

def test_palette_lists_every_type_and_search_filters(qtbot):
    panel = PalettePanel()
    qtbot.addWidget(panel)
    everything = panel.visible_types()
    assert {"Conv2d", "ReLU", "Linear", "Input", "Add"} <= set(everything)
    qtbot.keyClicks(panel.search, "conv")
    shown = panel.visible_types()
    assert shown and all("conv" in (t + get_spec(t).doc).lower() for t in shown)
    assert "Conv2d" in shown and "ReLU" not in shown
    panel.search.clear()
    qtbot.keyClicks(panel.search, "max pool")  # every word must match
    assert panel.visible_types() == [t for t in everything if t in panel.visible_types()]
    assert "MaxPool2d" in panel.visible_types() and "AvgPool2d" not in panel.visible_types()
    panel.search.clear()
    assert panel.visible_types() == everything


def test_palette_drag_data_and_activation(qtbot):
    panel = PalettePanel()
    qtbot.addWidget(panel)
    index = panel.index_of("Conv2d")
    assert index.isValid()
    data = panel.proxy.mimeData([index])
    assert bytes(data.data(LAYER_MIME)).decode() == "Conv2d"
    assert panel.model.mimeTypes() == [LAYER_MIME]
    assert "Conv2d" in index.data(Qt.ItemDataRole.ToolTipRole)
    with qtbot.waitSignal(panel.layer_activated) as sig:
        qtbot.keyClicks(panel.search, "relu")
        qtbot.keyClick(panel.search, Qt.Key.Key_Return)  # Enter adds the first match
    assert sig.args == ["ReLU"]
    with qtbot.waitSignal(panel.layer_activated) as sig:
        panel.tree.setCurrentIndex(panel.index_of("ReLU"))
        qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    assert sig.args == ["ReLU"]


# -- parameter editors --------------------------------------------------------------------------

def test_every_kind_has_an_editor_and_values_round_trip(qtbot):
    assert set(EDITORS) == set(Kind)
    conv = get_spec("Conv2d")
    k = make_editor(conv.param("kernel_size"))
    qtbot.addWidget(k)
    assert isinstance(k, TupleEditor)
    k.set_value(3)
    assert k.current() == 3 and k.link.isChecked()
    k.set_value([3, 5])
    assert k.current() == [3, 5] and not k.link.isChecked()
    with qtbot.waitSignal(k.edited) as sig:
        k.link.setChecked(True)  # "same for both" emits a single number
    assert sig.args == [3]

    out = make_editor(conv.param("out_channels"))
    qtbot.addWidget(out)
    assert isinstance(out, IntEditor) and out.box.minimum() == 1
    with qtbot.waitSignal(out.edited) as sig:
        out.box.setValue(32)
    assert sig.args == [32]

    pool_stride = make_editor(get_spec("MaxPool2d").param("stride"))
    qtbot.addWidget(pool_stride)
    assert isinstance(pool_stride, OptionalEditor)
    pool_stride.set_value(None, effective=2)
    assert pool_stride.default.isChecked() and pool_stride.current() is None
    with qtbot.waitSignal(pool_stride.edited) as sig:
        pool_stride.default.setChecked(False)
    assert sig.args == [2]

    shape = make_editor(get_spec("Input").param("shape"))
    qtbot.addWidget(shape)
    assert isinstance(shape, ShapeEditor)
    shape.set_value([3, 32, 32])
    assert shape.field.text() == "3 × 32 × 32"
    with qtbot.waitSignal(shape.refused) as sig:
        shape.field.setText("3, 0, 32")
        shape.field.setModified(True)
        shape.field.editingFinished.emit()
    assert "positive" in sig.args[0]


# -- inspector ----------------------------------------------------------------------------------

def test_inspector_edit_goes_through_a_command_and_refreshes(qtbot, doc):
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    doc.set_selection(["conv2"])
    assert panel.node_id == "conv2"
    assert panel.id_edit.text() == "conv2"
    assert panel.inferred_labels["in_channels"].text().startswith("6")
    assert panel.stats["shape"].text() == "16×10×10"
    editor = panel.editors["out_channels"]
    editor.box.setValue(32)
    assert doc.graph.nodes["conv2"].params["out_channels"] == 32
    assert doc.undo_stack.undoText() == "Set conv2.out_channels = 32"
    assert panel.stats["shape"].text() == "32×10×10"
    doc.undo_stack.undo()
    assert doc.graph.nodes["conv2"].params["out_channels"] == 16
    assert editor.box.value() == 16  # refreshed from the model, not kept from the widget
    assert panel.stats["shape"].text() == "16×10×10"


def test_inspector_rename_is_validated_inline(qtbot, doc):
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    doc.set_selection(["conv1"])
    panel.id_edit.setText("conv2")  # taken
    panel.id_edit.editingFinished.emit()
    assert "conv2" in doc.graph.nodes and "conv1" in doc.graph.nodes
    assert not panel.id_error.isHidden() and "taken" in panel.id_error.text()
    panel.id_edit.setText("first conv")  # invalid id
    panel.id_edit.editingFinished.emit()
    assert "conv1" in doc.graph.nodes and not panel.id_error.isHidden()
    panel.id_edit.setText("features.conv_a")
    panel.id_edit.editingFinished.emit()
    assert "features.conv_a" in doc.graph.nodes and "conv1" not in doc.graph.nodes
    assert panel.node_id == "features.conv_a" and panel.id_error.isHidden()
    doc.undo_stack.undo()
    assert "conv1" in doc.graph.nodes


def test_inspector_frozen_init_and_multi_selection(qtbot, doc):
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    panel.set_document(doc)
    doc.set_selection(["fc1"])
    panel.frozen_box.setChecked(True)
    assert doc.graph.nodes["fc1"].frozen
    assert "frozen" in panel.stats["params"].text()
    panel.init_box.setCurrentText("xavier_uniform")
    panel.init_box.activated.emit(panel.init_box.currentIndex())
    assert doc.graph.nodes["fc1"].init == "xavier_uniform"
    doc.set_selection(["conv1", "conv2"])
    assert panel.node_id is None
    texts = " ".join(w.text() for w in panel.widget().findChildren(QLabel))
    total = doc.analysis.nodes["conv1"].params + doc.analysis.nodes["conv2"].params
    assert "2 nodes selected" in texts and f"{total:,}" in texts


# -- problems -----------------------------------------------------------------------------------

def test_problems_update_and_fix_button_fixes(qtbot, doc):
    focused: list[str] = []
    panel = ProblemsPanel(focus_node=focused.append)
    qtbot.addWidget(panel)
    panel.set_document(doc)
    before = panel.tree.topLevelItemCount()  # the demo has one info note (receptive field)
    assert before == len(doc.analysis.diagnostics) and doc.analysis.ok and not panel.fix_buttons
    # fc1 refuses 400 inputs when told in_features = 100: an error with a fix
    assert commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "in_features", 100)) is None
    assert panel.tree.topLevelItemCount() == before + 1
    item = panel.tree.topLevelItem(0)  # errors first
    assert item.text(0) == "fc1" and "gets 400 from flatten" in item.text(1)
    assert not item.text(1).startswith("fc1:")  # the node column already says where
    panel.tree.itemClicked.emit(item, 1)
    assert focused == ["fc1"]
    assert panel.fix_buttons
    panel.fix_buttons[0].click()
    assert doc.analysis.ok and panel.tree.topLevelItemCount() == before
    assert doc.graph.nodes["fc1"].params["in_features"] == 400
    assert doc.undo_stack.undoText() == "Fix: set in_features to 400"
    doc.undo_stack.undo()
    assert not doc.analysis.ok and panel.tree.topLevelItemCount() == before + 1


# -- summary ------------------------------------------------------------------------------------

def test_summary_table_sorts_numbers_and_estimates_memory(qtbot, doc):
    panel = SummaryPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_document(doc)
    assert panel.proxy.rowCount() == len(doc.graph.nodes)
    assert panel.model.headerData(0, Qt.Orientation.Horizontal) == COLUMNS[0]
    panel.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    top = panel.proxy.index(0, 0).data()
    assert top == max(doc.analysis.nodes.values(), key=lambda r: r.params or 0).id  # fc1: 48,120
    assert panel.proxy.index(0, 3).data(SORT_ROLE) == doc.analysis.nodes[top].params
    assert f"{doc.analysis.total_params:,}" in panel.totals.text()
    panel.batch.setValue(64)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    m = doc.analysis.memory(64, "adam")
    from core.units import human_bytes

    assert human_bytes(m.total) in panel.memory.text()


def test_summary_and_inspector_totals_say_partial_while_errors_exist(qtbot, doc):
    summary, inspector = SummaryPanel(), InspectorPanel()
    for panel in (summary, inspector):
        qtbot.addWidget(panel)
        panel.show()
        panel.set_document(doc)
    assert "≥" not in summary.totals.text() and "≥" not in inspector.stats["parameters"].text()
    # fc1 refuses the flat 400: fc1 and everything after it are not counted until it is fixed
    assert commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "in_features", 100)) is None
    assert doc.analysis.partial
    assert f"≥ {doc.analysis.total_params:,}" in summary.totals.text()
    assert "1 error: partial totals" in summary.totals.text()
    assert inspector.stats["parameters"].text().startswith("≥ ")
    doc.undo_stack.undo()
    assert not doc.analysis.partial and "≥" not in summary.totals.text()


def test_problems_fix_button_is_as_big_as_its_text(qtbot, doc):
    panel = ProblemsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 200)
    panel.show()
    panel.set_document(doc)
    assert commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "in_features", 100)) is None
    qtbot.waitUntil(lambda: panel.fix_buttons and panel.fix_buttons[0].isVisible())
    button = panel.fix_buttons[0]
    assert button.text() == "Fix: set in_features to 400"
    assert button.width() >= button.fontMetrics().horizontalAdvance(button.text())
    assert button.height() >= button.sizeHint().height()  # the underscore is not cut off


def test_optional_editor_shows_the_derived_default_in_effect(qtbot, doc):
    panel = InspectorPanel()
    qtbot.addWidget(panel)
    assert commands.try_push(doc, commands.AddNodeCommand(doc, "MaxPool2d", "pool9", {"kernel_size": 3})) is None
    panel.set_document(doc)
    doc.set_selection(["pool9"])
    stride = panel.editors["stride"]
    assert isinstance(stride, OptionalEditor) and stride.default.isChecked()
    assert stride.current() is None and stride.inner.current() == 3  # what torch uses: kernel_size
    assert not stride.inner.isEnabled() and "kernel_size" in stride.default.toolTip()


@pytest.mark.slow
def test_verify_with_torchinfo_agrees(qtbot, doc):
    panel = SummaryPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_document(doc)
    panel.verify()
    assert not panel.verify_button.isEnabled()  # one verification at a time
    qtbot.waitUntil(lambda: panel.last_report is not None, timeout=60_000)
    report = panel.last_report
    assert report.agrees, report.differences
    assert report.layers_compared >= 10
    assert "agrees" in panel.verify_result.text()


# -- code ---------------------------------------------------------------------------------------

def test_code_panel_shows_code_then_errors(qtbot, doc):
    panel = CodePanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.code_ready, timeout=30_000):
        panel.set_document(doc)
    assert panel.showing_code
    assert "class " in panel.text() and "self.conv1 = nn.Conv2d(3, 6, kernel_size=5)" in panel.text()
    with qtbot.waitSignal(panel.code_ready, timeout=5_000):
        commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "in_features", 100))
    assert not panel.showing_code
    assert "fc1" in panel.text() and "errors" in panel.text()
    assert not panel.copy_button.isEnabled()


@pytest.mark.slow
def test_verify_with_torchinfo_runs_a_network_with_two_inputs():
    from core.analysis import analyze
    from gui.panels.verify import verify_graph
    from tests.core.test_several_inputs import siamese

    graph = siamese()
    report = verify_graph(graph, analyze(graph))
    assert report.agrees, (report.headline, report.differences)  # one input size per Input, in file order
    assert report.layers_compared >= 6
