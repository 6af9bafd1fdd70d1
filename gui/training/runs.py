"""The runs list: every run folder under the runs directory, overlaid curves, comparison, resume.

A run folder is the engine's (:mod:`core.training.runs`): ``config.json``, ``graph.json``,
``metrics.csv``, ``run.json``, ``checkpoints/`` and, once the user names the run, ``label.json``.
Each run is labelled by what sets it apart from the other runs in the list (``lr 0.02 · conv1
12 ch``), found with the same comparison the Compare view shows (:func:`core.explain.diff_configs`
and :func:`core.explain.diff_graphs`); double-click a label (or F2, or Rename) to give the run a name
of your own. Ticking runs overlays their curves on the live plots; with two ticked, Compare shows
what differed — the training settings and the graph (nodes added, removed, changed) — and can
select the changed nodes on the canvas. A run can be resumed, or its weights loaded into the
editor for the next training start and for predictions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.explain import GraphDiff, diff_configs, diff_graphs
from core.training.runs import RunFolder, RunFolderError
from gui.theme import current_theme
from gui.training.plots import OVERLAY_COLOURS, legend_above, short_label
from gui.training.run_records import RunRecord, Scan, read_run, row_of, run_labels, scan
from gui.training.staged import GAP_MS

COLUMNS = ("Run", "Status", "Epochs", "Best val", "Dataset", "Started")
_PATH_ROLE = Qt.ItemDataRole.UserRole + 1
_LABEL_ROLE = Qt.ItemDataRole.UserRole + 2  # the label shown before an edit (an edit is a change of text)
COMPARE_HINT = "Tick two runs to compare them"
LABEL_COLUMN_MAX = 360  # px; a longer label is elided in the list (Compare shows every difference)
WHERE_WIDTH = 220  # px for the runs folder beside the buttons (elided in the middle; whole in its tooltip)
READ_SLICE_S = 0.012  # run folders not yet read are read this long per event-loop turn (the list fills as they come)


_BUNDLED = Path(__file__).resolve().parents[2] / "resources"  # the demo and examples that ship with the app


def default_runs_root(doc: Any) -> Path:
    """``runs/`` next to the project file; in the user's data folder for an unsaved project or one
    of the app's own examples (their folder is the app's, not the user's)."""
    if doc is not None and doc.path is not None:
        folder = Path(doc.path).resolve().parent
        if folder != _BUNDLED and _BUNDLED not in folder.parents:
            return folder / "runs"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".netcanvas") / "runs"


# ------------------------------------------------------------------------------------ comparison


