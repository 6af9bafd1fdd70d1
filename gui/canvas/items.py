"""Node cards and edges: cheap to paint, text laid out once, updated only when their data changes.

Items hold no model data of their own beyond what they display: the scene hands them the
node's type/params and its :class:`core.analysis.NodeResult`, and they cache the strings,
elisions and paths derived from those. Painting draws cached things only, and at low zoom
(level of detail) skips text entirely.

During training a probed card also shows a strip of its statistics under its bottom-left corner
(:meth:`NodeItem.set_sparklines`): the recent mean and gradient norm as two tiny lines, each on its
own scale, and the dead-ReLU share as a bar. The canvas knows nothing of training; whoever owns
the run hands it plain series of numbers through :meth:`gui.canvas.scene.CanvasScene.show_sparklines`.
"""

from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.analysis import NodeResult, Severity
from core.layers.registry import get_spec
from core.layers.spec import ParamError, fmt_shape
from core.units import count
from gui.canvas.metrics import NODE_H, NODE_W, PORT_HIT, PORT_R, RADIUS
from gui.canvas.weight_map import STATUS_TEXT, paint_badges, paint_frozen_tint

if TYPE_CHECKING:
    from core.graph import Edge, Node
    from gui.canvas.style import CanvasStyle

LOD_TEXT = 0.42  # below this zoom, cards are plain tiles
LOD_FAR = 0.14  # below this, not even the big type name
LOD_LABEL = 0.45  # below this zoom, edge labels hide
LOD_SPARK = LOD_TEXT  # below this zoom, the training statistics strip under a card hides
_PAD = 12.0
SPARK_POINTS = 50  # the strip shows this many latest values of each series
SPARK_LINES = ("mean", "grad")  # series drawn as lines (the strip's pens: style.spark_<key>)
SPARK_LABELS = {"mean": "mean", "std": "std", "dead": "dead", "grad": "grad norm"}
_SPARK_TOP = NODE_H + 3.0  # under the card, clear of the output port (the strip ends left of it)
_SPARK_H = 18.0
_SPARK_X = 10.0


