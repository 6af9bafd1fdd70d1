"""Main-window tests: opening the demo, palette → canvas, inspector → problems → fix, files
(save/reopen, corrupt file, unsaved prompt, drop), autosave and crash recovery, theme
persistence, and ``main.py --screenshot`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QImage, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from core.project import graph_to_dict, load_project, project_to_dict
from gui import commands
from gui.document import Document
from gui.files import Recovery, settings
from gui.main_window import MainWindow
from gui.theme import DARK, LIGHT, apply_theme, current_theme
from tests.conftest import restore_light_theme

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo_lenet.json"

# The offscreen platform plugin warns that it cannot propagate size hints whenever a top-level
# window is shown; that is about the headless plugin, not our code.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Fresh settings and a private data folder (recovery files) for each test."""
    monkeypatch.setenv("NETCANVAS_DATA_DIR", str(tmp_path / "data"))
    s = settings()
    s.clear()
    s.sync()
    yield tmp_path
    s.clear()
    s.sync()
    restore_light_theme()


def make_window(qtbot, doc: Document | None = None, **kwargs) -> MainWindow:
    window = MainWindow(doc or Document.from_project(load_project(DEMO)), restore_layout=False, **kwargs)
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard  # no modal prompt at teardown
    window.errors = []
    window.show_error = lambda title, text: window.errors.append((title, text))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def double_click(widget, pos) -> None:
    """Press, release, double-click, release: what a real double-click delivers. (QTest's
    mouseDClick skips the first release, which a drag-enabled item view takes for a drag start.)"""
    at = QPointF(pos)
    for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease, QEvent.Type.MouseButtonDblClick,
                 QEvent.Type.MouseButtonRelease):
        held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else Qt.MouseButton.LeftButton
        QApplication.sendEvent(widget, QMouseEvent(kind, at, widget.mapToGlobal(at), Qt.MouseButton.LeftButton,
                                                   held, Qt.KeyboardModifier.NoModifier))


@pytest.fixture
def window(qtbot, isolated):
    return make_window(qtbot)


def test_window_opens_on_the_demo(window):
    doc = window.doc
    assert doc.project.name == "LeNet-5 on Shapes"
    assert "LeNet-5 on Shapes" in window.windowTitle()
    assert window.view.parent() is window.centralWidget()  # the canvas fills the persistent central holder
    assert set(window.scene.nodes) == set(doc.graph.nodes)
    for dock in (window.palette_dock, window.inspector_dock, window.problems_dock):
        assert dock.isVisible()
    assert "k params" in window.totals_label.text() and "14 nodes" in window.totals_label.text()
    assert not doc.is_modified()


def test_palette_double_click_adds_a_connected_node_undoably(window, qtbot):
    doc = window.doc
    window.view.select_nodes(["relu4"])
    assert doc.selection == ["relu4"]
    before = set(doc.graph.nodes)
    tree = window.palette_panel.tree
    index = window.palette_panel.index_of("Dropout")
    tree.scrollTo(index)
    rect = tree.visualRect(index)
    double_click(tree.viewport(), rect.center())
    added = set(doc.graph.nodes) - before
    assert len(added) == 1
    new_id = added.pop()
    assert doc.graph.nodes[new_id].type == "Dropout"
    assert doc.graph.predecessors(new_id) == ["relu4"]
    assert doc.selection == [new_id]  # the next double-click chains after it
    assert window.act_undo.text() == "&Undo Add Dropout"
    window.act_undo.trigger()
    assert new_id not in doc.graph.nodes and set(doc.graph.nodes) == before
    window.act_redo.trigger()
    assert doc.graph.predecessors(new_id) == ["relu4"]


