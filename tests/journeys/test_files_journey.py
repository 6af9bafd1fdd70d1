"""Journey: files, dialogs and messages as a user meets them.

Dropping a file that is no project says why in the status bar; a broken file names its path once
and, from the command line, still opens the demo; the crash-recovery prompt reads "today 11:42";
saved projects and exports get the umask's permissions; Save As names an untitled project after
its file, File › Rename Project… renames it (undoably); F1 lists every menu, Train included, with
"Undo" as a command; and a torchvision model is imported with the keyboard alone.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QLabel, QLineEdit, QMessageBox

from core.project import project_to_dict
from gui import commands
from gui.files import Recovery
from tests.journeys.conftest import DEMO, SIZES, open_window, settle, trigger

DEMO_NAME = "LeNet-5 on Shapes"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mime(path: Path) -> QMimeData:
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(path))])
    return md


def drag_onto_canvas(window, path: Path) -> bool:
    """Drag ``path`` over the canvas as a file manager does; True when the window accepts it."""
    vp = window.view.viewport()
    md = _mime(path)
    enter = QDragEnterEvent(vp.rect().center(), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, enter)
    settle()
    if enter.isAccepted():  # the user drags on and out of the window: Qt ends the drag with a leave
        QApplication.sendEvent(vp, QDragLeaveEvent())
    return enter.isAccepted()


def drop_on_window(window, path: Path) -> None:
    md = _mime(path)  # the event does not own its data: keep it alive while the event is handled
    event = QDropEvent(QPointF(40, 40), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    settle()


def make_active(qtbot, window) -> None:
    """Give the window the keyboard (shortcuts reach only the active window; a window manager takes a moment)."""
    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    settle()


def answer_modal(type_text: str) -> None:
    """When the next modal dialog opens, type ``type_text`` into its text field and press Enter."""
    def fill() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, fill)
            return
        field = dialog.findChild(QLineEdit)
        field.selectAll()
        QTest.keyClicks(field, type_text)
        QTest.keyClick(field, Qt.Key.Key_Return)

    QTimer.singleShot(0, fill)


def assert_status_fits(window) -> str:
    """The status bar's message, asserted to fit left of the permanent labels (totals, problems)."""
    bar = window.statusBar()
    message = bar.currentMessage()
    room = min(w.geometry().x() for w in (window.totals_label, window.problems_icon, window.problems_label)
               if w.isVisible())
    need = bar.fontMetrics().horizontalAdvance(message)
    assert need <= room, f"“{message}” needs {need} px, the status bar has {room} px"
    return message


def test_dropping_files_that_are_no_project_says_why(qtbot, isolated) -> None:
    window = open_window(qtbot, SIZES[1])  # the narrowest window: the reason must fit its status bar
    doc = window.doc
    code = isolated / "net.py"
    code.write_text("import torch\n", encoding="utf-8")
    assert not drag_onto_canvas(window, code)  # refused …
    message = assert_status_fits(window)
    assert message.startswith("net.py is Python code: NetCanvas opens project files (.json)")
    assert "File › Import torchvision model" in message  # … with what to do instead

    window.statusBar().clearMessage()
    drop_on_window(window, isolated / "cat.png")
    message = assert_status_fits(window)
    assert message.startswith("cat.png is an image") and "Training panel" in message
    drop_on_window(window, isolated / "notes.txt")
    assert "File › Open" in assert_status_fits(window)
    settle(50)
    assert window.doc is doc and not window.errors  # nothing was opened, nothing failed

    project = isolated / "mine.json"  # a project file still opens
    project.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    assert drag_onto_canvas(window, project)


