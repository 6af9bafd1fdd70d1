"""The minimap: an overview of the whole graph in a corner of the canvas, with the view's rectangle.

A 500-node graph does not fit a window at a zoom where its cards still read, so the canvas stops
zooming out at a floor (see :data:`gui.canvas.view.ZOOM_FLOOR`) and this overlay shows where the
view is: every layer as a block of its category's colour, folded blocks as tiles, and the
visible part as a rectangle. Click or drag on it to move the view there.

It shows only when the graph does not fit the view (a small graph needs no map) and when the
user has not turned it off (View › Minimap, remembered in the settings). The picture of the
graph is drawn once into a pixmap after the document's edits settle (moves, adding, folding), the
view's rectangle on every scroll or zoom, so panning costs one small repaint.

A graph much taller than wide (an expanded ResNet-152 is one long column) would be a hairline
at one scale, so the narrow side is stretched to a readable width: the map is for finding where
you are along the graph, not for its proportions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from gui.canvas.metrics import CARD_H, CARD_W, NODE_H, NODE_W
from gui.files import settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from gui.canvas.view import CanvasView

SETTING = "canvas/minimap"  # whether the user wants the minimap (View › Minimap)
MAX_W, MAX_H = 180, 260  # the map's largest size in pixels
MIN_SIDE = 48  # the narrow side of a long, thin graph is stretched to at least this
MARGIN = 12  # from the canvas's corner
_PAD = 6  # inside the map's frame
_REBUILD_MS = 120  # the graph's picture is redrawn this long after the scene last changed
# Over this many cards the picture is drawn a slice per event-loop turn (the previous one shown
# meanwhile): drawn at once, a 20,000-node graph held the GUI thread about half a second.
SLICED_OVER = 3000
_SLICE_S = 0.012


def minimap_wanted() -> bool:
    return str(settings().value(SETTING, "true")).lower() not in ("false", "0")


class Minimap(QWidget):
    """The overview overlay of one :class:`CanvasView` (a child of the view, in its corner)."""

    def __init__(self, view: CanvasView) -> None:
        super().__init__(view)
        self.view = view
        self.wanted = minimap_wanted()
        self._content = QRectF()  # the scene area the map shows
        self._sx = self._sy = 1.0  # scene units -> map pixels
        self._picture: QPixmap | None = None
        self._dragging = False
        self.setObjectName("minimap")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview of the whole graph: click or drag to move the view")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, False)
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(_REBUILD_MS)
        self._rebuild_timer.timeout.connect(self.rebuild)
        self._steps: Iterator[None] | None = None  # a picture being drawn in slices
        self._slice_timer = QTimer(self, interval=0)
        self._slice_timer.timeout.connect(self._slice)
        # the document's signals, not QGraphicsScene.changed: with that one connected, Qt routes
        # every repaint of the views through it (slower on a big scene)
        doc = view.canvas.doc
        for signal in (doc.batch_finished, doc.node_moved, doc.node_added, doc.node_removed, doc.groups_changed):
            signal.connect(self._scene_changed)
        view.horizontalScrollBar().valueChanged.connect(self.follow_view)
        view.verticalScrollBar().valueChanged.connect(self.follow_view)
        view.zoom_changed.connect(self.follow_view)
        self.hide()
        self.rebuild()

    # -- what the owner calls -------------------------------------------------------------------
    def set_wanted(self, on: bool) -> None:
        """Turn the minimap on or off (View › Minimap); remembered for the next canvas."""
        self.wanted = bool(on)
        settings().setValue(SETTING, "true" if on else "false")
        self.follow_view()

    def follow_view(self, *_: object) -> None:
        """The view moved, zoomed or resized: place the map, show it if needed, redraw the rectangle."""
        self._place()
        show = self.wanted and not self._content.isEmpty() and not self._view_shows_all()
        if show != self.isVisible():
            self.setVisible(show)
        if show:
            self.raise_()
            self.update()

    def rebuild(self) -> None:
        """Draw the graph's picture again (after the scene changed); a big graph's in slices."""
        canvas = self.view.canvas
        self._steps = self._rebuild_steps()
        if len(canvas.nodes) + len(canvas.cards) <= SLICED_OVER:
            for _ in self._steps:
                pass
        else:
            self._slice_timer.start()

    def rebuilding(self) -> bool:
        """True while a big graph's picture is being drawn (the previous one is shown meanwhile)."""
        return self._slice_timer.isActive()

    def _slice(self) -> None:
        stop = time.perf_counter() + _SLICE_S
        steps = self._steps
        try:
            while steps is not None and time.perf_counter() < stop:
                next(steps)
        except StopIteration:
            steps = None
        if steps is None:
            self._slice_timer.stop()

    def _rebuild_steps(self) -> Iterator[None]:
        canvas = self.view.canvas
        rects: list[tuple[float, float, float, float, QColor]] = []
        left = top = float("inf")
        right = bottom = float("-inf")
        card_colour = canvas.canvas_style.group_border.color()
        kinds: tuple[tuple[list[Any], float, float], ...] = (
            (list(canvas.nodes.values()), NODE_W, NODE_H), (list(canvas.cards.values()), CARD_W, CARD_H))
        for items, w, h in kinds:
            for i, item in enumerate(items):
                if item.isVisible():
                    p = item.pos()
                    x, y = p.x(), p.y()
                    rects.append((x, y, w, h, card_colour if w == CARD_W else item.colour))
                    left, top, right, bottom = min(left, x), min(top, y), max(right, x + w), max(bottom, y + h)
                if i % 256 == 255:
                    yield
        if not rects:
            self._content = QRectF()
            self._picture = None
            self._steps = None
            self.follow_view()
            return
        content = QRectF(left - 40, top - 40, right - left + 80, bottom - top + 80)
        old = self._content, self._sx, self._sy
        self._content = content
        self._fit_scale()  # the new scale, for the new picture only until it is shown
        size, sx, sy = self._map_size(), self._sx, self._sy
        self._content, self._sx, self._sy = old
        picture = QPixmap(size)
        picture.fill(Qt.GlobalColor.transparent)
        painter = QPainter(picture)
        try:
            for i, (x, y, w, h, colour) in enumerate(rects):
                # at this scale a card is a pixel or two: never let it vanish
                painter.fillRect(QRectF(_PAD + (x - content.left()) * sx, _PAD + (y - content.top()) * sy,
                                        max(w * sx, 1.5), max(h * sy, 1.0)), colour)
                if i % 1024 == 1023:
                    yield
        finally:
            painter.end()
        self._content, self._sx, self._sy = content, sx, sy
        self._picture = picture
        self._steps = None
        self.follow_view()

    def viewport_rect(self) -> QRectF:
        """The view's visible area on the map, in this widget's pixels (clipped to the map)."""
        v = self.view
        seen = v.mapToScene(v.viewport().rect()).boundingRect()
        return self._to_map(seen).intersected(self._map_area())

    def scene_at(self, p: QPointF) -> QPointF:
        """The scene point under map pixel ``p``."""
        return QPointF(self._content.left() + (p.x() - _PAD) / self._sx,
                       self._content.top() + (p.y() - _PAD) / self._sy)

    # -- geometry -------------------------------------------------------------------------------
    def _fit_scale(self) -> None:
        w, h = self._content.width(), self._content.height()
        inner_w, inner_h = MAX_W - 2 * _PAD, self._max_h() - 2 * _PAD
        s = min(inner_w / w, inner_h / h)
        self._sx = self._sy = s
        # stretch the narrow side of a long, thin graph so the map is not a hairline
        if w * s < MIN_SIDE - 2 * _PAD:
            self._sx = (MIN_SIDE - 2 * _PAD) / w
        if h * s < MIN_SIDE - 2 * _PAD:
            self._sy = (MIN_SIDE - 2 * _PAD) / h

    def _max_h(self) -> int:
        vp = self.view.viewport()
        return max(MIN_SIDE, min(MAX_H, vp.height() - 2 * MARGIN))

    def _map_size(self) -> QSize:
        return QSize(round(self._content.width() * self._sx) + 2 * _PAD,
                     round(self._content.height() * self._sy) + 2 * _PAD)

    def _map_area(self) -> QRectF:
        return QRectF(self.rect()).adjusted(_PAD, _PAD, -_PAD, -_PAD)

    def _to_map(self, r: QRectF) -> QRectF:
        c = self._content
        return QRectF(_PAD + (r.left() - c.left()) * self._sx, _PAD + (r.top() - c.top()) * self._sy,
                      r.width() * self._sx, r.height() * self._sy)

    def _place(self) -> None:
        if self._content.isEmpty():
            return
        size = self._map_size()
        vp = self.view.viewport().geometry()  # in the view's coordinates: left of the scroll bar
        where = QRect(vp.right() - size.width() - MARGIN + 1, vp.bottom() - size.height() - MARGIN + 1,
                      size.width(), size.height())
        if where != self.geometry():
            self.setGeometry(where)

    def _view_shows_all(self) -> bool:
        v = self.view
        seen = v.mapToScene(v.viewport().rect()).boundingRect()
        return seen.contains(self._content.adjusted(30, 30, -30, -30))

    # -- events ---------------------------------------------------------------------------------
    def _scene_changed(self, *_: object) -> None:
        self._rebuild_timer.start()

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        st = self.view.canvas.canvas_style
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        back = QColor(st.canvas)
        back.setAlpha(235)
        painter.setPen(QPen(st.group_border.color(), 1.0))
        painter.setBrush(back)
        painter.drawRoundedRect(frame, 5, 5)
        if self._picture is not None:
            painter.drawPixmap(0, 0, self._picture)
        seen = self.viewport_rect()
        if not seen.isEmpty():
            fill = QColor(st.accent)
            fill.setAlpha(40)
            painter.setBrush(fill)
            painter.setPen(QPen(st.accent, 1.5))
            painter.drawRect(seen)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            self._dragging = True
            self._go(event.position())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # Qt override
        if self._dragging:
            self._go(event.position())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # Qt override
        self._dragging = False
        event.accept()

    def _go(self, p: QPointF) -> None:
        area = self._map_area()
        p = QPointF(min(max(p.x(), area.left()), area.right()), min(max(p.y(), area.top()), area.bottom()))
        self.view.centerOn(self.scene_at(p))
        self.update()


def minimap_action(parent: QWidget, view: Callable[[], CanvasView | None]) -> QAction:
    """View › Minimap: a checkable action that turns the current canvas's minimap on or off."""
    action = QAction("&Minimap", parent, checkable=True)
    action.setChecked(minimap_wanted())
    action.setToolTip("Show an overview of big graphs in the canvas's corner")

    def toggled(on: bool) -> None:
        current = view()
        if current is not None:
            current.minimap.set_wanted(on)
        else:
            settings().setValue(SETTING, "true" if on else "false")

    action.toggled.connect(toggled)
    return action


__all__ = ["Minimap", "minimap_action", "minimap_wanted"]
