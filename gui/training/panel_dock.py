"""The Training dock and the Train menu: a panel of the editor window like the others (issue 6).

:class:`gui.main_window.MainWindow` builds them with :func:`install_training` and rebinds the dock
in ``set_document`` (:meth:`TrainingDock.set_document` takes the document and its canvas view);
its ``closeEvent`` asks "save changes?" first and then :meth:`TrainingDock.confirm_close`, and its
theme switch calls :meth:`TrainingDock.set_theme`. Through the canvas view it is given, the dock
shows the source node's feature maps when an edge is clicked, selects the runs comparison's
changed nodes, and draws the run's node statistics under the cards.

This module stays light (Qt only): the panel, which needs torch and pyqtgraph, is built the first
time the dock is shown or used, so the editor opens as fast without it. Its modules are imported
on a background thread first (:func:`gui.training.preload.preload`, also started when the Train
menu opens).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import shiboken6
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QWidget,
)

from gui.training.preload import preload
from gui.training.staged import Slicer, Steps

if TYPE_CHECKING:
    from gui.main_window import MainWindow
    from gui.training.dock import TrainingPanel
    from gui.training.evaluation import EvaluationView


class TrainingDock(QDockWidget):
    """The dock the window adds; ``panel`` (a :class:`~gui.training.dock.TrainingPanel`) is built on demand.

    ``message`` carries the panel's status-bar texts to the window.
    """

    message = Signal(str)

    def __init__(self, doc: Any = None, runs_root: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Training", parent)
        self.setObjectName("training_dock")  # saveState() needs a stable name
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self._doc = doc
        self._runs_root = runs_root
        self._panel: TrainingPanel | None = None
        # The document's canvas (a gui.canvas.CanvasView) and its scene, held weakly: both go with their
        # document, and the dock must not keep them (nor the window) alive.
        self._view: Callable[[], Any] = _dead
        self._scene: Callable[[], Any] = _dead
        placeholder = QLabel("Loading the training panel (PyTorch)…")
        placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWidget(placeholder)
        self._waiting = False  # for the preload to finish before building the panel
        self._slicer: Slicer | None = None  # makes the panel and places it, a few parts per event-loop turn
        self.visibilityChanged.connect(self._visible)

    @property
    def built(self) -> TrainingPanel | None:
        """The panel if it is whole (without building it)."""
        return self._panel if self._slicer is not None and self._slicer.finished else None

    @property
    def evaluation(self) -> EvaluationView | None:
        """The panel's Evaluation tab (made now if it was not yet; ``None`` before the panel is)."""
        if self._panel is None:
            return None
        return cast("EvaluationView", self._panel.viewer_tabs.get("evaluation"))

    def _built_evaluation(self) -> EvaluationView | None:
        tabs = self._panel.viewer_tabs if self._panel is not None else None
        return cast("EvaluationView | None", tabs.built("evaluation") if tabs is not None else None)

    @property
    def panel(self) -> TrainingPanel:
        """The panel, made (the rest of it, if it was being made) and placed now if it was not yet."""
        if self._panel is None or not self._making().finished:
            self._making().finish()
        assert self._panel is not None
        return self._panel

    def _making(self) -> Slicer:
        if self._slicer is None:
            self._slicer = Slicer(self._make(), self)
        return self._slicer

    def _make(self) -> Steps:
        """Make the panel, show the document in it, put it in the dock: steps for a :class:`Slicer`
        (made in one go, the panel held the window ~0.3 s at its first open)."""
        from gui.training.dock import LATER_MS, TrainingPanel

        # Made inside its scroll area: made apart and moved in, every widget of it was styled again (~20-30 ms)
        scroll = _scroll_area(self)
        panel = TrainingPanel(None, self._runs_root, parent=scroll.viewport(), staged=True)
        assert panel.construction is not None
        yield from panel.construction
        self._connect(panel)
        yield
        if self._doc is not None:
            panel.set_document(self._doc)
        yield
        # Shown with the rest, the plots' first layout and paint held the turn that placed the panel
        # (~0.1 s): they keep their room hidden and appear one per turn once the panel is in the dock.
        plots = panel.plots
        held = [_hold_back(w) for w in (plots.loss_plot, plots.acc_plot, plots.lr_plot)]
        scroll.setWidget(panel)
        yield
        self._place(panel, scroll)
        for widget, policy in held:
            yield
            widget.show()
            widget.setSizePolicy(policy)
        # The data's loader and torch's warm-up, threads that hold the interpreter lock for long stretches
        # (each Qt call of a slice waited for them), once the panel is whole.
        panel.settings.hold_loading(False)
        QTimer.singleShot(LATER_MS, panel.start_warm_up)

    def _connect(self, panel: TrainingPanel) -> None:
        # The Evaluation tab is made when first opened (or asked for): its plots held the first open.
        panel.viewer_tabs.add("evaluation", "Evaluation", _attach_evaluation, "evaluation", places_itself=True,
                              warm=("core.training.evaluate", "gui.training.confusion", "gui.training.evaluation"))
        # Weak: the panel is the dock's child, a strong reference back would make a cycle for Python's
        # collector, which may run on any thread (and must not delete widgets).
        highlight = weakref.WeakMethod(self._highlight)
        panel.highlight = lambda ids: _call(highlight, ids)
        panel.node_stats.connect(self._node_stats)
        panel.message.connect(self.message)

    def _place(self, panel: TrainingPanel, scroll: QScrollArea) -> None:
        """Put the made panel (in its ``scroll``) in the dock, with the window's document of now."""
        self._panel = panel
        panel.fixed_runs_root = self._runs_root  # the window may have named it meanwhile
        self.setWidget(scroll)
        scroll.show()  # hidden while it was made (an explicit hide outlasts setWidget)
        if self._doc is not None and self._doc is not panel.doc:  # the window showed another one meanwhile
            panel.set_document(self._doc)

    def start(self, epochs: int | None = None) -> bool:
        """Show the dock and start a run with the panel's settings (``main.py FILE --train``)."""
        self.show()
        self.raise_()
        return self.panel.start(epochs=epochs)

    def confirm_close(self, before_wait: Callable[[], None] | None = None) -> bool:
        """The window is closing: while a run is active, ask "stop training?" (no = keep training and the
        window); then stop the run cleanly, keeping its last checkpoint. True when the window may close.

        The editor calls this after its "save changes?" prompt, so cancelling that prompt leaves the run
        untouched. ``before_wait`` runs once the answer is yes, before the wait for the panel's threads (the
        editor hides its window: a data set still loading, ImageNet-sized noise say, takes many seconds).
        """
        panel = self._panel
        if panel is None:
            if self._slicer is not None:  # a panel half made: nothing of it may start (its loader, the warm-up)
                self._slicer.cancel()
                self._slicer = None
            return True
        self._making().finish()  # placed, with its last plots still to show
        if not panel.can_close():
            return False
        if before_wait is not None:
            before_wait()
        evaluation = self._built_evaluation()
        if evaluation is not None:
            evaluation.shutdown()
        panel.shutdown()  # no thread of ours may outlive the window
        return True

    def set_theme(self, theme: Any) -> None:
        """Restyle the panel if it is built (a panel built later takes the current theme)."""
        if self._slicer is not None and not self._slicer.finished:
            self._slicer.finish()  # made partly in the old theme: the rest now, then all restyled
        if self._panel is not None:
            self._panel.set_theme(theme)
        evaluation = self._built_evaluation()
        if evaluation is not None:
            evaluation.set_theme(theme)

    def set_runs_root(self, root: Path) -> None:
        """Where runs are kept (default: ``runs/`` next to the project file)."""
        self._runs_root = root
        if self._panel is not None:
            self._panel.fixed_runs_root = root
            self._panel.runs.set_root(root)

    def set_document(self, doc: Any, view: Any = None) -> None:
        """Show ``doc`` (the window calls this whenever it shows another document) and follow its canvas
        ``view``: clicked edges, the highlight of changed nodes and the node statistics go there."""
        self._doc = doc
        self._view = weakref.ref(view) if view is not None else _dead
        scene = view.scene() if view is not None else None
        if scene is not None and scene is not self._scene():
            self._scene = weakref.ref(scene)
            scene.selectionChanged.connect(self._scene_selection)
        if self._panel is not None and doc is not self._panel.doc:
            self._panel.set_document(doc)

    # ------------------------------------------------------------------------------ the canvas

    def _canvas(self) -> tuple[Any, Any]:
        """The current canvas view and scene, or ``None`` for what is gone."""
        view, scene = self._view(), self._scene()
        return (view if view is not None and shiboken6.isValid(view) else None,
                scene if scene is not None and shiboken6.isValid(scene) else None)

    def _scene_selection(self) -> None:
        # The canvas keeps edge selection to itself (the document's selection holds node ids only):
        # a click on an edge leaves no node selected and the edge selected.
        _, scene = self._canvas()
        if scene is None or self._panel is None or not shiboken6.isValid(self):
            return
        try:
            if scene.selected_node_ids():
                return
            edges = scene.selected_edges()
        except RuntimeError:  # the scene is being torn down (its items are gone first): nothing to show
            return
        if edges:
            self._panel.show_edges(edges)

    def _highlight(self, ids: list[str]) -> None:
        """Select ``ids`` on the canvas (the runs comparison's changed nodes)."""
        view, _ = self._canvas()
        if view is not None:
            view.select_nodes(ids)
            if ids:
                view.center_on_node(ids[0])
        elif self._panel is not None and self._panel.doc is not None:
            self._panel.doc.set_selection(ids)

    def _node_stats(self, stats: dict[str, Any]) -> None:
        """The run's node statistics as strips under the cards (a new document comes with a new scene,
        so they go with the old one)."""
        _, scene = self._canvas()
        if scene is not None:
            scene.show_sparklines(stats)

    # ------------------------------------------------------------------------- lazy construction

    def _visible(self, visible: bool) -> None:
        if visible and self._panel is None and not self._waiting:
            loader = preload()
            if loader.finished:
                QTimer.singleShot(0, self._build)  # after the dock's first paint
            else:
                self._waiting = True
                loader.done.connect(self._build, Qt.ConnectionType.SingleShotConnection)

    def _build(self) -> None:
        """Start making the panel, a slice per event-loop turn; ``panel`` makes the rest at once when
        asked for meanwhile."""
        self._waiting = False
        if self._panel is None and shiboken6.isValid(self):
            self._making().start()


