"""The canvas's context menu: freeze, unfreeze and learning-rate multipliers (issue 13 §2).

Right-click a card: Freeze / Unfreeze it (or the selection it belongs to), Freeze Everything up
to Here (the card and every layer it depends on: :func:`core.finetune.nodes_up_to`), and
Learning-Rate Multiplier…. Right-click a block (its frame, title or collapsed card): the same for
every layer inside it (:func:`core.finetune.nodes_of`). Each entry is one undoable edit
(:mod:`gui.finetune_commands`); a refusal goes to the status bar through the view's ``message``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from gui.canvas.blocks import BlockItem, FrameItem, FrameTitleItem
from gui.canvas.items import NodeItem
from gui.finetune_commands import FreezeNodesCommand, SetLrMultCommand, trainable_nodes

if TYPE_CHECKING:
    from gui.canvas.view import CanvasView


def ask_lr_mult(parent: QWidget, what: str, current: float) -> float | None:
    """Ask for a learning-rate multiplier (``None``: cancelled). Tests replace this function."""
    value, ok = QInputDialog.getDouble(
        parent, "Learning-rate multiplier",
        f"Multiply the learning rate of {what} by\n(1 = the run's rate; 10 is usual for a new head):",
        current, 0.001, 1000.0, 3)
    return float(value) if ok else None


def target_at(view: CanvasView, pos: QPoint) -> tuple[list[str], str, str | None] | None:
    """What a right-click at viewport ``pos`` acts on: ``(node ids, name for texts, the clicked node
    or None for a block)``, or ``None`` on empty canvas."""
    g = view.doc.graph
    for item in view.items(pos):
        if isinstance(item, NodeItem):
            nid = item.node_id
            selected = view.canvas.selected_node_ids()
            if nid in selected and len(selected) > 1:
                return selected, f"{len(selected)} selected layers", nid
            return [nid], nid, nid
        if isinstance(item, (BlockItem, FrameItem, FrameTitleItem)) and item.group_id in g.groups:
            from core.finetune import nodes_of

            return nodes_of(g, item.group_id), item.group_id, None
    return None


def build_menu(view: CanvasView, pos: QPoint) -> QMenu | None:
    """The context menu for viewport ``pos`` (``None`` where it has nothing to offer)."""
    target = target_at(view, pos)
    if target is None:
        return None
    ids, what, clicked = target
    doc = view.doc
    layers = trainable_nodes(doc, ids)
    menu = QMenu(view)

    def push(factory: Callable[[], object]) -> Callable[[], None]:
        return lambda: _push(view, factory)

    frozen = [n for n in layers if doc.graph.nodes[n].frozen]
    a = menu.addAction(f"Freeze {what}" if clicked is None else "Freeze",
                       push(lambda: FreezeNodesCommand(doc, ids, True, what)))
    a.setEnabled(len(frozen) < len(layers))
    a = menu.addAction(f"Unfreeze {what}" if clicked is None else "Unfreeze",
                       push(lambda: FreezeNodesCommand(doc, ids, False, what)))
    a.setEnabled(bool(frozen))
    if clicked is not None:
        from core.finetune import nodes_up_to

        menu.addAction("Freeze Everything up to Here",
                       push(lambda: FreezeNodesCommand(doc, nodes_up_to(doc.graph, clicked), True,
                                                       f"everything up to {clicked}")))
    menu.addSeparator()
    a = menu.addAction("Learning-Rate Multiplier…", lambda: _ask_and_set(view, ids, what))
    a.setEnabled(bool(layers))
    for action in menu.actions():
        if not action.isSeparator() and not layers:
            action.setEnabled(False)
            action.setToolTip(f"{what} holds no layers with weights")
    return menu


def _ask_and_set(view: CanvasView, ids: list[str], what: str) -> None:
    doc = view.doc
    layers = trainable_nodes(doc, ids)
    current = doc.graph.nodes[layers[0]].lr_mult if layers else 1.0
    value = ask_lr_mult(view, what, current)
    if value is not None:
        _push(view, lambda: SetLrMultCommand(doc, ids, value, what))


def _push(view: CanvasView, factory: Callable[[], object]) -> None:
    from gui.commands import try_push

    error = try_push(view.doc, factory)  # type: ignore[arg-type]
    if error:
        view.message.emit(error[0].upper() + error[1:])


__all__ = ["ask_lr_mult", "build_menu", "target_at"]
