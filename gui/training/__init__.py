"""Training from the editor: the QThread worker, the training dock and the viewers (issue 6).

:func:`install` adds the Training dock and a Train menu to a :class:`gui.main_window.MainWindow`
without the window knowing about training: it follows the window's document, asks before a
close interrupts a run (and stops it cleanly), and selects nodes on the canvas for the runs
comparison. :func:`screenshot_after_training` is the ``main.py FILE --train --screenshot OUT``
path: train in the window, then save a picture of it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from gui.training.dock import TrainingDock, TrainingPanel
from gui.training.worker import RunRequest, TrainingWorker


class _WindowHooks(QObject):
    """Event filter on the window: a close asks first while training; a new document is followed."""

    def __init__(self, window: Any, dock: TrainingDock) -> None:
        super().__init__(window)
        self.window = window
        self.dock = dock

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        kind = event.type()
        if kind == QEvent.Type.Close and watched is self.window:
            if not self.dock.panel.can_close():
                event.ignore()
                return True
            self.dock.panel.shutdown()  # no thread of ours may outlive the window
            return False
        if kind == QEvent.Type.ChildAdded and watched is self.window:
            doc = getattr(self.window, "doc", None)
            if doc is not None and doc is not self.dock.panel.doc:  # File ▸ New / Open replaced it
                self.dock.panel.set_document(doc)
        return False


def install(window: QMainWindow, runs_root: Path | None = None) -> TrainingDock:
    """Add the Training dock (bottom, next to Problems/Summary/Code) and a Train menu to ``window``."""
    existing = getattr(window, "training", None)
    if isinstance(existing, TrainingDock):
        return existing
    dock = TrainingDock(getattr(window, "doc", None), runs_root, window)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    code_dock = getattr(window, "code_dock", None)
    if code_dock is not None:
        window.tabifyDockWidget(code_dock, dock)
    panel = dock.panel
    show_status = getattr(window, "show_status", None)
    if show_status is not None:
        panel.message.connect(show_status)

    def highlight(ids: list[str]) -> None:
        view = getattr(window, "view", None)
        if view is not None and hasattr(view, "select_nodes"):
            view.select_nodes(ids)
            if ids and hasattr(view, "center_on_node"):
                view.center_on_node(ids[0])
        elif panel.doc is not None:
            panel.doc.set_selection(ids)

    panel.highlight = highlight

    def show() -> None:
        dock.show()
        dock.raise_()

    def start() -> None:
        show()
        panel.start()

    menu = QMenu("&Train", window)
    actions = []
    for text, slot, key, tip in (
            ("&Start Training", start, "F5", "Train a copy of the graph with the training panel's settings"),
            ("&Pause / Resume", panel.toggle_pause, "F6", "Pause the run before its next batch, or go on"),
            ("S&top Training", panel.stop, "Shift+F5", "Stop before the next batch (the checkpoint is kept)"),
            ("Show Training &Panel", show, "Ctrl+Shift+R", "Settings, live curves, feature maps, runs")):
        action = QAction(text, window)
        action.setShortcut(QKeySequence(key))
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False, f=slot: f())
        window.addAction(action)
        menu.addAction(action)
        actions.append(action)
    menu.insertSeparator(actions[-1])
    help_menu = getattr(window, "help_menu", None)
    if help_menu is not None:
        window.menuBar().insertMenu(help_menu.menuAction(), menu)
    else:
        window.menuBar().addMenu(menu)
    view_menu = getattr(window, "view_menu", None)
    if view_menu is not None:
        view_menu.addAction(dock.toggleViewAction())
    hooks = _WindowHooks(window, dock)
    window.installEventFilter(hooks)
    window.training = dock  # type: ignore[attr-defined]
    window.training_menu = menu  # type: ignore[attr-defined]
    dock._hooks = hooks  # type: ignore[attr-defined]  # kept alive with the dock
    return dock


def screenshot_after_training(window: QMainWindow, epochs: int | None, out_path: str | Path,
                              timeout_s: float = 3600.0) -> int:
    """Train in ``window`` with the project's settings, then save a PNG of the window.

    Shows the training dock with the curves and feature maps, waits for the run to end (all of
    ``epochs``, default the project's), lets the last repaint land and saves ``out_path``.
    Returns the exit status: 0 when the run completed and the picture was saved, 1 when the run
    failed (the picture, showing the message, is still saved), 2 when it could not be saved.
    """
    from PySide6.QtWidgets import QApplication

    dock = install(window)
    panel = dock.panel
    dock.show()
    dock.raise_()
    window.resizeDocks([dock], [max(460, window.height() // 2)], Qt.Orientation.Vertical)
    app = QApplication.instance()
    for _ in range(4):
        app.processEvents()
    panel.settings.wait_for_data()
    loop = QEventLoop()
    panel.run_finished.connect(lambda _s: loop.quit())
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not panel.start(epochs=epochs):
        print(f"netcanvas: training could not start: {_plain(panel.problem_text)}", file=sys.stderr)
        status = 1
    else:
        loop.exec()
        panel.shutdown()
        summary = panel.last_summary
        status = 0 if summary is not None and summary.status in ("completed", "early_stopped") else 1
        if status:
            print(f"netcanvas: training ended: {summary.message if summary else 'timed out'}", file=sys.stderr)
    panel.maps.render()
    for _ in range(6):
        app.processEvents()
    out = Path(out_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(str(out), "PNG")
    except OSError:
        saved = False
    if not saved:
        print(f"netcanvas: cannot save {out}", file=sys.stderr)
        return 2
    print(f"saved {out}")
    return status


def _plain(html: str) -> str:
    import re

    return re.sub(r"<[^>]+>", " ", html).strip()


__all__ = ["RunRequest", "TrainingDock", "TrainingPanel", "TrainingWorker", "install", "screenshot_after_training"]
