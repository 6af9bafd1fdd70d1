"""The runs list: every run folder under the runs directory, overlaid curves, comparison, resume.

A run folder is the engine's (:mod:`core.training.runs`): ``config.json``, ``graph.json``,
``metrics.csv``, ``run.json`` and ``checkpoints/``. Ticking runs overlays their validation
curves on the live plots; selecting two and pressing Compare shows what differed — the training
settings and the graph (nodes added, removed, changed, from :func:`core.explain.diff_graphs`) —
and can select the changed nodes on the canvas. A run can be resumed, or its weights loaded
into the editor for the next training start and for predictions.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.explain import GraphDiff, diff_configs, diff_graphs
from core.training.runs import RunFolder, RunFolderError
from gui.theme import current_theme
from gui.training.plots import OVERLAY_COLOURS, short_label

COLUMNS = ("Run", "Status", "Epochs", "Best val acc", "Dataset", "Started")
_PATH_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class RunRecord:
    """What the runs list knows about one run folder."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)  # the training section
    dataset: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)  # the project's "graph" object
    metrics: list[dict[str, float | None]] = field(default_factory=list)
    status: str = "running"
    started: float = 0.0

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def best_val_acc(self) -> float | None:
        values = [r.get("val_acc") for r in self.metrics if r.get("val_acc") is not None]
        return max(values) if values else None  # type: ignore[type-var]

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / "checkpoints" / "last.pt").is_file()

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        folder = RunFolder(path)
        rec = cls(path=path)
        try:
            cfg = folder.read_json("config.json")
            rec.config = dict(cfg.get("training", {}))
            rec.dataset = dict(cfg.get("dataset", {}))
        except (RunFolderError, AttributeError):
            pass
        try:
            project = folder.read_json("graph.json")
            rec.graph = dict(project.get("graph", {})) if isinstance(project, dict) else {}
        except RunFolderError:
            pass
        try:
            rec.metrics = folder.read_metrics()
        except RunFolderError:
            rec.metrics = []
        try:
            rec.status = str(folder.read_json("run.json").get("status", "running"))
        except (RunFolderError, AttributeError):
            rec.status = "running"
        try:
            rec.started = (path / "config.json").stat().st_mtime
        except OSError:
            rec.started = 0.0
        return rec


