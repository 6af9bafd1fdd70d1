"""Pens, brushes, fonts and icons of the canvas, made once per theme and shared by every item.

Items never build a ``QPen``/``QFont`` while painting: a 500-node graph repaints often (zoom,
pan, drag) and allocation there shows up in frame times.
"""

from __future__ import annotations

import math
from functools import lru_cache

from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPen, QPixmap

from core.layers.registry import get_spec
from core.layers.spec import Category
from gui.theme import Theme, current_theme


def _font(px: float, weight: QFont.Weight = QFont.Weight.Normal, mono: bool = False) -> QFont:
    f = QFont("DejaVu Sans Mono" if mono else QFont().family())
    f.setPixelSize(round(px))
    f.setWeight(weight)
    f.setHintingPreference(QFont.HintingPreference.PreferNoHinting)  # same text width at every zoom
    return f


class CanvasStyle:
    """Everything the canvas paints with, derived from one :class:`gui.theme.Theme`."""

    def __init__(self, theme: Theme) -> None:
        self.theme = theme
        self._elided: dict[tuple[int, str, Qt.TextElideMode, int], str] = {}
        self._advance: dict[tuple[int, str], float] = {}
        c = QColor
        self.canvas = c(theme.canvas)
        self.grid_minor = QPen(c(theme.grid_minor), 0)
        self.grid_major = QPen(c(theme.grid_major), 0)
        self.no_brush = QBrush(Qt.BrushStyle.NoBrush)
        self.node_fill = QBrush(c(theme.node_fill))
        self.node_border = QPen(c(theme.node_border), 1.0)
        self.node_selected = QPen(c(theme.node_selected), 2.0)
        self.text = c(theme.node_text)
        self.text_dim = c(theme.node_text_dim)
        self.accent = c(theme.accent)
        self.port_pen = QPen(c(theme.port), 1.4)
        self.port_fill = QBrush(c(theme.node_fill))
        self.port_hover = QBrush(c(theme.port_hover))
        self.edge = QPen(c(theme.edge), 1.6)
        self.edge.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.edge_selected = QPen(c(theme.node_selected), 2.4)
        self.edge_selected.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.edge_unknown = QPen(c(theme.edge), 1.4, Qt.PenStyle.DashLine)
        self.edge_drag = QPen(c(theme.accent), 1.8, Qt.PenStyle.DashLine)
        self.edge_label = c(theme.edge_label)
        self.edge_label_bg = QBrush(c(theme.edge_label_bg))
        self.edge_label_border = QPen(c(theme.grid_major), 1.0)
        self.group_fill = QBrush(self._alpha(theme.group_fill, 150))
        self.group_border = QPen(c(theme.group_border), 1.0)
        self.group_text = c(theme.group_text)
        self.chevron = QPen(self.group_text, 1.6)
        self.chevron.setCapStyle(Qt.PenCapStyle.RoundCap)
        self.error = c(theme.error)
        self.warning = c(theme.warning)
        self.error_pen = QPen(self.error, 2.0)
        self.warning_pen = QPen(self.warning, 2.0)
        self.shadow = self._alpha("#000000", 60 if theme.dark else 22)
        self.badge_fill = QBrush(self._alpha(theme.group_fill, 255))
        self.rubber = self._alpha(theme.accent, 40)
        # training statistics strip under a probed card (gui.canvas.items.NodeItem.set_sparklines)
        self.spark_bg = QBrush(c(theme.node_fill))
        self.spark_border = QPen(c(theme.node_border), 1.0)
        self.spark_mean = QPen(c(theme.accent), 1.3)
        self.spark_grad = QPen(c(theme.ok), 1.3)
        for pen in (self.spark_mean, self.spark_grad):
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.spark_dead = QBrush(c(theme.warning))
        self.spark_track = QBrush(self._alpha(theme.node_text_dim, 50))
        # fonts (pixel sizes in scene units)
        self.f_title = _font(13, QFont.Weight.DemiBold)
        self.f_id = _font(11)
        self.f_params = _font(11.5)
        self.f_shape = _font(11, mono=True)
        self.f_edge = _font(10, mono=True)
        self.f_group = _font(12, QFont.Weight.DemiBold)
        self.f_badge = _font(10.5)
        self.f_far = _font(24, QFont.Weight.DemiBold)  # zoomed far out: one big word per card
        self.m_title = QFontMetricsF(self.f_title)
        self.m_id = QFontMetricsF(self.f_id)
        self.m_params = QFontMetricsF(self.f_params)
        self.m_shape = QFontMetricsF(self.f_shape)
        self.m_edge = QFontMetricsF(self.f_edge)
        self.m_group = QFontMetricsF(self.f_group)
        self.m_badge = QFontMetricsF(self.f_badge)
        self.m_far = QFontMetricsF(self.f_far)

    def elide(self, metrics: QFontMetricsF, text: str, mode: Qt.TextElideMode, width: float) -> str:
        """``metrics.elidedText`` memoised: cards repeat the same types and shapes hundreds of times."""
        key = (id(metrics), text, mode, round(width))
        out = self._elided.get(key)
        if out is None:
            if len(self._elided) > 20000:
                self._elided.clear()
            out = self._elided[key] = metrics.elidedText(text, mode, width)
        return out

    def advance(self, metrics: QFontMetricsF, text: str) -> float:
        key = (id(metrics), text)
        out = self._advance.get(key)
        if out is None:
            if len(self._advance) > 20000:
                self._advance.clear()
            out = self._advance[key] = metrics.horizontalAdvance(text)
        return out

    @staticmethod
    def _alpha(colour: str, alpha: int) -> QColor:
        q = QColor(colour)
        q.setAlpha(alpha)
        return q

    def category_color(self, layer_type: str) -> QColor:
        spec = get_spec(layer_type)
        return QColor(self.theme.category_color(spec.category if spec is not None else "?"))

    def icon(self, layer_type: str) -> QPixmap | None:
        spec = get_spec(layer_type)
        return _icon_pixmap(spec.category.value if spec is not None else "", self.theme.name)


