"""Training from the editor: the QThread worker, the training dock and the viewers (issue 6).

:func:`install` adds the Training dock and a Train menu to a :class:`gui.main_window.MainWindow`
without the window knowing about training: it follows the window's document, asks before a
close interrupts a run (and stops it cleanly; the editor asks its "save changes?" first and then
calls :meth:`TrainingDock.confirm_close`), shows the source node's feature maps when an edge is
clicked on the canvas, and selects nodes on the canvas for the runs comparison. The window hands
a theme switch to :meth:`TrainingDock.set_theme`. :func:`screenshot_after_training` is the
``main.py FILE --train --screenshot OUT`` path: train in the window, then save a picture of it.

This module stays light (Qt only): the panel, which needs torch and pyqtgraph, is built the first
time the dock is shown or used, so the editor opens as fast without it. Its modules are imported
on a background thread first (:func:`preload`, also started when the Train menu opens): imported
on the GUI thread, torch alone froze the window for seconds.
"""

from __future__ import annotations

import gc
import importlib
import re
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QMainWindow, QMenu, QScrollArea, QWidget

if TYPE_CHECKING:
    from gui.training.dock import TrainingPanel


# What the panel imports that takes long (torch: 2 s on an idle 2-core machine, 10 s on a busy one),
# in import order; the last one pulls in the rest of the panel.
HEAVY_MODULES = ("numpy", "torch", "pyqtgraph", "core.compiler", "core.training", "core.training.session",
                 "core.explain", "gui.training.dock")


_gc_holds = 0
_gc_was_enabled = False


def hold_gc() -> None:
    """Keep the cyclic collector off until :func:`release_gc` (call both on the GUI thread).

    Held while a background thread imports or warms up torch: its allocations would otherwise start
    collections on that thread, which finalize the GUI's dropped Qt wrappers there ("Timers cannot be
    started from another thread", and worse).
    """
    global _gc_holds, _gc_was_enabled
    if _gc_holds == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_holds += 1


def release_gc() -> None:
    """End one :func:`hold_gc`; the collector runs again when the last hold ends."""
    global _gc_holds
    _gc_holds = max(0, _gc_holds - 1)
    if _gc_holds == 0 and _gc_was_enabled:
        gc.enable()


class Preloader(QObject):
    """Imports :data:`HEAVY_MODULES` once per process on a plain Python thread, then emits ``done`` (on
    the GUI thread), then warms up torch (:class:`~gui.training.worker.WarmUp`) and emits ``warmed``.
    The GUI thread keeps running meanwhile, but for the moments an extension module's initialisation
    holds the interpreter lock."""

    done = Signal()  # the modules are imported
    warmed = Signal()  # and the first-run warm-up is done (the thread ends)

    def __init__(self) -> None:
        super().__init__()
        self.started = False
        self.finished = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            hold_gc()
            self.warmed.connect(self._release_gc)  # a method of a GUI-thread object: runs on the GUI thread
            threading.Thread(target=self._run, name="netcanvas-preload", daemon=True).start()

    def _run(self) -> None:
        try:
            for name in HEAVY_MODULES:
                importlib.import_module(name)
        except Exception:  # the GUI thread imports it again when it builds the panel, and says why
            self.finished = True
            self.done.emit()
            self.warmed.emit()
            return
        self.finished = True
        self.done.emit()  # queued to the GUI thread, where the preloader lives
        # Then what a first run would import in the middle of training (torch._dynamo …), here rather
        # than on the training thread; the panel is built meanwhile.
        from gui.training.worker import WarmUp

        try:
            WarmUp.run_once()
        finally:
            self.warmed.emit()

    def _release_gc(self) -> None:
        release_gc()


_preloader: Preloader | None = None


def preload() -> Preloader:
    """Start importing the training panel's modules in the background (call on the GUI thread)."""
    global _preloader
    if _preloader is None:
        _preloader = Preloader()
    _preloader.start()
    return _preloader


