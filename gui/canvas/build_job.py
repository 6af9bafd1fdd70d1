"""Building a canvas scene a slice at a time, so a 100,000-node project opens without a freeze.

:func:`build_steps` makes a :class:`~gui.canvas.scene.CanvasScene`'s items one at a time and
yields after each: the cards, the wires with their slots, the folding (blocks, frames, which
wires show), the block cards' texts, the analysis marks, the wires' courses around the cards and
the scene's rectangle. A small scene exhausts it at once (``CanvasScene(doc)``); File › Open of a
big file hands it to :class:`SceneBuild`, which runs as many steps as fit in a few milliseconds per
turn of the event loop: made in one go, a 20,000-node scene held the GUI thread 10-18 s.

What is built is a scene no view shows yet: the window keeps the previous document, whole and
editable, until :attr:`SceneBuild.finished`; :meth:`SceneBuild.cancel` drops the half-built scene.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QRectF, QTimer, Signal
from PySide6.QtWidgets import QGraphicsItem

from core.layout import RectIndex
from gui.canvas.metrics import CARD_H, CARD_W, NODE_H, NODE_W

if TYPE_CHECKING:
    from gui.canvas.scene import CanvasScene

# One turn's work: at least SLICE_S, and as much more as keeps the whole turn (this work, the paint,
# Qt's own pass over the scene's items) within TURN_S, under the 50 ms budget of DESIGN §10. Qt's
# pass grows with the items made so far: with 15 ms slices throughout, a 100,000-node build took
# twice as long as the one-go build, most of it in those passes. A step is one item (a card about
# 0.5 ms, a wire less).
SLICE_S = 0.015
TURN_S = 0.040
# The progress the window reads is told at most this often (a status-bar text per turn is a cost
# of its own on a 100,000-node build).
PROGRESS_EVERY_S = 0.1

Step = tuple[str, int, int]  # (what is being done, how many of it are done, how many in all)


def build_steps(scene: CanvasScene) -> Iterator[Step]:
    """Make every item of ``scene`` for its document, one item per step.

    The phases are "cards" (the layers), "wires", "blocks" (folding, frames, block cards: no
    count) and "routes" (each wire's course around the cards); the counts are of that phase.
    """
    g = scene.doc.graph
    n = len(g.nodes)
    # The scene's rectangle first, around every card's place: grown by each slice's cards instead,
    # it made the scene rebuild its index of all items each slice (a 20,000-node build took minutes).
    places = [node.pos for node in g.nodes.values() if node.pos is not None]
    if places:
        xs, ys = [p[0] for p in places], [p[1] for p in places]
        cards = QRectF(min(xs), min(ys), max(xs) - min(xs) + NODE_W, max(ys) - min(ys) + NODE_H)
        # with room for the blocks' frames and titles: the rectangle then stays as it is at the end
        scene.set_content_rect(cards.adjusted(-1000, -1000, 1000, 1000))
    yield "cards", 0, n
    wires = 0
    for i, nid in enumerate(list(g.nodes)):
        scene._add_node_item(nid)
        wires += len(g.in_edges(nid))
        yield "cards", i + 1, n
    done = 0
    for nid in list(g.nodes):
        for e in g.in_edges(nid):
            scene._add_edge_item(e)
            done += 1
            yield "wires", done, wires
        scene._refresh_slots(nid)
    for _ in scene._fold_steps():
        yield "blocks", 0, 0
    for _ in scene._refresh_cards_steps():
        yield "blocks", 0, 0
    scene.apply_analysis(scene.doc.analysis)
    yield "routes", 0, wires
    yield from _route_steps(scene, wires)
    yield from _scene_rect_steps(scene)


def _route_steps(scene: CanvasScene, total: int) -> Iterator[Step]:
    """Every visible wire's course (its lane beside the cards it would cross), sharing one index
    of the cards; :meth:`CanvasScene.reroute_edges` in steps."""
    rects: list[tuple[tuple[float, float, float, float], QGraphicsItem]] = []
    kinds: tuple[tuple[list[QGraphicsItem], float, float], ...] = (
        (list(scene.nodes.values()), NODE_W, NODE_H), (list(scene.cards.values()), CARD_W, CARD_H))
    for items, w, h in kinds:
        for it in items:
            if it.isVisible():
                p = it.pos()
                rects.append(((p.x(), p.y(), p.x() + w, p.y() + h), it))
                if len(rects) % 256 == 0:
                    yield "routes", 0, total
    scene._card_index = RectIndex(rects)
    yield "routes", 0, total
    try:
        for i, item in enumerate(list(scene.edges.values())):
            if item.isVisible():
                scene._route_edge(item)
            yield "routes", i + 1, total
    finally:
        scene._card_index = None


def _scene_rect_steps(scene: CanvasScene) -> Iterator[Step]:
    """The scene's rectangle around what is visible (:meth:`CanvasScene.content_rect` in steps)."""
    left = top = float("inf")
    right = bottom = float("-inf")
    items: list[QGraphicsItem] = [*scene.nodes.values(), *scene.cards.values(), *scene.frames.values()]
    for i, item in enumerate(items):
        if item.isVisible():
            r = item.sceneBoundingRect()
            left, top = min(left, r.left()), min(top, r.top())
            right, bottom = max(right, r.right()), max(bottom, r.bottom())
        if i % 256 == 0:
            yield "routes", 0, 0
    content = QRectF(left, top, right - left, bottom - top) if right > left else QRectF()
    scene.set_content_rect(content, exact=True)


# How far along each phase is in the whole build, as parts of a thousand (cards are the bulk).
_PHASES = {"cards": (0, 500), "wires": (500, 650), "blocks": (650, 700), "routes": (700, 1000)}


def progress_text(name: str, what: str, done: int, total: int) -> str:
    """The status bar's words for a step: ``Opening big.json: 12,000 of 100,000 nodes drawn…``."""
    if what == "cards":
        return f"Opening {name}: {done:,} of {total:,} nodes drawn…"
    if what == "wires":
        return f"Opening {name}: {done:,} of {total:,} wires drawn…"
    if what == "blocks":
        return f"Opening {name}: placing the blocks…"
    return f"Opening {name}: routing {done:,} of {total:,} wires…"


def progress_value(what: str, done: int, total: int) -> int:
    """The whole build's progress in thousandths (a progress bar of range 0-1000)."""
    lo, hi = _PHASES.get(what, (0, 0))
    return lo + (hi - lo) * done // total if total > 0 else lo


class SceneBuild(QObject):
    """Runs :func:`build_steps` for ``scene`` in slices of :data:`SLICE_S` per event-loop turn.

    ``progress(text, done, total)`` says what is being made (at most every
    :data:`PROGRESS_EVERY_S`); ``finished`` comes once, when the last item is made. A cancelled
    build emits nothing more.
    """

    progress = Signal(str, int, int)
    finished = Signal()

    def __init__(self, scene: CanvasScene, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scene: CanvasScene | None = scene
        self._steps: Iterator[Step] | None = build_steps(scene)
        self._timer = QTimer(self, interval=0)
        self._timer.timeout.connect(self._slice)
        self._told = 0.0
        self._ended = 0.0  # when the last slice ended: the rest of the turn is the event loop's
        self.slices = 0  # how many turns the build took (the bench prints it)

    def start(self) -> None:
        self._timer.start()

    def running(self) -> bool:
        return self._steps is not None

    def cancel(self) -> None:
        """Stop making items; the scene is left half built (the caller drops it)."""
        self._timer.stop()
        self._steps = None
        self.scene = None

    def _slice(self) -> None:
        steps = self._steps
        if steps is None:
            self._timer.stop()
            return
        self.slices += 1
        now = time.perf_counter()
        others = now - self._ended if self._ended else 0.0  # the paint and Qt's work since our last slice
        stop = now + (max(SLICE_S, TURN_S - others) if SLICE_S > 0 else 0.0)
        step: Step | None = None
        try:
            step = next(steps)  # at least one step a turn, however short the slice
            while time.perf_counter() < stop:
                step = next(steps)
        except StopIteration:
            self._timer.stop()
            self._steps = None
            self.finished.emit()
            return
        self._ended = time.perf_counter()
        if step is not None and now - self._told >= PROGRESS_EVERY_S:
            self._told = now
            self.progress.emit(*step)


__all__ = ["SLICE_S", "SceneBuild", "build_steps", "progress_text", "progress_value"]
