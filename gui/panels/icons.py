"""Small vector icons drawn with QPainter: one per palette category, severities, the app icon.

Drawn rather than shipped as bitmaps so they follow the theme's colours and stay sharp at any
device pixel ratio. Every category icon is the same rounded tile in the category's colour with
a white glyph that hints at what the layers do (a kernel grid for convolution, a hinge for
activations …), so the palette reads as one consistent family.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

from core.layers.spec import Category
from gui.theme import Theme, current_theme

_SIZES = (16, 20, 24, 32, 48, 64, 128, 256)

Glyph = Callable[[QPainter, float], None]


def _pen(p: QPainter, s: float, width: float = 1.6, colour: str = "#ffffff") -> None:
    pen = QPen(QColor(colour), width * s / 16)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)


def _glyph_io(p: QPainter, s: float) -> None:
    _pen(p, s)
    k = s / 16
    p.drawLine(QPointF(4 * k, 8 * k), QPointF(11.5 * k, 8 * k))
    p.drawPolyline([QPointF(8.5 * k, 5 * k), QPointF(11.5 * k, 8 * k), QPointF(8.5 * k, 11 * k)])
    p.drawLine(QPointF(12.5 * k, 4.5 * k), QPointF(12.5 * k, 11.5 * k))


def _glyph_conv(p: QPainter, s: float) -> None:
    k = s / 16
    p.setPen(Qt.PenStyle.NoPen)
    for i in range(3):
        for j in range(3):
            alpha = 255 if (i, j) == (1, 1) else 190
            p.setBrush(QColor(255, 255, 255, alpha))
            p.drawRoundedRect(QRectF((3.5 + i * 3.2) * k, (3.5 + j * 3.2) * k, 2.4 * k, 2.4 * k), 0.5 * k, 0.5 * k)


def _glyph_pool(p: QPainter, s: float) -> None:
    k = s / 16
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(255, 255, 255, 170))
    for i in range(2):
        for j in range(2):
            p.drawRect(QRectF((3 + i * 3) * k, (3 + j * 3) * k, 2.4 * k, 2.4 * k))
    p.setBrush(QColor("#ffffff"))
    p.drawRoundedRect(QRectF(10 * k, 9.5 * k, 3.5 * k, 3.5 * k), 0.6 * k, 0.6 * k)
    _pen(p, s, 1.3)
    p.drawLine(QPointF(7.6 * k, 7.6 * k), QPointF(9.6 * k, 9.6 * k))


def _glyph_norm(p: QPainter, s: float) -> None:
    k = s / 16
    _pen(p, s)
    path = QPainterPath(QPointF(2.8 * k, 12 * k))
    path.cubicTo(QPointF(6 * k, 12 * k), QPointF(6 * k, 3.5 * k), QPointF(8 * k, 3.5 * k))
    path.cubicTo(QPointF(10 * k, 3.5 * k), QPointF(10 * k, 12 * k), QPointF(13.2 * k, 12 * k))
    p.drawPath(path)


def _glyph_activation(p: QPainter, s: float) -> None:
    k = s / 16
    _pen(p, s, 1.8)
    p.drawPolyline([QPointF(3 * k, 11 * k), QPointF(8 * k, 11 * k), QPointF(13 * k, 4 * k)])


def _glyph_linear(p: QPainter, s: float) -> None:
    k = s / 16
    left = [QPointF(4 * k, (4.5 + 3.5 * i) * k) for i in range(3)]
    right = [QPointF(12 * k, (6.2 + 3.6 * i) * k) for i in range(2)]
    _pen(p, s, 0.9)
    pen = p.pen()
    pen.setColor(QColor(255, 255, 255, 170))
    p.setPen(pen)
    for a in left:
        for b in right:
            p.drawLine(a, b)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#ffffff"))
    for pt in left + right:
        p.drawEllipse(pt, 1.5 * k, 1.5 * k)


def _glyph_dropout(p: QPainter, s: float) -> None:
    k = s / 16
    p.setPen(Qt.PenStyle.NoPen)
    for i in range(3):
        for j in range(3):
            if (i + 2 * j) % 3 == 1:
                _pen(p, s, 1.0)
                p.drawEllipse(QPointF((4.5 + i * 3.5) * k, (4.5 + j * 3.5) * k), 1.1 * k, 1.1 * k)
                p.setPen(Qt.PenStyle.NoPen)
            else:
                p.setBrush(QColor("#ffffff"))
                p.drawEllipse(QPointF((4.5 + i * 3.5) * k, (4.5 + j * 3.5) * k), 1.3 * k, 1.3 * k)


def _glyph_shape(p: QPainter, s: float) -> None:
    k = s / 16
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(255, 255, 255, 190))
    p.drawRect(QRectF(3 * k, 3.5 * k, 4 * k, 4 * k))
    p.setBrush(QColor("#ffffff"))
    for i in range(4):
        p.drawRect(QRectF((3 + i * 2.6) * k, 10.5 * k, 2 * k, 2 * k))
    _pen(p, s, 1.2)
    p.drawLine(QPointF(9 * k, 5.5 * k), QPointF(12.5 * k, 5.5 * k))
    p.drawPolyline([QPointF(11 * k, 4 * k), QPointF(12.5 * k, 5.5 * k), QPointF(11 * k, 7 * k)])


def _glyph_merge(p: QPainter, s: float) -> None:
    k = s / 16
    _pen(p, s, 1.6)
    p.drawLine(QPointF(3 * k, 4 * k), QPointF(8 * k, 8 * k))
    p.drawLine(QPointF(3 * k, 12 * k), QPointF(8 * k, 8 * k))
    p.drawLine(QPointF(8 * k, 8 * k), QPointF(13 * k, 8 * k))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#ffffff"))
    p.drawEllipse(QPointF(8 * k, 8 * k), 2 * k, 2 * k)


_GLYPHS: dict[str, Glyph] = {
    Category.IO.value: _glyph_io,
    Category.CONV.value: _glyph_conv,
    Category.POOL.value: _glyph_pool,
    Category.NORM.value: _glyph_norm,
    Category.ACTIVATION.value: _glyph_activation,
    Category.LINEAR.value: _glyph_linear,
    Category.DROPOUT.value: _glyph_dropout,
    Category.SHAPE.value: _glyph_shape,
    Category.MERGE.value: _glyph_merge,
}


def _tile(colour: str, glyph: Glyph | None, size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(QColor(colour)))
    r = size * 0.22
    p.drawRoundedRect(QRectF(0.5, 0.5, size - 1, size - 1), r, r)
    if glyph is not None:
        glyph(p, float(size))
    p.end()
    return pm


def _icon(colour: str, glyph: Glyph | None) -> QIcon:
    icon = QIcon()
    for size in _SIZES[:5]:
        icon.addPixmap(_tile(colour, glyph, size))
    return icon


@lru_cache(maxsize=64)
def _category_icon(category: str, colour: str) -> QIcon:
    return _icon(colour, _GLYPHS.get(category))


def category_icon(category: Category | str, theme: Theme | None = None) -> QIcon:
    """The palette tile for ``category`` in the theme's colour for it."""
    t = theme or current_theme()
    key = category.value if isinstance(category, Category) else str(category)
    return _category_icon(key, t.category_color(key))


