"""Help ▸ Keyboard shortcuts: a table built from the window's own menu bar, so it never drifts.

Every menu the bar holds when the dialog opens is listed (one added later, like Train, too), in
the bar's order, with its submenus; an action whose text changes with the document ("Undo Add
conv1") is listed under its command's name ("Undo").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMenu,
    QMenuBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

# Gestures on the canvas that have no menu action (they live in the view's gesture objects).
CANVAS_GESTURES = (
    ("Canvas", "Connect", "Drag from an output port to an input port"),
    ("Canvas", "Disconnect / reconnect", "Drag an edge's end away from its port"),
    ("Canvas", "Pan", "Middle drag, or Space + drag"),
    ("Canvas", "Zoom", "Mouse wheel"),
    ("Canvas", "Select several", "Rubber band, or Ctrl + click"),
    ("Canvas", "Expand / collapse a block", "Double-click the block"),
)


def _label(action: QAction) -> str:
    return action.text().replace("&", "").rstrip(".…")


def shortcut_rows(menus: Iterable[tuple[str, Iterable[QAction]]],
                  names: Mapping[QAction, str] | None = None) -> list[tuple[str, str, str]]:
    """``(menu, command, keys)`` for every action that has a shortcut, in menu order; ``names``
    gives the command name of actions whose text is not one (the live undo text)."""
    names = names or {}
    rows = []
    for menu, actions in menus:
        for action in actions:
            # dict.fromkeys: one platform's Redo is Ctrl+Y, so "Redo, Ctrl+Y" would list it twice
            keys = list(dict.fromkeys(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()))
            if keys and action.text():
                rows.append((menu, names.get(action) or _label(action), ", ".join(keys)))
    return rows


def _menu_actions(menu: QMenu) -> list[QAction]:
    """The menu's actions, each submenu's spliced in where it sits."""
    out: list[QAction] = []
    for action in menu.actions():
        sub = action.menu()
        if isinstance(sub, QMenu):
            out.extend(_menu_actions(sub))
        else:
            out.append(action)
    return out


def menu_bar_rows(bar: QMenuBar, names: Mapping[QAction, str] | None = None) -> list[tuple[str, str, str]]:
    """:func:`shortcut_rows` for every menu of ``bar``, in the bar's order."""
    menus = [(_label(a), _menu_actions(a.menu())) for a in bar.actions() if isinstance(a.menu(), QMenu)]
    return shortcut_rows(menus, names)


class ShortcutsDialog(QDialog):
    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(520, 560)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Command", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        last = None
        for menu, command, keys in [*rows, *CANVAS_GESTURES]:
            if menu != last:
                head = QTreeWidgetItem([menu, ""])
                font = head.font(0)
                font.setBold(True)
                head.setFont(0, font)
                self.tree.addTopLevelItem(head)
                last = menu
            self.tree.addTopLevelItem(QTreeWidgetItem([f"    {command}", keys]))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tree)
        lay.addWidget(buttons)


__all__ = ["CANVAS_GESTURES", "ShortcutsDialog", "menu_bar_rows", "shortcut_rows"]