def test_a_broken_file_names_its_path_once(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    bad = isolated / "x.json"
    bad.write_text('{"format": "netcanvas-project", "version": 1, "graph": {"nodes": [', encoding="utf-8")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    trigger(window, "File", "Open")
    title, text = window.errors[-1]
    assert title == "Cannot open the project"
    assert text.count(str(bad)) == 1 and "not valid JSON" in text, text
    # A file that parses but holds a bad value names the file too (not only the field).
    bad.write_text(json.dumps({"format": "netcanvas-project", "version": 1, "name": "x",
                               "graph": {"nodes": [{"id": "c", "type": "Conv2d", "params": {"stride": -1}}],
                                         "edges": []}}), encoding="utf-8")
    trigger(window, "File", "Open")
    text = window.errors[-1][1]
    assert text.count(str(bad)) == 1 and "stride" in text, text
    assert window.doc.project.name == DEMO_NAME


def test_a_broken_file_on_the_command_line_opens_the_demo_and_says_why(qtbot, isolated) -> None:
    from gui.app import open_source, parser, start_editor

    bad = isolated / "x.json"
    bad.write_text("{ not json", encoding="utf-8")
    args = parser().parse_args([str(bad)])
    project, error = open_source(str(bad))
    window = start_editor(project, str(bad), args, error)
    qtbot.addWidget(window)
    shown: list[tuple[str, str]] = []
    window.show_error = lambda title, text: shown.append((title, text))  # before the event loop shows it
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard
    settle()
    assert shown, "no message about the broken file"
    title, text = shown[0]
    assert title == "Cannot open the project" and text.count(str(bad)) == 1 and "not valid JSON" in text, text
    assert window.doc.project.name == DEMO_NAME and "conv1" in window.doc.graph.nodes
    assert window.windowTitle().startswith(DEMO_NAME) and "Untitled" not in window.windowTitle()
    assert len(window.scene.nodes) == len(window.doc.graph.nodes)


def test_the_recovery_prompt_shows_local_time_in_words(qtbot, isolated) -> None:
    folder = isolated / "data" / "recovery"
    Recovery(folder).start()  # this process's own lock: its file is no orphan
    saved = datetime.now(UTC).replace(microsecond=0)
    from core.project import load_project

    (folder / "recovery-999999.json").write_text(json.dumps({
        "format": "netcanvas-recovery", "original_path": None, "saved_at": saved.isoformat(),
        "project": project_to_dict(load_project(DEMO))}), encoding="utf-8")
    window = open_window(qtbot)
    asked: list[str] = []
    window.ask_restore = lambda text: asked.append(text) or QMessageBox.StandardButton.No
    window.files.offer_recovery()
    assert asked
    assert "+00:00" not in asked[0] and "T" + saved.strftime("%H") not in asked[0]
    assert f"(autosaved today {saved.astimezone():%H:%M})" in asked[0], asked[0]


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_save_as_names_the_project_and_files_follow_the_umask(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    trigger(window, "File", "New")
    assert window.windowTitle().startswith("Untitled")
    target = isolated / "lenet_mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    make_active(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)  # an unsaved project: Save As
    settle()
    assert target.exists()
    assert window.windowTitle().startswith("lenet_mine — lenet_mine.json"), window.windowTitle()
    assert json.loads(target.read_text(encoding="utf-8"))["name"] == "lenet_mine"
    assert any(label.text() == "lenet_mine" for label in window.inspector.widget().findChildren(QLabel))
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~_umask()

    exported = isolated / "lenet_mine.py"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(exported), ""))
    trigger(window, "File", "Export to Python")
    assert exported.exists() and "class " in exported.read_text(encoding="utf-8"), window.errors
    assert os.stat(exported).st_mode & 0o777 == 0o666 & ~_umask()

    # A named project keeps its name under Save As; an overwritten file keeps its permissions.
    other = isolated / "copy.json"
    other.write_text("{}", encoding="utf-8")
    os.chmod(other, 0o600)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(other), ""))
    trigger(window, "File", "Save As")
    assert window.windowTitle().startswith("lenet_mine — copy.json")
    assert os.stat(other).st_mode & 0o777 == 0o600


def test_rename_project_is_undoable_and_retitles_the_window(qtbot, isolated) -> None:
    window = open_window(qtbot)
    assert not window.isWindowModified()
    answer_modal("LeNet mine")
    trigger(window, "File", "Rename Project")
    assert window.doc.project.name == "LeNet mine"
    assert window.windowTitle().startswith("LeNet mine — demo_lenet.json") and window.isWindowModified()
    assert window.act_undo.text().replace("&", "") == "Undo Rename project to “LeNet mine”"
    assert "Renamed the project" in window.statusBar().currentMessage()
    assert any(label.text() == "LeNet mine" for label in window.inspector.widget().findChildren(QLabel))
    make_active(qtbot, window)  # the rename dialog had the focus
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle()
    assert window.doc.project.name == DEMO_NAME and window.windowTitle().startswith(DEMO_NAME)
    assert not window.isWindowModified()
    answer_modal("   ")  # an empty name is refused, with the reason
    trigger(window, "File", "Rename Project")
    assert window.doc.project.name == DEMO_NAME and "needs a name" in window.statusBar().currentMessage()


