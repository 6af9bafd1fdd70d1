"""The summary panel: a sortable torchinfo-style table, totals, and a training-memory estimate.

Every figure comes from :class:`core.analysis.Analysis` (the GUI computes nothing itself).
"Verify with torchinfo" compiles the graph and runs ``torchinfo.summary`` in a worker thread
(:mod:`gui.panels.verify`), then reports whether the total parameters and every layer's
output shape agree with the static analysis.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.analysis import Analysis, NodeResult
from core.layers.spec import fmt_shape
from core.training.options import memory_choices
from core.units import count, human, human_bytes
from gui.panels.code import shown
from gui.panels.verify import VerifyReport, VerifyThread
from gui.theme import current_theme

COLUMNS = ("Layer", "Type", "Output shape", "Params", "MACs", "Receptive field")
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex


class SummaryModel(QAbstractTableModel):
    """One row per node in topological order; numbers sort as numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[NodeResult] = []
        self.problem_nodes: set[str] = set()

    def set_analysis(self, analysis: Analysis) -> None:
        self.beginResetModel()
        self.rows = [analysis.nodes[n] for n in analysis.order if n in analysis.nodes]
        self.problem_nodes = {d.node for d in analysis.errors if d.node}
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight if section in (3, 4) else Qt.AlignmentFlag.AlignLeft)
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, col)
        if role == SORT_ROLE:
            return self._key(r, col)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            right = col in (3, 4)
            return int((Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft)
                       | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.id in self.problem_nodes:
                return QColor(current_theme().error)
            if not r.known or (col in (3, 4) and not (r.params if col == 3 else r.macs)):
                return QColor(current_theme().text_dim)
        if role == Qt.ItemDataRole.FontRole and col == 0:
            f = QFont()
            f.setFamily("monospace")
            f.setStyleHint(QFont.StyleHint.Monospace)
            return f
        return None

    @staticmethod
    def _text(r: NodeResult, col: int) -> str:
        if col == 0:
            return r.id
        if col == 1:
            return r.type
        if col == 2:
            return ", ".join(fmt_shape(s) for s in r.out_shapes) if r.out_shapes is not None else "?"
        if col == 3:
            return "?" if r.params is None else f"{count(r.params)}"
        if col == 4:
            return "?" if r.macs is None else f"{count(r.macs)}"
        if r.rf is None:
            return "?"
        return r.rf.short()

    @staticmethod
    def _key(r: NodeResult, col: int) -> Any:
        if col == 3:
            return r.params if r.params is not None else -1
        if col == 4:
            return r.macs if r.macs is not None else -1
        if col == 2:
            from math import prod

            return prod(r.output_shape) if r.output_shape else -1
        if col == 5:
            if r.rf is None:
                return -1.0
            return float("inf") if r.rf.size is None else float(max(r.rf.size, default=0))
        return SummaryModel._text(r, col).lower()


class _Proxy(QSortFilterProxyModel):
    def lessThan(self, left: Index, right: Index) -> bool:
        a, b = left.data(SORT_ROLE), right.data(SORT_ROLE)
        try:
            return a < b
        except TypeError:
            return str(a) < str(b)


class SummaryPanel(QWidget):
    """Table + totals + memory estimate + torchinfo verification."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: Any = None
        self.thread: VerifyThread | None = None
        self.last_report: VerifyReport | None = None
        self._stale = True
        self.model = SummaryModel()
        self.proxy = _Proxy()
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # topological order until a header is clicked
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((170, 110, 130, 110, 130)):
            header.resizeSection(col, width)

        self.totals = QLabel()
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.batch = QSpinBox()
        self.batch.setRange(1, 65536)
        self.batch.setValue(32)
        self.batch.setPrefix("batch ")
        self.batch.setToolTip("Batch size for the training-memory estimate")
        self.optimizer = QComboBox()
        for key, title in memory_choices():  # the declared optimizers (core.training.options)
            self.optimizer.addItem(title, key)
        self.optimizer.setToolTip("Optimizer state kept per parameter (Adam keeps two tensors, SGD one)")
        self.memory = QLabel()
        self.memory.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify_button = QPushButton("Verify with torchinfo")
        self.verify_button.setToolTip("Compile the graph, run torchinfo.summary on it, and compare with this table")
        self.verify_result = QLabel()
        self.verify_result.setWordWrap(True)
        self.verify_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(self.totals, 1)
        top.addWidget(self.verify_button)
        mem = QHBoxLayout()
        mem.setSpacing(8)
        caption = QLabel("Training memory")
        caption.setProperty("role", "dim")
        mem.addWidget(caption)
        mem.addWidget(self.batch)
        mem.addWidget(self.optimizer)
        mem.addWidget(self.memory, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(6)
        lay.addLayout(top)
        lay.addWidget(self.verify_result)
        lay.addWidget(self.table, 1)
        lay.addLayout(mem)
        self.verify_result.hide()

        self.batch.valueChanged.connect(self._show_memory)
        self.optimizer.currentIndexChanged.connect(self._show_memory)
        self.verify_button.clicked.connect(self.verify)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.catch_up()

    def catch_up(self) -> None:
        """Refresh if edits happened while the panel was hidden (its dock tab became current)."""
        if self._stale and self.doc is not None:
            QTimer.singleShot(0, lambda: self.show_analysis(self.doc.analysis))

    def set_document(self, doc: Any) -> None:
        if self.doc is not None:
            self.doc.analysis_updated.disconnect(self.show_analysis)
        self.doc = doc
        doc.analysis_updated.connect(self.show_analysis)
        training = doc.project.training or {}
        batch = training.get("batch_size")
        if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
            self.batch.setValue(min(batch, self.batch.maximum()))
        opt = str(training.get("optimizer", "")).lower()
        i = self.optimizer.findData(opt)
        if i >= 0:
            self.optimizer.setCurrentIndex(i)
        self.verify_result.hide()
        self.show_analysis(doc.analysis)

    def show_analysis(self, a: Analysis) -> None:
        if not shown(self):
            self._stale = True  # a hidden tab does no work; showEvent catches up
            return
        self._stale = False
        self.model.set_analysis(a)
        errors = len(a.errors)
        status = "" if a.ok else f"  ·  <span style='color:{current_theme().error}'>{errors} error" \
                                 f"{'s' * (errors != 1)}: partial totals</span>"
        at_least = "≥ " if a.partial else ""  # the layers at and after an error are not counted
        self.totals.setText(
            f"<b>{at_least}{count(a.total_params)}</b> parameters ({human(a.total_params)}; "
            f"{count(a.trainable_params)} trainable)  ·  <b>{at_least}{human(a.macs)}</b> MACs "
            f"({human(a.flops)}FLOPs)  ·  {human_bytes(a.activation_bytes)} activations per sample{status}")
        self._show_memory()

    def _show_memory(self, *_args: Any) -> None:
        if self.doc is None:
            return
        m = self.doc.analysis.memory(self.batch.value(), self.optimizer.currentData() or "sgd")
        self.memory.setText(
            f"<b>{human_bytes(m.total)}</b>  =  weights {human_bytes(m.params)} + gradients {human_bytes(m.grads)}"
            f" + optimizer {human_bytes(m.optimizer_state)} + activations {human_bytes(m.activations)}")

    # -- torchinfo cross-check ----------------------------------------------------------------
    def verify(self) -> None:
        """Compile and run torchinfo in a worker thread; the result lands in :meth:`_verified`."""
        if self.thread is not None and self.thread.isRunning():
            return
        self.verify_button.setEnabled(False)
        self.verify_button.setText("Verifying…")
        self.verify_result.setText("Compiling the graph and running torchinfo…")
        self.verify_result.show()
        self.thread = VerifyThread(self.doc.graph.copy(), self.doc.analysis, self)
        self.thread.verified.connect(self._verified)
        self.thread.start()

    def _verified(self, report: VerifyReport) -> None:
        if self.thread is not None:
            self.thread.wait()  # it is returning from run(): immediate; never destroy a running QThread
        self.last_report = report
        self.verify_button.setEnabled(True)
        self.verify_button.setText("Verify with torchinfo")
        t = current_theme()
        colour = t.ok if report.agrees else t.error
        lines = [f"<span style='color:{colour}'><b>{report.headline}</b></span>"]
        lines += [f"• {d}" for d in report.differences[:12]]
        if len(report.differences) > 12:
            lines.append(f"… and {len(report.differences) - 12} more")
        self.verify_result.setText("<br>".join(lines))
        self.verify_result.show()

    def shutdown(self) -> None:
        """Wait for a running verification (called when the window closes)."""
        if self.thread is not None:
            self.thread.wait()


__all__ = ["SummaryPanel"]
