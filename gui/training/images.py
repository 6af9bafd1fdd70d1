"""Small image widgets for the viewers: numpy → QImage, a pixel-exact image view with overlays,
and a mosaic of tiles (feature-map channels, kernels, dataset samples) that reports which tile
and which pixel of it the mouse is over.

Both views scale with nearest-neighbour sampling so single pixels of a 5×5 map stay crisp
squares, keep the aspect ratio and centre the picture. The mosaic and the sparklines keep what they
painted as a pixmap (:class:`PaintCache`) and repaint by copying it until their content, size or
theme changes: Qt repaints them whenever the feature-map tab is shown, sometimes twice in one frame,
and drawing each tile scaled, its label and each sparkline's text again cost ~10 ms of every switch
to that tab during a run (issue 11).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.theme import Theme, current_theme


def to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 ``(H, W, 3)`` (or ``(H, W)`` grey) → a QImage that owns a copy of the pixels."""
    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    if a.ndim == 2:
        h, w = a.shape
        return QImage(a.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def chw_to_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 ``(C, H, W)`` sample (C = 1 or 3; other counts show channel 0) as ``(H, W, 3)``."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[None]
    if a.shape[0] == 3:
        return np.ascontiguousarray(a.transpose(1, 2, 0)).astype(np.uint8)
    return np.repeat(a[0][..., None], 3, axis=2).astype(np.uint8)


def mosaic(tiles: np.ndarray, columns: int, gap: int = 1, background: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Lay ``(N, h, w, 3)`` uint8 tiles out in a grid with ``gap`` pixels between them."""
    n, h, w = tiles.shape[:3]
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    out = np.empty((rows * (h + gap) - gap, columns * (w + gap) - gap, 3), dtype=np.uint8)
    out[:] = np.asarray(background, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = tiles[i]
    return out


def grid_columns(n: int, tile_aspect: float = 1.0, box_aspect: float = 1.6) -> int:
    """The column count that gives ``n`` tiles (width/height ``tile_aspect``) the largest size in a box
    of aspect ``box_aspect`` (width / height)."""
    if n <= 0:
        return 1

    def scale(cols: int) -> float:
        rows = math.ceil(n / cols)
        return min(box_aspect / (cols * tile_aspect), 1.0 / rows)

    return max(range(1, n + 1), key=lambda c: (scale(c), -c))


class PaintCache:
    """What a widget painted, kept as a pixmap while its ``key`` (and size and pixel ratio) stay the same."""

    def __init__(self) -> None:
        self.key: tuple[Hashable, ...] | None = None
        self.pixmap: QPixmap | None = None
        self.draws = 0  # how many times it was painted anew (tests read it)

    def paint(self, widget: QWidget, key: tuple[Hashable, ...], draw: Callable[[QPainter], None]) -> QPixmap:
        """The pixmap of ``draw`` (a painter over the widget's rect, transparent beneath), drawn again
        only when ``key``, the widget's size or its pixel ratio changed since the last call."""
        ratio = widget.devicePixelRatioF()
        full = (widget.width(), widget.height(), ratio, *key)
        if self.pixmap is None or full != self.key:
            pixmap = QPixmap(max(1, math.ceil(widget.width() * ratio)), max(1, math.ceil(widget.height() * ratio)))
            pixmap.setDevicePixelRatio(ratio)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            painter.setFont(widget.font())
            draw(painter)
            painter.end()
            self.pixmap, self.key = pixmap, full
            self.draws += 1
        return self.pixmap

    def clear(self) -> None:
        self.key = self.pixmap = None


class ImageView(QWidget):
    """One picture (nearest-neighbour scaled) with optional rectangles drawn over it, in image pixels."""

    hovered = Signal(int, int)  # row, column in image pixels (-1, -1 when the mouse leaves)
    clicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None, min_size: int = 96) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.rects: list[tuple[QRectF, QColor]] = []
        self.caption = ""
        self.setMouseTracking(True)
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, rgb: np.ndarray | None, caption: str = "") -> None:
        self.image = to_qimage(rgb) if rgb is not None else None
        self.caption = caption
        self.update()

    def set_rects(self, rects: Sequence[tuple[float, float, float, float, str]]) -> None:
        """Rectangles ``(top, left, bottom, right, colour)`` in image pixels, inclusive."""
        self.rects = [(QRectF(left, top, right - left + 1, bottom - top + 1), QColor(colour))
                      for top, left, bottom, right, colour in rects]
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(160, 160)

    def target(self) -> QRectF:
        if self.image is None:
            return QRectF()
        text_h = 16 if self.caption else 0
        w, h = self.image.width(), self.image.height()
        avail_w, avail_h = self.width() - 4, self.height() - 4 - text_h
        scale = max(min(avail_w / w, avail_h / h), 1e-6)
        tw, th = w * scale, h * scale
        return QRectF((self.width() - tw) / 2, (self.height() - text_h - th) / 2, tw, th)

    def to_image(self, pos: QPointF) -> tuple[int, int] | None:
        t = self.target()
        if self.image is None or not t.contains(pos):
            return None
        col = int((pos.x() - t.left()) / t.width() * self.image.width())
        row = int((pos.y() - t.top()) / t.height() * self.image.height())
        return min(row, self.image.height() - 1), min(col, self.image.width() - 1)

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        p = QPainter(self)
        theme = current_theme()
        if self.image is None:
            p.setPen(QColor(theme.text_dim))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.caption or "no image")
            return
        t = self.target()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(t, self.image)
        sx, sy = t.width() / self.image.width(), t.height() / self.image.height()
        for r, colour in self.rects:
            p.setPen(QPen(colour, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(t.left() + r.left() * sx, t.top() + r.top() * sy, r.width() * sx, r.height() * sy))
        if self.caption:
            p.setPen(QColor(theme.text_dim))
            p.drawText(QRect(0, int(t.bottom()) + 2, self.width(), 16), Qt.AlignmentFlag.AlignHCenter, self.caption)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # Qt override
        hit = self.to_image(event.position())
        self.hovered.emit(*(hit if hit is not None else (-1, -1)))

    def leaveEvent(self, event: object) -> None:  # Qt override
        self.hovered.emit(-1, -1)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        hit = self.to_image(event.position())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(*hit)


class MosaicView(QWidget):
    """A grid of equally sized tiles, drawn from one image; hover and click report tile and pixel."""

    tile_hovered = Signal(int, int, int)  # tile, row, column (-1s when outside)
    tile_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: np.ndarray | None = None  # (N, h, w, 3) uint8
        self.columns = 1
        self.fixed_columns: int | None = None
        self.labels: list[str] = []
        self.selected = -1
        self.gap = 2
        self._image: QImage | None = None
        self._hover = -1
        self._tiles_set = 0  # counts set_tiles calls: the painted pixmap is of the tiles of that call
        self._painted = PaintCache()  # the tiles and labels as painted (the highlights go over it)
        self.setMouseTracking(True)
        self.setMinimumSize(120, 80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_tiles(self, tiles: np.ndarray | None, columns: int | None = None, labels: Sequence[str] = ()) -> None:
        """Show ``tiles``; ``columns`` fixes the grid, else it is chosen (and re-chosen on resize) to fit."""
        self.tiles = tiles
        self.labels = list(labels)
        self.fixed_columns = columns
        self._image = None if tiles is None or not len(tiles) else to_qimage(mosaic(tiles, 1, gap=0))
        self._tiles_set += 1
        self._painted.clear()  # the old tiles' pixmap is not needed any more
        self._layout()
        self.update()

    def _layout(self) -> None:
        if self.tiles is None or not len(self.tiles):
            return
        n, h, w = self.tiles.shape[:3]
        label_h = 13 if self.labels else 0
        box = max(self.width(), 1) / max(self.height(), 1)
        self.columns = self.fixed_columns or grid_columns(n, w / (h + label_h * h / 24), box)

    @property
    def count(self) -> int:
        return 0 if self.tiles is None else len(self.tiles)

    def _geometry(self) -> tuple[float, float, float, float, int] | None:
        """(left, top, tile width, tile height, rows) of the laid-out grid in widget pixels."""
        if self.tiles is None or not len(self.tiles):
            return None
        n, h, w = self.tiles.shape[:3]
        rows = math.ceil(n / self.columns)
        label_h = 13 if self.labels else 0
        g = self.gap
        scale = min((self.width() - g * (self.columns + 1)) / (self.columns * w),
                    (self.height() - g * (rows + 1) - rows * label_h) / (rows * h))
        scale = max(scale, 0.05)
        tw, th = w * scale, h * scale
        total_w = self.columns * tw + (self.columns - 1) * g
        total_h = rows * (th + label_h) + (rows - 1) * g
        return (self.width() - total_w) / 2, (self.height() - total_h) / 2, tw, th + label_h, rows

    def tile_rect(self, i: int) -> QRectF:
        geo = self._geometry()
        if geo is None or self.tiles is None:
            return QRectF()
        left, top, tw, cell_h, _ = geo
        r, c = divmod(i, self.columns)
        label_h = 13 if self.labels else 0
        return QRectF(left + c * (tw + self.gap), top + r * (cell_h + self.gap), tw, cell_h - label_h)

    def hit(self, pos: QPointF) -> tuple[int, int, int] | None:
        if self.tiles is None:
            return None
        n, h, w = self.tiles.shape[:3]
        for i in range(n):
            r = self.tile_rect(i)
            if r.contains(pos):
                row = min(h - 1, int((pos.y() - r.top()) / r.height() * h))
                col = min(w - 1, int((pos.x() - r.left()) / r.width() * w))
                return i, row, col
        return None

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        theme = current_theme()
        if self.tiles is None or self._image is None:
            p = QPainter(self)
            p.setPen(QColor(theme.text_dim))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "nothing to show yet")
            p.end()
            return
        key = (self._tiles_set, self.columns, self.gap, theme.text_dim, self.font().toString())
        pixmap = self._painted.paint(self, key, lambda painter: self._draw_tiles(painter, theme.text_dim))
        p = QPainter(self)  # after the pixmap is painted (see Sparkline.paintEvent)
        p.drawPixmap(0, 0, pixmap)
        n = len(self.tiles)
        for i in sorted({self.selected, self._hover}):
            if 0 <= i < n:
                p.setPen(QPen(QColor(theme.accent), 2 if i == self.selected else 1))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(self.tile_rect(i).adjusted(-1, -1, 1, 1))
        p.end()

    def _draw_tiles(self, p: QPainter, label_colour: str) -> None:
        """Each tile scaled into its place (nearest neighbour) with its label under it."""
        assert self.tiles is not None and self._image is not None
        n, h, w = self.tiles.shape[:3]
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        font = QFont(p.font())
        font.setPointSizeF(7.5)
        p.setFont(font)
        p.setPen(QColor(label_colour))
        for i in range(n):
            r = self.tile_rect(i)
            p.drawImage(r, self._image, QRectF(0, i * h, w, h))  # the image holds the tiles in one column
            if self.labels and i < len(self.labels):
                p.drawText(QRectF(r.left() - 4, r.bottom() + 1, r.width() + 8, 12),
                           Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.labels[i])

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # Qt override
        hit = self.hit(event.position())
        tile = hit[0] if hit else -1
        if tile != self._hover:
            self._hover = tile
            self.update()
        self.tile_hovered.emit(*(hit if hit else (-1, -1, -1)))

    def leaveEvent(self, event: object) -> None:  # Qt override
        self._hover = -1
        self.update()
        self.tile_hovered.emit(-1, -1, -1)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        hit = self.hit(event.position())
        if hit is not None and event.button() == Qt.MouseButton.LeftButton:
            self.selected = hit[0]
            self.update()
            self.tile_clicked.emit(hit[0])

    def resizeEvent(self, event: object) -> None:  # Qt override: re-flow the columns to the new shape
        self._layout()
        super().resizeEvent(event)  # type: ignore[arg-type]


class ProgressLine(QWidget):
    """A thin progress bar (``0 … maximum``) painted with the theme's accent.

    Unlike ``QProgressBar``, whose ``setValue`` repaints at once (synchronously, ~10 ms of the GUI
    thread on a busy 2-core machine, at every progress update of a run), it repaints with the next
    frame, and only when the filled width changes by a pixel.
    """

    def __init__(self, maximum: int = 1000, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self._maximum = max(1, maximum)
        self.setFixedHeight(8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def value(self) -> int:
        return self._value

    def maximum(self) -> int:
        return self._maximum

    def setValue(self, value: int) -> None:  # Qt naming, as QProgressBar
        value = min(max(int(value), 0), self._maximum)
        if value == self._value:
            return
        before = self._filled()
        self._value = value
        if self._filled() != before:
            self.update()

    def _filled(self) -> int:
        return round(self.width() * self._value / self._maximum)

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        theme = current_theme()
        p.setPen(Qt.PenStyle.NoPen)
        r = QRectF(self.rect()).adjusted(0.5, 1.5, -0.5, -1.5)
        p.setBrush(QColor(theme.panel_alt))
        p.drawRoundedRect(r, r.height() / 2, r.height() / 2)
        if self._value:
            p.setBrush(QColor(theme.accent))
            p.drawRoundedRect(QRectF(r.left(), r.top(), max(r.width() * self._value / self._maximum, r.height()),
                                     r.height()), r.height() / 2, r.height() / 2)


class Sparkline(QWidget):
    """A tiny line chart of the last values of one statistic, with its latest value as text."""

    def __init__(self, label: str, fmt: str = "{:.3g}", colour: str | None = None, capacity: int = 120,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self.fmt = fmt
        self.colour = colour
        self.capacity = capacity
        self.values: list[float] = []
        self._changes = 0  # counts add/clear: the painted pixmap is of the values after that many changes
        self._painted = PaintCache()
        self.setFixedHeight(30)
        self.setMinimumWidth(70)
        self.setToolTip(label)

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        self.values.append(float(value))
        del self.values[:-self.capacity]  # repainted with the feature maps (update() there), not per value
        self._changes += 1

    def clear(self) -> None:
        self.values = []
        self._changes += 1
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        theme = current_theme()
        key = (self._changes, self.label, self.fmt, self.colour, theme.text_dim, theme.text, theme.accent,
               self.font().toString())
        # The pixmap first, then the widget's painter, ended here (not a painter left open on the widget
        # while another paints the pixmap).
        pixmap = self._painted.paint(self, key, lambda p: self._draw(p, theme))
        painter = QPainter(self)
        painter.drawPixmap(0, 0, pixmap)
        painter.end()

    def _draw(self, p: QPainter, theme: Theme) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(p.font())
        font.setPointSizeF(7.5)
        p.setFont(font)
        p.setPen(QColor(theme.text_dim))
        value = self.fmt.format(self.values[-1]) if self.values else "–"
        p.drawText(QRect(0, 0, self.width(), 12), Qt.AlignmentFlag.AlignLeft, self.label)
        p.setPen(QColor(theme.text))
        p.drawText(QRect(0, 0, self.width(), 12), Qt.AlignmentFlag.AlignRight, value)
        if len(self.values) < 2:
            return
        v = np.asarray(self.values)
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        h0, h = 14, self.height() - 16
        xs = np.linspace(1, self.width() - 2, len(v))
        ys = h0 + h - (v - lo) / span * h
        p.setPen(QPen(QColor(self.colour or theme.accent), 1.4))
        points = [QPointF(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
        p.drawPolyline(points)


__all__ = ["ImageView", "MosaicView", "PaintCache", "ProgressLine", "Sparkline", "chw_to_rgb", "grid_columns", "mosaic",
           "to_qimage"]
