"""The palette: every registered layer type by category, searchable, draggable onto the canvas.

The list is read from :func:`core.layers.all_specs` (one declaration per type, DESIGN.md §2),
so a new layer type shows up here with no change in the GUI. Dragging an entry carries the
type name as ``application/x-netcanvas-layer``; double-click or Enter emits
:attr:`PalettePanel.layer_activated`, which the window turns into an ``AddNodeCommand``.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeyEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QLineEdit, QTreeView, QVBoxLayout, QWidget

from core.layers import all_specs
from core.layers.spec import LayerSpec
from gui.panels.icons import category_icon
from gui.theme import Theme, current_theme

LAYER_MIME = "application/x-netcanvas-layer"
TYPE_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2


def _tooltip(spec: LayerSpec) -> str:
    params = ", ".join(p.name for p in spec.params if not p.inferred) or "no parameters"
    doc = spec.doc.strip().replace("\n", " ")
    return (f"<b>{spec.type}</b> <span style='color:gray'>({spec.category.value})</span>"
            f"<p style='white-space:pre-wrap'>{doc}</p><i>{params}</i>")


class _LayerModel(QStandardItemModel):
    """Category rows holding layer-type rows; layer rows drag as ``application/x-netcanvas-layer``."""

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        data = QMimeData()
        for index in indexes:
            name = index.data(TYPE_ROLE)
            if name:
                data.setData(LAYER_MIME, str(name).encode("utf-8"))
                data.setText(str(name))
                break
        return data


class _Filter(QSortFilterProxyModel):
    """Keeps a layer row when every word of the query occurs in its name, category or doc."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.setRecursiveFilteringEnabled(True)

    def set_query(self, text: str) -> None:
        self.beginFilterChange()  # Qt ≥ 6.9: replaces the deprecated invalidateFilter()
        self.words = text.lower().split()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        index = self.sourceModel().index(row, 0, parent)
        haystack = index.data(SEARCH_ROLE)
        if haystack is None:  # a category row: shown when one of its children is
            return not self.words
        return all(w in haystack for w in self.words)


class _Tree(QTreeView):
    """Enter on a layer row activates it (double-click already does)."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.activated.emit(self.currentIndex())
            return
        super().keyPressEvent(event)


class PalettePanel(QWidget):
    """Search field over a category tree of layer types."""

    layer_activated = Signal(str)  # a type name: add it at the view centre

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search layers  (Ctrl+K)")
        self.search.setClearButtonEnabled(True)
        self.model = _LayerModel()
        self.proxy = _Filter()
        self.proxy.setSourceModel(self.model)
        self.tree = _Tree()
        self.tree.setModel(self.proxy)
        self.tree.setHeaderHidden(True)
        self.tree.setIndentation(12)
        self.tree.setUniformRowHeights(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAnimated(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)
        lay.addWidget(self.search)
        lay.addWidget(self.tree, 1)
        self.search.textChanged.connect(self._filter)
        self.search.returnPressed.connect(self._activate_first)
        self.tree.activated.connect(self._activated)
        self._populate(current_theme())

    # -- content ------------------------------------------------------------------------------
    def _populate(self, theme: Theme) -> None:
        self.model.clear()
        categories: dict[str, QStandardItem] = {}
        for spec in all_specs():
            cat = spec.category.value
            if cat not in categories:
                head = QStandardItem(category_icon(spec.category, theme), cat)
                head.setFlags(Qt.ItemFlag.ItemIsEnabled)
                font = head.font()
                font.setBold(True)
                head.setFont(font)
                categories[cat] = head
                self.model.appendRow(head)
            item = QStandardItem(category_icon(spec.category, theme), spec.type)
            item.setData(spec.type, TYPE_ROLE)
            item.setData(f"{spec.type} {cat} {spec.doc}".lower(), SEARCH_ROLE)
            item.setToolTip(_tooltip(spec))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled)
            categories[cat].appendRow(item)
        self.tree.expandAll()

    def set_theme(self, theme: Theme) -> None:
        """Redraw the category icons in the theme's colours, keeping the search."""
        self._populate(theme)
        self._filter(self.search.text())

    # -- search and activation ----------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _filter(self, text: str) -> None:
        self.proxy.set_query(text)
        self.tree.expandAll()
        best = self._best_match(text)
        if best is not None and text:
            self.tree.setCurrentIndex(best)

    def visible_types(self) -> list[str]:
        """Layer types the filter shows now, in display order (tests and Enter use it)."""
        out: list[str] = []
        for r in range(self.proxy.rowCount()):
            head = self.proxy.index(r, 0)
            for c in range(self.proxy.rowCount(head)):
                out.append(str(self.proxy.index(c, 0, head).data(TYPE_ROLE)))
        return out

    def _best_match(self, text: str) -> QModelIndex | None:
        """The shown layer whose *name* fits the query best (exact, prefix, substring), else the first."""
        query = text.strip().lower().replace(" ", "")
        best, best_rank = None, 4
        for r in range(self.proxy.rowCount()):
            head = self.proxy.index(r, 0)
            for c in range(self.proxy.rowCount(head)):
                index = self.proxy.index(c, 0, head)
                name = str(index.data(TYPE_ROLE)).lower()
                rank = 0 if name == query else 1 if name.startswith(query) else 2 if query in name else 3
                if rank < best_rank:
                    best, best_rank = index, rank
        return best

    def _first_layer(self) -> QModelIndex | None:
        for r in range(self.proxy.rowCount()):
            head = self.proxy.index(r, 0)
            if self.proxy.rowCount(head):
                return self.proxy.index(0, 0, head)
        return None

    def _activate_first(self) -> None:
        index = self.tree.currentIndex()
        if not index.isValid() or index.data(TYPE_ROLE) is None:
            index = self._best_match(self.search.text()) or QModelIndex()
        self._activated(index)

    def _activated(self, index: QModelIndex) -> None:
        name = index.data(TYPE_ROLE) if index.isValid() else None
        if name:
            self.layer_activated.emit(str(name))

    def index_of(self, type_name: str) -> QModelIndex:
        """The view index of ``type_name`` (for tests and keyboard navigation)."""
        for r in range(self.proxy.rowCount()):
            head = self.proxy.index(r, 0)
            for c in range(self.proxy.rowCount(head)):
                index = self.proxy.index(c, 0, head)
                if index.data(TYPE_ROLE) == type_name:
                    return index
        return QModelIndex()


__all__ = ["LAYER_MIME", "PalettePanel"]