def test_inspector_edit_updates_model_and_problems_then_fix(window):
    doc = window.doc
    window.view.select_nodes(["conv2"])
    kernel = window.inspector.editors["kernel_size"]
    kernel.fields[0].setValue(3)  # linked: 3×3
    assert doc.graph.nodes["conv2"].params["kernel_size"] == 3
    assert window.inspector.stats["shape"].text() == "16×12×12"
    window.inspector.editors["groups"].box.setValue(4)  # 4 groups cannot split 6 input channels
    assert doc.graph.nodes["conv2"].params["groups"] == 4
    assert not doc.analysis.ok
    problems = window.problems
    assert problems.tree.topLevelItem(0).text(0) == "conv2"
    assert "must divide the 6 input channels" in problems.tree.topLevelItem(0).text(1)
    assert "1 error" in window.problems_label.text()
    assert window.inspector.stats["shape"].text().startswith("?")
    problems.fix_buttons[0].click()
    assert doc.analysis.ok
    assert doc.graph.nodes["conv2"].params["groups"] == 2
    assert window.inspector.editors["groups"].box.value() == 2
    assert window.act_undo.text().startswith("&Undo Fix: ")
    assert window.problems_label.text() == "No problems"


def test_save_then_reopen_gives_the_same_graph_and_layout(window, isolated):
    doc = window.doc
    commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "out_features", 96))
    doc.push(commands.MoveNodesCommand(doc, {"conv1": (doc.graph.nodes["conv1"].pos, (512.0, 36.0))}))
    assert doc.is_modified()
    target = isolated / "lenet.json"
    assert window.files._save_to(target)
    assert not doc.is_modified() and doc.path == target
    assert "lenet.json" in window.windowTitle()
    saved = project_to_dict(doc.project)
    window.files.new()
    assert window.doc is not doc and "fc1" not in window.doc.graph.nodes
    assert window.files.open_path(target)
    reopened = window.doc
    assert graph_to_dict(reopened.graph) == saved["graph"]
    assert {n: list(p.pos) for n, p in reopened.graph.nodes.items()} == saved["layout"]
    assert reopened.graph.nodes["conv1"].pos == (512.0, 36.0)
    assert window.files.recent.paths()[0] == target.resolve()


def test_opening_a_corrupt_file_shows_why_and_changes_nothing(window, isolated):
    bad = isolated / "broken.json"
    bad.write_text('{"format": "netcanvas-project", "version": 1, "graph": {"nodes": [', encoding="utf-8")
    doc = window.doc
    assert not window.files.open_path(bad)
    assert window.doc is doc
    title, text = window.errors[-1]
    assert title == "Cannot open the project" and "broken.json" in text and "not valid JSON" in text
    bad.write_text(json.dumps({"format": "netcanvas-project", "version": 1, "name": "x",
                               "graph": {"nodes": [{"id": "c", "type": "Conv2d", "params": {"stride": -1}}],
                                         "edges": []}}), encoding="utf-8")
    assert not window.files.open_path(bad)
    assert window.doc is doc and "stride" in window.errors[-1][1]


def test_unsaved_changes_prompt_guards_new(window):
    doc = window.doc
    commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "out_features", 50))
    asked = []
    window.ask_unsaved = lambda: asked.append(1) or QMessageBox.StandardButton.Cancel
    window.files.new()
    assert asked and window.doc is doc  # cancelled: nothing changed
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard
    window.files.new()
    assert window.doc is not doc and set(window.doc.graph.nodes) == {"input", "output"}


def test_dropping_a_project_file_opens_it(window, qtbot, isolated):
    target = isolated / "dropped.json"
    target.write_text(DEMO.read_text(encoding="utf-8").replace("LeNet-5 on Shapes", "Dropped"), encoding="utf-8")
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(target))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.doc.project.name == "Dropped", timeout=3000)
    assert window.doc.path == target


