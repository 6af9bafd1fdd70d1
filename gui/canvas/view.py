"""The canvas view: zoom, pan, gestures, keyboard, palette drops and the API the window calls.

Mouse presses start a gesture object (:mod:`gui.canvas.gestures`); rubber-band selection is
Qt's own. Every edit goes through :func:`gui.commands.try_push`; refusals come out of the
``message`` signal, which the window shows in its status bar.

Big graphs: zooming out stops at :data:`ZOOM_FLOOR`, where a card is still a block of its
layer's colour; Fit on a graph too big for that shows its top at the floor and the minimap
(:mod:`gui.canvas.minimap`, in the corner) shows the rest. Auto-arrange computes the layout in a
worker thread (:mod:`gui.canvas.arrange_job`), so the window keeps responding, and applies it
as one undoable step.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QContextMenuEvent, QKeyEvent, QKeySequence, QMouseEvent, QPainter, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QGraphicsView, QWidget

from gui.canvas.arrange_job import Arranger, Positions
from gui.canvas.blocks import BlockItem, FrameItem, FrameTitleItem
from gui.canvas.gestures import (
    ConnectGesture,
    Gesture,
    MoveGesture,
    PanGesture,
    ReconnectGesture,
    block_port_gesture,
)
from gui.canvas.items import EdgeItem, NodeItem
from gui.canvas.metrics import NODE_H, NODE_W, SNAP
from gui.canvas.minimap import Minimap
from gui.canvas.scene import CanvasScene
from gui.clipboard import clipboard_text, put_on_clipboard, selection_json
from gui.commands import (
    AddNodeCommand,
    AutoArrangeCommand,
    GroupCommand,
    PasteCommand,
    RemoveItemsCommand,
    SetGroupCollapsedCommand,
    reveal_node,
    try_push,
)
from gui.theme import Theme

LAYER_MIME = "application/x-netcanvas-layer"
# The zoom floor: a card is 20 x 5 px, drawn as a block of its category's colour (items.py, below
# LOD_FAR). Further out a 500-node graph became a 1-px stripe; the minimap shows the rest instead.
ZOOM_FLOOR = 0.1
_MIN_ZOOM, _MAX_ZOOM = ZOOM_FLOOR, 3.0


class CanvasView(QGraphicsView):
    """Shows a :class:`CanvasScene`; gestures, shortcuts and drops edit through undo commands."""

    message = Signal(str)  # a refusal or hint for the status bar
    zoom_changed = Signal(float)
    find_requested = Signal()  # Ctrl+F: the window opens its find field

    def __init__(self, scene: CanvasScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.canvas = scene
        self.doc = scene.doc
        self.gesture: Gesture | None = None
        self.space_held = False
        self._paste_count = 0
        self.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.ItemSelectionMode.IntersectsItemShape)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        scene.message.connect(self.message)
        self._banding = False
        self.rubberBandChanged.connect(self._on_band)
        self.minimap = Minimap(self)
        self.arranger = Arranger(self.doc, self._apply_arrangement, self.message.emit, self)

    # -- public API (the window's menus and panels call these) ------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        z = self.zoom()
        factor = max(_MIN_ZOOM / z, min(_MAX_ZOOM / z, factor))
        if anchor is None:
            old = self.transformationAnchor()
            self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
            self.scale(factor, factor)
            self.setTransformationAnchor(old)
        else:
            self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom())

    def fit_all(self) -> None:
        """Zoom to show everything, but never beyond 100 % (small graphs stay readable)."""
        r = self.canvas.content_rect()
        if r.isNull():
            return
        self.fit_rect(r.adjusted(-40, -40, 40, 40))

    def fit_rect(self, r: QRectF) -> None:
        """Show ``r`` whole, at up to 100 %; one too big for the zoom floor shows its top at the floor
        (centred across, or its left edge when it is wider than the view too)."""
        self.fitInView(r, Qt.AspectRatioMode.KeepAspectRatio)
        if self.zoom() > 1.0:
            self.resetTransform()
        elif self.zoom() < _MIN_ZOOM:
            self.resetTransform()
            self.scale(_MIN_ZOOM, _MIN_ZOOM)
            vp = self.viewport().rect()
            seen_w, seen_h = vp.width() / _MIN_ZOOM, vp.height() / _MIN_ZOOM
            x = r.center().x() if r.width() <= seen_w else r.left() + seen_w / 2
            y = r.center().y() if r.height() <= seen_h else r.top() + seen_h / 2
            self.centerOn(QPointF(x, y))
            self.zoom_changed.emit(self.zoom())
            return
        self.centerOn(r.center())
        self.zoom_changed.emit(self.zoom())

    def _reveal(self, node_id: str) -> None:
        """Expand the collapsed blocks that hide ``node_id``: viewing, not editing (no undo step,
        the document stays unmodified; see :func:`gui.commands.reveal_node`)."""
        reveal_node(self.doc, node_id)

    def center_on_node(self, node_id: str) -> bool:
        if node_id not in self.canvas.nodes:
            return False
        self._reveal(node_id)
        item = self.canvas.nodes[node_id]
        if self.zoom() < 0.6:
            self.resetTransform()
            self.scale(0.85, 0.85)
            self.zoom_changed.emit(self.zoom())
        self.centerOn(item.sceneBoundingRect().center())
        return True

    def select_nodes(self, ids: list[str]) -> None:
        for nid in ids:
            if nid in self.canvas.nodes and not self.canvas.nodes[nid].isVisible():
                self._reveal(nid)
        self.canvas.select_ids(ids)

    def find_and_focus(self, text: str) -> bool:
        """Select and centre the first node whose id or type matches ``text`` (exact, then prefix, then part)."""
        q = text.strip().lower()
        if not q:
            return False
        g = self.doc.graph
        for test in (lambda n: n.id.lower() == q or n.type.lower() == q,
                     lambda n: n.id.lower().startswith(q) or n.type.lower().startswith(q),
                     lambda n: q in n.id.lower() or q in n.type.lower()):
            hit = next((n.id for n in g.nodes.values() if test(n)), None)
            if hit is not None:
                self.select_nodes([hit])
                self.center_on_node(hit)
                return True
        self.message.emit(f"No layer matches “{text.strip()}”")
        return False

    def auto_arrange(self) -> bool:
        """Lay the graph out in a worker thread; the result lands later as one undoable step.

        Returns at once (False when a layout is already running). The status bar follows the
        progress; an edit made meanwhile restarts the layout on the edited graph.
        """
        return self.arranger.start()

    def _apply_arrangement(self, positions: Positions) -> None:
        command = AutoArrangeCommand(self.doc, positions)
        if command.noop:
            self.message.emit("The graph is already arranged")
        elif self._push(command):
            n = len(positions)
            self.message.emit(f"Arranged {n:,} node{'s' * (n != 1)} (Ctrl+Z undoes it)")
        self.fit_all()

    def copy(self) -> bool:
        ids = self.canvas.selected_node_ids()
        if not ids:
            self.message.emit("Nothing selected to copy")
            return False
        put_on_clipboard(selection_json(self.doc.graph, ids))
        self._paste_count = 0
        return True

    def paste(self) -> bool:
        text = clipboard_text()
        self._paste_count += 1
        at = self._paste_point()
        cmd: list[PasteCommand] = []

        def make() -> PasteCommand:
            cmd.append(PasteCommand(self.doc, text, at=at))
            return cmd[0]

        error = try_push(self.doc, make)
        if error:
            self.message.emit(f"Cannot paste: {error}")
            return False
        self.canvas.select_ids(cmd[0].new_ids)
        return True

    def duplicate(self) -> bool:
        ids = self.canvas.selected_node_ids()
        if not ids:
            self.message.emit("Select the layers to duplicate first")
            return False
        g = self.doc.graph
        text = selection_json(g, ids)
        x0 = min((g.nodes[n].pos or (0.0, 0.0))[0] for n in ids)
        y0 = min((g.nodes[n].pos or (0.0, 0.0))[1] for n in ids)
        cmd: list[PasteCommand] = []

        def make() -> PasteCommand:
            cmd.append(PasteCommand(self.doc, text, at=(x0 + NODE_W / 2 + 24, y0 + 24)))
            cmd[0].setText(cmd[0].text().replace("Paste", "Duplicate", 1))
            return cmd[0]

        error = try_push(self.doc, make)
        if error:
            self.message.emit(f"Cannot duplicate: {error}")
            return False
        self.canvas.select_ids(cmd[0].new_ids)
        return True

    def delete_selection(self) -> bool:
        ids = self.canvas.selected_node_ids()
        edges = self.canvas.selected_edges()
        if not ids and not edges:
            return False
        return self._push(lambda: RemoveItemsCommand(self.doc, ids, edges))

    def group_selection(self, label: str | None = None) -> bool:
        ids = self.canvas.selected_node_ids()
        items = [nid for nid in ids if self.canvas._unit.get(nid) == nid]
        items += [gid for gid, card in self.canvas.cards.items() if card.isSelected()]
        if not items:
            self.message.emit("Select the layers to group first")
            return False
        return self._push(lambda: GroupCommand(self.doc, items, label or "Block"))

    def set_theme(self, theme: Theme) -> None:
        self.canvas.set_theme(theme)
        self.minimap.rebuild()
        self.viewport().update()

    def add_layer(self, layer_type: str, scene_pos: QPointF | None = None,
                  connect_from: str | None = None) -> str | None:
        """Add a node of ``layer_type`` centred at ``scene_pos`` (default: the view centre)."""
        if scene_pos is None:
            scene_pos = self.mapToScene(self.viewport().rect().center())
        x = round((scene_pos.x() - NODE_W / 2) / SNAP) * SNAP
        y = round((scene_pos.y() - NODE_H / 2) / SNAP) * SNAP
        made: list[AddNodeCommand] = []

        def make() -> AddNodeCommand:
            made.append(AddNodeCommand(self.doc, layer_type, pos=(x, y), connect_from=connect_from))
            return made[0]

        if not self._push(make):
            return None
        self.canvas.select_ids([made[0].node_id])
        return made[0].node_id

    # -- helpers ----------------------------------------------------------------------------------
    def _push(self, factory: object) -> bool:
        error = try_push(self.doc, factory)
        if error:
            self.message.emit(error[0].upper() + error[1:])
            return False
        return True

    def _paste_point(self) -> tuple[float, float]:
        pos = self.mapFromGlobal(self.cursor().pos())
        if not self.viewport().rect().contains(pos):
            pos = self.viewport().rect().center()
        p = self.mapToScene(pos)
        off = 24 * (self._paste_count - 1)
        return (round(p.x() / SNAP) * SNAP + off, round(p.y() / SNAP) * SNAP + off)

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        self.minimap.rebuild()  # its largest size follows the canvas's height

    # -- mouse ------------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        if self.gesture is not None:
            return
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self.space_held):
            self.gesture = PanGesture(self, event)
            event.accept()
            return
        if button != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        p = self.mapToScene(event.position().toPoint())
        ctrl = bool(event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier))
        for item in self.items(event.position().toPoint()):
            if isinstance(item, NodeItem):
                if self._press_node(item, p, ctrl, event):
                    return
                break
            if isinstance(item, BlockItem):
                self.gesture = block_port_gesture(self, item, p)  # its ports are its inner layers' ports
                if self.gesture is not None:
                    event.accept()
                    return
                self._select_for_drag(item, ctrl)
                if item.isSelected():
                    self.gesture = MoveGesture(self, event)
                event.accept()
                return
            if isinstance(item, EdgeItem):
                end = self.canvas.nodes.get(item.edge.dst)
                if end is not None and end.isVisible() and \
                        (end.in_port_pos(item.edge.port) - p).manhattanLength() < 20:
                    self.gesture = ReconnectGesture(self, item.edge)
                    event.accept()
                    return
                break
            if isinstance(item, (FrameItem, FrameTitleItem)) and item.chevron_hit(p):
                self._push(lambda gid=item.group_id: SetGroupCollapsedCommand(self.doc, gid, True))
                event.accept()
                return
        super().mousePressEvent(event)

    def _press_node(self, item: NodeItem, p: QPointF, ctrl: bool, event: QMouseEvent) -> bool:
        hit = item.port_at(p)
        if hit is not None and hit[0] == "out":
            self.gesture = ConnectGesture(self, item.node_id, hit[1] or 0)
            event.accept()
            return True
        if hit is not None and hit[0] == "in" and hit[1] is not None:
            edge = next((e for e in self.doc.graph.in_edges(item.node_id) if e.port == hit[1]), None)
            if edge is not None:
                self.gesture = ReconnectGesture(self, edge)
                event.accept()
                return True
        self._select_for_drag(item, ctrl)
        if item.isSelected():
            self.gesture = MoveGesture(self, event)
        event.accept()
        return True

    def _select_for_drag(self, item: NodeItem | BlockItem, ctrl: bool) -> None:
        if ctrl:
            item.setSelected(not item.isSelected())
        elif not item.isSelected():
            self.canvas.clearSelection()
            item.setSelected(True)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # Qt override
        if self.gesture is not None:
            self.gesture.move(event)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # Qt override
        if self.gesture is not None:
            gesture, self.gesture = self.gesture, None
            gesture.release(event)
            event.accept()
            return
        super().mouseReleaseEvent(event)
        if self._banding:  # a rubber band selects layers; wires it happens to cross stay unselected
            self._banding = False
            for item in self.canvas.edges.values():
                if item.isSelected():
                    item.setSelected(False)

    def _on_band(self, rect: object, *_: object) -> None:
        if not rect.isNull():  # type: ignore[attr-defined]
            self._banding = True

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # Qt override
        p = self.mapToScene(event.position().toPoint())
        for item in self.items(event.position().toPoint()):
            if isinstance(item, BlockItem):
                self._push(lambda gid=item.group_id: SetGroupCollapsedCommand(self.doc, gid, False))
                return
            if isinstance(item, (FrameItem, FrameTitleItem)) and item.chevron_hit(p):
                return
            if isinstance(item, NodeItem):
                return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # Qt override
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta:
            self.zoom_by(1.0015 ** delta, event.position())
        event.accept()

    # -- keyboard ---------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_held = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_Escape and self.gesture is not None:
            self.gesture.cancel()
            self.gesture = None
            return
        actions = {
            QKeySequence.StandardKey.Copy: self.copy,
            QKeySequence.StandardKey.Paste: self.paste,
            QKeySequence.StandardKey.SelectAll: lambda: self.canvas.select_ids(list(self.doc.graph.nodes)),
            QKeySequence.StandardKey.Find: self.find_requested.emit,
            QKeySequence.StandardKey.Delete: self.delete_selection,
        }
        for seq, act in actions.items():
            if event.matches(seq):
                act()
                return
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_selection()
        elif ctrl and key == Qt.Key.Key_D:
            self.duplicate()
        elif ctrl and key == Qt.Key.Key_G:
            self.group_selection()
        elif ctrl and key == Qt.Key.Key_0:
            self.fit_all()
        elif ctrl and key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(1.25)
        elif ctrl and key == Qt.Key.Key_Minus:
            self.zoom_by(0.8)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # Qt override
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self.space_held = False
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # Qt override
        # freeze / unfreeze / learning-rate multiplier of a card or block (gui.canvas.finetune_menu)
        from gui.canvas.finetune_menu import build_menu

        menu = build_menu(self, event.pos())
        if menu is None:
            super().contextMenuEvent(event)
            return
        menu.exec(event.globalPos())
        menu.deleteLater()

    def focusOutEvent(self, event: object) -> None:  # Qt override
        self.space_held = False
        super().focusOutEvent(event)  # type: ignore[arg-type]

    # -- palette drops ----------------------------------------------------------------------------
    def dragEnterEvent(self, event: object) -> None:  # Qt override
        if event.mimeData().hasFormat(LAYER_MIME):  # type: ignore[attr-defined]
            event.acceptProposedAction()  # type: ignore[attr-defined]
        else:
            event.ignore()  # type: ignore[attr-defined]

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event: object) -> None:  # Qt override
        data = event.mimeData()  # type: ignore[attr-defined]
        if not data.hasFormat(LAYER_MIME):
            event.ignore()  # type: ignore[attr-defined]
            return
        layer_type = bytes(data.data(LAYER_MIME).data()).decode("utf-8", errors="replace").strip()
        pos = self.mapToScene(event.position().toPoint())  # type: ignore[attr-defined]
        event.acceptProposedAction()  # type: ignore[attr-defined]
        if self.add_layer(layer_type, pos) is not None:
            self.setFocus()
