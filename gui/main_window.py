"""The editor window: the canvas in the centre, palette / inspector / problems / summary / code docks.

The window owns one :class:`gui.document.Document` at a time (New/Open replace it), builds a
fresh canvas scene and view for each, and hands the document to every panel. It holds no graph
data itself: panels and canvas observe the document's signals. File operations live in
:class:`gui.files.FileActions`; this module is the layout, the menus and the wiring.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QEventLoop, QObject, QSize, Qt, QThread, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
    QUndoGroup,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressDialog,
    QSizePolicy,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.analysis import Analysis, Severity
from core.units import human
from gui import commands
from gui.document import Document
from gui.files import APP_NAME, OPENABLE_SUFFIXES, FileActions, Recovery, settings
from gui.finetune_actions import attach as attach_weight_map
from gui.finetune_actions import install_finetune
from gui.gan_export import export_generator, sync_action
from gui.gc_pause import hold_gc, release_gc
from gui.panels import CodePanel, InspectorPanel, PalettePanel, ProblemsPanel, SummaryPanel
from gui.panels.icons import app_icon, severity_icon
from gui.panels.inspector_prebuild import while_training
from gui.theme import THEMES, Theme, apply_theme, theme_named
from gui.training.panel_dock import install_training

AUTOSAVE_MS = 30_000
READABLE_ZOOM = 0.7  # opening never zooms out so far that the cards' text disappears
# The canvas never shrinks below this (a dock dragged wide stops here), and a restored layout that
# leaves the canvas less than MIN_CANVAS_SHARE of the window is discarded for the default one.
MIN_CANVAS_W, MIN_CANVAS_H = 320, 200
MIN_CANVAS_SHARE = 0.4


class _BusyThread(QThread):
    finished_with = Signal(bool, str)

    def __init__(self, job: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job

    def run(self) -> None:
        try:
            self.job()
        except Exception as exc:  # reported in a message box as one line
            self.finished_with.emit(False, str(exc) or type(exc).__name__)
            return
        self.finished_with.emit(True, "")


class MainWindow(QMainWindow):
    """One editor window. ``doc`` defaults to a new project (Input → Output)."""

    def __init__(self, doc: Document | None = None, *, recovery: Recovery | None = None,
                 restore_layout: bool = True, theme: str | None = None) -> None:
        super().__init__()
        self.setWindowIcon(app_icon())
        self.setObjectName("NetCanvasMainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings()
        self.doc: Document | None = None
        self.scene: Any = None
        self.view: Any = None
        self.undo_group = QUndoGroup(self)
        self.files = FileActions(self, recovery)
        # ``theme`` (main.py --theme) applies to this run only; View ▸ theme choices are remembered.
        self.theme: Theme = theme_named(theme or str(self.settings.value("theme", "light")))

        # The canvas view is replaced with each document, inside this one central widget: replacing
        # the central widget itself made QMainWindow hand the canvas's width to the docks (54 px of
        # canvas after File ▸ New, saved with the layout).
        self.canvas_holder = QWidget()
        self.canvas_holder.setObjectName("canvas_holder")
        self.canvas_holder.setMinimumSize(MIN_CANVAS_W, MIN_CANVAS_H)
        holder_layout = QVBoxLayout(self.canvas_holder)
        holder_layout.setContentsMargins(0, 0, 0, 0)
        holder_layout.setSpacing(0)
        self.setCentralWidget(self.canvas_holder)
        self.palette_panel = PalettePanel()  # not "palette": that is QWidget.palette()
        self.inspector = InspectorPanel()
        self.problems = ProblemsPanel(self.focus_node)
        self.summary = SummaryPanel()
        self.code = CodePanel()
        self.palette_dock = self._dock("Palette", self.palette_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.inspector_dock = self._dock("Inspector", self.inspector, Qt.DockWidgetArea.RightDockWidgetArea)
        self.problems_dock = self._dock("Problems", self.problems, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.summary_dock = self._dock("Summary", self.summary, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.code_dock = self._dock("Code", self.code, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.problems_dock, self.summary_dock)
        self.tabifyDockWidget(self.summary_dock, self.code_dock)
        self.problems_dock.raise_()
        # Background tabs skip work (see gui.panels.code.shown); catch up when a tab comes forward.
        self.summary_dock.visibilityChanged.connect(lambda on: on and self.summary.catch_up())
        self.code_dock.visibilityChanged.connect(lambda on: on and self.code.catch_up())
        self.palette_panel.layer_activated.connect(self.add_layer)

        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.files.autosave)
        self.autosave_timer.start()

        apply_theme(self.theme)
        self._sync_theme_actions()
        # The Training dock (built lazily when first shown) and the Train menu; set_document rebinds it.
        self.training, self.training_menu = install_training(self)
        self.inspector.prebuild.blocked = while_training(self.training)  # no form built ahead while a run trains
        self.finetune_actions = install_finetune(self)  # Train ▸ Load Pretrained Weights…, Replace Head…
        self.set_document(doc if doc is not None else Document.new())
        self._default_state = self.saveState()  # View ▸ Reset Layout goes back to this
        self._check_restored_layout = False
        if restore_layout:
            self.restore_layout()
        else:
            self.resize(1600, 1000)
        if not self._check_restored_layout:  # no saved panel layout: the defaults, for this window's size
            self._default_dock_sizes()

    # -- construction -------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}_dock")  # saveState() needs stable names
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, slot: Callable[..., Any], shortcut: QKeySequence | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)  # shortcuts work even with the menu bar hidden
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        f = self.files
        self.act_new = self._action("&New", f.new, K.New, "Start a new project")
        self.act_open = self._action("&Open…", f.open_dialog, K.Open, "Open a project file")
        self.act_open_template = self._action("Open &Template…", f.open_template, "Ctrl+Shift+T",
                                              "Start from a built-in network (LeNet, VGG, ResNet …)")
        self.act_import = self._action("&Import torchvision model…", f.import_torchvision, "Ctrl+Shift+I",
                                       "Turn a torchvision classification model into an editable graph")
        self.act_save = self._action("&Save", f.save, K.Save, "Save the project")
        self.act_save_as = self._action("Save &As…", f.save_as, K.SaveAs, "Save the project under a new name")
        self.act_rename = self._action("Rena&me Project…", f.rename_project, None,
                                       "Give the project a new name (the title and the exported class follow)")
        self.act_export_py = self._action("Export to &Python…", f.export_python, "Ctrl+E",
                                          "Write a standalone PyTorch module")
        self.act_export_onnx = self._action("Export to &ONNX…", f.export_onnx, None, "Write an ONNX model")
        self.act_export_generator = self._action("Export &Generator…", lambda: export_generator(self), None,
                                                 "Write a GAN's generator alone (.py or .onnx)")
        self.act_quit = self._action("&Quit", self.close, K.Quit)

        self.act_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence(K.Undo))
        self.act_redo = self.undo_group.createRedoAction(self, "&Redo")
        # The platform's Redo is Ctrl+Y on some Linux platforms and Ctrl+Shift+Z on others: take both everywhere.
        redo_keys = [QKeySequence(K.Redo), QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")]
        self.act_redo.setShortcuts([k for i, k in enumerate(redo_keys) if k not in redo_keys[:i]])
        self.act_cut = self._action("Cu&t", lambda: self._canvas("cut"), K.Cut)
        self.act_copy = self._action("&Copy", lambda: self._canvas("copy"), K.Copy)
        self.act_paste = self._action("&Paste", lambda: self._canvas("paste"), K.Paste)
        self.act_duplicate = self._action("&Duplicate", lambda: self._canvas("duplicate"), "Ctrl+D")
        self.act_delete = self._action("&Delete", lambda: self._canvas("delete_selection"),
                                       QKeySequence(Qt.Key.Key_Delete))
        self.act_delete_reconnect = self._action("Delete and &Reconnect", self.delete_and_reconnect,
                                                 "Ctrl+Shift+Delete",
                                                 "Delete the selection and join its input to what it fed")
        self.act_select_all = self._action("Select &All", self.select_all, K.SelectAll)
        self.act_find = self._action("&Find Node…", self.focus_find, K.Find, "Find a node by id or type")
        self.act_group = self._action("&Group into Block", lambda: self._canvas("group_selection"), "Ctrl+G")
        self.act_palette = self._action("Search &Layers", self.palette_search, "Ctrl+K",
                                        "Jump to the palette's search field")

        self.act_fit = self._action("&Fit to Window", lambda: self._canvas("fit_all"), "Ctrl+0")
        self.act_zoom_in = self._action("Zoom &In", lambda: self._canvas("zoom_by", 1.25), K.ZoomIn)
        self.act_zoom_out = self._action("Zoom &Out", lambda: self._canvas("zoom_by", 0.8), K.ZoomOut)
        self.act_reset_layout = self._action("&Reset Layout", self.reset_layout, None,
                                             "Put the panels back where they were at first start")
        self.act_arrange = self._action("&Auto-arrange", lambda: self._canvas("auto_arrange"), "Ctrl+L",
                                        "Lay the graph out in layers (undoable)")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for name in THEMES:
            action = QAction(f"{name.capitalize()} theme", self, checkable=True)
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            self.theme_group.addAction(action)
            self.theme_actions[name] = action
        self.act_shortcuts = self._action("&Keyboard Shortcuts", self.show_shortcuts, "F1")
        self.act_about = self._action("&About NetCanvas", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.addActions([self.act_new, self.act_open, self.act_open_template, self.act_import])
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(lambda: self.files.populate_recent(self.recent_menu))
        m.addSeparator()
        m.addActions([self.act_save, self.act_save_as, self.act_rename])
        m.addSeparator()
        m.addActions([self.act_export_py, self.act_export_onnx, self.act_export_generator])
        m.aboutToShow.connect(lambda: sync_action(self, self.act_export_generator))  # offered for a GAN only
        m.addSeparator()
        m.addAction(self.act_quit)
        self.file_menu = m

        m = bar.addMenu("&Edit")
        m.addActions([self.act_undo, self.act_redo])
        m.addSeparator()
        m.addActions([self.act_cut, self.act_copy, self.act_paste, self.act_duplicate, self.act_delete,
                      self.act_delete_reconnect])
        m.addSeparator()
        m.addActions([self.act_select_all, self.act_find, self.act_palette, self.act_group])
        self.edit_menu = m

        m = bar.addMenu("&View")
        m.addActions([self.act_fit, self.act_zoom_in, self.act_zoom_out])
        from gui.canvas.minimap import minimap_action  # the canvas's overview of big graphs

        self.act_minimap = minimap_action(self, lambda: self.view)
        m.addAction(self.act_minimap)
        m.addSeparator()
        m.addAction(self.act_arrange)
        m.addSeparator()
        m.addActions(list(self.theme_actions.values()))
        m.addSeparator()
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.summary_dock, self.code_dock):
            m.addAction(dock.toggleViewAction())
        m.addAction(self.act_reset_layout)
        self.view_menu = m

        m = bar.addMenu("&Help")
        m.addActions([self.act_shortcuts, self.act_about])
        self.help_menu = m

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar", self)
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.act_new.setIconText("New")
        self.act_open.setIconText("Open")
        self.act_open_template.setIconText("Templates")
        self.act_save.setIconText("Save")
        self.act_undo.setIconText("Undo")
        self.act_redo.setIconText("Redo")
        self.act_fit.setIconText("Fit")
        self.act_arrange.setIconText("Arrange")
        tb.addActions([self.act_new, self.act_open, self.act_open_template, self.act_save])
        tb.addSeparator()
        tb.addActions([self.act_undo, self.act_redo])
        tb.addSeparator()
        tb.addActions([self.act_fit, self.act_arrange])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        tb.addWidget(spacer)
        self.find_field = QLineEdit()
        self.find_field.setPlaceholderText("Find node  (Ctrl+F)")
        self.find_field.setClearButtonEnabled(True)
        self.find_field.setFixedWidth(240)
        self.find_field.returnPressed.connect(self.find_next)
        tb.addWidget(self.find_field)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.totals_label = QLabel()
        self.problems_icon = QLabel()
        self.problems_label = QLabel()
        self.problems_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.problems_label.installEventFilter(self)
        sb.addPermanentWidget(self.totals_label)
        sb.addPermanentWidget(self.problems_icon)
        sb.addPermanentWidget(self.problems_label)

    # -- the document -------------------------------------------------------------------------
    def set_document(self, doc: Document, scene: Any = None) -> None:
        """Show ``doc``: a new scene (or ``scene``, its canvas already drawn) and view, every panel
        re-bound, the old document released."""
        from gui.canvas import CanvasScene, CanvasView

        old = self.doc
        if old is not None:
            self.undo_group.removeStack(old.undo_stack)
            old.dispose()
        self.doc = doc
        self.undo_group.addStack(doc.undo_stack)
        self.undo_group.setActiveStack(doc.undo_stack)
        old_scene = self.scene
        self.scene = scene if scene is not None else CanvasScene(doc)
        if old_scene is not None and old_scene is not self.scene:
            # Deleted here, on the GUI thread: the scene has no parent and its items and timers form
            # Python cycles with it, so a later collection freed it, on whichever thread that started
            # (a worker's: "QBasicTimer::start: Timers cannot be started from another thread", segfaults).
            old_scene.deleteLater()
        old_view = self.view
        self.view = CanvasView(self.scene)
        self.view.set_theme(self.theme)
        self.view.message.connect(self.show_status)  # refusals and hints from the canvas
        self.view.find_requested.connect(self.focus_find)
        self.view.viewport().installEventFilter(self)  # project files dropped on the canvas
        holder_layout = self.canvas_holder.layout()
        if old_view is not None:
            holder_layout.removeWidget(old_view)
            old_view.hide()
            old_view.deleteLater()
        holder_layout.addWidget(self.view)
        if self.isVisible():  # after a dialog (gallery, import) the keyboard goes to the new canvas
            self.activateWindow()
            self.view.setFocus(Qt.FocusReason.OtherFocusReason)
        for panel in (self.inspector, self.problems, self.summary, self.code):
            panel.set_document(doc)
        self.training.set_document(doc, self.view)
        attach_weight_map(self)  # a document with loaded weights shows its weight map on the new canvas
        doc.analysis_updated.connect(self._show_totals)
        doc.modified_changed.connect(self._modified_changed)
        doc.path_changed.connect(self._update_title)
        self._show_totals(doc.analysis)
        self._update_title()
        if old is not None:
            old.deleteLater()
        QTimer.singleShot(0, self._fit_when_shown)

    def _fit_when_shown(self) -> None:
        """Fit the graph; if that would make the cards unreadable, show its top at a readable zoom."""
        view = self.view
        if view is None:
            return
        view.fit_all()
        if view.zoom() < READABLE_ZOOM:
            r = self.scene.content_rect()
            view.resetTransform()
            view.scale(READABLE_ZOOM, READABLE_ZOOM)
            visible_h = view.viewport().height() / READABLE_ZOOM
            view.centerOn(r.center().x(), r.top() - 24 + visible_h / 2)
            view.zoom_changed.emit(view.zoom())

    def _modified_changed(self, modified: bool) -> None:
        self.files.modified_changed(modified)
        self._update_title()

    def _update_title(self) -> None:
        doc = self.doc
        if doc is None:
            return
        where = f" — {doc.path.name}" if doc.path is not None else ""
        self.setWindowTitle(f"{doc.project.name or 'Untitled'}{where}[*] — {APP_NAME}")
        self.setWindowModified(doc.is_modified())

    def _show_totals(self, a: Analysis) -> None:
        at_least = "≥ " if a.partial else ""  # the layers at and after an error are not counted
        self.totals_label.setText(f"{at_least}{human(a.total_params)} params  ·  {at_least}{human(a.macs)} MACs  ·  "
                                  f"{len(self.doc.graph.nodes) if self.doc else 0} nodes")
        self.totals_label.setToolTip("Partial totals: the layers at and after an error are not counted until it is "
                                     "fixed" if a.partial else "")
        errors = sum(1 for d in a.diagnostics if d.severity is Severity.ERROR)
        warnings = sum(1 for d in a.diagnostics if d.severity is Severity.WARNING)
        if errors or warnings:
            icon = severity_icon("error" if errors else "warning", self.theme)
            self.problems_icon.setPixmap(icon.pixmap(14, 14))
            self.problems_icon.show()
            self.problems_label.setText(
                f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}")
        else:
            self.problems_icon.hide()
            self.problems_label.setText("No problems")
        self.problems_label.setToolTip("Show the problems panel")

    # -- actions ------------------------------------------------------------------------------
    def _canvas(self, method: str, *args: Any) -> Any:
        fn = getattr(self.view, method, None)
        if fn is None:
            if method == "cut":  # a cut is a copy then a delete
                self._canvas("copy")
                return self._canvas("delete_selection")
            return None
        return fn(*args)

    def select_all(self) -> None:
        if self.doc is not None and self.view is not None:
            self.view.select_nodes(list(self.doc.graph.nodes))

    def delete_and_reconnect(self) -> None:
        """Edit ▸ Delete and Reconnect: one undoable edit, or the reason it does not fit in the status bar."""
        if self.doc is not None and self.scene is not None:
            ids = self.scene.selected_node_ids()
            problem = commands.try_push(self.doc, lambda: commands.DeleteAndReconnectCommand(self.doc, ids))
            if problem:
                self.show_status(f"Cannot delete and reconnect: {problem}")

    def focus_node(self, node_id: str) -> None:
        """Select ``node_id`` on the canvas and centre the view on it (problems panel, find)."""
        if self.view is not None and self.doc is not None and node_id in self.doc.graph.nodes:
            self.view.select_nodes([node_id])
            self.view.center_on_node(node_id)

    def focus_find(self) -> None:
        self.find_field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.find_field.selectAll()

    def find_next(self) -> bool:
        text = self.find_field.text().strip()
        if not text or self.view is None:
            return False
        found = bool(self.view.find_and_focus(text))
        if not found:
            self.show_status(f"No node matches “{text}” (ids and types are searched)")
        return found

    def palette_search(self) -> None:
        if not self.palette_dock.isVisible():
            self.palette_dock.show()
        self.palette_panel.focus_search()

    def add_layer(self, type_name: str) -> str | None:
        """Add ``type_name`` connected after the single selected node, or at the view centre.

        Returns the refusal message (shown in the status bar), or ``None`` when added; the new
        node becomes the selection, so repeated double-clicks build a chain.
        """
        doc, view = self.doc, self.view
        if doc is None or view is None:
            return "no document"
        sel = [i for i in doc.selection if i in doc.graph.nodes]
        after = sel[0] if len(sel) == 1 else None
        pos = None
        if after is None:
            from gui.canvas.metrics import NODE_H, NODE_W

            c = view.mapToScene(view.viewport().rect().center())
            pos = (round(c.x() - NODE_W / 2), round(c.y() - NODE_H / 2))
        holder: list[Any] = []

        def make() -> Any:
            cmd = commands.AddNodeCommand(doc, type_name, pos=pos, connect_from=after)
            holder.append(cmd)
            return cmd

        problem = commands.try_push(doc, make)
        if problem:
            self.show_status(f"Cannot add {type_name}: {problem}")
            return problem
        new_id = holder[0].node_id
        view.select_nodes([new_id])
        view.center_on_node(new_id)
        self.show_status(f"Added {new_id}" + (f" after {after}" if after else ""))
        return None

    # -- theme --------------------------------------------------------------------------------
    def set_theme(self, name: str) -> None:
        """Switch to the light or dark theme everywhere, and remember it."""
        self.theme = theme_named(name)
        apply_theme(self.theme)
        if self.view is not None:
            self.view.set_theme(self.theme)
        self.palette_panel.set_theme(self.theme)
        self.code.set_theme(self.theme)
        self.training.set_theme(self.theme)
        if self.doc is not None:
            self.inspector.set_document(self.doc)
            self.problems.diagnostics = None  # force the rows (and their icons) to be rebuilt
            self.problems.show_analysis(self.doc.analysis)
            self.summary.show_analysis(self.doc.analysis)
            self._show_totals(self.doc.analysis)
        self.settings.setValue("theme", self.theme.name)
        self._sync_theme_actions()

    def _sync_theme_actions(self) -> None:
        for name, action in self.theme_actions.items():
            action.setChecked(name == self.theme.name)

    # -- messages and questions (tests replace these) ----------------------------------------
    def show_status(self, text: str, ms: int = 6000) -> None:
        self.statusBar().showMessage(text, ms)

    def show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def ask_unsaved(self) -> QMessageBox.StandardButton:
        name = self.doc.project.name if self.doc is not None else "the project"
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        return QMessageBox.question(self, "Unsaved changes", f"Save the changes to “{name}” first?", buttons,
                                    QMessageBox.StandardButton.Save)

    def ask_restore(self, text: str) -> QMessageBox.StandardButton:
        return QMessageBox.question(self, "Restore unsaved work", text,
                                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                    QMessageBox.StandardButton.Yes)

    def ask_project_name(self, current: str) -> str | None:
        """File ▸ Rename Project…'s question; None when cancelled."""
        from PySide6.QtWidgets import QInputDialog

        text, ok = QInputDialog.getText(self, "Rename project", "Project name:", QLineEdit.EchoMode.Normal, current)
        return text if ok else None

    def project_renamed(self) -> None:
        """The project's name changed (rename, its undo, a first Save As): the title, the inspector's
        overview and the generated code's class name follow."""
        self._update_title()
        if self.doc is not None:
            self.inspector.set_document(self.doc)
            self.code.set_document(self.doc)

    def run_busy(self, label: str, job: Callable[[], Any], target: Path | None = None) -> bool:
        """Run ``job`` in a thread behind a modal busy dialog; errors become a message box that names
        ``target`` (the file being written), once."""
        dialog = QProgressDialog(label, "", 0, 0, self)
        dialog.setCancelButton(None)
        dialog.setWindowTitle(APP_NAME)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(300)
        thread = _BusyThread(job, self)
        result: list[tuple[bool, str]] = []
        loop = QEventLoop()
        # Both connections are queued (the thread emits): they are delivered inside loop.exec(),
        # so a job that finishes at once still ends the loop.
        thread.finished_with.connect(lambda ok, msg: result.append((ok, msg)))
        thread.finished.connect(loop.quit)
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        # Collect garbage here, on the GUI thread, and not while the job runs: a collection during it
        # (triggered on either thread) would finalize Qt wrappers and torch objects beside the job's own
        # torch work, which crashed the ONNX export at random. The GUI thread only waits meanwhile.
        gc.collect()
        hold_gc()
        try:
            thread.start()
            loop.exec()
            thread.wait()
        finally:
            release_gc()
            QApplication.restoreOverrideCursor()
            dialog.reset()
            dialog.deleteLater()
        ok, message = result[0] if result else (False, "the task stopped without a result")
        if not ok:
            from gui.files import file_problem

            self.show_error("Export failed", file_problem(target, message) if target is not None else message)
        return ok

    def show_shortcuts(self) -> None:
        """Help ▸ Keyboard Shortcuts: every menu of the menu bar (Train included), read when asked."""
        from gui.dialogs.shortcuts import ShortcutsDialog, menu_bar_rows

        # Undo/Redo read "Undo Add conv1" in the menu; the command is "Undo" whatever comes next.
        ShortcutsDialog(menu_bar_rows(self.menuBar(), {self.act_undo: "Undo", self.act_redo: "Redo"}), self).exec()

    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}",
                          f"<h3>{APP_NAME}</h3><p>Draw neural networks and see every shape, receptive field, "
                          "parameter and MAC as you build; compile them to PyTorch and train them.</p>")

    # -- drag a project file onto the window -------------------------------------------------
    # True while a project file is dragged over the canvas: the canvas view never saw that drag's
    # enter, so its leave is ours as well (the view would warn "drag leave received before drag enter").
    _file_drag_on_canvas = False

    @staticmethod
    def _project_url(event: QDragEnterEvent | QDropEvent) -> Path | None:
        md = event.mimeData()
        if not md.hasUrls():
            return None
        for url in md.urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in OPENABLE_SUFFIXES:
                return Path(url.toLocalFile())
        return None

    def _refuse_drop(self, event: QDragEnterEvent | QDropEvent) -> bool:
        """Say in the status bar why dropped files cannot be opened (a .py, an image …); True if refused."""
        from gui.files import drop_refusal

        md = event.mimeData()
        if not md.hasUrls():
            return False
        reason = drop_refusal([u.toLocalFile() if u.isLocalFile() else None for u in md.urls()])
        if reason is None:
            return False
        self.show_status(reason, 10_000)
        event.ignore()
        return True

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._project_url(event) is not None:
            event.acceptProposedAction()
        elif not self._refuse_drop(event):
            super().dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._project_url(event)
        if path is None:
            if not self._refuse_drop(event):
                super().dropEvent(event)
            return
        event.acceptProposedAction()
        QTimer.singleShot(0, lambda: self.files.open_path(path))  # not inside the drag's event loop

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if watched is self.problems_label and kind == QEvent.Type.MouseButtonRelease:
            self.problems_dock.show()
            self.problems_dock.raise_()
            return True
        if self.view is not None and watched is self.view.viewport() and kind == QEvent.Type.DragLeave \
                and self._file_drag_on_canvas:
            self._file_drag_on_canvas = False
            return True
        if self.view is not None and watched is self.view.viewport() and kind in (
                QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            if self._project_url(event) is not None:  # type: ignore[arg-type]
                self._file_drag_on_canvas = kind != QEvent.Type.Drop
                if kind == QEvent.Type.Drop:
                    self.dropEvent(event)  # type: ignore[arg-type]
                else:
                    event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
            if kind != QEvent.Type.DragMove and self._refuse_drop(event):  # type: ignore[arg-type]
                return True  # said why once on entering, not on every move
        return super().eventFilter(watched, event)

    # -- persistence --------------------------------------------------------------------------
    def restore_layout(self) -> None:
        """The window's size and panels as the user left them; checked once shown (see showEvent)."""
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(self._first_start_size())
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
            self._check_restored_layout = True

    def _first_start_size(self) -> QSize:
        """1600×1000, or what fits the screen's free area with its frame (the title bar, a task bar)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            return QSize(1600, 1000)
        free = screen.availableGeometry()
        frame = 48  # a title bar and borders, before the window manager has told us its own
        return QSize(min(1600, free.width() - 16), min(1000, free.height() - frame))

    def reset_layout(self) -> None:
        """View ▸ Reset Layout: every panel back in its first-start place and size."""
        self.restoreState(self._default_state)
        for dock in (self.palette_dock, self.inspector_dock, self.problems_dock, self.summary_dock, self.code_dock):
            dock.setFloating(False)
            dock.show()
        self._default_dock_sizes()
        self.problems_dock.raise_()
        self.settings.remove("window_state")

    def _default_dock_sizes(self) -> None:
        """The first-start dock sizes, narrower on a small screen so the canvas keeps well over
        MIN_CANVAS_SHARE of the window."""
        w, h = self.width(), self.height()
        self.resizeDocks([self.palette_dock, self.inspector_dock], [min(230, int(0.16 * w)), min(330, int(0.22 * w))],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.problems_dock], [min(200, int(0.22 * h))], Qt.Orientation.Vertical)

    def canvas_is_cramped(self) -> bool:
        """True when the canvas has less than MIN_CANVAS_SHARE of the window's width or height."""
        holder = self.canvas_holder
        return (holder.width() < MIN_CANVAS_SHARE * self.width()
                or holder.height() < MIN_CANVAS_SHARE * self.height())

    def _discard_cramped_layout(self) -> None:
        layout = self.layout()
        if layout is not None:
            layout.activate()  # measure the laid-out canvas, not a size from before the first layout pass
        if self.canvas_is_cramped():
            # Sizes and places go back to the defaults; panels the user had closed stay closed.
            closed = [d for d in self.findChildren(QDockWidget) if d.isHidden()]
            self.reset_layout()
            for dock in closed:
                dock.hide()
            self.show_status("The saved panel layout left too little room for the canvas: "
                             "the default layout is back (View ▸ Reset Layout)", 10_000)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._check_restored_layout:  # once, after the restored layout has been laid out
            self._check_restored_layout = False
            QTimer.singleShot(0, self._discard_cramped_layout)

    def save_layout(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        # First "save changes?" (cancel: nothing happens, a run goes on), then "stop training?" (cancel:
        # nothing happens either); only then is the run stopped, keeping its checkpoint.
        if not self.files.maybe_save():
            event.ignore()
            return
        # Hidden before the wait for the training panel's threads: the window goes at once, not when a
        # data set still loading is done (seconds for a large one), which looked frozen.
        if not self.training.confirm_close(before_wait=self.hide):
            event.ignore()
            return
        self.files.cancel_open()  # a big file still being read or drawn
        self.save_layout()
        self.autosave_timer.stop()
        self.summary.shutdown()
        self.code.shutdown()
        self.files.recovery.stop()
        if self.doc is not None:
            self.doc.dispose()
        event.accept()


__all__ = ["MainWindow"]