def test_autosave_and_recovery_after_a_crash(qtbot, isolated):
    data = isolated / "data"
    first = make_window(qtbot)
    doc = first.doc
    commands.try_push(doc, commands.SetParamCommand(doc, "fc1", "out_features", 77))
    assert first.files.autosave()
    own = first.files.recovery.path
    assert own.exists() and own.parent == data / "recovery"
    # Simulate a crash: the file stays behind under a process id that no longer runs.
    crashed = own.with_name("recovery-999999.json")
    own.rename(crashed)
    first.files.recovery.stop()

    asked: list[str] = []
    second = make_window(qtbot, Document.new(), recovery=Recovery(data / "recovery"))
    second.ask_restore = lambda text: asked.append(text) or QMessageBox.StandardButton.Yes
    assert second.files.offer_recovery()
    assert asked and "did not close properly" in asked[0]
    restored = second.doc
    assert restored.graph.nodes["fc1"].params["out_features"] == 77
    assert restored.is_modified()  # still needs saving
    assert not crashed.exists()
    # Saving (a clean state) removes this session's recovery file.
    assert second.files.recovery.path.exists()
    assert second.files._save_to(isolated / "restored.json")
    assert not second.files.recovery.path.exists()
    # Nothing left to offer next time.
    assert not Recovery(data / "recovery").orphans()


def test_declining_recovery_discards_the_file(qtbot, isolated):
    folder = isolated / "data" / "recovery"
    folder.mkdir(parents=True)
    orphan = folder / "recovery-999998.json"
    project = load_project(DEMO)
    orphan.write_text(json.dumps({"format": "netcanvas-recovery", "original_path": None, "saved_at": "",
                                  "project": project_to_dict(project)}), encoding="utf-8")
    window = make_window(qtbot, Document.new(), recovery=Recovery(folder))
    window.ask_restore = lambda text: QMessageBox.StandardButton.No
    assert not window.files.offer_recovery()
    assert not orphan.exists() and set(window.doc.graph.nodes) == {"input", "output"}


def test_theme_switch_applies_and_persists(qtbot, isolated):
    window = make_window(qtbot)
    window.set_theme("dark")
    assert current_theme() is DARK and window.theme_actions["dark"].isChecked()
    assert QApplication.instance().palette().window().color().name() == DARK.window
    assert settings().value("theme") == "dark"
    window.close()
    again = make_window(qtbot)
    assert again.theme is DARK and again.theme_actions["dark"].isChecked()
    again.set_theme("light")
    assert settings().value("theme") == "light"


def test_layout_persists(qtbot, isolated):
    window = make_window(qtbot)
    window.summary_dock.hide()
    window.code_dock.hide()
    window.save_layout()
    window.close()
    again = MainWindow(Document.new(), restore_layout=True)
    again.ask_unsaved = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(again)
    again.show()
    assert not again.summary_dock.isVisible() and again.problems_dock.isVisible()


def test_templates_open_collapsed_and_export_python(window, isolated):
    assert window.files.open_template_named("resnet18")
    doc = window.doc
    top = [g for g in doc.graph.groups.values() if not any(g.id in o.members for o in doc.graph.groups.values())]
    assert top and all(g.collapsed for g in top)
    assert not window.files.open_template_named("no_such_net")
    assert "no template named" in window.errors[-1][1]
    target = isolated / "resnet18.py"
    assert window.files.export_python(target)
    assert "class " in target.read_text(encoding="utf-8")


def test_find_field_and_shortcut_help(window, qtbot, monkeypatch):
    window.find_field.setText("pool2")
    assert window.find_next()
    assert window.doc.selection == ["pool2"]
    window.find_field.setText("nothing_like_this")
    assert not window.find_next()
    assert "No node matches" in window.statusBar().currentMessage()
    shown = []
    monkeypatch.setattr("gui.dialogs.shortcuts.ShortcutsDialog.exec", lambda self: shown.append(self) or 0)
    window.show_shortcuts()
    texts = [shown[0].tree.topLevelItem(i).text(0).strip() for i in range(shown[0].tree.topLevelItemCount())]
    assert "Undo" in texts and "Search Layers" in texts and "Group into Block" in texts