def test_f1_lists_every_menu_with_undo_as_a_command(qtbot, isolated, monkeypatch) -> None:
    from gui.dialogs.shortcuts import ShortcutsDialog

    window = open_window(qtbot)
    doc = window.doc
    commands.try_push(doc, commands.AddNodeCommand(doc, "Conv2d", pos=(0.0, 0.0)))
    assert window.act_undo.text().replace("&", "").startswith("Undo Add")
    shown: list[ShortcutsDialog] = []
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda self: shown.append(self) or 0)
    make_active(qtbot, window)
    QTest.keyClick(window, Qt.Key.Key_F1)
    settle()
    assert shown, "F1 opened no dialog"
    tree = shown[0].tree
    rows = [(tree.topLevelItem(i).text(0).strip(), tree.topLevelItem(i).text(1))
            for i in range(tree.topLevelItemCount())]
    menus = [name for name, keys in rows if not keys]
    assert menus[:len(["File", "Edit", "View", "Train", "Help"])] == ["File", "Edit", "View", "Train", "Help"], menus
    keys = dict(rows)
    assert keys["Start Training"] == "F5" and keys["Pause / Resume"] == "F6" and keys["Stop Training"] == "Shift+F5"
    assert keys["Undo"] == "Ctrl+Z" and "Ctrl+Y" in keys["Redo"].split(", ")
    assert len(set(keys["Redo"].split(", "))) == len(keys["Redo"].split(", "))  # no key listed twice
    assert not any(name.startswith(("Undo ", "Redo ")) for name, _ in rows), rows


@pytest.mark.slow
def test_import_a_torchvision_model_with_the_keyboard_only(qtbot, isolated) -> None:
    from gui.dialogs.torchvision_import import TorchvisionImportDialog

    window = open_window(qtbot)
    seen: dict[str, object] = {}

    def drive() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, TorchvisionImportDialog):
            QTimer.singleShot(20, drive)
            return
        qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() > 20, timeout=60_000)
        typed = QApplication.focusWidget()
        assert typed is dialog.filter, "the filter has no keyboard focus"
        QTest.keyClicks(typed, "resnet")
        seen["first"] = dialog.selected_name()  # the first match is current without a key press
        QTest.keyClick(typed, Qt.Key.Key_Down)
        seen["down"] = dialog.selected_name()
        typed.clear()
        QTest.keyClicks(typed, "resnet18")
        seen["single"] = dialog.selected_name()
        seen["enabled"] = dialog.import_button.isEnabled()
        QTest.keyClick(typed, Qt.Key.Key_Return)
        seen["importing"] = not dialog.import_button.isEnabled()

    make_active(qtbot, window)
    QTimer.singleShot(0, drive)
    QTest.keyClick(window, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    settle()
    assert seen["first"] is not None and seen["first"].startswith("resnet")
    assert seen["down"] not in (None, seen["first"]) and seen["down"].startswith("resnet")
    assert seen["single"] == "resnet18" and seen["enabled"] and seen["importing"]
    assert window.doc.project.name == "resnet18"
    assert window.windowTitle().startswith("resnet18"), window.windowTitle()
    assert "layer1.0.conv1" in window.doc.graph.nodes
    visible = [item for item in window.scene.nodes.values() if item.isVisible()]
    assert visible, "the canvas shows no card of the imported model"
    view_rect = window.view.mapToScene(window.view.viewport().rect()).boundingRect()
    assert any(view_rect.intersects(item.sceneBoundingRect()) for item in visible)
    assert "Imported resnet18" in window.statusBar().currentMessage()


def _big_project(isolated: Path, nodes: int = 40) -> Path:
    """A valid project file (a chain of ``nodes`` ReLUs) the test treats as big."""
    from core.project import new_project, save_project

    project = new_project(name="Long chain")
    g = project.graph
    g.add_node("Input", "input", {"shape": [16]})
    previous = "input"
    for i in range(nodes):
        g.add_node("ReLU", f"relu{i}")
        g.add_edge(previous, f"relu{i}")
        previous = f"relu{i}"
    g.add_node("Output", "output")
    g.add_edge(previous, "output")
    path = isolated / "long.json"
    save_project(project, path)
    return path


def _hold_loading(monkeypatch) -> tuple[threading.Event, list[threading.Thread]]:  # type: ignore[no-untyped-def]
    """Make the worker wait until the test releases it, so the test sees the window while it reads."""
    import gui.files

    release = threading.Event()
    threads: list[threading.Thread] = []
    real_load = gui.files.load_project

    def held_load(path):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread())
        assert release.wait(10)
        return real_load(path)

    monkeypatch.setattr(gui.files, "load_project", held_load)
    monkeypatch.setattr(gui.files, "BIG_PROJECT_BYTES", 1000)  # the test's file counts as big
    return release, threads


