"""File ▸ Open Template…: a gallery of the built-in templates with their size and cost.

Each row shows the template's title, input size, parameters and MACs (from
:func:`core.analysis.analyze` on the built graph, so the figures are the ones the editor will
show), and the selected template's description below. Double-click or Open accepts.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.analysis import analyze
from core.layers.spec import fmt_shape
from core.units import human


@dataclass(frozen=True)
class TemplateRow:
    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    params: int | None
    macs: int | None
    nodes: int


_CACHE: dict[str, TemplateRow] = {}


def template_rows() -> list[TemplateRow]:
    """Every template with its analysed totals (built once per session and cached)."""
    import templates

    rows = []
    for info in templates.list_templates():
        row = _CACHE.get(info.name)
        if row is None:
            try:
                project = templates.build_template(info.name)
                a = analyze(project.graph)
                row = TemplateRow(info.name, info.title, info.description, tuple(info.input_shape),
                                  a.total_params, a.macs, len(project.graph.nodes))
            except Exception:  # a broken template still lists, without figures
                row = TemplateRow(info.name, info.title, info.description, tuple(info.input_shape), None, None, 0)
            _CACHE[info.name] = row
        rows.append(row)
    return rows


class TemplateGallery(QDialog):
    """Pick a template; :attr:`selected` holds its name after ``exec()`` returns Accepted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open Template")
        self.resize(760, 520)
        self.selected: str | None = None
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Template", "Input", "Parameters", "MACs", "Layers"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for row in template_rows():
            item = QTreeWidgetItem([row.title, fmt_shape(row.input_shape), human(row.params), human(row.macs),
                                    str(row.nodes) if row.nodes else "?"])
            item.setData(0, Qt.ItemDataRole.UserRole, row.name)
            item.setToolTip(0, row.description)
            for col in (2, 3, 4):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.tree.addTopLevelItem(item)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setMinimumHeight(64)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.description)
        lay.addWidget(self.buttons)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemDoubleClicked.connect(lambda *_: self.accept())
        if self.tree.topLevelItemCount():
            self.tree.setCurrentItem(self.tree.topLevelItem(0))

    def _current_changed(self, item: QTreeWidgetItem | None, _prev: QTreeWidgetItem | None = None) -> None:
        if item is None:
            self.selected = None
            self.description.setText("")
            return
        self.selected = item.data(0, Qt.ItemDataRole.UserRole)
        self.description.setText(f"<b>{item.text(0)}</b> — {item.toolTip(0)}")

    def select(self, name: str) -> None:
        """Make ``name`` the current row (keyboard users and tests)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == name:
                self.tree.setCurrentItem(item)
                return


__all__ = ["TemplateGallery", "template_rows"]