@pytest.mark.slow
def test_screenshot_command_writes_a_png(isolated):
    out = isolated / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", NETCANVAS_DATA_DIR=str(isolated / "data"))
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), str(DEMO), "--screenshot", str(out),
                          "--size", "1200x800"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1200, 800)
    bad = subprocess.run([sys.executable, str(ROOT / "main.py"), str(isolated / "missing.json"), "--screenshot",
                          str(isolated / "x.png")], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert "missing.json" in bad.stderr and "no such file" in bad.stderr and "Traceback" not in bad.stderr
    assert not (isolated / "x.png").exists()




@pytest.mark.slow
def test_export_onnx_runs_in_a_worker(window, isolated):
    target = isolated / "lenet.onnx"
    assert window.files.export_onnx(target)
    assert target.exists() and target.stat().st_size > 1000
    assert "Exported lenet.onnx" in window.statusBar().currentMessage()


@pytest.mark.slow
def test_import_torchvision_dialog_lists_and_imports(qtbot, isolated):
    from gui.dialogs.torchvision_import import TorchvisionImportDialog

    dialog = TorchvisionImportDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() > 20, timeout=60_000)
    names = [dialog.tree.topLevelItem(i).text(0) for i in range(dialog.tree.topLevelItemCount())]
    assert "resnet18" in names and "mobilenet_v2" in names
    dialog.filter.setText("resnet1")
    shown = [n for i, n in enumerate(names) if not dialog.tree.topLevelItem(i).isHidden()]
    assert "resnet18" in shown and "mobilenet_v2" not in shown
    dialog.tree.setCurrentItem(dialog.tree.topLevelItem(names.index("resnet18")))
    with qtbot.waitSignal(dialog.accepted, timeout=90_000):
        dialog.start_import()
        assert not dialog.import_button.isEnabled()  # the window stays responsive, the button waits
    project = dialog.project
    assert "layer1.0.conv1" in project.graph.nodes


def test_template_gallery_lists_figures_and_picks(qtbot, isolated):
    import templates
    from gui.dialogs.templates import TemplateGallery

    dialog = TemplateGallery()
    qtbot.addWidget(dialog)
    assert dialog.tree.topLevelItemCount() == len(templates.list_templates())
    dialog.select("resnet18")
    assert dialog.selected == "resnet18"
    row = dialog.tree.currentItem()
    assert row.text(1) == "3×224×224" and row.text(2) == "11.69 M" and row.text(3).endswith("G")
    assert "ResNet-18" in dialog.description.text()


