"""Mouse gestures as small state objects (Orange ``interactions.py``: ``NewLinkAction`` …).

The view starts one gesture on a press and forwards move/release to it until it ends. A gesture
edits the model only by pushing undo commands, and reports a refused edit through the view's
``message`` signal with the core's own explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QGraphicsPathItem

from core.graph import Edge
from gui.canvas.blocks import BlockItem
from gui.canvas.items import NodeItem, curve
from gui.canvas.metrics import SNAP
from gui.commands import ConnectCommand, DisconnectCommand, MoveNodesCommand, ReconnectCommand, try_push

if TYPE_CHECKING:
    from gui.canvas.view import CanvasView


class Gesture:
    """One press-move-release interaction."""

    def __init__(self, view: CanvasView) -> None:
        self.view = view
        self.scene = view.canvas

    def move(self, event: QMouseEvent) -> None:
        pass

    def release(self, event: QMouseEvent) -> None:
        pass

    def cancel(self) -> None:
        pass


class PanGesture(Gesture):
    """Drag the canvas (middle button, or Space + left button)."""

    def __init__(self, view: CanvasView, event: QMouseEvent) -> None:
        super().__init__(view)
        self.last = event.position()
        view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, event: QMouseEvent) -> None:
        d = event.position() - self.last
        self.last = event.position()
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - round(d.x()))
        v.setValue(v.value() - round(d.y()))

    def release(self, event: QMouseEvent) -> None:
        self.view.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self.view.space_held
                                       else Qt.CursorShape.ArrowCursor)

    cancel = release  # type: ignore[assignment]


class MoveGesture(Gesture):
    """Drag the selected nodes (and collapsed blocks); one undo step for the whole drag."""

    def __init__(self, view: CanvasView, event: QMouseEvent) -> None:
        super().__init__(view)
        self.start = view.mapToScene(event.position().toPoint())
        g = view.canvas.doc.graph
        self.origin = {nid: g.nodes[nid].pos or (0.0, 0.0) for nid in view.canvas.selected_node_ids()}
        self.key = object()  # merges every step of this drag into one command
        self.moved = False

    def move(self, event: QMouseEvent) -> None:
        p = self.view.mapToScene(event.position().toPoint())
        dx, dy = p.x() - self.start.x(), p.y() - self.start.y()
        if not self.moved and abs(dx) + abs(dy) < 3:
            return
        self.moved = True
        dx, dy = round(dx / SNAP) * SNAP, round(dy / SNAP) * SNAP
        moves = {nid: (o, (o[0] + dx, o[1] + dy)) for nid, o in self.origin.items()}
        doc = self.scene.doc
        cmd = MoveNodesCommand(doc, {n: (doc.graph.nodes[n].pos, new) for n, (_o, new) in moves.items()},
                               merge_key=self.key)
        if not cmd.noop:
            doc.push(cmd)

    def release(self, event: QMouseEvent) -> None:
        self.scene.reroute_edges()


class Target(NamedTuple):
    """Where a dragged wire would land: the item under the cursor and the layer it would feed
    (a collapsed block's card stands for the inner layer behind the input port under the cursor)."""

    item: NodeItem | BlockItem
    node_id: str | None  # None: a card whose input port is not yet chosen
    port: int | None  # None: the node's next free input


class _WireGesture(Gesture):
    """Shared part of connecting and reconnecting: a dashed wire following the cursor."""

    def __init__(self, view: CanvasView, src: str, from_port: int) -> None:
        super().__init__(view)
        self.src, self.from_port = src, from_port
        self.wire = QGraphicsPathItem()
        self.wire.setPen(view.canvas.canvas_style.edge_drag)
        self.wire.setZValue(20)
        view.canvas.addItem(self.wire)
        self.target: NodeItem | BlockItem | None = None

    def _origin(self) -> QPointF:
        # from the source's own card, or from its port on the collapsed block that shows it
        return self.scene.port_scene_pos(self.src, "out", self.from_port)

    def move(self, event: QMouseEvent) -> None:
        p = self.view.mapToScene(event.position().toPoint())
        hit = self._target_at(p)
        end = p
        if hit is not None and hit.node_id is not None:
            if isinstance(hit.item, BlockItem):
                end = hit.item.in_port_pos(hit.node_id, hit.port or 0)
            elif hit.port is not None:
                end = hit.item.in_port_pos(hit.port)
        path, _ = curve(self._origin(), end)
        self.wire.setPath(path)
        target = hit.item if hit is not None else None
        if target is not self.target:
            if self.target is not None:
                self.target.highlight = False
                self.target.update()
            if target is not None:
                target.highlight = True
                target.update()
            self.target = target

    def _target_at(self, p: QPointF) -> Target | None:
        own = self.scene.unit_of(self.src)
        for it in self.scene.items(p):
            if isinstance(it, NodeItem) and it.isVisible() and it.node_id != self.src:
                hit = it.port_at(p)
                return Target(it, it.node_id, hit[1] if hit is not None and hit[0] == "in" else None)
            if isinstance(it, BlockItem):
                if it.group_id == own:  # the block the wire starts from
                    return None
                hit = it.port_at(p)
                if hit is not None and hit[0] == "in":
                    return Target(it, hit[1], hit[2])
                if len(it.inputs) == 1:  # on the card: its only input port is meant
                    return Target(it, it.inputs[0][0], it.inputs[0][1])
                return Target(it, None, None)
        return None

    def _finish(self) -> None:
        if self.target is not None:
            self.target.highlight = False
            self.target.update()
        self.scene.removeItem(self.wire)

    def cancel(self) -> None:
        self._finish()


class ConnectGesture(_WireGesture):
    """Drag from an output port onto a node (or one of its input ports) to connect."""

    def release(self, event: QMouseEvent) -> None:
        p = self.view.mapToScene(event.position().toPoint())
        hit = self._target_at(p)
        self._finish()
        if hit is None:
            return
        if hit.node_id is None:
            self.view.message.emit("Drop the connection on one of the block's input ports "
                                   "(hover a port to see its layer)")
            return
        doc = self.scene.doc
        dst = hit.node_id
        error = try_push(doc, lambda: ConnectCommand(doc, self.src, dst, hit.port, self.from_port))
        if error:
            self.view.message.emit(f"Cannot connect: {error}")


class ReconnectGesture(_WireGesture):
    """Drag an edge's input end to another node (reconnect) or onto empty canvas (disconnect)."""

    def __init__(self, view: CanvasView, edge: Edge) -> None:
        super().__init__(view, edge.src, edge.from_port)
        self.edge = edge
        self.item = view.canvas.edges.get(edge)
        if self.item is not None:
            self.item.setVisible(False)
        self.moved = False

    def move(self, event: QMouseEvent) -> None:
        self.moved = True
        super().move(event)

    def release(self, event: QMouseEvent) -> None:
        p = self.view.mapToScene(event.position().toPoint())
        hit = self._target_at(p)
        self._finish()
        if self.item is not None and self.edge in self.scene.edges:
            self.item.setVisible(True)
        if not self.moved:  # a click on the wire's end: select the connection
            if self.item is not None and self.item.isVisible():
                self.scene.clearSelection()
                self.item.setSelected(True)
            return
        doc = self.scene.doc
        if hit is None:
            error = try_push(doc, lambda: DisconnectCommand(doc, self.edge))
        elif hit.node_id is None:
            error = "drop the connection on one of the block's input ports"
        else:
            dst = hit.node_id
            error = try_push(doc, lambda: ReconnectCommand(doc, self.edge, dst, hit.port))
        if error:
            self.view.message.emit(f"Cannot reconnect: {error}")

    def cancel(self) -> None:
        super().cancel()
        if self.item is not None and self.edge in self.scene.edges:
            self.item.setVisible(True)


def block_port_gesture(view: CanvasView, card: BlockItem, scene_pos: QPointF) -> Gesture | None:
    """A press on a collapsed block's port: the gesture a press on the inner layer's own port
    starts (connect from an output; move or remove the connection of a fed input), else ``None``
    (the press then selects and drags the card)."""
    hit = card.port_at(scene_pos)
    if hit is None:
        return None
    side, node_id, port = hit
    if side == "out":
        return ConnectGesture(view, node_id, port)
    edge = next((e for e in view.canvas.doc.graph.in_edges(node_id) if e.port == port), None)
    return ReconnectGesture(view, edge) if edge is not None else None