def compare_html(a: RunRecord, b: RunRecord, diff: GraphDiff, labels: dict[str, str] | None = None) -> str:
    """The comparison of two runs as HTML for the text browser (``labels``: run folder → its label)."""
    t = current_theme()
    rows = diff_configs(a.config, b.config)
    name_a, name_b = ((labels or {}).get(str(r.path)) or short_label(r.name) for r in (a, b))
    out = [f"<p style='margin:2px 0'><b>A</b> {_escape(name_a)} &nbsp;→&nbsp; <b>B</b> {_escape(name_b)}</p>"]
    out.append("<p style='margin:8px 0 2px 0'><b>Training settings</b></p>")
    if rows:
        out.append("<table cellspacing=0 cellpadding=3>")
        out.append(f"<tr style='color:{t.text_dim}'><td>setting</td><td>A</td><td>B</td></tr>")
        for key, x, y in rows:
            out.append(f"<tr><td><b>{key}</b></td><td>{_cell(x)}</td><td style='color:{t.accent}'>{_cell(y)}</td></tr>")
        out.append("</table>")
    else:
        out.append(f"<p style='color:{t.text_dim}'>identical</p>")
    if a.dataset.get("name") != b.dataset.get("name"):
        out.append(f"<p>dataset {a.dataset.get('name')} → <b>{b.dataset.get('name')}</b></p>")
    out.append("<p style='margin:8px 0 2px 0'><b>Graph</b></p>")
    if diff.empty:
        out.append(f"<p style='color:{t.text_dim}'>identical</p>")
    for nid in diff.added:
        out.append(f"<div style='color:{t.ok}'>+ {nid} <span style='color:{t.text_dim}'>added</span></div>")
    for nid in diff.removed:
        out.append(f"<div style='color:{t.error}'>− {nid} <span style='color:{t.text_dim}'>removed</span></div>")
    for nid, notes in diff.changed.items():
        out.append(f"<div style='color:{t.warning}'>~ {nid}: <span style='color:{t.text}'>{'; '.join(notes)}"
                   "</span></div>")
    out.append("<p style='margin:8px 0 2px 0'><b>Results</b></p><table cellspacing=0 cellpadding=3>")
    out.append(f"<tr style='color:{t.text_dim}'><td></td><td>epochs</td><td>best val</td>"
               "<td>last train loss</td><td>status</td></tr>")
    for tag, rec in (("A", a), ("B", b)):
        last = rec.metrics[-1] if rec.metrics else {}
        out.append(f"<tr><td><b>{tag}</b></td><td>{len(rec.metrics)}</td>"
                   f"<td>{rec.best_text}</td><td>{_cell(last.get('train_loss'))}</td>"
                   f"<td>{rec.status}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _LabelColumnOnly(QStyledItemDelegate):
    """Only the Run column is edited (its label); the others are figures of the run."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,  # Qt override
                     index: QModelIndex) -> QWidget | None:
        if index.column() != 0:
            return None
        return super().createEditor(parent, option, index)


class RunsPanel(QWidget):
    """The list of runs with overlay checkboxes and editable labels, and the comparison of two of them."""

    overlays_changed = Signal(dict)  # run label -> metrics rows (the label is the legend's text)
    resume_requested = Signal(str)  # run folder
    load_weights_requested = Signal(str)
    highlight_requested = Signal(list)  # node ids to select on the canvas

    def __init__(self, root: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = root
        self.records: dict[str, RunRecord] = {}
        self.labels: dict[str, str] = {}  # run folder -> its label in the list
        self.compared: tuple[str, str] | None = None  # the run folders the comparison shows (A, B)
        self._row_values: dict[str, tuple[tuple[str, ...], bool, str | None]] = {}  # what each row shows
        self.reading = 0  # run folders left to read (on the next turns) since the last refresh
        self._reading_on = False  # a turn to read them is due
        self.diff: GraphDiff | None = None
        t = current_theme()
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        # The label is what tells runs apart: its column is as wide as the labels (up to a limit), the
        # figures are as wide as theirs, and the last column takes what is left.
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        self.tree.setEditTriggers(QTreeWidget.EditTrigger.DoubleClicked | QTreeWidget.EditTrigger.EditKeyPressed)
        self._delegate = _LabelColumnOnly(self.tree)
        self.tree.setItemDelegate(self._delegate)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.setToolTip("Tick runs to overlay their curves, tick two to compare them; double-click a "
                             "run's label (or F2) to rename it")
        self.b_refresh = QPushButton("Refresh")
        self.b_compare = QPushButton("Compare")
        self.b_rename = QPushButton("Rename")
        self.b_resume = QPushButton("Resume")
        self.b_load = QPushButton("Load weights")
        self.b_highlight = QPushButton("Select changed nodes")
        self.b_refresh.clicked.connect(lambda: self.refresh(fresh=True))
        self.b_compare.clicked.connect(self.compare_ticked)
        self.b_rename.clicked.connect(self.edit_label)
        self.b_resume.clicked.connect(lambda: self._emit_for_selected(self.resume_requested))
        self.b_load.clicked.connect(lambda: self._emit_for_selected(self.load_weights_requested))
        self.b_highlight.clicked.connect(self._highlight)
        self.b_refresh.setToolTip("Read every run folder again, also files another program changed in place")
        self.b_rename.setToolTip("Give the selected run a name of your own (empty: label it by what differs)")
        self.b_resume.setToolTip("Continue the selected run from its last checkpoint")
        self.b_load.setToolTip("Use the run's weights for predictions and as the start of the next run")
        self.b_highlight.setToolTip("Select, on the canvas, the nodes that were added or changed")
        rename_key = QShortcut(QKeySequence(Qt.Key.Key_F2), self.tree)
        rename_key.setContext(Qt.ShortcutContext.WidgetShortcut)  # not while the label's editor has the keys
        rename_key.activated.connect(self.edit_label)
        buttons = QHBoxLayout()
        for b in (self.b_refresh, self.b_compare, self.b_rename, self.b_resume, self.b_load):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.where = QLabel("")
        self.where.setStyleSheet(f"color: {t.text_dim};")
        buttons.addWidget(self.where)
        self.problem = QLabel("")  # a name that could not be saved, in the user's words
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {t.error};")
        self.problem.hide()
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.details, 1)
        hl = QHBoxLayout()
        hl.addStretch(1)
        hl.addWidget(self.b_highlight)
        lv.addLayout(hl)
        # The overlay plot is made a turn after the list is first shown (or when first asked for): made
        # and painted in the same turn as the rest, the tab's first open held the window 0.12-0.24 s.
        self._overlay: pg.PlotWidget | None = None
        self._overlay_runs: dict[str, list[dict[str, float | None]]] = {}  # what it shows (or will)
        self._overlay_box = QWidget()
        self._overlay_layout = QVBoxLayout(self._overlay_box)
        self._overlay_layout.setContentsMargins(0, 0, 0, 0)
        self._overlay_box.setMinimumHeight(120)
        self.overlays_changed.connect(self._draw_overlay)
        left = QSplitter(Qt.Orientation.Vertical)
        upper = QWidget()
        uv = QVBoxLayout(upper)
        uv.setContentsMargins(0, 0, 0, 0)
        uv.addLayout(buttons)
        uv.addWidget(self.tree, 1)
        uv.addWidget(self.problem)
        left.addWidget(upper)
        left.addWidget(self._overlay_box)
        left.setSizes([200, 240])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(lower)
        split.setSizes([640, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)
        self._selection_changed()

    @property
    def overlay(self) -> pg.PlotWidget:
        """The plot of the ticked runs' validation accuracy (made now if it was not yet)."""
        if self._overlay is None:
            self._overlay = self._make_overlay()
            self._draw_overlay(self._overlay_runs)
        return self._overlay

    def _make_overlay(self) -> pg.PlotWidget:
        t = current_theme()
        plot = pg.PlotWidget(background=t.panel, enableMenu=False)
        item = plot.getPlotItem()
        # Its right-click menus on the next turn: a third of the plot's making.
        QTimer.singleShot(0, plot, lambda: item.setMenuEnabled(True))
        item.setTitle(f"<span style='color:{t.text};font-weight:600'>Validation accuracy of the ticked runs</span>",
                      size="9pt")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "epoch", color=t.text_dim)
        item.setLabel("left", "%", color=t.text_dim)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen(t.border))
            item.getAxis(axis).setTextPen(pg.mkPen(t.text_dim))
            # Pictures of text, replayed at every repaint (each time the tab is shown): cached as pixmaps.
            item.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        legend_above(item, t)
        self._overlay_layout.addWidget(plot)
        return plot

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        super().showEvent(event)
        if self._overlay is None:
            QTimer.singleShot(GAP_MS, self, lambda: self.overlay)

    def set_root(self, root: Path) -> None:
        self.root = root
        self.refresh()

    def refresh(self, fresh: bool = False) -> None:
        """Read the runs folder again and show it: the folders that changed, or (``fresh``: the Refresh
        button) all of them. The rows of runs still there are kept and only what changed in them is set
        (a run's start and end refresh the list: rebuilt with ~150 runs, it held the GUI thread 50-75 ms
        during a run, issue 11's soak)."""
        ticked = set(self.ticked())
        selected = {i.data(0, _PATH_ROLE) for i in self.tree.selectedItems()}
        found = scan(self.root, fresh, time.perf_counter() + READ_SLICE_S) if self.root is not None else Scan([])
        records = found.records
        self.records = {str(r.path): r for r in records}
        self.labels = run_labels(records)
        folder = str(self.root) if self.root is not None else ""
        self.where.setText(self.where.fontMetrics().elidedText(folder, Qt.TextElideMode.ElideMiddle, WHERE_WIDTH))
        self.where.setToolTip(f"Runs are kept in {folder}" if folder else "")
        shown = [it for i in range(self.tree.topLevelItemCount()) if (it := self.tree.topLevelItem(i)) is not None]
        rows = {row.data(0, _PATH_ROLE): row for row in shown}
        wanted = [str(r.path) for r in records]
        self.tree.blockSignals(True)
        if [p for p in rows if p in self.records] != [p for p in wanted if p in rows]:
            self.tree.clear()  # the kept runs would change places: made anew
            rows = {}
            self._row_values.clear()
        for old in reversed(shown):  # runs whose folders went
            if old.data(0, _PATH_ROLE) not in self.records and rows:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(old))
        t = current_theme()
        for index, rec in enumerate(records):
            key = str(rec.path)
            item = rows.get(key)
            now = row_of(rec, self.labels[key], t)
            if item is None:  # filled before it joins the list: a lone item's setters tell no view
                item = QTreeWidgetItem()
                item.setData(0, _PATH_ROLE, key)
                item.setToolTip(0, key)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEditable)
                item.setCheckState(0, Qt.CheckState.Checked if key in ticked else Qt.CheckState.Unchecked)
                self._show_row(item, now)
                self._row_values[key] = now
                self.tree.insertTopLevelItem(index, item)
                item.setSelected(key in selected)
            elif self._row_values.get(key) != now:  # compared in Python: each Qt call waits for a run's thread
                self._show_row(item, now)
                self._row_values[key] = now
        self.tree.blockSignals(False)
        for col in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(col)
        self.tree.setColumnWidth(0, min(self.tree.columnWidth(0), LABEL_COLUMN_MAX))
        self._selection_changed()
        self._emit_overlays()
        self.reading = found.unread
        if found.unread:  # the rest on the next turns, the window painting and taking input between
            self.where.setText(f"Reading {found.unread} more run{'s' * (found.unread != 1)}…")
            if not self._reading_on:
                self._reading_on = True
                QTimer.singleShot(GAP_MS, self, self._read_on)

    def _read_on(self) -> None:
        self._reading_on = False
        self.refresh()

    @staticmethod
    def _show_row(item: QTreeWidgetItem, row: tuple[tuple[str, ...], bool, str | None]) -> None:
        """Put a row's values (:func:`~gui.training.run_records.row_of`) in its item, setting only what differs."""
        texts, italic, colour = row
        for col, text in enumerate(texts):
            if item.text(col) != text:
                item.setText(col, text)
        item.setData(0, _LABEL_ROLE, texts[0])
        if item.font(0).italic() != italic:  # the user's own name reads as such
            font = item.font(0)
            font.setItalic(italic)
            item.setFont(0, font)
        item.setData(1, Qt.ItemDataRole.ForegroundRole, QColor(colour) if colour else None)

    def update_run(self, path: Path) -> None:
        """Re-read one run folder (the running one, after an epoch) without rescanning the others."""
        key = str(path)
        if key not in self.records:
            self.refresh()
            return
        rec = read_run(path)
        self.records[key] = rec
        item = self.item_for(key)
        row = row_of(rec, self.labels.get(key, rec.name), current_theme())
        if item is not None and self._row_values.get(key) != row:  # its status, epochs and best, as refresh shows them
            self.tree.blockSignals(True)
            self._show_row(item, row)
            self.tree.blockSignals(False)
            self._row_values[key] = row
        if key in self.ticked():
            self._emit_overlays()

    def ticked(self) -> list[str]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.checkState(0) == Qt.CheckState.Checked:
                out.append(item.data(0, _PATH_ROLE))
        return out

    def set_ticked(self, paths: list[str]) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setCheckState(0, Qt.CheckState.Checked if item.data(0, _PATH_ROLE) in paths
                               else Qt.CheckState.Unchecked)

    def selected(self) -> list[RunRecord]:
        return [self.records[p] for p in (i.data(0, _PATH_ROLE) for i in self.tree.selectedItems())
                if p in self.records]

    def select(self, paths: list[str]) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setSelected(item.data(0, _PATH_ROLE) in paths)

    def item_for(self, path: str | Path) -> QTreeWidgetItem | None:
        """The list row of a run folder."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, _PATH_ROLE) == str(path):
                return item
        return None

    # ------------------------------------------------------------------------------- comparison

    def compare(self, a: RunRecord, b: RunRecord) -> GraphDiff:
        """Show what differs from run ``a`` (older) to run ``b``."""
        self.diff = diff_graphs(a.graph, b.graph)
        self.compared = (str(a.path), str(b.path))
        self.details.setHtml(compare_html(a, b, self.diff, self.labels))
        self.b_highlight.setEnabled(bool(self.diff.added or self.diff.changed))
        return self.diff

    def compare_ticked(self) -> None:
        """Compare the two ticked runs, the older as A (the button is disabled unless exactly two are ticked)."""
        runs = [self.records[p] for p in self.ticked() if p in self.records]
        if len(runs) == 2:
            a, b = sorted(runs, key=lambda r: (r.started, r.name))
            self.compare(a, b)

    def _highlight(self) -> None:
        if self.diff is not None:
            self.highlight_requested.emit(list(self.diff.added) + list(self.diff.changed))

    # ----------------------------------------------------------------------------------- labels

    def edit_label(self) -> None:
        """Start editing the label of the current run (Rename, F2)."""
        item = self.tree.currentItem() or next(iter(self.tree.selectedItems()), None)
        if item is not None:
            self.tree.editItem(item, 0)

    def rename(self, path: str | Path, label: str) -> bool:
        """Name a run ``label`` (saved in its folder); an empty label returns to the automatic one."""
        self._row_values.pop(str(path), None)  # its row was edited in place: set it again whatever it shows
        try:
            RunFolder(Path(path)).write_label(label)
        except RunFolderError as exc:
            self.problem.setText(str(exc))
            self.problem.show()
            self.refresh()  # the row shows the label the run still has
            return False
        self.problem.hide()
        self.refresh()
        return True

    # -------------------------------------------------------------------------------- internals

    def _emit_for_selected(self, signal: Any) -> None:
        sel = self.selected()
        if len(sel) == 1:
            signal.emit(str(sel[0].path))

    def _selection_changed(self) -> None:
        sel = self.selected()
        self.b_rename.setEnabled(len(sel) == 1)
        self.b_resume.setEnabled(len(sel) == 1 and sel[0].has_checkpoint)
        self.b_load.setEnabled(len(sel) == 1 and sel[0].has_checkpoint)
        self.b_highlight.setEnabled(self.diff is not None and bool(self.diff.added or self.diff.changed))
        self._sync_compare()

    def _sync_compare(self) -> None:
        """Compare works on the ticked runs: enabled with exactly two, else it says what to do."""
        n = len(self.ticked())
        self.b_compare.setEnabled(n == 2)
        if n == 2:
            self.b_compare.setToolTip("What differed between the two ticked runs: settings and graph")
            self.details.setPlaceholderText("Press Compare to see what differed")
        else:
            self.b_compare.setToolTip(f"{COMPARE_HINT} ({n} ticked now)")
            self.details.setPlaceholderText(f"{COMPARE_HINT} ({n} ticked now)")

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column != 0:
            return
        path = item.data(0, _PATH_ROLE)
        if item.text(0) != item.data(0, _LABEL_ROLE) and path in self.records:
            # An edited label (an empty one returns to the automatic label). The list is rebuilt after
            # the editor has let go of the row, not inside its commit.
            text = item.text(0)
            QTimer.singleShot(0, self, lambda: self.rename(path, text))
            return
        self._sync_compare()
        self._emit_overlays()

    def _draw_overlay(self, runs: dict[str, list[dict[str, float | None]]]) -> None:
        self._overlay_runs = runs
        if self._overlay is None:
            return  # drawn when the plot is made
        item = self._overlay.getPlotItem()
        item.clear()
        for i, (label, rows) in enumerate(runs.items()):
            pts = [(float(r["epoch"] or 0), 100 * float(r["val_acc"] if r.get("val_acc") is not None
                                                          else r.get("train_acc") or 0)) for r in rows]
            if not pts:
                continue
            colour = QColor(OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)])
            item.plot([p[0] for p in pts], [p[1] for p in pts], pen=pg.mkPen(colour, width=2), symbol="o",
                      symbolSize=6, symbolBrush=colour, symbolPen=None, name=label)

    def _emit_overlays(self) -> None:
        self.overlays_changed.emit({self.labels.get(p, self.records[p].name): self.records[p].metrics
                                    for p in self.ticked() if p in self.records})


__all__ = ["RunsPanel", "compare_html", "default_runs_root"]