def test_command_line_refuses_a_bad_size(capsys):
    from gui.app import run_gui

    assert run_gui(["--size", "huge", "--screenshot", "x.png"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_copy_paste_between_two_windows_through_the_edit_menu(qtbot, isolated):
    """Ctrl+C in one main window, Ctrl+V in another: the layers and the edge between them arrive
    with fresh ids where needed, as one undoable step in the target window only."""
    source = make_window(qtbot)
    target = make_window(qtbot)
    source.view.select_nodes(["conv2", "relu2"])
    source.act_copy.trigger()
    before = graph_to_dict(source.doc.graph)
    count = len(target.doc.graph.nodes)
    target.act_paste.trigger()
    g = target.doc.graph
    assert len(g.nodes) == count + 2
    new = [n for n in g.nodes if n not in ("conv2", "relu2") and n not in load_project(DEMO).graph.nodes]
    assert sorted(g.nodes[n].type for n in new) == ["Conv2d", "ReLU"]
    conv = next(n for n in new if g.nodes[n].type == "Conv2d")
    assert g.nodes[conv].params == {"out_channels": 16, "kernel_size": 5}
    assert [e.dst for e in g.out_edges(conv)] == [next(n for n in new if g.nodes[n].type == "ReLU")]
    assert graph_to_dict(source.doc.graph) == before  # the source window is untouched
    target.doc.undo_stack.undo()
    assert len(target.doc.graph.nodes) == count


def _contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours."""
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())
    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=lambda t: t.name)
def test_import_dialog_keys_and_a_readable_disabled_import_button(qtbot, isolated, monkeypatch, theme):
    from collections import Counter

    from gui.dialogs import torchvision_import as ti

    rows = [("alexnet", 61_100_840, 0.71), ("resnet101", 44_549_160, 7.8), ("resnet152", 60_192_808, 11.5),
            ("resnet18", 11_689_512, 1.81), ("vgg16", 138_357_544, 15.47)]
    monkeypatch.setattr(ti, "list_classification_models", lambda: rows)
    monkeypatch.setattr(ti, "list_segmentation_models", lambda: [])
    imported: list[str] = []
    monkeypatch.setattr(ti, "import_model", lambda name: imported.append(name) or name)
    apply_theme(theme)
    dialog = ti.TorchvisionImportDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == len(rows))
    assert dialog.selected_name() == "alexnet" and dialog.import_button.isEnabled()

    # Nothing matches: Import is disabled, and reads as disabled (not blue on blue) yet legible.
    QTest.keyClicks(dialog.filter, "zzz")
    assert dialog.selected_name() is None and not dialog.import_button.isEnabled()
    assert dialog.status.text() == "No model name contains “zzz”"
    image = dialog.import_button.grab().toImage()
    inner = [image.pixelColor(x, y) for x in range(3, image.width() - 3) for y in range(3, image.height() - 3)]
    background = Counter(c.name() for c in inner).most_common(1)[0][0]
    assert QColor(background) != QColor(theme.accent), "a disabled Import button is painted as the primary one"
    text = max(inner, key=lambda c: _contrast(c, QColor(background)))
    assert _contrast(text, QColor(background)) >= 3.0, (text.name(), background)

    # Typing keeps the first match current; Down/Up move through the matches; Enter imports.
    dialog.filter.clear()
    QTest.keyClicks(dialog.filter, "resnet1")
    assert dialog.selected_name() == "resnet101" and dialog.import_button.isEnabled()
    QTest.keyClick(dialog.filter, Qt.Key.Key_Down)
    QTest.keyClick(dialog.filter, Qt.Key.Key_Down)
    assert dialog.selected_name() == "resnet18"
    QTest.keyClick(dialog.filter, Qt.Key.Key_Up)
    assert dialog.selected_name() == "resnet152"
    dialog.filter.clear()
    QTest.keyClicks(dialog.filter, "vgg")
    assert dialog.selected_name() == "vgg16"
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        QTest.keyClick(dialog.filter, Qt.Key.Key_Return)
    assert imported == ["vgg16"] and dialog.project == "vgg16"


def test_messages_name_a_file_once_and_times_in_words():
    from datetime import UTC, datetime, timedelta

    from core.project import ProjectError
    from gui.files import file_problem, when_text

    assert file_problem("/x.json", ProjectError("not valid JSON", "/x.json")) == "/x.json: not valid JSON"
    assert file_problem("/x.json", ProjectError("must be positive", "graph.nodes[0].params.stride")) == \
        "/x.json: graph.nodes[0].params.stride: must be positive"
    denied = PermissionError(13, "Permission denied", "/d/.x.py.k2j3.tmp")  # names the temporary file
    assert file_problem("/d/x.py", denied) == "/d/x.py: Permission denied"
    now = datetime(2026, 12, 6, 15, 0).astimezone()
    local = datetime(2026, 12, 6, 11, 42).astimezone()
    assert when_text(local.astimezone(UTC).isoformat(), now) == "today 11:42"
    assert when_text((local - timedelta(days=1)).isoformat(), now) == "yesterday 11:42"
    assert when_text((local - timedelta(days=30)).isoformat(), now) == "6 Nov 2026 11:42"
    assert when_text("", now) == "" and when_text("soon", now) == ""


def test_a_failed_onnx_export_says_why_and_where_once(window, isolated, monkeypatch):
    from core import export

    def refuse(graph, target):
        raise export.ExportError("opset 17 has no operator for this layer")

    monkeypatch.setattr(export, "export_onnx", refuse)
    target = isolated / "net.onnx"
    assert not window.files.export_onnx(target)
    (title, text), = window.errors
    assert title == "Export failed"
    assert text == f"{target}: opset 17 has no operator for this layer"
    assert not target.exists()
