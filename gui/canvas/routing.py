"""How a wire goes round the cards in its way, and which cards the user sees: the canvas scene's
routing arithmetic, kept apart from the scene's bookkeeping.

A wire runs straight from its source port down to its destination port unless a card sits in the
corridor between them; then it takes a vertical lane beside the blocking cards, on the side nearer
the straight course (:func:`lane_beside`).
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtWidgets import QGraphicsScene

from gui.canvas.blocks import BlockItem
from gui.canvas.items import NodeItem
from gui.canvas.metrics import LAYER_GAP, NODE_H

LANE_GAP = 40.0  # from the blocking cards' outer edge to the lane


def corridor(p0: QPointF, p1: QPointF) -> QRectF | None:
    """The box a straight wire from ``p0`` down to ``p1`` sweeps (``None``: too short to need a lane)."""
    if p1.y() - p0.y() < NODE_H + LAYER_GAP:
        return None
    return QRectF(QPointF(min(p0.x(), p1.x()) - 6, p0.y() + 10), QPointF(max(p0.x(), p1.x()) + 6, p1.y() - 10))


def lane_beside(p0: QPointF, p1: QPointF, blockers: Iterable[tuple[float, float, float, float]]) -> float | None:
    """The x of the lane beside the ``blockers`` (cards' ``(left, top, right, bottom)`` in the
    corridor), on the side nearer the straight course; ``None`` when nothing blocks."""
    hits = list(blockers)
    if not hits:
        return None
    right = max(r[2] for r in hits) + LANE_GAP
    left = min(r[0] for r in hits) - LANE_GAP
    mid = (p0.x() + p1.x()) / 2
    return right if abs(right - mid) <= abs(mid - left) else left


def cards_in_view(scene: QGraphicsScene) -> set[str]:
    """Ids of the visible cards (nodes and collapsed blocks) that show in one of the scene's views,
    from the scene's index: going through every card took seconds at 100,000 nodes."""
    shown: set[str] = set()
    for view in scene.views():
        area = view.mapToScene(view.viewport().rect()).boundingRect()
        for it in scene.items(area):
            if isinstance(it, NodeItem) and it.isVisible():
                shown.add(it.node_id)
            elif isinstance(it, BlockItem) and it.isVisible():
                shown.add(it.group_id)
    return shown


__all__ = ["LANE_GAP", "cards_in_view", "corridor", "lane_beside"]
