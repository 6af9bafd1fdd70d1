"""Blocks (groups) on the canvas: a labelled frame around an expanded block, a card for a collapsed one.

A collapsed block's card stands in for all its members: it shows the block's totals
(parameters, MACs) and the shape it outputs, and its ports are the ports of the layers on the
block's boundary (:func:`block_ports`), so edges that cross the boundary end at the inner
layer's own port and a wire dragged from or onto one connects that inner layer directly. Both
items are placed by the scene from the members' positions in the model.

What a block's title says about its layers is derived, never cached: :func:`live_label` checks
the label's stride and channel claims against the analysed shapes each time they change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.analysis import Analysis, Severity
from core.graph import Graph
from core.layers.registry import get_spec
from core.layers.spec import fmt_shape
from core.layout import FRAME_TITLE_H
from gui.canvas.items import LOD_FAR, LOD_TEXT, lod_of, paint_severity_badge
from gui.canvas.metrics import CARD_H, CARD_W, FRAME_PAD, FRAME_TOP, PORT_HIT, PORT_R, RADIUS

if TYPE_CHECKING:
    from gui.canvas.style import CanvasStyle

Port = tuple[str, int]  # (inner node id, its input port / output port)


# -- geometry and facts of a block (no items: the commands use these too) ---------------------------

def block_ports(graph: Graph, gid: str) -> tuple[list[Port], list[Port]]:
    """The block's inputs and outputs as its inner layers' ports, in member order.

    Inputs: the inner layers fed from outside (each such input port), and inner layers that take
    an input but have none yet. Outputs: the inner layers' outputs that feed something outside,
    and inner layers (other than Output) that feed nothing yet.
    """
    nodes = graph.group_nodes(gid)
    inside = set(nodes)
    ins: list[Port] = []
    outs: list[Port] = []
    for nid in nodes:
        spec = get_spec(graph.nodes[nid].type)
        in_edges = graph.in_edges(nid)
        for e in sorted(in_edges, key=lambda e: e.port):
            if e.src not in inside and (nid, e.port) not in ins:
                ins.append((nid, e.port))
        if not in_edges and (spec is None or spec.max_inputs != 0):
            ins.append((nid, 0))
        out_edges = graph.out_edges(nid)
        for e in sorted(out_edges, key=lambda e: e.from_port):
            if e.dst not in inside and (nid, e.from_port) not in outs:
                outs.append((nid, e.from_port))
        if not out_edges and (spec is None or spec.type != "Output"):
            outs.append((nid, 0))
    return ins, outs


def block_stride(in_shapes: Sequence[Sequence[int] | None], out_shapes: Sequence[Sequence[int] | None]) -> int | None:
    """How much the block shrinks the image (input H×W over output H×W), or ``None`` when the
    shapes do not say (unknown, not images, not the same factor on both axes or all outputs)."""
    factors: set[int] = set()
    for a in in_shapes:
        for b in out_shapes:
            if a is None or b is None or len(a) != 3 or len(b) != 3 or min(b[1:]) <= 0:
                return None
            fh, fw = round(a[1] / b[1]), round(a[2] / b[2])
            if fh != fw or fh < 1:
                return None
            factors.add(fh)
    return factors.pop() if len(factors) == 1 else None


_STRIDE = re.compile(r"(,\s*stride\s+|\s·\s*s)(\d+)\b")
_CHANNELS = re.compile(r"\b(\d+)(\s+channels)\b")


def makes_claims(label: str) -> bool:
    """Whether ``label`` states a stride or channel count that :func:`live_label` keeps true."""
    return bool(_STRIDE.search(label) or _CHANNELS.search(label))


def live_label(label: str, stride: int | None, channels: int | None) -> str:
    """``label`` with its claims about the block's layers made true for their current values.

    A label written when the block was built (``Bottleneck 128 → 512, stride 2``) goes stale when
    its layers change; the title must not say "stride 2" after both strides were set to 1. The
    label's stride claims (``, stride 2``, ``· s2``) must multiply to the block's measured stride:
    a single claim is rewritten (and dropped at stride 1, as the templates write it), several
    (one per layer, as in a stem) are replaced by one ``, stride N`` for the whole block. A single
    ``N channels`` claim follows the block's output channels. Unknown shapes leave the label as is.
    """
    claims = list(_STRIDE.finditer(label))
    if stride is not None and claims:
        product = 1
        for m in claims:
            product *= int(m.group(2))
        if product != stride:
            if len(claims) == 1:
                m = claims[0]
                label = label[:m.start()] + (m.group(1) + str(stride) if stride > 1 else "") + label[m.end():]
            else:
                label = _STRIDE.sub("", label) + (f", stride {stride}" if stride > 1 else "")
    ch = list(_CHANNELS.finditer(label))
    if channels is not None and len(ch) == 1 and int(ch[0].group(1)) != channels:
        label = label[:ch[0].start()] + f"{channels}{ch[0].group(2)}" + label[ch[0].end():]
    return label


def block_facts(graph: Graph, analysis: Analysis, gid: str) -> tuple[list[str], list[str], int | None, int | None]:
    """The shapes going into and coming out of block ``gid`` (as text), its stride and its output
    channels (``None`` where the analysis does not know)."""
    g, a = graph, analysis
    ins, outs = block_ports(g, gid)
    in_shapes: list[tuple[int, ...] | None] = []
    for nid, port in ins:
        e = next((e for e in g.in_edges(nid) if e.port == port), None)
        r = a.nodes.get(e.src) if e is not None else None
        known = r is not None and r.out_shapes is not None and e is not None and e.from_port < len(r.out_shapes)
        in_shapes.append(tuple(r.out_shapes[e.from_port]) if known else None)  # type: ignore[union-attr,index]
    out_shapes: list[tuple[int, ...] | None] = []
    for nid, port in outs:
        r = a.nodes.get(nid)
        known = r is not None and r.out_shapes is not None and port < len(r.out_shapes)
        out_shapes.append(tuple(r.out_shapes[port]) if known else None)  # type: ignore[union-attr,index]
    channels = {s[0] for s in out_shapes if s is not None and len(s) == 3}
    texts_in = list(dict.fromkeys(fmt_shape(s) for s in in_shapes))
    texts_out = list(dict.fromkeys(fmt_shape(s) for s in out_shapes))
    return (texts_in, texts_out, block_stride(in_shapes, out_shapes),
            channels.pop() if len(channels) == 1 and None not in out_shapes else None)


def human(n: int | None) -> str:
    """``11689512`` → ``11.7M``."""
    if n is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            v = n / div
            return f"{v:.1f}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return str(n)


class FrameItem(QGraphicsItem):
    """The frame around an expanded block. Its title is a separate item (:class:`FrameTitleItem`)
    stacked above the edges, so a wire passes under the title instead of through its text."""

    def __init__(self, group_id: str, style: CanvasStyle) -> None:
        super().__init__()
        self.group_id = group_id
        self.style = style
        self.label = ""
        self.rect = QRectF()
        self.title = FrameTitleItem(self)
        self.setZValue(-10)

    @property
    def title_rect(self) -> QRectF:
        return self.title.rect

    @property
    def outer_rect(self) -> QRectF:
        """The frame with its title pill: what an enclosing frame must leave room for."""
        return self.rect.adjusted(0, -FRAME_TITLE_H / 2, 0, 0)

    def set_geometry(self, content: QRectF, label: str, depth: int) -> None:
        self.prepareGeometryChange()
        self.label = label
        self.rect = content.adjusted(-FRAME_PAD, -FRAME_TOP, FRAME_PAD, FRAME_PAD)
        self.setZValue(-10 + depth * 0.1)
        self.title.set_geometry()
        self.update()

    def chevron_hit(self, scene_pos: QPointF) -> bool:
        return self.title.rect.adjusted(-4, -4, 4, 4).contains(scene_pos)

    def boundingRect(self) -> QRectF:  # Qt override
        return self.rect.adjusted(-2, -2, 2, 2)

    def shape(self) -> QPainterPath:  # the inside belongs to the members: clicks pass through
        return QPainterPath()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.style
        # Where the cards are plain tiles (below LOD_TEXT) the frame's corners are 1-5 px across:
        # antialiased, each frame cost ~0.2 ms, most of a zoomed-out repaint of a 1,000-node graph.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, lod_of(painter) >= LOD_TEXT)
        painter.setPen(st.group_border)
        painter.setBrush(st.group_fill)
        painter.drawRoundedRect(self.rect, RADIUS + 3, RADIUS + 3)


class FrameTitleItem(QGraphicsItem):
    """A block frame's title pill on its top border, with the chevron that collapses the block."""

    def __init__(self, frame: FrameItem) -> None:
        super().__init__()
        self.frame = frame
        self.rect = QRectF()
        self.setZValue(0.5)  # above edges (0), below node cards (1)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    @property
    def group_id(self) -> str:
        return self.frame.group_id

    def set_geometry(self) -> None:
        f = self.frame
        self.prepareGeometryChange()
        self.label = f.style.m_group.elidedText(f.label, Qt.TextElideMode.ElideRight, max(f.rect.width() - 50, 60))
        w = f.style.m_group.horizontalAdvance(self.label) + 34
        self.rect = QRectF(f.rect.left() + 10, f.rect.top() - FRAME_TITLE_H / 2, w, FRAME_TITLE_H)
        self.setToolTip(f"{f.label} — click to collapse")
        self.update()

    def chevron_hit(self, scene_pos: QPointF) -> bool:
        return self.frame.chevron_hit(scene_pos)

    def boundingRect(self) -> QRectF:  # Qt override
        return self.rect.adjusted(-2, -2, 2, 2)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.frame.style
        if lod_of(painter) < LOD_TEXT * 0.6:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(st.group_border)
        painter.setBrush(st.badge_fill)
        painter.drawRoundedRect(self.rect, FRAME_TITLE_H / 2, FRAME_TITLE_H / 2)
        cx, cy = self.rect.left() + 12, self.rect.center().y()
        painter.setPen(st.chevron)
        painter.drawPolyline(QPolygonF([QPointF(cx - 3.5, cy - 1.8), QPointF(cx, cy + 1.8),
                                        QPointF(cx + 3.5, cy - 1.8)]))
        painter.setFont(st.f_group)
        painter.setPen(st.group_text)
        painter.drawText(self.rect.adjusted(22, 0, -8, 0), Qt.AlignmentFlag.AlignVCenter, self.label)


