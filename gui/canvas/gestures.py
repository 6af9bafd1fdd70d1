"""Mouse gestures as small state objects (Orange ``interactions.py``: ``NewLinkAction`` …).

The view starts one gesture on a press and forwards move/release to it until it ends. A gesture
edits the model only by pushing undo commands, and reports a refused edit through the view's
``message`` signal with the core's own explanation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


class _WireGesture(Gesture):
    """Shared part of connecting and reconnecting: a dashed wire following the cursor."""

    def __init__(self, view: CanvasView, src: str, from_port: int) -> None:
        super().__init__(view)
        self.src, self.from_port = src, from_port
        self.wire = QGraphicsPathItem()
        self.wire.setPen(view.canvas.style.edge_drag)
        self.wire.setZValue(20)
        view.canvas.addItem(self.wire)
        self.target: NodeItem | None = None

    def _origin(self) -> QPointF:
        return self.scene.nodes[self.src].out_port_pos(self.from_port)

    def move(self, event: QMouseEvent) -> None:
        p = self.view.mapToScene(event.position().toPoint())
        target, port = self._target_at(p)
        end = target.in_port_pos(port) if target is not None and port is not None else p
        path, _ = curve(self._origin(), end)
        self.wire.setPath(path)
        if target is not self.target:
            if self.target is not None:
                self.target.highlight = False
                self.target.update()
            if target is not None:
                target.highlight = True
                target.update()
            self.target = target

    def _target_at(self, p: QPointF) -> tuple[NodeItem | None, int | None]:
        for it in self.scene.items(p):
            if isinstance(it, NodeItem) and it.isVisible() and it.node_id != self.src:
                hit = it.port_at(p)
                return it, hit[1] if hit is not None and hit[0] == "in" else None
            if isinstance(it, BlockItem):
                return None, None
        return None, None

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
        target, port = self._target_at(p)
        self._finish()
        if target is None:
            if any(isinstance(it, BlockItem) for it in self.scene.items(p)):
                self.view.message.emit("expand the block (double-click it) to connect to a layer inside")
            return
        doc = self.scene.doc
        error = try_push(doc, lambda: ConnectCommand(doc, self.src, target.node_id, port, self.from_port))
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
        target, port = self._target_at(p)
        self._finish()
        if self.item is not None and self.edge in self.scene.edges:
            self.item.setVisible(True)
        if not self.moved:  # a click on the wire's end: select the connection
            if self.item is not None and self.item.isVisible():
                self.scene.clearSelection()
                self.item.setSelected(True)
            return
        doc = self.scene.doc
        if target is None:
            error = try_push(doc, lambda: DisconnectCommand(doc, self.edge))
        else:
            error = try_push(doc, lambda: ReconnectCommand(doc, self.edge, target.node_id, port))
        if error:
            self.view.message.emit(f"Cannot reconnect: {error}")

    def cancel(self) -> None:
        super().cancel()
        if self.item is not None and self.edge in self.scene.edges:
            self.item.setVisible(True)