def _severity_pixmap(severity: str, colour: str, size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    k = size / 16
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(colour))
    if severity == "warning":
        tri = QPainterPath(QPointF(8 * k, 1.5 * k))
        tri.lineTo(QPointF(15 * k, 14.5 * k))
        tri.lineTo(QPointF(1 * k, 14.5 * k))
        tri.closeSubpath()
        p.drawPath(tri)
    else:
        p.drawEllipse(QRectF(1 * k, 1 * k, 14 * k, 14 * k))
    p.setBrush(QColor("#ffffff"))
    if severity == "info":
        p.drawEllipse(QPointF(8 * k, 4.8 * k), 1.1 * k, 1.1 * k)
        p.drawRoundedRect(QRectF(7 * k, 7 * k, 2 * k, 5.5 * k), 0.8 * k, 0.8 * k)
    else:
        top = 5.2 if severity == "warning" else 3.8
        p.drawRoundedRect(QRectF(7 * k, top * k, 2 * k, 5.6 * k), 0.8 * k, 0.8 * k)
        p.drawEllipse(QPointF(8 * k, (top + 7.8) * k), 1.1 * k, 1.1 * k)
    p.end()
    return pm


@lru_cache(maxsize=16)
def _severity_icon(severity: str, colour: str) -> QIcon:
    icon = QIcon()
    for size in (16, 20, 24, 32):
        icon.addPixmap(_severity_pixmap(severity, colour, size))
    return icon


def severity_icon(severity: str, theme: Theme | None = None) -> QIcon:
    """A red disc with "!" for errors, an amber triangle for warnings, a blue "i" for info."""
    t = theme or current_theme()
    colour = {"error": t.error, "warning": t.warning}.get(severity, t.info)
    return _severity_icon(severity, colour)


def _app_pixmap(size: int) -> QPixmap:
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    k = size / 64
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#1f2a44"))
    p.drawRoundedRect(QRectF(1 * k, 1 * k, 62 * k, 62 * k), 14 * k, 14 * k)
    pen = QPen(QColor("#9fb6e6"), 3 * k)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    a, b, c, d = QPointF(16 * k, 20 * k), QPointF(16 * k, 44 * k), QPointF(34 * k, 32 * k), QPointF(50 * k, 32 * k)
    for u, v in ((a, c), (b, c), (c, d)):
        p.drawLine(u, v)
    p.setPen(Qt.PenStyle.NoPen)
    for pt, colour in ((a, "#5b93f0"), (b, "#f0a350"), (c, "#4fc46d"), (d, "#e66a91")):
        p.setBrush(QColor(colour))
        p.drawRoundedRect(QRectF(pt.x() - 7 * k, pt.y() - 6 * k, 14 * k, 12 * k), 3 * k, 3 * k)
    p.end()
    return pm


@lru_cache(maxsize=1)
def app_icon() -> QIcon:
    """The NetCanvas icon: four layer tiles joined into a small graph."""
    icon = QIcon()
    for size in _SIZES:
        icon.addPixmap(_app_pixmap(size))
    return icon


__all__ = ["app_icon", "category_icon", "severity_icon"]