class BlockItem(QGraphicsItem):
    """A collapsed block: one card with its name, size, totals and output shape (double-click expands).

    Its ports are its boundary layers' ports (:func:`block_ports`): inputs on the top edge,
    outputs on the bottom edge, in member order. A wire dragged from an output port connects
    that inner layer; one dropped on an input port feeds that inner layer.
    """

    def __init__(self, group_id: str, style: CanvasStyle) -> None:
        super().__init__()
        self.group_id = group_id
        self.style = style
        self.label = ""
        self.detail = ""
        self.id_text = ""
        self.far_text = ""
        self.badges: list[str] = []
        self.shape_text = "?"
        self.known = False
        self.severity: Severity | None = None
        self.summary = ""
        self.inputs: list[Port] = []
        self.outputs: list[Port] = []
        self.hover_port: tuple[str, int] | None = None  # ("in" | "out", index)
        self.highlight = False  # a connection being dragged would land here
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)

    def set_content(self, label: str, n_layers: int, params: int | None, macs: int | None,
                    shape_text: str, known: bool, severity: Severity | None, tooltip: str,
                    group_id: str = "", composition: str = "") -> None:
        """``Stage 1: 3 × Bottleneck, 256 channels`` shows as a bold ``Stage 1`` and a detail line
        ``3 × Bottleneck, 256 channels``; a label without a detail gets the block's make-up there."""
        st = self.style
        head, sep, rest = label.partition(": ")
        if not sep or not head.strip():
            head, rest = label, ""
        room = CARD_W - 36
        self.id_text = ""
        if group_id and group_id != head:
            id_w = min(st.m_id.horizontalAdvance(group_id), room * 0.4)
            if st.m_title.horizontalAdvance(head) + id_w + 12 <= room:
                self.id_text = st.m_id.elidedText(group_id, Qt.TextElideMode.ElideMiddle, id_w)
        if st.m_title.horizontalAdvance(head) > room and not rest:
            # one long name: wrap at a word onto the detail line instead of cutting it
            words = head.split(" ")
            cut = max((i for i in range(1, len(words))
                       if st.m_title.horizontalAdvance(" ".join(words[:i])) <= room), default=0)
            if cut:
                head, rest = " ".join(words[:cut]), " ".join(words[cut:])
        self.label = st.m_title.elidedText(head, Qt.TextElideMode.ElideRight, room)
        self.detail = st.m_params.elidedText(rest or composition, Qt.TextElideMode.ElideRight, CARD_W - 26)
        self.far_text = st.m_far.elidedText(head, Qt.TextElideMode.ElideRight, CARD_W - 20)
        self.badges = [f"{n_layers} layer{'s' if n_layers != 1 else ''}", f"{human(params)} params",
                       f"{human(macs)} MACs"]
        self.shape_text = st.m_shape.elidedText(shape_text, Qt.TextElideMode.ElideRight, CARD_W - 40)
        self.known = known
        self.severity = severity
        self.summary = tooltip
        self.setToolTip(tooltip)
        self.update()

    # -- ports ----------------------------------------------------------------------------------
    def set_ports(self, inputs: Sequence[Port], outputs: Sequence[Port]) -> None:
        inputs, outputs = list(inputs), list(outputs)
        if inputs != self.inputs or outputs != self.outputs:
            self.prepareGeometryChange()
            self.inputs, self.outputs = inputs, outputs
            self.hover_port = None
            self.update()

    @staticmethod
    def _xs(n: int) -> list[float]:
        return [CARD_W * (i + 1) / (n + 1) for i in range(n)]

    def in_port_pos(self, node_id: str | None = None, port: int = 0) -> QPointF:
        """Where the wire into inner layer ``node_id``'s input ``port`` ends (the first input port
        without arguments; the card's top centre when it has none)."""
        xs = self._xs(len(self.inputs))
        i = self.inputs.index((node_id, port)) if (node_id, port) in self.inputs else \
            next((k for k, (n, _) in enumerate(self.inputs) if n == node_id), 0)
        return self.mapToScene(QPointF(xs[i] if xs else CARD_W / 2, 0))

    def out_port_pos(self, node_id: str | None = None, from_port: int = 0) -> QPointF:
        """Where the wire from inner layer ``node_id``'s output ``from_port`` starts."""
        xs = self._xs(len(self.outputs))
        i = self.outputs.index((node_id, from_port)) if (node_id, from_port) in self.outputs else \
            next((k for k, (n, _) in enumerate(self.outputs) if n == node_id), len(xs) - 1)
        return self.mapToScene(QPointF(xs[i] if xs else CARD_W / 2, CARD_H))

    def port_at(self, scene_pos: QPointF) -> tuple[str, str, int] | None:
        """``("out" | "in", inner node id, port)`` of the port under ``scene_pos``, or ``None``."""
        p = self.mapFromScene(scene_pos)
        for side, ports, y in (("out", self.outputs, CARD_H), ("in", self.inputs, 0.0)):
            for (nid, port), x in zip(ports, self._xs(len(ports)), strict=True):
                if (p - QPointF(x, y)).manhattanLength() <= PORT_HIT * 1.4:
                    return side, nid, port
        return None

    def port_tip(self, side: str, node_id: str, port: int) -> str:
        if side == "out":
            return f"Output of {node_id}" + (f" (output {port})" if port else "") + " — drag to connect"
        return f"Input of {node_id}" + (f" (input {port})" if port else "") + " — drop a connection here"

    # -- hover ----------------------------------------------------------------------------------
    def hoverMoveEvent(self, event: Any) -> None:  # Qt override
        hit = self.port_at(event.scenePos())
        port = None
        if hit is not None:
            ports = self.outputs if hit[0] == "out" else self.inputs
            port = (hit[0], ports.index((hit[1], hit[2])))
        if port != self.hover_port:
            self.hover_port = port
            self.setCursor(Qt.CursorShape.CrossCursor if port else Qt.CursorShape.ArrowCursor)
            self.setToolTip(self.port_tip(*hit) if hit is not None else self.summary)
            self.update()

    def hoverLeaveEvent(self, event: Any) -> None:  # Qt override
        if self.hover_port is not None:
            self.hover_port = None
            self.unsetCursor()
            self.setToolTip(self.summary)
            self.update()

    # -- geometry and painting ------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # Qt override
        return QRectF(-4 - PORT_HIT, -10 - PORT_HIT, CARD_W + 16 + 2 * PORT_HIT, CARD_H + 20 + 2 * PORT_HIT)

    def shape(self) -> QPainterPath:  # Qt override
        p = QPainterPath()
        p.setFillRule(Qt.FillRule.WindingFill)  # the port discs overlap the card: union, not XOR
        p.addRoundedRect(QRectF(0, 0, CARD_W, CARD_H), RADIUS, RADIUS)
        for x in self._xs(len(self.inputs)):
            p.addEllipse(QPointF(x, 0), PORT_HIT, PORT_HIT)
        for x in self._xs(len(self.outputs)):
            p.addEllipse(QPointF(x, CARD_H), PORT_HIT, PORT_HIT)
        return p

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.style
        rect = QRectF(0, 0, CARD_W, CARD_H)
        sev = self.severity
        border = (st.error_pen if sev is Severity.ERROR else st.warning_pen if sev is Severity.WARNING
                  else st.node_selected if self.isSelected() or self.highlight else st.node_border)
        lod = lod_of(painter)
        if lod < LOD_TEXT:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(st.group_fill)
            painter.drawRect(rect)
            if lod > LOD_FAR:
                painter.setFont(st.f_far)
                painter.setPen(st.text)
                painter.drawText(rect.adjusted(10, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter, self.far_text)
            pen = QPen(border)
            pen.setWidthF(4.0)
            painter.setPen(pen)
            painter.setBrush(st.no_brush)
            painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # a second sheet behind the card: this card holds several layers
        painter.setPen(st.node_border)
        painter.setBrush(st.badge_fill)
        painter.drawRoundedRect(rect.translated(5, 5), RADIUS, RADIUS)
        painter.setBrush(st.node_fill)
        painter.setPen(border)
        painter.drawRoundedRect(rect, RADIUS, RADIUS)
        band = QPainterPath()
        band.addRoundedRect(QRectF(0.5, 0.5, CARD_W - 1, 30), RADIUS, RADIUS)
        clip = QPainterPath()
        clip.addRect(QRectF(0.5, 0.5, CARD_W - 1, 28))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(st.group_fill)
        painter.drawPath(band.intersected(clip))
        # chevron ▸ (collapsed; double-click expands)
        painter.setPen(st.chevron)
        painter.drawPolyline(QPolygonF([QPointF(13, 10), QPointF(16.5, 14.5), QPointF(13, 19)]))
        painter.setFont(st.f_title)
        painter.setPen(st.text)
        painter.drawText(QPointF(26, 19.5), self.label)
        if self.id_text:
            painter.setFont(st.f_id)
            painter.setPen(st.text_dim)
            painter.drawText(QRectF(0, 0, CARD_W - 12, 29), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             self.id_text)
        if self.detail:
            painter.setFont(st.f_params)
            painter.setPen(st.text_dim)
            painter.drawText(QPointF(14, 46), self.detail)
        # badges
        x = 12.0
        painter.setFont(st.f_badge)
        for text in self.badges:
            w = st.m_badge.horizontalAdvance(text) + 14
            r = QRectF(x, 54, w, 19)
            painter.setPen(st.group_border)
            painter.setBrush(st.badge_fill)
            painter.drawRoundedRect(r, 9.5, 9.5)
            painter.setPen(st.text)
            painter.drawText(r, Qt.AlignmentFlag.AlignCenter, text)
            x += w + 6
        painter.setFont(st.f_shape)
        painter.setPen(st.accent if self.known else st.text_dim)
        painter.drawText(QPointF(14, 88), "→ " + self.shape_text)
        self._paint_ports(painter)
        if sev is not None:
            paint_severity_badge(painter, st, QPointF(CARD_W - 2, 2), sev)

    def _paint_ports(self, painter: QPainter) -> None:
        st = self.style
        painter.setPen(st.port_pen)
        for side, ports, y in (("in", self.inputs, 0.0), ("out", self.outputs, CARD_H)):
            for i, x in enumerate(self._xs(len(ports))):
                painter.setBrush(st.port_hover if self.hover_port == (side, i) else st.port_fill)
                painter.drawEllipse(QPointF(x, y), PORT_R, PORT_R)