def lod_of(painter: QPainter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


def short_params(node: Node) -> str:
    """``3×3 · 64 · s2``: the declaration's short form of the node's resolved parameters."""
    spec = get_spec(node.type)
    if spec is None:
        return "unknown type"
    if spec.short is None:
        return ""
    try:
        return spec.short(spec.resolve(node.params))
    except ParamError:
        return "invalid parameters"
    except (KeyError, TypeError, ValueError, IndexError):
        return ""


@functools.cache
def _type_doc(layer_type: str) -> str:
    """The layer declaration's doc, wrapped for a tooltip (once per type: every card's tooltip is
    rebuilt when its analysis result changes)."""
    spec = get_spec(layer_type)
    if spec is None or not spec.doc:
        return f"{layer_type} is not a layer type NetCanvas knows"
    return textwrap.fill(" ".join(spec.doc.split()), 72)


def _count(n: int | None) -> str:
    """``2416`` → ``2,416``; ``None`` (not known) → ``?``; absurd counts in scientific form."""
    return count(n)


def severity_of(diags: Sequence[tuple[Severity, str]]) -> Severity | None:
    sevs = {s for s, _ in diags}
    for s in (Severity.ERROR, Severity.WARNING):
        if s in sevs:
            return s
    return None


class NodeItem(QGraphicsItem):
    """A layer card: category icon and type, id, short parameters, output shape, ports."""

    def __init__(self, node: Node, style: CanvasStyle, result: NodeResult | None = None) -> None:
        super().__init__()
        self.node_id = node.id
        self.style = style
        self.result: NodeResult | None = result
        self.diags: tuple[tuple[Severity, str], ...] = ()
        self.in_slots: list[int] = []  # port numbers shown on the top edge, in order
        self.new_slot = False  # a "+" slot that takes a further input (Add, Concat …)
        self.n_out = 1
        self.takes_input = True
        self.hover_port: tuple[str, int] | None = None
        self.highlight = False  # a connection being dragged would land here
        self._hovered = False
        self._tip_stale = False
        # training statistics (set_sparklines): latest values for the tooltip, cached line paths
        self.sparklines: dict[str, list[float]] = {}
        self._spark_paths: list[tuple[str, QPainterPath]] = []
        self._spark_dead: float | None = None
        # the weight map (gui.canvas.weight_map): "pretrained" | "partial" | "new" | "run", or None
        self.weight_status: str | None = None
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(True)
        self.setZValue(1)
        self.n_out = len(result.out_shapes) if result is not None and result.out_shapes else 1
        self.set_node(node)

    # -- data -----------------------------------------------------------------------------------
    def set_node(self, node: Node) -> None:
        """Type, id and params changed: recompute texts."""
        self.node_id = node.id
        self.layer_type = node.type
        spec = get_spec(node.type)
        self.spec = spec
        self.is_output = spec is not None and spec.type == "Output"
        self.takes_input = spec is None or spec.max_inputs != 0
        self.multi = spec is not None and spec.max_inputs is None
        self.params_text = short_params(node)
        self.frozen = node.frozen
        self.lr_mult = float(getattr(node, "lr_mult", 1.0))
        self.colour = self.style.category_color(node.type)
        self.icon = self.style.icon(node.type)
        self._layout_text()
        self._refresh_tooltip()
        self.update()

    def set_result(self, result: NodeResult | None) -> None:
        self.result = result
        self.n_out = len(result.out_shapes) if result is not None and result.out_shapes else 1
        self._layout_text()
        # a new result reaches every card downstream of an edit: the tooltip text is rebuilt when
        # the pointer comes onto the card (hoverEnterEvent), not for each of them now
        self._tip_stale = True
        if self._hovered:
            self._refresh_tooltip()
        if self.sparklines:  # the strip ends left of the first output port, which may have moved
            self._layout_sparklines()
        self.update()

    def set_weight_status(self, status: str | None) -> None:
        """Show where the card's weights come from (the weight map); ``None`` hides the pill."""
        if status != self.weight_status:
            self.weight_status = status
            self._refresh_tooltip()
            self.update()

    def set_diags(self, diags: tuple[tuple[Severity, str], ...]) -> None:
        if diags == self.diags:
            return
        self.diags = diags
        self._refresh_tooltip()
        self.update()

    def set_sparklines(self, series: Mapping[str, Sequence[float | None]] | None) -> None:
        """Show recent training statistics under the card: ``{"mean": [...], "std": [...], "dead": [...],
        "grad": [...]}`` (any subset; values oldest first; non-finite values and ``None`` are skipped).
        ``None`` or an empty mapping removes the strip."""
        clean: dict[str, list[float]] = {}
        for key, values in (series or {}).items():
            kept = [float(v) for v in values if v is not None and math.isfinite(v)][-SPARK_POINTS:]
            if kept:
                clean[key] = kept
        if clean == self.sparklines:
            return
        if bool(clean) != bool(self.sparklines):
            self.prepareGeometryChange()  # the bounding rect grows or shrinks by the strip
        self.sparklines = clean
        self._layout_sparklines()
        self._refresh_tooltip()
        self.update()

    def _spark_rect(self) -> QRectF:
        right = min(self._out_xs() or [NODE_W / 2]) - PORT_HIT
        return QRectF(_SPARK_X, _SPARK_TOP, max(right - _SPARK_X, 40.0), _SPARK_H)

    def _layout_sparklines(self) -> None:
        """One path per line series, built here so painting only strokes cached paths."""
        self._spark_paths = []
        dead = self.sparklines.get("dead")
        self._spark_dead = min(max(dead[-1], 0.0), 1.0) if dead else None
        if not self.sparklines:
            return
        r = self._spark_rect().adjusted(3, 3, -10, -3)  # right: room for the dead-share bar
        for key in SPARK_LINES:
            values = self.sparklines.get(key, [])
            if len(values) < 2:
                continue
            lo, hi = min(values), max(values)
            span = hi - lo
            step = r.width() / (len(values) - 1)
            path = QPainterPath()
            for i, v in enumerate(values):
                y = r.bottom() - ((v - lo) / span if span > 1e-12 else 0.5) * r.height()
                if i == 0:
                    path.moveTo(r.left(), y)
                else:
                    path.lineTo(r.left() + i * step, y)
            self._spark_paths.append((key, path))

    def _refresh_tooltip(self) -> None:
        """What hovering the card tells: the type and id, the type's doc (from its declaration),
        the output shape, parameters and MACs, then the card's problems and training statistics."""
        self._tip_stale = False
        lines = [f"{self.layer_type} · {self.node_id}", _type_doc(self.layer_type)]
        r = self.result
        if r is not None and r.out_shapes is not None:
            lines.append("Output: " + "  ".join(fmt_shape(s) for s in r.out_shapes))
            lines.append(f"Parameters: {_count(r.params)} · MACs: {_count(r.macs)}")
        else:
            lines.append("Output: unknown (an error here or upstream)")
        if self.weight_status is not None or self.frozen or self.lr_mult != 1.0:
            facts = [f"{STATUS_TEXT.get(self.weight_status, self.weight_status)} weights"] if self.weight_status else []
            facts += ["frozen (not trained)"] if self.frozen else []
            facts += [f"learning rate ×{self.lr_mult:g}"] if self.lr_mult != 1.0 and not self.frozen else []
            lines.append("Training: " + " · ".join(facts))
        lines += [m for _, m in self.diags]
        if self.sparklines:
            parts = []
            for key, values in self.sparklines.items():
                fmt = "{:.0%}" if key == "dead" else "{:.3g}"
                parts.append(f"{SPARK_LABELS.get(key, key)} {fmt.format(values[-1])}")
            lines.append("Training: " + " · ".join(parts))
        self.setToolTip("\n".join(lines))

    def set_slots(self, used_ports: Sequence[int]) -> None:
        if not self.takes_input:
            slots, new = [], False
        elif self.multi:
            slots, new = sorted(used_ports), True
        else:
            slots, new = sorted(set(used_ports) | {0}), False
        if slots != self.in_slots or new != self.new_slot:
            self.prepareGeometryChange()
            self.in_slots, self.new_slot = slots, new
            self.update()

    def _layout_text(self) -> None:
        st = self.style
        left, mid, right = Qt.TextElideMode.ElideLeft, Qt.TextElideMode.ElideMiddle, Qt.TextElideMode.ElideRight
        title_w = st.advance(st.m_title, self.layer_type)
        self.title = self.layer_type
        self.far_text = st.elide(st.m_far, self.layer_type, right, NODE_W - 20)
        room = NODE_W - 2 * _PAD - 25 - title_w - 8
        # The id goes right of the type when it fits whole; else on the second row if that is free.
        self.id_below = st.advance(st.m_id, self.node_id) > room and not self.params_text
        self.id_text = "" if self.id_below else st.elide(st.m_id, self.node_id, mid, max(room, 24))
        if room < 24:
            self.title = st.elide(st.m_title, self.layer_type, right, NODE_W - 2 * _PAD - 60)
        r = self.result
        if r is None or r.out_shapes is None:
            shape = "?"
        else:
            shape = "  ".join(fmt_shape(s) for s in r.out_shapes)
        self.shape_text = st.elide(st.m_shape, shape, left, NODE_W * 0.62)
        rest = NODE_W - 2 * _PAD - st.advance(st.m_shape, self.shape_text) - 10
        self.params_line = st.elide(st.m_params, self.params_text, right, rest)
        self.id_line = st.elide(st.m_id, self.node_id, mid, rest) if self.id_below else ""

    # -- geometry -------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # Qt override
        bottom = _SPARK_TOP + _SPARK_H + 2 if self.sparklines else NODE_H + 10
        return QRectF(-4, -10, NODE_W + 14, bottom + 10)

    def shape(self) -> QPainterPath:  # Qt override
        p = QPainterPath()
        p.setFillRule(Qt.FillRule.WindingFill)  # the port discs overlap the card: union, not XOR
        p.addRoundedRect(QRectF(0, 0, NODE_W, NODE_H), RADIUS, RADIUS)
        for x in self._in_xs():
            p.addEllipse(QPointF(x, 0), PORT_HIT, PORT_HIT)
        for x in self._out_xs():
            p.addEllipse(QPointF(x, NODE_H), PORT_HIT, PORT_HIT)
        return p

    def _in_xs(self) -> list[float]:
        k = len(self.in_slots) + (1 if self.new_slot else 0)
        return [NODE_W * (i + 1) / (k + 1) for i in range(k)]

    def _out_xs(self) -> list[float]:
        if self.is_output:
            return []
        return [NODE_W * (i + 1) / (self.n_out + 1) for i in range(self.n_out)]

    def in_port_pos(self, port: int) -> QPointF:
        xs = self._in_xs()
        if port in self.in_slots:
            x = xs[self.in_slots.index(port)]
        else:
            x = xs[-1] if xs else NODE_W / 2
        return self.mapToScene(QPointF(x, 0))

    def out_port_pos(self, from_port: int = 0) -> QPointF:
        xs = self._out_xs() or [NODE_W / 2]
        return self.mapToScene(QPointF(xs[min(from_port, len(xs) - 1)], NODE_H))

    def port_at(self, scene_pos: QPointF) -> tuple[str, int | None] | None:
        """``("out", from_port)``, ``("in", port)`` (``None`` port: the "+" slot), or ``None``."""
        p = self.mapFromScene(scene_pos)
        for i, x in enumerate(self._out_xs()):
            if (p - QPointF(x, NODE_H)).manhattanLength() <= PORT_HIT * 1.4:
                return ("out", i)
        xs = self._in_xs()
        for i, x in enumerate(xs):
            if (p - QPointF(x, 0)).manhattanLength() <= PORT_HIT * 1.4:
                return ("in", self.in_slots[i] if i < len(self.in_slots) else None)
        return None

    # -- hover ----------------------------------------------------------------------------------
    def hoverEnterEvent(self, event: Any) -> None:  # Qt override
        self._hovered = True
        if self._tip_stale:
            self._refresh_tooltip()
        super().hoverEnterEvent(event)

    def hoverMoveEvent(self, event: Any) -> None:  # Qt override
        hit = self.port_at(event.scenePos())
        port = (hit[0], -1 if hit[1] is None else hit[1]) if hit else None
        if port != self.hover_port:
            self.hover_port = port
            self.setCursor(Qt.CursorShape.CrossCursor if port else Qt.CursorShape.ArrowCursor)
            self.update()

    def hoverLeaveEvent(self, event: Any) -> None:  # Qt override
        self._hovered = False
        if self.hover_port is not None:
            self.hover_port = None
            self.unsetCursor()
            self.update()

    # -- painting -------------------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.style
        lod = lod_of(painter)
        rect = QRectF(0, 0, NODE_W, NODE_H)
        sev = severity_of(self.diags)
        if lod < LOD_TEXT:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(st.node_fill)
            painter.drawRect(rect)
            # at and below LOD_FAR (the zoom floor) the whole card is its category's colour: a big
            # graph still reads as blocks of colour where the 8-unit stripe would be under a pixel
            painter.fillRect(QRectF(0, 0, 8, NODE_H) if lod > LOD_FAR else rect, self.colour)
            if lod > LOD_FAR:
                painter.setFont(st.f_far)
                painter.setPen(st.text)
                painter.drawText(rect.adjusted(14, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter, self.far_text)
            if sev is not None or self.isSelected():
                pen = QPen(st.error_pen if sev is Severity.ERROR else st.warning_pen if sev else st.node_selected)
                pen.setWidthF(4.0)
                painter.setPen(pen)
                painter.setBrush(st.no_brush)
                painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # soft shadow, then the card
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(st.shadow)
        painter.drawRoundedRect(rect.translated(0, 1.5), RADIUS, RADIUS)
        painter.setBrush(st.node_fill)
        if sev is Severity.ERROR:
            painter.setPen(st.error_pen)
        elif sev is Severity.WARNING:
            painter.setPen(st.warning_pen)
        elif self.isSelected() or self.highlight:
            painter.setPen(st.node_selected)
        else:
            painter.setPen(st.node_border)
        painter.drawRoundedRect(rect, RADIUS, RADIUS)
        if self.frozen:
            paint_frozen_tint(painter, st)
        if self.isSelected() and sev is not None:  # keep the severity border, add a selection halo
            halo = QPen(st.node_selected)
            halo.setWidthF(1.5)
            painter.setPen(halo)
            painter.setBrush(st.no_brush)
            painter.drawRoundedRect(rect.adjusted(-4, -4, 4, 4), RADIUS + 3, RADIUS + 3)
        # category stripe on the left edge
        stripe = QPainterPath()
        stripe.addRoundedRect(QRectF(0.5, 0.5, 10, NODE_H - 1), RADIUS, RADIUS)
        clip = QPainterPath()
        clip.addRect(QRectF(0.5, 0.5, 4, NODE_H - 1))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawPath(stripe.intersected(clip))
        # row 1: icon, type, id
        x0 = _PAD + 2
        if self.icon is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(QRectF(x0, 8, 18, 18), self.icon, QRectF(self.icon.rect()))
        painter.setFont(st.f_title)
        painter.setPen(st.text)
        painter.drawText(QPointF(x0 + 25, 21.5), self.title)
        painter.setFont(st.f_id)
        painter.setPen(st.text_dim)
        painter.drawText(QRectF(0, 8, NODE_W - _PAD, 18),
                         Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.id_text)
        # row 2: key parameters on the left, output shape on the right
        if self.params_line:
            painter.setFont(st.f_params)
            painter.setPen(st.text)
            painter.drawText(QPointF(x0, 42), self.params_line)
        elif self.id_line:
            painter.setFont(st.f_id)
            painter.setPen(st.text_dim)
            painter.drawText(QPointF(x0, 42), self.id_line)
        painter.setFont(st.f_shape)
        painter.setPen(st.text_dim if self.result is None or self.result.out_shapes is None else st.accent)
        painter.drawText(QRectF(0, 31, NODE_W - _PAD, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         self.shape_text)
        self._paint_ports(painter)
        paint_badges(painter, st, self)
        if sev is not None:
            self._paint_badge(painter, sev)
        if self.sparklines and lod >= LOD_SPARK:
            self._paint_sparklines(painter)

    def _paint_sparklines(self, painter: QPainter) -> None:
        st = self.style
        rect = self._spark_rect()
        painter.setPen(st.spark_border)
        painter.setBrush(st.spark_bg)
        painter.drawRoundedRect(rect, 4, 4)
        painter.setBrush(st.no_brush)
        for key, path in self._spark_paths:
            painter.setPen(st.spark_grad if key == "grad" else st.spark_mean)
            painter.drawPath(path)
        if self._spark_dead is not None:
            track = QRectF(rect.right() - 7, rect.top() + 3, 4, rect.height() - 6)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.fillRect(track, st.spark_track)
            h = track.height() * self._spark_dead
            painter.fillRect(QRectF(track.left(), track.bottom() - h, track.width(), h), st.spark_dead)

    def _paint_ports(self, painter: QPainter) -> None:
        st = self.style
        painter.setPen(st.port_pen)
        xs = self._in_xs()
        for i, x in enumerate(xs):
            is_new = self.new_slot and i == len(xs) - 1
            port = -1 if is_new else self.in_slots[i]
            hovered = self.hover_port == ("in", port)
            painter.setBrush(st.port_hover if hovered else st.port_fill)
            if is_new:
                pen = QPen(st.port_pen)
                pen.setStyle(Qt.PenStyle.DotLine)
                painter.setPen(pen)
                painter.drawEllipse(QPointF(x, 0), PORT_R, PORT_R)
                painter.drawLine(QPointF(x - 2.2, 0), QPointF(x + 2.2, 0))
                painter.drawLine(QPointF(x, -2.2), QPointF(x, 2.2))
                painter.setPen(st.port_pen)
            else:
                painter.drawEllipse(QPointF(x, 0), PORT_R, PORT_R)
        for i, x in enumerate(self._out_xs()):
            hovered = self.hover_port == ("out", i)
            painter.setBrush(st.port_hover if hovered else st.port_fill)
            painter.drawEllipse(QPointF(x, NODE_H), PORT_R, PORT_R)

    def _paint_badge(self, painter: QPainter, sev: Severity) -> None:
        paint_severity_badge(painter, self.style, QPointF(NODE_W - 2, 2), sev)


def paint_severity_badge(painter: QPainter, st: Any, c: QPointF, sev: Severity) -> None:
    """The round "!" badge at a card's top-right corner: red for errors, amber for warnings.

    Shared by layer cards and collapsed block cards so both read the same.
    """
    colour = st.error if sev is Severity.ERROR else st.warning
    painter.setPen(QPen(st.node_fill.color(), 2))
    painter.setBrush(colour)
    painter.drawEllipse(c, 8.5, 8.5)
    pen = QPen(st.node_fill.color(), 2.2)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.drawLine(QPointF(c.x(), c.y() - 4), QPointF(c.x(), c.y() + 1))
    painter.drawPoint(QPointF(c.x(), c.y() + 4.2))


class EdgeItem(QGraphicsItem):
    """A connection: a smooth curve from an output port to an input port, labelled with its shape.

    Long edges whose straight course would cross other cards take a lane beside them.
    """

    def __init__(self, edge: Edge, style: CanvasStyle) -> None:
        super().__init__()
        self.edge = edge
        self.style = style
        self.label = ""
        self.known = True
        self.show_label = True  # one label per output: fanned-out edges share it
        self.path = QPainterPath()
        self._shape: QPainterPath | None = None
        self.label_pos = QPointF()
        self.label_rect = QRectF()
        self._bounds = QRectF()
        self.pending = False  # its course is stale and waits for the canvas's sliced reroute
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setZValue(0)

    def set_label(self, shape: Sequence[int] | None) -> None:
        text = fmt_shape(shape) if shape is not None else "?"
        known = shape is not None
        if text != self.label or known != self.known:
            self.label, self.known = text, known
            self._place_label()
            self.update()

    def set_pending(self) -> None:
        """Hide the wire until :meth:`set_path` gives it its new course (after a bulk move its old
        course points at the cards' old places). Fully transparent, Qt skips it when painting, and
        it stays visible as far as folding and selection are concerned."""
        if not self.pending:
            self.pending = True
            self.setOpacity(0.0)

    def set_path(self, path: QPainterPath, label_at: QPointF) -> None:
        if self.pending:
            self.pending = False
            self.setOpacity(1.0)
        self.prepareGeometryChange()
        self.path = path
        self._shape = None
        self.label_pos = label_at
        self._place_label()

    def _place_label(self) -> None:
        m = self.style.m_edge
        w = self.style.advance(m, self.label) + 10
        h = m.height() + 3
        # just below the source port, right of the wire: block titles sit near the other end
        self.label_rect = QRectF(self.label_pos.x() + 7, self.label_pos.y() + 3, w, h)
        self.prepareGeometryChange()
        self._bounds = self.path.controlPointRect().adjusted(-4, -4, 4, 4).united(self.label_rect)

    def boundingRect(self) -> QRectF:  # Qt override
        return self._bounds

    def shape(self) -> QPainterPath:  # Qt override
        if self._shape is None:
            stroker = QPainterPathStroker()
            stroker.setWidth(10)
            self._shape = stroker.createStroke(self.path)
        return self._shape

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.style
        lod = lod_of(painter)
        if lod >= LOD_TEXT:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pen = st.edge_selected if self.isSelected() else st.edge if self.known else st.edge_unknown
        painter.setPen(pen)
        painter.setBrush(st.no_brush)
        painter.drawPath(self.path)
        if lod >= LOD_LABEL and self.label and self.show_label:
            painter.setPen(st.edge_label_border)
            painter.setBrush(st.edge_label_bg)
            painter.drawRoundedRect(self.label_rect, 4, 4)
            painter.setFont(st.f_edge)
            painter.setPen(st.edge_label if self.known else st.text_dim)
            painter.drawText(self.label_rect, Qt.AlignmentFlag.AlignCenter, self.label)


def curve(p0: QPointF, p1: QPointF, lane: float | None = None) -> tuple[QPainterPath, QPointF]:
    """A top-to-bottom bezier from ``p0`` to ``p1`` (through a vertical ``lane`` if given) and
    the point its label hangs from (the source port)."""
    path = QPainterPath(p0)
    dy = p1.y() - p0.y()
    if lane is None:
        dx = p1.x() - p0.x()
        if dy < 0 and abs(dx) > 2 * NODE_W / 3:
            # going up into another column (a chain wrapped into columns): leave below the source,
            # climb in the gap half-way between the columns, come in from above the target
            mid = p0.x() + dx / 2
            low, high = p0.y() + 22, p1.y() - 48  # above the title of a frame around the target
            r = min(12.0, abs(dx) / 4)
            sx = 1.0 if dx > 0 else -1.0
            path.lineTo(p0.x(), low - r)
            path.quadTo(p0.x(), low, p0.x() + sx * r, low)
            path.lineTo(mid - sx * r, low)
            path.quadTo(mid, low, mid, low - r)
            path.lineTo(mid, high + r)
            path.quadTo(mid, high, mid + sx * r, high)
            path.lineTo(p1.x() - sx * r, high)
            path.quadTo(p1.x(), high, p1.x(), high + r)
            path.lineTo(p1)
            return path, p0
        if dy > 0:
            t = max(28.0, dy * 0.5)
        else:  # going up: loop out below the source and come in above the target
            t = max(60.0, -dy * 0.5 + 40)
        path.cubicTo(QPointF(p0.x(), p0.y() + t), QPointF(p1.x(), p1.y() - t), p1)
        return path, p0
    k = min(56.0, max(dy / 3, 20.0))
    a = QPointF(lane, p0.y() + k)
    b = QPointF(lane, p1.y() - k)
    path.cubicTo(QPointF(p0.x(), p0.y() + k * 0.75), QPointF(lane, p0.y() + k * 0.25), a)
    path.lineTo(b)
    path.cubicTo(QPointF(lane, p1.y() - k * 0.25), QPointF(p1.x(), p1.y() - k * 0.75), p1)
    return path, p0
