"""Journey: the canvas keeps its room. Every way of changing the document (New, Open, Open Recent,
a template, an import, a dropped file, a crash restore) leaves the canvas and the docks exactly as
big as before; a layout saved cramped is discarded at the next start; View › Reset Layout puts the
panels back; at 1280×720 the Training dock leaves the canvas its share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QMimeData, QPoint, QPointF, QSize, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from core.project import load_project, project_to_dict
from gui.document import Document
from gui.files import Recovery, settings
from tests.journeys.conftest import DEMO, SIZES, canvas_share, open_window, settle, trigger

MIN_SHARE = 0.4


def geometry(window) -> tuple[int, int, int, int]:
    return (window.view.viewport().width(), window.view.viewport().height(),
            window.palette_dock.width(), window.inspector_dock.width())


def assert_roomy(window) -> None:
    w_share, h_share = canvas_share(window)
    assert w_share >= MIN_SHARE and h_share >= MIN_SHARE, (
        f"the canvas has {w_share:.0%} × {h_share:.0%} of a {window.width()}×{window.height()} window")


def drop_file(window, path: Path) -> None:
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(path))])
    vp = window.view.viewport()
    at = vp.rect().center()
    # What Qt delivers for a real drag: enter, a move, then the drop, all with the same data.
    enter = QDragEnterEvent(at, Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(vp, QDragMoveEvent(at, Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(vp, QDropEvent(QPointF(at), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                                          Qt.KeyboardModifier.NoModifier))
    settle(50)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.width()}x{s.height()}")
def test_every_document_change_keeps_the_canvas_size(qtbot, isolated, size: QSize) -> None:
    window = open_window(qtbot, size, restore_layout=False)
    assert_roomy(window)
    before = geometry(window)
    project_file = isolated / "mine.json"
    project_file.write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")

    trigger(window, "File", "New")
    assert geometry(window) == before, "File › New"
    assert window.doc.project.name in ("", "Untitled") or window.doc.path is None
    assert window.files.open_path(project_file, ask=False)
    settle()
    assert geometry(window) == before, "Open"
    window.files.open_template_named("resnet50")
    settle()
    assert geometry(window) == before, "template ResNet-50"
    assert len(window.scene.nodes) > 0
    window.files._open_recent(project_file)
    settle()
    assert geometry(window) == before, "Open Recent"
    drop_file(window, project_file)
    assert window.doc.path is not None and window.doc.path.name == "mine.json"
    assert geometry(window) == before, "dropped project file"
    # The canvas is the window's focus again after a swap, and shows the whole graph readably.
    assert window.view.isVisible() and window.view.zoom() > 0.1
    assert_roomy(window)


def test_a_crash_restore_keeps_the_canvas_size(qtbot, isolated) -> None:
    project = load_project(DEMO)
    Recovery(isolated / "data" / "recovery").start()  # this process's own lock: not an orphan
    orphan = isolated / "data" / "recovery" / "recovery-999999.json"
    orphan.write_text(json.dumps({"format": "netcanvas-recovery", "original_path": None,
                                  "saved_at": "2026-12-06T11:42:00+00:00",
                                  "project": project_to_dict(project)}), encoding="utf-8")
    window = open_window(qtbot, restore_layout=False, doc=Document.new())
    before = geometry(window)
    window.ask_restore = lambda text: QMessageBox.StandardButton.Yes
    assert window.files.offer_recovery()
    settle()
    assert window.doc.project.name == project.name
    assert geometry(window) == before
    assert window.isWindowModified(), "restored changes are unsaved"


def test_restart_keeps_the_layout_and_discards_a_cramped_one(qtbot, isolated) -> None:
    window = open_window(qtbot, restore_layout=False)
    window.resizeDocks([window.palette_dock], [300], Qt.Orientation.Horizontal)
    settle()
    palette_w = window.palette_dock.width()
    trigger(window, "File", "New")
    window.close()
    assert not window.isVisible()

    again = open_window(qtbot)  # the saved layout, as at the next start
    settle(50)
    assert abs(again.palette_dock.width() - palette_w) <= 2
    assert_roomy(again)
    # A layout saved by an older version with the canvas squeezed to a sliver
    again.resizeDocks([again.palette_dock, again.inspector_dock], [700, 700], Qt.Orientation.Horizontal)
    settle()
    again.save_layout()
    again.close()

    third = open_window(qtbot)
    settle(50)
    assert_roomy(third)
    assert "default layout" in third.statusBar().currentMessage()
    assert third.palette_dock.width() < 400 and third.inspector_dock.width() < 500


def test_reset_layout_puts_the_panels_back(qtbot, isolated) -> None:
    window = open_window(qtbot, restore_layout=False)
    default = geometry(window)
    window.inspector_dock.close()
    window.palette_dock.setFloating(True)
    window.resizeDocks([window.problems_dock], [600], Qt.Orientation.Vertical)
    settle()
    trigger(window, "View", "Reset Layout")
    settle(50)
    assert window.inspector_dock.isVisible() and window.palette_dock.isVisible()
    assert not window.palette_dock.isFloating()
    assert abs(window.palette_dock.width() - default[2]) <= 2
    assert abs(window.inspector_dock.width() - default[3]) <= 2
    assert_roomy(window)
    assert not isinstance(settings().value("window_state"), QByteArray)


def test_training_dock_leaves_the_canvas_its_share_at_1280x720(qtbot, isolated) -> None:
    window = open_window(qtbot, QSize(1280, 720), restore_layout=False)
    trigger(window, "Train", "Show Training Panel")
    qtbot.waitUntil(lambda: window.training.built is not None, timeout=20_000)
    settle(100)
    dock = window.training
    assert not dock.visibleRegion().isEmpty(), "the Training tab is in front"
    assert dock.height() >= 250, f"the Training dock is only {dock.height()} px tall"
    assert window.size() == QSize(1280, 720), "opening the dock must not grow the window"
    assert_roomy(window)
    # The panel's controls are reachable: it scrolls inside the dock rather than pushing the canvas.
    scroll = dock.widget()
    assert scroll.objectName() == "training_scroll"
    assert scroll.widget() is dock.panel
    assert dock.mapToGlobal(QPoint(0, 0)).y() >= window.view.mapToGlobal(QPoint(0, window.view.height())).y()


def test_the_first_start_fits_the_screen_with_its_frame(qtbot, isolated) -> None:
    from gui.main_window import MainWindow

    window = MainWindow(Document.new())  # no saved geometry: a first start
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    settle()
    free = window.screen().availableGeometry()
    assert window.width() <= min(1600, free.width()) and window.height() <= min(1000, free.height() - 40)
    assert window.statusBar().isVisible()
    assert window.statusBar().mapTo(window, QPoint(0, window.statusBar().height())).y() <= window.height()
    assert_roomy(window)
