"""Blocks (groups) on the canvas: a labelled frame around an expanded block, a card for a collapsed one.

A collapsed block's card stands in for all its members: edges that cross the block's boundary
are drawn to and from it, and it shows the block's totals (parameters, MACs) and the shape it
outputs. Both items are placed by the scene from the members' positions in the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from core.analysis import Severity
from gui.canvas.items import LOD_FAR, LOD_TEXT, lod_of, paint_severity_badge
from gui.canvas.metrics import CARD_H, CARD_W, FRAME_PAD, FRAME_TOP, PORT_R, RADIUS

if TYPE_CHECKING:
    from gui.canvas.style import CanvasStyle

_TITLE_H = 20.0


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
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
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
        self.rect = QRectF(f.rect.left() + 10, f.rect.top() - _TITLE_H / 2, w, _TITLE_H)
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
        painter.drawRoundedRect(self.rect, _TITLE_H / 2, _TITLE_H / 2)
        cx, cy = self.rect.left() + 12, self.rect.center().y()
        painter.setPen(st.chevron)
        painter.drawPolyline(QPolygonF([QPointF(cx - 3.5, cy - 1.8), QPointF(cx, cy + 1.8),
                                        QPointF(cx + 3.5, cy - 1.8)]))
        painter.setFont(st.f_group)
        painter.setPen(st.group_text)
        painter.drawText(self.rect.adjusted(22, 0, -8, 0), Qt.AlignmentFlag.AlignVCenter, self.label)


class BlockItem(QGraphicsItem):
    """A collapsed block: one card with its name, size, totals and output shape (double-click expands)."""

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
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
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
        self.setToolTip(tooltip)
        self.update()

    def in_port_pos(self) -> QPointF:
        return self.mapToScene(QPointF(CARD_W / 2, 0))

    def out_port_pos(self) -> QPointF:
        return self.mapToScene(QPointF(CARD_W / 2, CARD_H))

    def boundingRect(self) -> QRectF:  # Qt override
        return QRectF(-4, -10, CARD_W + 16, CARD_H + 20)

    def shape(self) -> QPainterPath:  # Qt override
        p = QPainterPath()
        p.addRoundedRect(QRectF(0, 0, CARD_W, CARD_H), RADIUS, RADIUS)
        return p

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        st = self.style
        rect = QRectF(0, 0, CARD_W, CARD_H)
        sev = self.severity
        border = (st.error_pen if sev is Severity.ERROR else st.warning_pen if sev is Severity.WARNING
                  else st.node_selected if self.isSelected() else st.node_border)
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
        # ports
        painter.setPen(st.port_pen)
        painter.setBrush(st.port_fill)
        painter.drawEllipse(QPointF(CARD_W / 2, 0), PORT_R, PORT_R)
        painter.drawEllipse(QPointF(CARD_W / 2, CARD_H), PORT_R, PORT_R)
        if sev is not None:
            paint_severity_badge(painter, st, QPointF(CARD_W - 2, 2), sev)