def scan_runs(root: Path) -> list[RunRecord]:
    """Every run folder (one holding config.json) directly under ``root``, newest first."""
    if not root.is_dir():
        return []
    found = [RunRecord.read(p) for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    return sorted(found, key=lambda r: (r.started, r.name), reverse=True)


def compare_html(a: RunRecord, b: RunRecord, diff: GraphDiff) -> str:
    """The comparison of two runs as HTML for the text browser."""
    t = current_theme()
    rows = diff_configs(a.config, b.config)
    out = [f"<p style='margin:2px 0'><b>A</b> {short_label(a.name)} &nbsp;→&nbsp; <b>B</b> {short_label(b.name)}</p>"]
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
    out.append(f"<tr style='color:{t.text_dim}'><td></td><td>epochs</td><td>best val acc</td>"
               "<td>last train loss</td><td>status</td></tr>")
    for tag, rec in (("A", a), ("B", b)):
        last = rec.metrics[-1] if rec.metrics else {}
        best = rec.best_val_acc
        out.append(f"<tr><td><b>{tag}</b></td><td>{len(rec.metrics)}</td>"
                   f"<td>{'–' if best is None else f'{best:.2%}'}</td><td>{_cell(last.get('train_loss'))}</td>"
                   f"<td>{rec.status}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class RunsPanel(QWidget):
    """The list of runs with overlay checkboxes, and the comparison of two of them."""

    overlays_changed = Signal(dict)  # run name -> metrics rows
    resume_requested = Signal(str)  # run folder
    load_weights_requested = Signal(str)
    highlight_requested = Signal(list)  # node ids to select on the canvas

    def __init__(self, root: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.root = root
        self.records: dict[str, RunRecord] = {}
        self.diff: GraphDiff | None = None
        t = current_theme()
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.setToolTip("Tick runs to overlay their curves; select two to compare them")
        self.b_refresh = QPushButton("Refresh")
        self.b_compare = QPushButton("Compare")
        self.b_resume = QPushButton("Resume")
        self.b_load = QPushButton("Load weights")
        self.b_highlight = QPushButton("Select changed nodes")
        self.b_refresh.clicked.connect(self.refresh)
        self.b_compare.clicked.connect(self.compare_selected)
        self.b_resume.clicked.connect(lambda: self._emit_for_selected(self.resume_requested))
        self.b_load.clicked.connect(lambda: self._emit_for_selected(self.load_weights_requested))
        self.b_highlight.clicked.connect(self._highlight)
        self.b_compare.setToolTip("What differed between the two selected runs: settings and graph")
        self.b_resume.setToolTip("Continue the selected run from its last checkpoint")
        self.b_load.setToolTip("Use the run's weights for predictions and as the start of the next run")
        self.b_highlight.setToolTip("Select, on the canvas, the nodes that were added or changed")
        buttons = QHBoxLayout()
        for b in (self.b_refresh, self.b_compare, self.b_resume, self.b_load):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.where = QLabel("")
        self.where.setStyleSheet(f"color: {t.text_dim};")
        buttons.addWidget(self.where)
        self.details = QTextBrowser()
        self.details.setOpenLinks(False)
        self.details.setPlaceholderText("Select two runs and press Compare to see what differed.")
        lower = QWidget()
        lv = QVBoxLayout(lower)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.details, 1)
        hl = QHBoxLayout()
        hl.addStretch(1)
        hl.addWidget(self.b_highlight)
        lv.addLayout(hl)
        self.overlay = pg.PlotWidget(background=t.panel)
        item = self.overlay.getPlotItem()
        item.setTitle(f"<span style='color:{t.text};font-weight:600'>Validation accuracy of the ticked runs</span>",
                      size="9pt")
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setLabel("bottom", "epoch", color=t.text_dim)
        item.setLabel("left", "%", color=t.text_dim)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setPen(pg.mkPen(t.border))
            item.getAxis(axis).setTextPen(pg.mkPen(t.text_dim))
        item.addLegend(offset=(-8, -8), labelTextColor=t.text_dim, labelTextSize="8pt",
                       brush=pg.mkBrush(QColor(t.panel)), pen=pg.mkPen(t.border))
        self.overlay.setMinimumHeight(120)
        self.overlays_changed.connect(self._draw_overlay)
        left = QSplitter(Qt.Orientation.Vertical)
        upper = QWidget()
        uv = QVBoxLayout(upper)
        uv.setContentsMargins(0, 0, 0, 0)
        uv.addLayout(buttons)
        uv.addWidget(self.tree, 1)
        left.addWidget(upper)
        left.addWidget(self.overlay)
        left.setSizes([200, 240])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(lower)
        split.setSizes([640, 420])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(split)
        self._selection_changed()

    def set_root(self, root: Path) -> None:
        self.root = root
        self.refresh()

    def refresh(self) -> None:
        ticked = set(self.ticked())
        selected = {i.data(0, _PATH_ROLE) for i in self.tree.selectedItems()}
        records = scan_runs(self.root) if self.root is not None else []
        self.records = {str(r.path): r for r in records}
        self.where.setText(str(self.root) if self.root is not None else "")
        t = current_theme()
        self.tree.blockSignals(True)
        self.tree.clear()
        for rec in records:
            best = rec.best_val_acc
            started = _dt.datetime.fromtimestamp(rec.started).strftime("%Y-%m-%d %H:%M") if rec.started else ""
            epochs = f"{len(rec.metrics)}/{rec.config.get('epochs', '?')}"
            item = QTreeWidgetItem([short_label(rec.name), rec.status, epochs, "–" if best is None else f"{best:.1%}",
                                    str(rec.dataset.get("name", rec.config.get("dataset", ""))), started])
            item.setData(0, _PATH_ROLE, str(rec.path))
            item.setToolTip(0, str(rec.path))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if str(rec.path) in ticked else Qt.CheckState.Unchecked)
            colour = {"failed": t.error, "completed": t.ok, "early_stopped": t.ok, "running": t.accent}.get(rec.status)
            if colour:
                item.setForeground(1, QColor(colour))
            self.tree.addTopLevelItem(item)
            if str(rec.path) in selected:
                item.setSelected(True)
        self.tree.blockSignals(False)
        for col in range(1, len(COLUMNS)):
            self.tree.resizeColumnToContents(col)
        self._selection_changed()
        self._emit_overlays()

    def update_run(self, path: Path) -> None:
        """Re-read one run folder (the running one, after an epoch) without rescanning the others."""
        key = str(path)
        if key not in self.records:
            self.refresh()
            return
        rec = RunRecord.read(path)
        self.records[key] = rec
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, _PATH_ROLE) == key:
                best = rec.best_val_acc
                self.tree.blockSignals(True)
                item.setText(1, rec.status)
                item.setText(2, f"{len(rec.metrics)}/{rec.config.get('epochs', '?')}")
                item.setText(3, "–" if best is None else f"{best:.1%}")
                self.tree.blockSignals(False)
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

    def compare(self, a: RunRecord, b: RunRecord) -> GraphDiff:
        """Show what differs from run ``a`` (older) to run ``b``."""
        self.diff = diff_graphs(a.graph, b.graph)
        self.details.setHtml(compare_html(a, b, self.diff))
        self.b_highlight.setEnabled(bool(self.diff.added or self.diff.changed))
        return self.diff

    def compare_selected(self) -> None:
        sel = self.selected()
        if len(sel) == 2:
            a, b = sorted(sel, key=lambda r: (r.started, r.name))
            self.compare(a, b)

    def _highlight(self) -> None:
        if self.diff is not None:
            self.highlight_requested.emit(list(self.diff.added) + list(self.diff.changed))

    def _emit_for_selected(self, signal: Any) -> None:
        sel = self.selected()
        if len(sel) == 1:
            signal.emit(str(sel[0].path))

    def _selection_changed(self) -> None:
        sel = self.selected()
        self.b_compare.setEnabled(len(sel) == 2)
        self.b_resume.setEnabled(len(sel) == 1 and sel[0].has_checkpoint)
        self.b_load.setEnabled(len(sel) == 1 and sel[0].has_checkpoint)
        self.b_highlight.setEnabled(self.diff is not None and bool(self.diff.added or self.diff.changed))

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            self._emit_overlays()

    def _draw_overlay(self, runs: dict[str, list[dict[str, float | None]]]) -> None:
        item = self.overlay.getPlotItem()
        item.clear()
        for i, (name, rows) in enumerate(runs.items()):
            pts = [(float(r["epoch"] or 0), 100 * float(r["val_acc"] if r.get("val_acc") is not None
                                                          else r.get("train_acc") or 0)) for r in rows]
            if not pts:
                continue
            colour = QColor(OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)])
            item.plot([p[0] for p in pts], [p[1] for p in pts], pen=pg.mkPen(colour, width=2), symbol="o",
                      symbolSize=6, symbolBrush=colour, symbolPen=None, name=short_label(name))

    def _emit_overlays(self) -> None:
        self.overlays_changed.emit({self.records[p].name: self.records[p].metrics for p in self.ticked()
                                    if p in self.records})


__all__ = ["RunRecord", "RunsPanel", "compare_html", "scan_runs"]