def install_training(window: MainWindow) -> tuple[TrainingDock, QMenu]:
    """Make the Training dock (bottom, tabbed behind Problems/Summary/Code) and the Train menu (before
    Help) of ``window``, the dock's toggle at the end of the View menu; the window keeps both."""
    dock = TrainingDock(None, None, window)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    window.tabifyDockWidget(window.code_dock, dock)  # this makes the new tab current…
    window.problems_dock.raise_()  # …but the window opens on its problems tab; the panel is built when shown
    dock.message.connect(window.show_status)
    dock_ref = weakref.ref(dock)  # the actions live as long as the window: they must not keep the dock

    def show() -> None:
        d = dock_ref()
        if d is not None:
            was_visible = d.isVisible() and not d.visibleRegion().isEmpty()  # a tab behind another is "visible"
            d.show()
            d.raise_()
            if not was_visible:  # once the tab is laid out
                QTimer.singleShot(0, lambda: _open_height(dock_ref()))

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
    window.menuBar().insertMenu(window.help_menu.menuAction(), menu)
    window.view_menu.addAction(dock.toggleViewAction())
    return dock, menu


def training_dock_height(window: QMainWindow) -> int:
    """The height the Training dock opens at: room for its curves, and at most 45 % of the window,
    so the canvas keeps the rest (at 1280×720 too)."""
    return max(260, int(window.height() * 0.45))


