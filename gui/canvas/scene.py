"""The canvas scene: mirrors a :class:`gui.document.Document`, never writes the model itself.

It listens to the document's signals (Orange ``canvas/scene.py``: ``node_added → add_node``)
and keeps one :class:`~gui.canvas.items.NodeItem` per node, one
:class:`~gui.canvas.items.EdgeItem` per edge, a :class:`~gui.canvas.blocks.FrameItem` per
expanded block and a :class:`~gui.canvas.blocks.BlockItem` per collapsed one. Edits happen in
the view's gestures, which push undo commands; the model then tells the scene what changed.

Analysis updates touch only the items whose :class:`core.analysis.NodeResult` or diagnostics
changed (results are compared by identity first, then by value), so a one-parameter edit in a
500-node graph repaints a handful of items.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from core.analysis import Analysis, Severity
from core.graph import Edge
from core.layers.spec import fmt_shape
from core.layout import RectIndex, card_rect, is_hidden_group, parent_map, visible_unit
from gui.canvas.blocks import (
    BlockItem,
    FrameItem,
    block_facts,
    block_ports,
    human,
    live_label,
    makes_claims,
)
from gui.canvas.items import EdgeItem, NodeItem, curve, severity_of
from gui.canvas.metrics import CARD_H, CARD_W, NODE_H, NODE_W
from gui.canvas.routing import LANE_GAP, cards_in_view, corridor, lane_beside
from gui.canvas.style import draw_grid, style_for
from gui.document import Document
from gui.theme import Theme

_BULK_MOVE = 64  # a move of this many nodes or more (Arrange, its undo) routes its wires in slices
_SLICE_S = 0.012  # one slice of the deferred reroute: with the paint after it, well under 50 ms


def _composition(types: Iterable[str]) -> str:
    """What a block is made of, most frequent type first: ``3× Conv2d · 3× BatchNorm2d · ReLU``."""
    counts = Counter(types)
    return " · ".join(f"{n}× {t}" if n > 1 else t for t, n in counts.most_common())


class CanvasScene(QGraphicsScene):
    """Items for every node, edge and block of ``doc``; follows the document's signals."""

    message = Signal(str)

    def __init__(self, doc: Document, theme: Theme | None = None, parent: QObject | None = None, *,
                 build: bool = True) -> None:
        """``build=False`` leaves the items to :class:`gui.canvas.build_job.SceneBuild` (a big file)."""
        super().__init__(parent)
        self.doc = doc
        self.canvas_style = style_for(theme)  # not "style": that is QGraphicsScene.style()
        self.nodes: dict[str, NodeItem] = {}
        self.edges: dict[Edge, EdgeItem] = {}
        self.frames: dict[str, FrameItem] = {}
        self.cards: dict[str, BlockItem] = {}
        self._parent: dict[str, str] = {}
        self._unit: dict[str, str] = {}
        self._diag_nodes: set[str] = set()
        self._moved: set[str] = set()
        self._shifts: set[tuple[float, float]] = set()  # how far the cards of self._moved moved
        self._syncing = False
        self.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.BspTreeIndex)
        self.setBackgroundBrush(self.canvas_style.canvas)
        self._card_index: RectIndex[QGraphicsItem] | None = None  # set while reroute_edges runs
        self._reroute_timer = QTimer(self, singleShot=True, interval=60)
        self._reroute_timer.timeout.connect(self._reroute_near_moves)
        self._reroute_queue: list[EdgeItem] = []
        # Where cards left and arrived since the last deferred reroute (a few cards moved): only the
        # wires passing there can need another lane. None: reroute every wire (a bulk move, a layout).
        self._moved_areas: list[QRectF] | None = []
        self._order_queue = False  # the next slice sorts the queue: wires in view first
        self._slice_index: RectIndex[QGraphicsItem] | None = None  # the cards, kept until one moves
        self._frames_due: set[str] = set()  # frames hidden after a bulk move until the next slice
        self._slice_timer = QTimer(self, interval=0)  # one slice of the deferred reroute per turn
        self._slice_timer.timeout.connect(self._reroute_slice)
        # content_rect() until a card, block or frame changes: a fit after a 100,000-node build
        # asked for it twice, 0.3 s each, from every item
        self._content: QRectF | None = None
        self._rect_timer = QTimer(self, singleShot=True, interval=0)
        self._rect_timer.timeout.connect(self._update_scene_rect)
        if build:
            self._build()
        doc.node_added.connect(self._on_node_added)
        doc.node_removed.connect(self._on_node_removed)
        doc.node_changed.connect(self._on_node_changed)
        doc.node_renamed.connect(self._on_node_renamed)
        doc.node_moved.connect(self._on_node_moved)
        doc.edge_added.connect(self._on_edge_added)
        doc.edge_removed.connect(self._on_edge_removed)
        doc.groups_changed.connect(self.refresh_folding)
        doc.batch_finished.connect(self._flush_moves)
        doc.analysis_updated.connect(self.apply_analysis)
        doc.selection_changed.connect(self._selection_from_doc)
        self.selectionChanged.connect(self._selection_to_doc)

    # -- building ---------------------------------------------------------------------------------
    def _build(self) -> None:
        from gui.canvas.build_job import build_steps

        for _ in build_steps(self):
            pass

    def _add_node_item(self, node_id: str) -> NodeItem:
        self._content = None
        node = self.doc.graph.nodes[node_id]
        item = NodeItem(node, self.canvas_style, self.doc.analysis.nodes.get(node_id))
        x, y = node.pos if node.pos is not None else (0.0, 0.0)
        item.setPos(x, y)
        self.addItem(item)
        self.nodes[node_id] = item
        return item

    def _add_edge_item(self, edge: Edge) -> EdgeItem:
        item = EdgeItem(edge, self.canvas_style)
        self.addItem(item)
        self.edges[edge] = item
        self._label_edge(item)
        return item

    def _refresh_slots(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        if item is not None:
            item.set_slots([e.port for e in self.doc.graph.in_edges(node_id)])

    # -- model signals ----------------------------------------------------------------------------
    def _on_node_added(self, node_id: str) -> None:
        self._slice_index = None
        self._add_node_item(node_id)
        self._refresh_slots(node_id)
        self._unit[node_id] = visible_unit(self.doc.graph, self._parent, node_id)
        self.nodes[node_id].setVisible(self._unit[node_id] == node_id)
        self._rect_timer.start()

    def _on_node_removed(self, node_id: str) -> None:
        self._slice_index = self._content = None
        item = self.nodes.pop(node_id, None)
        if item is not None:
            self.removeItem(item)
        self._unit.pop(node_id, None)
        self._diag_nodes.discard(node_id)

    def _on_node_changed(self, node_id: str) -> None:
        self._content = None
        item = self.nodes.get(node_id)
        if item is not None:
            item.set_node(self.doc.graph.nodes[node_id])

    def _on_node_renamed(self, old: str, new: str) -> None:
        g = self.doc.graph
        item = self.nodes.pop(old)
        self.nodes[new] = item
        item.set_node(g.nodes[new])
        for e in [e for e in self.edges if old in (e.src, e.dst)]:
            eitem = self.edges.pop(e)
            ne = Edge(new if e.src == old else e.src, new if e.dst == old else e.dst, e.port, e.from_port)
            eitem.edge = ne
            self.edges[ne] = eitem
        if old in self._diag_nodes:
            self._diag_nodes.discard(old)
            self._diag_nodes.add(new)
        self._parent = parent_map(g)
        self._unit[new] = self._unit.pop(old, new)
        if self._unit[new] == old:
            self._unit[new] = new

    def _on_node_moved(self, node_id: str) -> None:
        item = self.nodes.get(node_id)
        node = self.doc.graph.nodes.get(node_id)
        if item is None or node is None:
            return
        x, y = node.pos if node.pos is not None else (0.0, 0.0)
        was = item.pos()
        self._shifts.add((round(x - was.x(), 3), round(y - was.y(), 3)))
        if self._moved_areas is not None and len(self._moved_areas) < 2 * _BULK_MOVE:
            self._moved_areas.append(self._card_rect(item))
            item.setPos(x, y)
            self._moved_areas.append(self._card_rect(item))
        else:
            self._moved_areas = None  # many cards: every wire is rerouted
            item.setPos(x, y)
        self._slice_index = self._content = None
        self._moved.add(node_id)
        if not self.doc.in_batch:  # inside a command, the rest waits for batch_finished
            self._flush_moves()

    def _flush_moves(self) -> None:
        """After moves: place the cards and frames around moved nodes and re-route their edges, once each."""
        moved, self._moved = self._moved, set()
        shifts, self._shifts = self._shifts, set()
        if not moved:
            return
        g = self.doc.graph
        units = {self._unit.get(n, n) for n in moved if n in g.nodes}
        groups: set[str] = set()
        for u in units:
            if u in self.cards:
                self._place_card(u)
            gid = self._parent.get(u)
            while gid is not None and gid not in groups:
                groups.add(gid)
                gid = self._parent.get(gid)
        frames = [gid for gid in groups if gid in self.frames]
        if len(moved) >= _BULK_MOVE and len(shifts) > 1:
            # Arrange and its undo: routing every wire here held the GUI thread 0.2-0.4 s on
            # DenseNet-201. The wires of the moved cards are hidden (their old courses point at
            # old places) and all wires are routed in slices, those in view first; the frames
            # around them are hidden too and placed in the next turn, after this step's paint.
            # Not a drag (every card moved by the same step): hidden at each step of the mouse,
            # its wires and frames would flicker, so it is drawn at once as before.
            for gid in frames:
                self._frames_due.add(gid)
                self.frames[gid].setOpacity(0.0)
                self.frames[gid].title.setOpacity(0.0)
            for e, eitem in self.edges.items():
                if (e.src in moved or e.dst in moved) and eitem.isVisible():
                    eitem.set_pending()
            self._reroute_timer.stop()
            self._reroute_in_slices(now=False)
            self._rect_timer.start()
            return
        for gid in sorted(frames, key=self._depth, reverse=True):
            self._place_frame(gid)
        seen: set[Edge] = set()
        for nid in moved:
            if nid in g.nodes:
                for e in g.in_edges(nid) + g.out_edges(nid):
                    eitem = self.edges.get(e)
                    if e not in seen and eitem is not None and eitem.isVisible():
                        seen.add(e)
                        self._route_edge(eitem, lanes=len(moved) < _BULK_MOVE)
        self._reroute_timer.start()  # lanes of other long edges passing where the cards were or are may change
        self._rect_timer.start()

    def _on_edge_added(self, edge: Edge) -> None:
        self._content = None  # a card at its ends may grow a port
        item = self._add_edge_item(edge)
        self._refresh_slots(edge.dst)
        self._refresh_ports_of(edge)
        self._fold_edge(item, set())
        for e in self.doc.graph.in_edges(edge.dst):
            if e in self.edges:
                self._route_edge(self.edges[e])

    def _on_edge_removed(self, edge: Edge) -> None:
        self._content = None
        item = self.edges.pop(edge, None)
        if item is not None:
            self.removeItem(item)
        self._refresh_ports_of(edge)
        if edge.dst in self.doc.graph.nodes:
            self._refresh_slots(edge.dst)
            for e in self.doc.graph.in_edges(edge.dst):
                if e in self.edges:
                    self._route_edge(self.edges[e])

    # -- folding (blocks) -------------------------------------------------------------------------
    def refresh_folding(self) -> None:
        """Recompute what is visible: nodes, collapsed cards, frames, edges and their ends."""
        for _ in self._fold_steps():
            pass
        self._refresh_cards()
        self.reroute_edges()
        self._rect_timer.start()

    def _fold_steps(self) -> Iterator[None]:
        """:meth:`refresh_folding` up to the block cards' texts and the wires' courses, one item a step."""
        g = self.doc.graph
        self._slice_index = self._content = None
        self._parent = parent = parent_map(g)
        unit: dict[str, str] = {}
        for n in g.nodes:
            unit[n] = visible_unit(g, parent, n)
            yield
        self._unit = unit
        for nid, item in self.nodes.items():
            item.setVisible(self._unit.get(nid) == nid)
            yield
        wanted_cards = {u for u in self._unit.values() if u in g.groups}
        for gid in list(self.cards):
            if gid not in wanted_cards:
                self.removeItem(self.cards.pop(gid))
        for gid in wanted_cards:
            if gid not in self.cards:
                card = BlockItem(gid, self.canvas_style)
                self.addItem(card)
                self.cards[gid] = card
            self._place_card(gid)
            yield
        wanted_frames: list[str] = []
        for gid, grp in g.groups.items():  # 25,000 groups of a 100,000-node file: seconds at once
            if not grp.collapsed and not is_hidden_group(g, parent, gid) and g.group_nodes(gid):
                wanted_frames.append(gid)
            yield
        wanted = set(wanted_frames)
        for gid in list(self.frames):
            if gid not in wanted:
                frame = self.frames.pop(gid)
                self.removeItem(frame.title)
                self.removeItem(frame)
        for gid in wanted_frames:
            if gid not in self.frames:
                frame = FrameItem(gid, self.canvas_style)
                self.addItem(frame)
                self.addItem(frame.title)
                self.frames[gid] = frame
            yield
        for gid in sorted(wanted_frames, key=self._depth, reverse=True):
            self._place_frame(gid)
            yield
        shown: set[tuple[object, ...]] = set()
        for item in self.edges.values():
            self._fold_edge(item, shown)
            yield

    def _depth(self, gid: str) -> int:
        d, cur = 0, self._parent.get(gid)
        while cur is not None and d < 64:
            d += 1
            cur = self._parent.get(cur)
        return d

    def _refresh_ports_of(self, edge: Edge) -> None:
        """An edge came or went: the cards at its ends may have gained or lost a boundary port."""
        for nid in (edge.src, edge.dst):
            gid = self._unit.get(nid, nid)
            card = self.cards.get(gid)
            if card is not None:
                card.set_ports(*block_ports(self.doc.graph, gid))
                for e in self.edges:
                    if self._unit.get(e.src) == gid or self._unit.get(e.dst) == gid:
                        eitem = self.edges[e]
                        if eitem.isVisible():
                            self._route_edge(eitem, lanes=False)

    def _fold_edge(self, item: EdgeItem, shown: set[tuple[object, ...]]) -> None:
        e = item.edge
        su, du = self._unit.get(e.src, e.src), self._unit.get(e.dst, e.dst)
        visible = su != du
        if visible and (su != e.src or du != e.dst):
            # several edges may now join the same pair of items: draw one per output port and,
            # into a card, one per inner input port (each is a port of its own on the card)
            key: tuple[object, ...] = (su, du, e.src, e.from_port) + ((e.dst, e.port) if du != e.dst else ())
            visible = key not in shown
            shown.add(key)
        item.setVisible(visible)  # its course is the caller's: every caller routes the wires after

    def _place_card(self, gid: str) -> None:
        self._content = None
        card = self.cards.get(gid)
        r = card_rect(self.doc.graph, gid)
        if card is not None and r is not None:
            card.setPos(r[0], r[1])

    def _place_frame(self, gid: str) -> None:
        self._content = None
        self._frames_due.discard(gid)
        frame = self.frames.get(gid)
        grp = self.doc.graph.groups.get(gid)
        if frame is None or grp is None:
            return
        rects: list[QRectF] = []
        for m in grp.members:
            if m in self.nodes:
                p = self.nodes[m].pos()
                rects.append(QRectF(p.x(), p.y(), NODE_W, NODE_H))
            elif m in self.cards:
                p = self.cards[m].pos()
                rects.append(QRectF(p.x(), p.y(), CARD_W, CARD_H))
            elif m in self.frames:  # with its title pill: the two titles must not overlap
                rects.append(self.frames[m].outer_rect)
        if not rects:
            frame.setVisible(False)
            frame.title.setVisible(False)
            return
        content = rects[0]
        for r in rects[1:]:
            content = content.united(r)
        frame.setVisible(True)
        frame.title.setVisible(True)
        frame.set_geometry(content, self.block_title(gid), self._depth(gid))
        if frame.opacity() < 1.0:  # hidden after a bulk move until now
            frame.setOpacity(1.0)
            frame.title.setOpacity(1.0)

    # -- what a block says about itself (derived from its layers each time, never cached) ---------
    def block_facts(self, gid: str) -> tuple[list[str], list[str], int | None, int | None]:
        """The shapes going into and coming out of block ``gid`` (as text), its stride and its
        output channels (``None`` where the analysis does not know)."""
        return block_facts(self.doc.graph, self.doc.analysis, gid)

    def block_title(self, gid: str) -> str:
        """The block's label with its claims about its layers (stride, channels) made true now."""
        label = self.doc.graph.groups[gid].label
        if not makes_claims(label):  # nothing to check: skip working out the block's shapes
            return label
        _, _, stride, channels = self.block_facts(gid)
        return live_label(label, stride, channels)

    def _refresh_frame_titles(self) -> None:
        for gid, frame in self.frames.items():
            if gid in self.doc.graph.groups and frame.isVisible():
                label = self.block_title(gid)
                if label != frame.label:
                    frame.label = label
                    frame.title.set_geometry()

    def _refresh_cards(self) -> None:
        for _ in self._refresh_cards_steps():
            pass

    def _refresh_cards_steps(self) -> Iterator[None]:
        """Each collapsed block card's texts from its layers' results, one card a step."""
        g, a = self.doc.graph, self.doc.analysis
        diags: dict[str, list[tuple[Severity, str]]] = defaultdict(list)
        for d in a.diagnostics:
            if d.node is not None:
                diags[d.node].append((d.severity, d.message))
        for gid, card in self.cards.items():
            members = g.group_nodes(gid)
            inside = set(members)
            params = macs = 0
            shapes: list[str] = []
            known = True
            mdiags: list[tuple[Severity, str]] = []
            for nid in members:
                r = a.nodes.get(nid)
                if r is None or r.out_shapes is None:
                    known = False
                else:
                    params += r.params or 0
                    macs += r.macs or 0
                mdiags += diags.get(nid, [])
                for e in g.out_edges(nid):
                    if e.dst not in inside:
                        s = r.out_shapes[e.from_port] if r is not None and r.out_shapes and \
                            e.from_port < len(r.out_shapes) else None
                        text = fmt_shape(s)
                        if text not in shapes:
                            shapes.append(text)
            card.set_ports(*block_ports(g, gid))
            texts_in, texts_out, stride, channels = self.block_facts(gid)
            label = live_label(g.groups[gid].label, stride, channels)
            composition = _composition(g.nodes[n].type for n in members)
            tip = [f"{label} ({gid})",
                   f"{len(members)} layers · {human(params) if known else '?'} params · "
                   f"{human(macs) if known else '?'} MACs",
                   f"{'  '.join(texts_in) or 'no input'} → {'  '.join(texts_out) or 'no output'}"
                   + (f" · stride {stride}" if stride is not None and stride > 1 else ""),
                   composition, "Double-click to expand; drag from a port to connect its layer"]
            tip += [m for _, m in mdiags[:6]]
            card.set_content(label, len(members), params if known else None, macs if known else None,
                             "  ".join(shapes) or "?", known and bool(shapes), severity_of(mdiags), "\n".join(tip),
                             group_id=gid, composition=composition)
            yield

    # -- edges ------------------------------------------------------------------------------------
    def _ends(self, e: Edge) -> tuple[QGraphicsItem, QPointF, QGraphicsItem, QPointF] | None:
        su, du = self._unit.get(e.src, e.src), self._unit.get(e.dst, e.dst)
        if su in self.cards:
            s_item: QGraphicsItem = self.cards[su]
            p0 = self.cards[su].out_port_pos(e.src, e.from_port)
        elif e.src in self.nodes:
            s_item = self.nodes[e.src]
            p0 = self.nodes[e.src].out_port_pos(e.from_port)
        else:
            return None
        if du in self.cards:
            d_item: QGraphicsItem = self.cards[du]
            p1 = self.cards[du].in_port_pos(e.dst, e.port)
        elif e.dst in self.nodes:
            d_item = self.nodes[e.dst]
            p1 = self.nodes[e.dst].in_port_pos(e.port)
        else:
            return None
        return s_item, p0, d_item, p1

    def _route_edge(self, item: EdgeItem, lanes: bool = True) -> None:
        ends = self._ends(item.edge)
        if ends is None:
            return
        s_item, p0, d_item, p1 = ends
        lane = self._lane(p0, p1, (s_item, d_item)) if lanes else getattr(item, "lane", None)
        item.lane = lane
        path, label_at = curve(p0, p1, lane)
        e = item.edge
        first = next((o for o in self.doc.graph.out_edges(e.src)
                      if o.from_port == e.from_port and o in self.edges and self.edges[o].isVisible()), e)
        item.show_label = first == e
        item.set_path(path, label_at)

    def _lane(self, p0: QPointF, p1: QPointF, ends: Iterable[QGraphicsItem]) -> float | None:
        """A vertical lane beside the cards that the straight course from p0 to p1 would cross."""
        box = corridor(p0, p1)
        if box is None:
            return None
        skip = set(ends)
        if self._card_index is not None:
            return lane_beside(p0, p1, (r for r, it in self._card_index.overlapping(box.getCoords()) if it not in skip))
        rects = [self._card_rect(it) for it in self.items(box)
                 if isinstance(it, (NodeItem, BlockItem)) and it.isVisible() and it not in skip]
        return lane_beside(p0, p1, ((r.left(), r.top(), r.right(), r.bottom()) for r in rects if r.intersects(box)))

    def reroute_edges(self) -> None:
        """Recompute lanes of long edges (after moves settle, or after a layout)."""
        # one index of the visible cards for the whole pass (core.layout.RectIndex): asking
        # the scene for each wire's corridor froze the window for 35 s after arranging DenseNet-201
        self._reroute_queue = []  # every wire is routed here: a pending sliced pass has nothing left
        self._slice_timer.stop()
        self._place_due_frames()
        self._card_index = self._index_cards()
        try:
            for item in self.edges.values():
                if item.isVisible():
                    self._route_edge(item)
        finally:
            self._card_index = None

    def rerouting(self) -> bool:
        """True while wires wait for their sliced reroute or frames for their place after a bulk
        move (those hidden meanwhile show once placed)."""
        return bool(self._reroute_queue or self._frames_due)

    def _index_cards(self) -> RectIndex[QGraphicsItem]:
        cards: list[QGraphicsItem] = [*self.nodes.values(), *self.cards.values()]
        return RectIndex((self._card_rect(it).getCoords(), it) for it in cards if it.isVisible())

    def _reroute_near_moves(self) -> None:
        """The deferred reroute after a few cards moved: only the wires whose course (the box of its
        curve, label included) meets a card's old or new place can need another lane; the scene's
        index finds them. Rerouting every wire after moving one card of a 2,000-node graph took
        0.56 s of slices, with 0.2-0.4 s stalls."""
        areas = self._moved_areas
        if areas is None:
            self._reroute_in_slices()
            return
        found: dict[int, EdgeItem] = {}
        for area in areas:
            for it in self.items(area.adjusted(-LANE_GAP, -LANE_GAP, LANE_GAP, LANE_GAP),
                                 Qt.ItemSelectionMode.IntersectsItemBoundingRect):
                if isinstance(it, EdgeItem) and it.isVisible():
                    found[id(it)] = it
        self._reroute_in_slices(wires=list(found.values()))

    def _reroute_in_slices(self, now: bool = True, wires: list[EdgeItem] | None = None) -> None:
        """The deferred reroute after moves, one slice per event-loop turn: after Arrange on
        DenseNet-201 its 2,511 wires took 0.3-0.6 s at once, a freeze (the slices share an index
        of the cards until a card moves, so a move made between slices is seen). ``now=False``
        leaves the first slice to the next turn, after the view has moved to where the user will
        look."""
        self._moved_areas = []
        if wires is None:
            wires = [it for it in self.edges.values() if it.isVisible()]
        elif self._reroute_queue:  # a full pass still under way keeps its wires
            wires = list({id(it): it for it in (*self._reroute_queue, *wires)}.values())
        self._reroute_queue = wires
        self._order_queue = True
        if now:
            self._reroute_slice()
        if self._reroute_queue or self._frames_due:
            self._slice_timer.start()

    def _reroute_slice(self) -> None:
        if self._frames_due:  # a turn of their own: placed with the first wires, that turn was the longest
            self._place_due_frames()
            if not self._reroute_queue:
                self._slice_timer.stop()
            return
        stop = time.perf_counter() + _SLICE_S
        queue = self._reroute_queue
        if self._order_queue:
            # popped from the end: wires with an end in view first, hidden ones before drawn ones
            self._order_queue = False
            shown = cards_in_view(self)
            unit = self._unit
            queue.sort(key=lambda it: (unit.get(it.edge.src, it.edge.src) in shown
                                       or unit.get(it.edge.dst, it.edge.dst) in shown, it.pending))
        if self._slice_index is None:
            self._slice_index = self._index_cards()
        self._card_index = self._slice_index
        try:
            while queue and time.perf_counter() < stop:
                item = queue.pop()
                if self.edges.get(item.edge) is item and item.isVisible():
                    self._route_edge(item)
        finally:
            self._card_index = None
        if not queue:
            self._slice_timer.stop()

    def _place_due_frames(self) -> None:
        """Place the frames a bulk move left hidden, innermost first (an enclosing frame makes room
        for its members' titles)."""
        for gid in sorted(self._frames_due, key=self._depth, reverse=True):
            self._place_frame(gid)

    @staticmethod
    def _card_rect(item: QGraphicsItem) -> QRectF:
        block = isinstance(item, BlockItem)
        return item.mapRectToScene(QRectF(0, 0, CARD_W if block else NODE_W, CARD_H if block else NODE_H))

    def _label_edge(self, item: EdgeItem) -> None:
        r = self.doc.analysis.nodes.get(item.edge.src)
        shape = None
        if r is not None and r.out_shapes is not None and item.edge.from_port < len(r.out_shapes):
            shape = r.out_shapes[item.edge.from_port]
        item.set_label(shape)

    # -- analysis ---------------------------------------------------------------------------------
    def apply_analysis(self, analysis: Analysis) -> None:
        """Update the items whose results or diagnostics changed; leave the rest alone."""
        self._content = None
        changed: list[str] = []
        results = analysis.nodes
        for nid, item in self.nodes.items():
            r = results.get(nid)
            old = item.result
            if r is old:
                continue
            if r != old:
                item.set_result(r)
                changed.append(nid)
            else:
                item.result = r
        diags: dict[str, list[tuple[Severity, str]]] = defaultdict(list)
        for d in analysis.diagnostics:
            if d.node is not None and d.severity is not Severity.INFO:
                diags[d.node].append((d.severity, d.message))
        for nid in self._diag_nodes | set(diags):
            item = self.nodes.get(nid)
            if item is not None:
                item.set_diags(tuple(diags.get(nid, ())))
        self._diag_nodes = set(diags)
        g = self.doc.graph
        for nid in changed:
            for e in g.out_edges(nid):
                eitem = self.edges.get(e)
                if eitem is not None:
                    self._label_edge(eitem)
        if self.cards and (changed or diags):
            self._refresh_cards()
        if self.frames and changed:
            self._refresh_frame_titles()

    def port_scene_pos(self, node_id: str, side: str, port: int = 0) -> QPointF:
        """Where a wire to (``side="in"``) or from (``"out"``) ``node_id``'s port is drawn: on its
        card, or on the card of the collapsed block that shows it."""
        unit = self._unit.get(node_id, node_id)
        card = self.cards.get(unit)
        if card is not None:
            return card.in_port_pos(node_id, port) if side == "in" else card.out_port_pos(node_id, port)
        item = self.nodes[node_id]
        return item.in_port_pos(port) if side == "in" else item.out_port_pos(port)

    def unit_of(self, node_id: str) -> str:
        """The id of what shows ``node_id``: itself, or the collapsed block that holds it."""
        return self._unit.get(node_id, node_id)

    # -- training statistics ----------------------------------------------------------------------
    def set_node_sparklines(self, node_id: str, series: Mapping[str, Sequence[float | None]] | None) -> bool:
        """Draw ``series`` (``{"mean"|"std"|"dead"|"grad": values}``) as a strip under ``node_id``'s card;
        ``None`` removes it. False when the scene has no such node (a run of an older graph)."""
        item = self.nodes.get(node_id)
        if item is None:
            return False
        self._content = None
        item.set_sparklines(series)
        return True

    def show_sparklines(self, stats: Mapping[str, Mapping[str, Sequence[float | None]]]) -> None:
        """Exactly the nodes of ``stats`` show a statistics strip (an empty mapping clears them all)."""
        for nid, item in self.nodes.items():
            if nid not in stats and item.sparklines:
                item.set_sparklines(None)
        for nid, series in stats.items():
            self.set_node_sparklines(nid, series)

    def sparkline_nodes(self) -> list[str]:
        return [nid for nid, item in self.nodes.items() if item.sparklines]

    # -- selection --------------------------------------------------------------------------------
    def selected_node_ids(self) -> list[str]:
        """Selected nodes, and the members of selected collapsed blocks, in file order."""
        chosen = {nid for nid, it in self.nodes.items() if it.isSelected() and it.isVisible()}
        for gid, card in self.cards.items():
            if card.isSelected():
                chosen.update(self.doc.graph.group_nodes(gid))
        return [n for n in self.doc.graph.nodes if n in chosen]

    def selected_edges(self) -> list[Edge]:
        return [e for e, it in self.edges.items() if it.isSelected() and it.isVisible()]

    def select_ids(self, ids: Iterable[str]) -> None:
        """Select the items showing ``ids`` (a collapsed block is selected when all its members are)."""
        wanted = set(ids)
        self._syncing = True
        try:
            for nid, item in self.nodes.items():
                item.setSelected(nid in wanted and item.isVisible())
            for gid, card in self.cards.items():
                members = self.doc.graph.group_nodes(gid)
                card.setSelected(bool(members) and all(m in wanted for m in members))
            for item in self.edges.values():
                item.setSelected(False)
        finally:
            self._syncing = False
        self._selection_to_doc()

    def _selection_to_doc(self) -> None:
        if not self._syncing:
            self._syncing = True
            try:
                self.doc.set_selection(self.selected_node_ids())
            finally:
                self._syncing = False

    def _selection_from_doc(self, ids: list[str]) -> None:
        if not self._syncing and ids != self.selected_node_ids():
            self.select_ids(ids)

    # -- look -------------------------------------------------------------------------------------
    def set_theme(self, theme: Theme) -> None:
        st = style_for(theme)
        if st is self.canvas_style:  # a canvas drawn in this theme: 5 s for nothing at 20,000 nodes
            return
        self.canvas_style = st
        self._content = None
        self.setBackgroundBrush(st.canvas)
        g = self.doc.graph
        for nid, item in self.nodes.items():
            item.style = st
            item.set_node(g.nodes[nid])
        for item in self.edges.values():
            item.style = st
            item.update()
        for item in [*self.frames.values(), *self.cards.values()]:
            item.style = st
            item.update()
        for frame in self.frames.values():
            frame.title.set_geometry()
        self._refresh_cards()

    def event(self, event: QEvent) -> bool:  # Qt override
        # Qt tells every item that the window became active or inactive, one Python call per item
        # (1 s for a 20,000-node scene at its first paint, and at each switch of windows); no item
        # here is a panel or takes focus, so the news is for none of them.
        if event.type() in (QEvent.Type.WindowActivate, QEvent.Type.WindowDeactivate):
            return True
        return super().event(event)

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # Qt override
        draw_grid(painter, rect, self.canvas_style)

    def content_rect(self) -> QRectF:
        """The bounding box of what is visible (nodes, cards, frames)."""
        if self._content is not None:
            return QRectF(self._content)
        r = QRectF()
        frames = [f for gid, f in self.frames.items() if gid not in self._frames_due]  # due: at old places
        for item in [*self.nodes.values(), *self.cards.values(), *frames]:
            if item.isVisible():
                r = r.united(item.sceneBoundingRect())
        if not self._frames_due:
            self._content = QRectF(r)
        return r

    def _update_scene_rect(self) -> None:
        self.set_content_rect(self.content_rect())

    def set_content_rect(self, r: QRectF, *, exact: bool = False) -> None:
        """The scene reaches well beyond ``r``, what is visible: room to drag and scroll past it.

        It keeps its rectangle while that holds ``r`` with room to spare and is not far bigger:
        each change rebuilds the scene's index of every item (0.1 s at 20,000 nodes), and a build
        that grew it with each slice spent minutes on that."""
        if exact:  # what content_rect() would say, worked out by the caller
            self._content = QRectF(r)
        if r.isNull():
            r = QRectF(0, 0, 800, 600)
        wanted = r.adjusted(-3000, -3000, 3000, 3000)
        now = self.sceneRect()
        if not (now.contains(wanted) and wanted.adjusted(-3000, -3000, 3000, 3000).contains(now)):
            self.setSceneRect(wanted)
