"""The problems panel: every diagnostic of the latest analysis, with one-click fixes.

Clicking a row selects and centres its node on the canvas (through the ``focus_node``
callback the window passes in, which calls ``view.select_nodes`` and ``view.center_on_node``);
a row whose diagnostic carries a fix has a button that pushes ``ApplyFixCommand`` (undoable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.analysis import Analysis, Diagnostic, Severity
from core.graph import GraphError
from gui import commands
from gui.panels.icons import severity_icon

_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
NODE_ROLE = Qt.ItemDataRole.UserRole + 1
_CELL_MARGIN = 4  # px around a Fix button inside its cell (and the theme's item padding, 3 px, around text)


def without_node(d: Diagnostic) -> str:
    """The message without its leading ``node: `` (the panel shows the node in its own column)."""
    prefix = f"{d.node}: " if d.node else ""
    return d.message[len(prefix):] if prefix and d.message.startswith(prefix) else d.message


def count_text(diags: list[Diagnostic] | tuple[Diagnostic, ...]) -> str:
    """``2 errors, 1 warning · 1 note`` or ``No errors or warnings``."""
    errors = sum(1 for d in diags if d.severity is Severity.ERROR)
    warnings = sum(1 for d in diags if d.severity is Severity.WARNING)
    notes = len(diags) - errors - warnings
    text = (f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
            if errors or warnings else "No errors or warnings")
    return text + (f"  ·  {notes} note{'s' * (notes != 1)}" if notes else "")


class ProblemsPanel(QWidget):
    """A list of diagnostics: severity icon, node, message, and a Fix button where one exists."""

    def __init__(self, focus_node: Callable[[str], None] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc: Any = None
        self.focus_node = focus_node
        self.diagnostics: list[Diagnostic] | None = None  # None: nothing shown yet
        self.fix_buttons: list[QPushButton] = []
        self.summary = QLabel()
        self.summary.setProperty("role", "dim")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Node", "Problem", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setWordWrap(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.resizeSection(0, 170)
        header.sectionResized.connect(lambda index, _old, _new: index == 1 and self._wrap_rows())
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemActivated.connect(self._clicked)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        top = QHBoxLayout()
        top.addWidget(self.summary)
        top.addStretch(1)
        lay.addLayout(top)
        lay.addWidget(self.tree, 1)

    def set_document(self, doc: Any) -> None:
        if self.doc is not None:
            self.doc.analysis_updated.disconnect(self.show_analysis)
        self.doc = doc
        doc.analysis_updated.connect(self.show_analysis)
        self.show_analysis(doc.analysis)

    def show_analysis(self, analysis: Analysis) -> None:
        diags = sorted(analysis.diagnostics, key=lambda d: _ORDER.get(d.severity, 3))
        if diags == self.diagnostics and self.tree.topLevelItemCount() == len(diags):
            return  # most edits leave the diagnostics alone: keep the rows (and the user's scroll)
        self.diagnostics = diags
        self.tree.clear()
        self.fix_buttons = []
        for d in diags:
            item = QTreeWidgetItem(["" if d.node is None else d.node, without_node(d), ""])
            item.setIcon(0, severity_icon(d.severity.value))
            item.setToolTip(1, d.message)
            item.setData(0, NODE_ROLE, d.node)
            self.tree.addTopLevelItem(item)
            if d.fix is not None:
                button = QPushButton(f"Fix: {d.fix.label}")
                button.setToolTip(f"Apply this repair as one undoable edit: {d.fix.label}")
                button.setProperty("role", "fix")
                button.setCursor(Qt.CursorShape.PointingHandCursor)
                button.clicked.connect(lambda _=False, fix=d.fix: self.apply_fix(fix))
                self.tree.setItemWidget(item, 2, button)
                # The "fix" role's style sheet applies once the button is in the tree: only then is its
                # size hint the one it needs (sized before, the row clipped "set in_features" to
                # "set in features": the underscore and both ends cut off).
                button.ensurePolished()
                hint = button.sizeHint()
                button.setMinimumSize(hint)
                item.setSizeHint(2, QSize(hint.width() + _CELL_MARGIN, hint.height() + _CELL_MARGIN))
                self.fix_buttons.append(button)
        self.summary.setText(count_text(diags))
        self._wrap_rows()
        if self.fix_buttons:  # ResizeToContents ignores item widgets: size the column for the buttons
            width = max(b.minimumWidth() for b in self.fix_buttons) + 2 * _CELL_MARGIN
            self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
            self.tree.header().resizeSection(2, width)

    def _wrap_rows(self) -> None:
        """Give each row the height its wrapped message needs at the column's width (a tree row
        keeps one line otherwise, and long messages ended in "…")."""
        width = self.tree.header().sectionSize(1) - 8  # the cell's text margins
        if width <= 40:
            return
        metrics = self.tree.fontMetrics()
        flags = int(Qt.TextFlag.TextWordWrap)
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            need = metrics.boundingRect(0, 0, width, 10_000, flags, item.text(1)).height() + 2 * _CELL_MARGIN
            fix = item.sizeHint(2).height()
            height = max(need, fix, metrics.height() + _CELL_MARGIN)
            if item.sizeHint(1).height() != height:
                item.setSizeHint(1, QSize(width, height))

    def _clicked(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        node = item.data(0, NODE_ROLE)
        if node and self.focus_node is not None and node in self.doc.graph.nodes:
            self.focus_node(node)

    def apply_fix(self, fix: Any) -> str | None:
        """Push ``ApplyFixCommand``; a fix that no longer applies reports why and changes nothing."""
        try:
            problem = commands.try_push(self.doc, lambda: commands.ApplyFixCommand(self.doc, fix))
        except (GraphError, KeyError, ValueError) as exc:  # a stale fix must never take the editor down
            problem = str(exc)
        if problem:
            self.summary.setText(f"Could not apply the fix: {problem}")
        return problem


__all__ = ["ProblemsPanel", "count_text", "without_node"]