def test_a_big_file_opens_on_a_worker_while_the_window_answers(qtbot, isolated, monkeypatch) -> None:
    from PySide6.QtWidgets import QProgressBar

    window = open_window(qtbot)
    path = _big_project(isolated)
    release, threads = _hold_loading(monkeypatch)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    ticks: list[bool] = []

    def tick() -> None:  # the GUI thread runs while the file is read, and then lets the worker go on
        ticks.append(window.files.opening is not None)
        release.set()

    trigger(window, "File", "Open")
    assert window.files.opening == path
    assert window.statusBar().currentMessage().startswith("Opening long.json (")
    busy = [bar for bar in window.statusBar().findChildren(QProgressBar) if bar.isVisible()]
    assert len(busy) == 1 and busy[0].maximum() == 0  # a busy bar, no made-up fraction
    assert window.doc.project.name == DEMO_NAME  # still the old document until the new one arrives
    QTimer.singleShot(0, tick)
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=10000)

    assert ticks == [True] and threads and threads[0] is not threading.main_thread()
    assert window.doc.project.name == "Long chain" and len(window.doc.graph.nodes) == 42
    assert len(window.scene.nodes) == 42 and window.doc.analysis is not None
    assert window.windowTitle().startswith("Long chain") and not window.isWindowModified()
    assert window.statusBar().currentMessage() == "Opened long.json"
    assert not [bar for bar in window.statusBar().findChildren(QProgressBar) if bar.isVisible()]
    assert window.files.recent.paths()[0] == path
    assert window.errors == []
    # The document arrived from the worker and lives on the GUI thread: editing it works as usual.
    assert window.doc.thread() is QApplication.instance().thread()
    window.doc.undo_stack.push(commands.RenameNodeCommand(window.doc, "relu0", "first"))
    assert "first" in window.doc.graph.nodes and window.isWindowModified()


def test_a_big_broken_file_names_its_path_once_and_keeps_the_document(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    bad = isolated / "broken.json"
    bad.write_text('{"format": "netcanvas-project", "version": 1, "graph": {"nodes": [' + " " * 2000,
                   encoding="utf-8")
    release, _ = _hold_loading(monkeypatch)
    release.set()
    assert window.files.open_path(bad)
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=10000)
    assert len(window.errors) == 1
    title, text = window.errors[0]
    assert title == "Cannot open the project"
    assert text.count(str(bad)) == 1 and "not valid JSON" in text and "\n" not in text, text
    assert window.doc.project.name == DEMO_NAME
    assert window.statusBar().currentMessage() == ""  # the "Opening…" line is gone


def test_changes_made_while_a_big_file_loads_are_asked_about_again(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    path = _big_project(isolated)
    release, _ = _hold_loading(monkeypatch)
    assert window.files.open_path(path)  # unmodified: no prompt
    first = next(iter(window.doc.graph.nodes))
    window.doc.undo_stack.push(commands.RenameNodeCommand(window.doc, first, "edited_meanwhile"))
    window.answers[0] = QMessageBox.StandardButton.Cancel
    release.set()
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=10000)
    assert window.doc.project.name == DEMO_NAME and "edited_meanwhile" in window.doc.graph.nodes
    assert window.statusBar().currentMessage() == "Kept your changes; long.json was not opened"