@lru_cache(maxsize=64)
def _icon_pixmap(category: str, theme_name: str) -> QPixmap | None:
    """The palette's category tile, rendered once at 2× so it stays sharp when zoomed in."""
    try:
        from gui.panels.icons import category_icon
    except ImportError:  # the palette's icons are optional for the canvas
        return None
    from gui.theme import theme_named

    cat: Category | str = next((c for c in Category if c.value == category), category)
    return category_icon(cat, theme_named(theme_name)).pixmap(40, 40)


def draw_grid(painter: QPainter, rect: QRectF, style: CanvasStyle) -> None:
    """The canvas's background in ``rect``: its colour and a grid, every fifth line stronger."""
    painter.fillRect(rect, style.canvas)
    zoom = painter.worldTransform().m11()
    step = 24.0
    while step * zoom < 14:  # never denser than 14 px on screen
        step *= 5
    minor: list[QLineF] = []
    major: list[QLineF] = []
    i = math.floor(rect.left() / step)
    while i * step < rect.right():
        (major if i % 5 == 0 else minor).append(QLineF(i * step, rect.top(), i * step, rect.bottom()))
        i += 1
    i = math.floor(rect.top() / step)
    while i * step < rect.bottom():
        (major if i % 5 == 0 else minor).append(QLineF(rect.left(), i * step, rect.right(), i * step))
        i += 1
    painter.setPen(style.grid_minor)
    painter.drawLines(minor)
    painter.setPen(style.grid_major)
    painter.drawLines(major)


_styles: dict[str, CanvasStyle] = {}


def style_for(theme: Theme | None = None) -> CanvasStyle:
    theme = theme or current_theme()
    st = _styles.get(theme.name)
    if st is None or st.theme is not theme:
        st = _styles[theme.name] = CanvasStyle(theme)
    return st
