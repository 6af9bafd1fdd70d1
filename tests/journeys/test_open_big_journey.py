"""Opening a big project while its canvas is drawn (issue 11): the window keeps the previous
document, shown and editable, with a progress bar and a Cancel button; Cancel, another open, an
edit meanwhile and closing the window each leave it consistent."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressBar, QPushButton

from core.project import save_project
from gui.canvas import build_job
from tests.gui.test_canvas_build import residual_project
from tests.journeys.conftest import open_window, settle


@pytest.fixture
def slow_big_files(monkeypatch):  # type: ignore[no-untyped-def]
    """Every project file counts as big, and its canvas is drawn one item per event-loop turn."""
    import gui.files

    monkeypatch.setattr(gui.files, "BIG_PROJECT_BYTES", 100)
    monkeypatch.setattr(build_job, "SLICE_S", 0.0)


def _saved(tmp: Path, name: str, blocks: int) -> Path:
    path = tmp / f"{name}.json"
    save_project(residual_project(blocks, name=name), path)
    return path


def _drawing(window) -> bool:  # type: ignore[no-untyped-def]
    build = window.files.building
    return build is not None and build.running() and len(build.scene.nodes) > 0


def test_cancel_while_drawing_keeps_the_shown_document(qtbot, isolated, slow_big_files):
    window = open_window(qtbot)
    before, view = window.doc, window.view
    path = _saved(isolated, "wide", 40)
    assert window.files.open_path(path)
    qtbot.waitUntil(lambda: _drawing(window), timeout=10000)
    assert window.doc is before and window.view is view  # the old canvas stays until the new one is whole
    qtbot.waitUntil(lambda: "nodes drawn" in window.statusBar().currentMessage(), timeout=10000)
    assert window.statusBar().currentMessage().startswith("Opening wide.json: ")
    bars = [b for b in window.statusBar().findChildren(QProgressBar) if b.isVisible()]
    assert len(bars) == 1 and bars[0].maximum() == 1000
    cancel = next(b for b in window.statusBar().findChildren(QPushButton) if b.isVisible() and b.text() == "Cancel")
    build = window.files.building
    cancel.click()
    assert not build.running() and window.files.building is None and window.files.opening is None
    settle(50)
    assert window.doc is before and window.view is view and window.errors == []
    assert window.statusBar().currentMessage() == f"Stopped opening wide.json; {before.project.name} is still open"
    assert not [b for b in window.statusBar().findChildren(QProgressBar) if b.isVisible()]
    assert window.files.recent.paths() == []
    # the shown document still edits, undoes and redraws as before
    first = next(iter(before.graph.nodes))
    trigger_rename(window, first, "still_here")
    assert "still_here" in window.scene.nodes


def trigger_rename(window, old: str, new: str) -> None:  # type: ignore[no-untyped-def]
    from gui import commands

    window.doc.push(commands.RenameNodeCommand(window.doc, old, new))


def test_opening_another_file_while_drawing_stops_the_first(qtbot, isolated, slow_big_files):
    window = open_window(qtbot)
    first, second = _saved(isolated, "first", 40), _saved(isolated, "second", 3)
    assert window.files.open_path(first)
    qtbot.waitUntil(lambda: _drawing(window), timeout=10000)
    abandoned = window.files.building
    assert window.files.open_path(second)
    assert not abandoned.running()
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=20000)
    assert window.doc.project.name == "second" and len(window.scene.nodes) == len(window.doc.graph.nodes) == 14
    assert window.statusBar().currentMessage() == "Opened second.json"
    assert [p.name for p in window.files.recent.paths()] == ["second.json"]
    settle(50)
    assert window.doc.project.name == "second"  # the first never arrives later


def test_changes_made_while_drawing_are_asked_about(qtbot, isolated, slow_big_files):
    window = open_window(qtbot)
    before = window.doc
    path = _saved(isolated, "asked", 20)
    assert window.files.open_path(path)
    qtbot.waitUntil(lambda: _drawing(window), timeout=10000)
    trigger_rename(window, next(iter(before.graph.nodes)), "edited_while_drawing")
    window.answers[0] = QMessageBox.StandardButton.Cancel
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=20000)
    assert window.doc is before and "edited_while_drawing" in window.doc.graph.nodes
    assert window.statusBar().currentMessage() == "Kept your changes; asked.json was not opened"


def test_closing_the_window_while_drawing_stops_the_drawing(qtbot, isolated, slow_big_files):
    window = open_window(qtbot)
    path = _saved(isolated, "closing", 40)
    assert window.files.open_path(path)
    qtbot.waitUntil(lambda: _drawing(window), timeout=10000)
    build = window.files.building
    assert window.close()
    assert not build.running() and window.files.opening is None
    settle(50)
    assert QApplication.overrideCursor() is None  # the busy cursor went with it