def _open_height(dock: TrainingDock | None) -> None:
    if dock is not None and shiboken6.isValid(dock):
        window = dock.parentWidget()
        if isinstance(window, QMainWindow):
            window.resizeDocks([dock], [training_dock_height(window)], Qt.Orientation.Vertical)


def _scroll_area(dock: QDockWidget) -> QScrollArea:
    """Where the panel goes: it scrolls inside the dock rather than dictating the dock's minimum height
    (its viewers need ~480 px, which at 1280×720 squeezed the canvas to ~100 px). Made in the dock,
    hidden until it is the dock's widget: moved in from outside, every widget in it was styled again."""
    scroll = QScrollArea(dock)
    scroll.hide()
    scroll.setObjectName("training_scroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    return scroll


def _hold_back(widget: QWidget) -> tuple[QWidget, QSizePolicy]:
    """Hide ``widget``, its room kept in its layout; returns it with the size policy to give back."""
    policy = widget.sizePolicy()
    kept = QSizePolicy(policy)
    kept.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(kept)
    widget.hide()
    return widget, policy


def _attach_evaluation(panel: TrainingPanel) -> EvaluationView:
    from gui.training.evaluation import attach

    return attach(panel)


def _dead() -> None:
    """A weak reference to nothing (before the dock is given a canvas)."""
    return None


def _call(method: weakref.WeakMethod[Any], ids: list[str]) -> None:
    target = method()
    if target is not None:
        target(ids)


__all__ = ["TrainingDock", "install_training", "training_dock_height"]