class TrainingDock(QDockWidget):
    """The dock the window adds; ``panel`` (a :class:`~gui.training.dock.TrainingPanel`) is built on demand."""

    def __init__(self, doc: Any = None, runs_root: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.setObjectName("training_dock")  # saveState() needs a stable name
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self._doc = doc
        self._runs_root = runs_root
        self._panel: TrainingPanel | None = None
        self.highlight: Any = None
        self.message_sink: Any = None
        self.stats_sink: Any = None  # callable({node: {stat: values}}) drawing them on the canvas (install sets it)
        placeholder = QLabel("Loading the training panel (PyTorch)…")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWidget(placeholder)
        self._waiting = False  # for the preload to finish before building the panel
        self._unplaced: TrainingPanel | None = None  # made, not yet in the dock
        self.visibilityChanged.connect(self._visible)

    @property
    def built(self) -> TrainingPanel | None:
        """The panel if it exists (without building it)."""
        return self._panel

    @property
    def panel(self) -> TrainingPanel:
        if self._panel is None:
            self._place(self._unplaced if self._unplaced is not None else self._make())
        assert self._panel is not None
        return self._panel

    def _make(self) -> TrainingPanel:
        from gui.training.dock import TrainingPanel

        return TrainingPanel(None, self._runs_root)

    def _place(self, panel: TrainingPanel) -> None:
        """Put a made panel in the dock and show the document in it."""
        self._unplaced = None
        panel.highlight = self.highlight
        panel.node_stats.connect(self._node_stats)
        sink = self.message_sink() if self.message_sink is not None else None
        if sink is not None:
            panel.message.connect(sink)
        self._panel = panel
        # The panel scrolls inside the dock rather than dictating the dock's minimum height: its
        # viewers need ~480 px, which at 1280×720 squeezed the canvas to ~100 px.
        scroll = QScrollArea()
        scroll.setObjectName("training_scroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(panel)
        self.setWidget(scroll)
        if self._doc is not None:
            panel.set_document(self._doc)

    def start(self, epochs: int | None = None) -> bool:
        """Show the dock and start a run with the panel's settings (``main.py FILE --train``)."""
        self.show()
        self.raise_()
        return self.panel.start(epochs=epochs)

    def confirm_close(self) -> bool:
        """The window is closing: while a run is active, ask "stop training?" (no = keep training and the
        window); then stop the run cleanly, keeping its last checkpoint. True when the window may close.

        The editor calls this after its "save changes?" prompt, so cancelling that prompt leaves the run
        untouched.
        """
        panel = self._panel
        if panel is None:
            return True
        if not panel.can_close():
            return False
        panel.shutdown()  # no thread of ours may outlive the window
        return True

    def set_theme(self, theme: Any) -> None:
        """Restyle the panel if it is built (a panel built later takes the current theme)."""
        if self._panel is not None:
            self._panel.set_theme(theme)

    def set_runs_root(self, root: Path) -> None:
        """Where runs are kept (default: ``runs/`` next to the project file)."""
        self._runs_root = root
        if self._panel is not None:
            self._panel.fixed_runs_root = root
            self._panel.runs.set_root(root)

    def set_document(self, doc: Any) -> None:
        self._doc = doc
        if self._panel is not None and doc is not self._panel.doc:
            self._panel.set_document(doc)

    def _node_stats(self, stats: dict[str, Any]) -> None:
        if self.stats_sink is not None:
            self.stats_sink(stats)

    def _visible(self, visible: bool) -> None:
        if visible and self._panel is None and not self._waiting:
            loader = preload()
            if loader.finished:
                QTimer.singleShot(0, self._build)  # after the dock's first paint
            else:
                self._waiting = True
                loader.done.connect(self._build, Qt.ConnectionType.SingleShotConnection)

    def _build(self) -> None:
        """Make the panel, and place it on the next event-loop turn (two shorter holds of the GUI thread
        than one); ``panel`` does both at once when asked for meanwhile."""
        self._waiting = False
        if self._panel is None and self._unplaced is None and shiboken6.isValid(self):
            self._unplaced = self._make()
            QTimer.singleShot(20, self._place_made)  # not 0: a zero timer runs before pending input and paints

    def _place_made(self) -> None:
        if self._panel is None and self._unplaced is not None and shiboken6.isValid(self):
            self._place(self._unplaced)


class _WindowHooks(QObject):
    """Event filter on the window: a close asks while training (unless the window asks itself, after its
    save prompt: ``asks_training_after_save``); a new document is followed.

    It holds the window and the dock weakly: a reference cycle through the window would leave the
    window to Python's cyclic collector, which may run on any thread (and must not delete widgets).
    """

    def __init__(self, window: Any, dock: TrainingDock) -> None:
        super().__init__(window)
        self._window = weakref.ref(window)
        self._dock = weakref.ref(dock)
        self._scene: Callable[[], Any] = lambda: None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        window, dock = self._window(), self._dock()
        if window is None or dock is None:
            return False
        kind = event.type()
        if watched is not window:
            if kind == QEvent.Type.ChildAdded and watched is window.centralWidget():
                self.follow_document()  # the canvas view of a new document joined the central widget
            return False
        if kind == QEvent.Type.Close and not getattr(window, "asks_training_after_save", False):
            # A window without its own order (the editor's asks "save?" first, then calls confirm_close).
            if not dock.confirm_close():
                event.ignore()
                return True
            return False
        if kind == QEvent.Type.ChildAdded:
            self.follow_document()
        return False

    def follow_document(self) -> None:
        """Show the window's document in the dock when File ▸ New / Open replaced it."""
        window, dock = self._window(), self._dock()
        if window is None or dock is None:
            return
        doc = getattr(window, "doc", None)
        if doc is not None and doc is not dock._doc:
            dock.set_document(doc)
        self.follow_scene()

    def follow_scene(self) -> None:
        """Listen to the window's canvas scene (a new one comes with each document) for clicked edges."""
        window = self._window()
        scene = getattr(window, "scene", None)
        if scene is None or not hasattr(scene, "selected_edges") or scene is self._scene():
            return
        self._scene = weakref.ref(scene)
        scene.selectionChanged.connect(self._scene_selection)

    def _scene_selection(self) -> None:
        # The canvas keeps edge selection to itself (the document's selection holds node ids only):
        # a click on an edge leaves no node selected and the edge selected.
        scene, dock = self._scene(), self._dock()
        if scene is None or dock is None or dock.built is None or not shiboken6.isValid(scene):
            return
        try:
            if scene.selected_node_ids():
                return
            edges = scene.selected_edges()
        except RuntimeError:  # the scene is being torn down (its items are gone first): nothing to show
            return
        if edges:
            dock.built.show_edges(edges)


def install(window: QMainWindow, runs_root: Path | None = None) -> TrainingDock:
    """Add the Training dock (bottom, next to Problems/Summary/Code) and a Train menu to ``window``."""
    existing = getattr(window, "training", None)
    if isinstance(existing, TrainingDock):
        if runs_root is not None:
            existing.set_runs_root(runs_root)
        return existing
    dock = TrainingDock(getattr(window, "doc", None), runs_root, window)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    code_dock = getattr(window, "code_dock", None)
    if code_dock is not None:
        window.tabifyDockWidget(code_dock, dock)  # this makes the new tab current…
        front = getattr(window, "problems_dock", None)
        if front is not None:
            front.raise_()  # …but the window opens on its problems tab; the panel is built when shown
    # Everything the dock keeps of the window is weak (see _WindowHooks).
    window_ref = weakref.ref(window)
    dock_ref = weakref.ref(dock)
    if hasattr(window, "show_status"):
        dock.message_sink = weakref.WeakMethod(window.show_status)  # type: ignore[attr-defined]
    dock.highlight = lambda ids: _highlight(window_ref(), dock_ref(), ids)
    dock.stats_sink = lambda stats: _sparklines(window_ref(), stats)

    def show() -> None:
        d, w = dock_ref(), window_ref()
        if d is not None:
            was_visible = d.isVisible() and not d.visibleRegion().isEmpty()  # a tab behind another is "visible"
            d.show()
            d.raise_()
            if not was_visible and w is not None:  # once the tab is laid out
                QTimer.singleShot(0, lambda: _open_height(window_ref(), dock_ref()))

    def run(method: str) -> None:
        d = dock_ref()
        if d is not None:
            if method == "start":
                show()
            getattr(d.panel, method)()

    menu = QMenu("&Train", window)
    menu.aboutToShow.connect(preload)  # the user is about to train: import torch meanwhile
    actions = []
    for text, slot, key, tip in (
            ("&Start Training", lambda: run("start"), "F5",
             "Train a copy of the graph with the training panel's settings"),
            ("&Pause / Resume", lambda: run("toggle_pause"), "F6", "Pause before the next batch, or go on"),
            ("S&top Training", lambda: run("stop"), "Shift+F5", "Stop before the next batch (keeps the checkpoint)"),
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
    central = window.centralWidget()
    if central is not None:  # a window that keeps its central widget adds each new canvas view to it
        central.installEventFilter(hooks)
    hooks.follow_scene()
    window.training = dock  # type: ignore[attr-defined]
    window.training_menu = menu  # type: ignore[attr-defined]
    dock._hooks = hooks  # type: ignore[attr-defined]  # kept alive with the dock
    return dock


def training_dock_height(window: QMainWindow) -> int:
    """The height the Training dock opens at: room for its curves, and at most 45 % of the window,
    so the canvas keeps the rest (at 1280×720 too)."""
    return max(260, int(window.height() * 0.45))


def _open_height(window: Any, dock: TrainingDock | None) -> None:
    if window is not None and dock is not None and shiboken6.isValid(dock):
        window.resizeDocks([dock], [training_dock_height(window)], Qt.Orientation.Vertical)


def _highlight(window: Any, dock: TrainingDock | None, ids: list[str]) -> None:
    """Select ``ids`` on the window's canvas (the runs comparison's changed nodes)."""
    view = getattr(window, "view", None)
    if view is not None and hasattr(view, "select_nodes"):
        view.select_nodes(ids)
        if ids and hasattr(view, "center_on_node"):
            view.center_on_node(ids[0])
    elif dock is not None and dock.built is not None and dock.built.doc is not None:
        dock.built.doc.set_selection(ids)


def _sparklines(window: Any, stats: dict[str, Any]) -> None:
    """The run's node statistics as strips under the cards of the window's canvas (a new document
    comes with a new scene, so they go with the old one)."""
    scene = getattr(window, "scene", None)
    if scene is not None and hasattr(scene, "show_sparklines") and shiboken6.isValid(scene):
        scene.show_sparklines(stats)


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
    dock.show()
    dock.raise_()
    panel = dock.panel
    window.resizeDocks([dock], [training_dock_height(window)], Qt.Orientation.Vertical)
    app = QApplication.instance()
    for _ in range(4):
        app.processEvents()
    view = getattr(window, "view", None)
    if view is not None and hasattr(view, "fit_all"):
        view.fit_all()
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
    return re.sub(r"<[^>]+>", " ", html).strip()


def __getattr__(name: str) -> Any:  # the heavy classes, imported when first asked for (PEP 562)
    if name == "TrainingPanel":
        from gui.training.dock import TrainingPanel

        return TrainingPanel
    if name in ("TrainingWorker", "RunRequest"):
        from gui.training import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'gui.training' has no attribute {name!r}")


__all__ = ["RunRequest", "TrainingDock", "TrainingPanel", "TrainingWorker", "install", "screenshot_after_training"]
