"""The inspector builds the forms of the graph's node types in idle time, before their first click
(issue 11: the first click on a type built its form on the GUI thread, 45-60 ms).

Each test drives the real panel through the document's selection and undo stack. Builds are
counted (``InspectorPanel._build_node`` calls), never timed; what the user sees is compared with
a panel that builds on the click (``prebuild.enabled = False``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton, QWidget

from core.project import load_project
from gui import commands
from gui.document import Document
from gui.panels.inspector import InspectorPanel
from gui.panels.inspector_prebuild import while_training
from gui.theme import DARK, LIGHT, apply_theme, current_theme
from tests.gui.test_inspector_forms import _panel as shown_panel
from tests.gui.test_inspector_forms import _seen, _settle

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"
WAIT_MS = 15_000  # a loaded machine: the steps are ~20 turns of ~15 ms after a short idle wait


@pytest.fixture
def doc(qtbot):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


def _panel(qtbot, doc: Document, kept: int = 8, prebuild: bool = True, idle_ms: int = 30,
           gap_ms: int = 1) -> InspectorPanel:
    """A shown panel on ``doc``, its prebuild quick to start (the app waits longer for idle)."""

    def setup(panel: InspectorPanel) -> None:
        panel.prebuild.enabled = prebuild
        panel.prebuild.idle_ms, panel.prebuild.gap_ms = idle_ms, gap_ms

    return shown_panel(qtbot, doc, kept, setup)


def _count_builds(panel: InspectorPanel) -> list[str]:
    """The types of the forms ``panel`` builds from now on (prebuilt or on a click)."""
    built: list[str] = []
    build = panel._build_node

    def counting(form: Any, lay: Any, type_name: str) -> Iterator[None]:
        built.append(type_name)
        return build(form, lay, type_name)

    panel._build_node = counting  # type: ignore[method-assign]
    return built


def _graph_types(doc: Document) -> list[str]:
    return [t for t, _ in Counter(n.type for n in doc.graph.nodes.values()).most_common()]


def _prebuilt(qtbot, panel: InspectorPanel, types: list[str]) -> None:
    qtbot.waitUntil(lambda: set(types) <= set(panel.prebuild.built) and not panel.prebuild.pending, timeout=WAIT_MS)


def _bodies(panel: InspectorPanel) -> list[QWidget]:
    _settle()
    return [w for w in panel.widget().findChildren(QWidget) if w.parent() is panel.widget()]


def test_after_the_idle_prebuild_the_first_click_on_each_type_builds_nothing(qtbot, doc):
    panel = _panel(qtbot, doc, idle_ms=400)
    builds = _count_builds(panel)
    types = _graph_types(doc)  # ReLU ×4, Linear ×3, Conv2d ×2, MaxPool2d ×2, then one of each
    assert panel.prebuild.built == []  # nothing before the GUI has been idle a while
    _prebuilt(qtbot, panel, types)
    assert builds == types == panel.prebuild.built  # the most common types first, each once
    assert all(panel._forms[t].body.isHidden() for t in types)
    assert not panel.prebuild.pending and panel.prebuild.building is None

    prebuilt = {t: panel._forms[t].body for t in types}
    for node in ("conv1", "relu1", "pool1", "flatten", "fc1", "input", "output", "conv2", "relu4"):
        doc.set_selection([node])
        assert panel.body is prebuilt[doc.graph.nodes[node].type] and not panel.body.isHidden(), node
        assert panel.id_edit.text() == node
    assert builds == types  # no click built a form
    assert len(_bodies(panel)) == len(types) + 1  # the kept forms and the overview (kept apart)


def test_a_prebuilt_form_shows_exactly_what_a_click_built_one_shows(qtbot, doc):
    """Texts, values, enabled states, visible widgets and their places, node by node; then the
    same after a theme switch, which drops the forms of the old theme and prebuilds them again."""
    prebuilt = _panel(qtbot, doc)
    on_click = _panel(qtbot, doc, prebuild=False)
    builds = _count_builds(prebuilt)
    _prebuilt(qtbot, prebuilt, _graph_types(doc))
    assert on_click.prebuild.built == [] and len(_bodies(on_click)) == 1  # its overview only
    nodes = ("fc2", "conv1", "pool2", "relu3", "flatten", "output", "input", "conv2")
    for node in nodes:
        doc.set_selection([node])
        assert _seen(prebuilt) == _seen(on_click), node
    assert len(builds) == len(_graph_types(doc))

    types = _graph_types(doc)
    try:
        apply_theme(DARK)
        light = [f.body for f in prebuilt._forms.values()]
        for panel in (prebuilt, on_click):
            panel.set_document(doc)  # as the window does on a theme switch
        assert builds[len(types):] == ["Conv2d"]  # the one on show (conv2's) was built again at once
        assert [b for b in _bodies(prebuilt) if b in light] == []  # every light form went
        prebuilt.prebuild.built.clear()
        _prebuilt(qtbot, prebuilt, [t for t in types if t != "Conv2d"])
        assert all(f.theme == DARK.name for f in prebuilt._forms.values()) and len(builds) == 2 * len(types)
        for node in nodes:
            doc.set_selection([node])
            assert _seen(prebuilt) == _seen(on_click), node
        assert len(builds) == 2 * len(types)
    finally:
        apply_theme(LIGHT)
    assert current_theme() is LIGHT


def test_prebuilt_forms_take_free_places_only_and_go_before_the_forms_the_user_saw(qtbot, doc):
    panel = _panel(qtbot, doc, kept=3, idle_ms=10_000)  # nothing prebuilt before the clicks below
    doc.set_selection(["conv1"])
    builds = _count_builds(panel)
    panel.prebuild.idle_ms = 30
    panel.prebuild.schedule()
    _prebuilt(qtbot, panel, ["ReLU", "Linear"])  # the two most common, in the two free places
    assert builds == ["ReLU", "Linear"] and list(panel._forms) == ["Linear", "ReLU", "Conv2d"]
    qtbot.wait(200)
    assert builds == ["ReLU", "Linear"] and len(_bodies(panel)) == 3 + 1  # no room: no more (+ the overview)

    doc.set_selection(["pool1"])  # a type not kept: the oldest goes, a prebuilt one never shown
    assert list(panel._forms) == ["ReLU", "Conv2d", "MaxPool2d"] and builds[-1] == "MaxPool2d"
    doc.set_selection(["conv2"])
    assert panel.editors["out_channels"].box.value() == 16 and len(builds) == 3  # the form it showed
    assert len(_bodies(panel)) == 3 + 1


def test_no_step_while_a_run_trains_or_a_button_is_held_and_it_goes_on_after(qtbot, doc):
    training = [True]
    panel = _panel(qtbot, doc, idle_ms=10_000)
    panel.prebuild.blocked = lambda: training[0]
    panel.prebuild.blocked_ms = 50
    panel.prebuild.idle_ms = 30
    builds = _count_builds(panel)
    panel.prebuild.schedule()
    qtbot.wait(400)
    assert builds == [] and panel.prebuild.building is None and panel.prebuild.pending  # looks again later
    training[0] = False
    qtbot.waitUntil(lambda: len(builds) == 1, timeout=WAIT_MS)

    button = QPushButton("drag me")  # where a drag starts (the canvas, in the window)
    qtbot.addWidget(button)
    button.show()
    qtbot.waitExposed(button)
    QTest.mousePress(button, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(5, 5))
    try:
        held = len(panel.prebuild.turns_ms)
        qtbot.wait(400)
        assert len(panel.prebuild.turns_ms) == held  # a press or a drag in progress: not one step
    finally:
        QTest.mouseRelease(button, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(5, 5))
    _prebuilt(qtbot, panel, _graph_types(doc))
    assert builds == _graph_types(doc)


def test_a_click_on_the_type_being_built_finishes_that_form(qtbot, doc):
    panel = _panel(qtbot, doc, gap_ms=60_000)  # one step, then a long gap
    builds = _count_builds(panel)
    qtbot.waitUntil(lambda: panel.prebuild.building is not None, timeout=WAIT_MS)
    assert panel.prebuild.building == "ReLU" and builds == ["ReLU"] and "ReLU" not in panel._forms
    on_click = _panel(qtbot, doc, prebuild=False)
    panel.prebuild.idle_ms = 60_000  # after the click, the next step waits: this test looks at this one
    doc.set_selection(["relu2"])
    assert builds == ["ReLU"] and panel.prebuild.built == ["ReLU"] and panel.prebuild.building is None
    assert panel.id_edit.text() == "relu2" and _seen(panel) == _seen(on_click)
    assert len(_bodies(panel)) == 2  # the ReLU form and the overview (kept apart)


def test_a_new_type_is_prebuilt_after_the_edit_and_hidden_prebuilt_forms_edit_nothing(qtbot, doc):
    panel = _panel(qtbot, doc)
    _prebuilt(qtbot, panel, _graph_types(doc))
    builds = _count_builds(panel)
    assert commands.try_push(doc, lambda: commands.AddNodeCommand(doc, "BatchNorm1d", "bn")) is None
    _prebuilt(qtbot, panel, ["BatchNorm1d"])
    assert builds == ["BatchNorm1d"]

    depth = doc.undo_stack.count()
    hidden = panel._forms["Conv2d"].editors["out_channels"]
    hidden.box.setValue(99)  # a signal from a prebuilt form never shown
    assert doc.undo_stack.count() == depth and doc.graph.nodes["conv1"].params["out_channels"] == 6
    doc.set_selection(["conv1"])
    assert panel.editors["out_channels"] is hidden and hidden.box.value() == 6
    hidden.box.setValue(12)  # on show, its edits are commands
    assert doc.undo_stack.undoText() == "Set conv1.out_channels = 12" and panel.stats["shape"].text() == "12×28×28"
    doc.undo_stack.undo()
    assert hidden.box.value() == 6 and doc.graph.nodes["conv1"].params["out_channels"] == 6
    doc.undo_stack.redo()
    assert hidden.box.value() == 12 and builds == ["BatchNorm1d"]


def test_the_window_holds_the_prebuild_back_while_its_run_trains(qtbot):
    class Run:
        running = False

    class Dock:  # the training dock's two attributes the check reads
        built: Run | None = None

    dock = Dock()
    blocked = while_training(dock)
    assert not blocked()  # no panel yet: nothing can train
    dock.built = Run()
    assert not blocked()
    dock.built.running = True
    assert blocked()
    del dock
    assert not blocked()  # held weakly: a window gone holds nothing back


def test_a_closed_inspector_builds_nothing_ahead_until_it_is_shown(qtbot, doc):
    panel = InspectorPanel()
    panel.prebuild.idle_ms, panel.prebuild.gap_ms = 30, 1
    qtbot.addWidget(panel)
    builds = _count_builds(panel)
    panel.set_document(doc)  # as the window does with its Inspector dock closed
    qtbot.wait(300)
    assert builds == [] and not panel.prebuild.pending
    panel.resize(330, 900)
    panel.show()
    qtbot.waitExposed(panel)
    _prebuilt(qtbot, panel, _graph_types(doc))
    assert builds == _graph_types(doc)
