"""The parts the training curves are made of (pyqtgraph): :class:`ThemedPlot`, a themed plot with a hover
readout, :class:`StripLegend`, its legend in a strip above the data, and :func:`make_curve`, a curve set up
to stay cheap at 100,000+ points.

What a plot paints is kept as pixmaps where it can be: its axes (with their grid) and its texts (title,
axis labels, legend entries) are cached in device coordinates, so a repaint of the plot draws its curves
and blits the rest. Those caches are Qt's, and Qt drops them whenever the item is updated; the plot's
scene is kept from updating every item when the view is hidden and shown again (:class:`_KeepCaches`),
which made every switch back to the Training dock's curves replay each axis's recorded drawing
(issue 11: ~14 ms of the ~50 ms hold).
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene

from gui.theme import Theme

CACHED = QGraphicsItem.CacheMode.DeviceCoordinateCache


class _KeepCaches(QObject):
    """Keeps a plot's scene from repainting every item when its view is hidden and shown again.

    A ``QGraphicsView`` sends its scene ``WindowDeactivate`` when it is hidden and ``WindowActivate``
    when it is shown; the scene passes them to every item, and each ``QGraphicsWidget`` (axes, labels,
    the legend) answers with ``update()``, which throws away its cached pixmap. These plots draw
    nothing differently when inactive (their colours are the theme's, not the palette's active or
    inactive group), so after the first activation, which the scene needs to be active at all, both
    events stop here.
    """

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        kind = event.type()
        if kind == QEvent.Type.WindowDeactivate:
            return True
        return kind == QEvent.Type.WindowActivate and isinstance(watched, QGraphicsScene) and watched.isActive()


def cache_texts(plot: pg.PlotItem) -> None:
    """Keep ``plot``'s title and axis labels as pixmaps (their text layout was drawn at every repaint)."""
    plot.titleLabel.item.setCacheMode(CACHED)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).label.setCacheMode(CACHED)


class StripLegend(pg.GraphicsWidget):
    """A plot's legend in a strip between the title and the view box: never over the data.

    pyqtgraph anchors its legend inside the view box, where on a small plot it covers the curves
    (at 1280×720 the accuracy plot was mostly legend). Here the plot's (hidden) top-axis row is
    given the legend's height and the legend sits in it, right-aligned; its entries flow left to
    right and wrap at the view box's width, so a legend of three short entries takes one line.
    It follows entries added or removed (``PlotItem`` calls :meth:`addItem` / :meth:`removeItem`
    for named curves) and the plot's size. Clicking an entry's line hides or shows its curve.
    """

    ROW = 1  # PlotItem's layout row of the top axis, which these plots do not show
    GAP = 12  # between entries
    SAMPLE = 20  # pyqtgraph's line samples are 20×20

    def __init__(self, plot: pg.PlotItem, colour: str, label_size: str = "8pt") -> None:
        super().__init__()
        self.plot = plot
        self.colour = colour
        self.label_size = label_size
        self.items: list[tuple[pg.ItemSample, pg.LabelItem]] = []
        self.names: dict[int, str] = {}  # id(label) -> the entry's whole name (a label may show it elided)
        self.setParentItem(plot)
        plot.legend = self  # PlotItem.addItem files named curves here
        plot.vb.sigResized.connect(self.place)
        self.place()

    def addItem(self, item: pg.PlotDataItem, name: str) -> None:  # the PlotItem's legend interface
        sample = pg.ItemSample(item)
        sample.setParentItem(self)
        label = pg.LabelItem(justify="left", color=self.colour, size=self.label_size)
        label.setParentItem(self)
        label.item.document().setDocumentMargin(1)  # Qt's 4 px around each label made rows 28 px tall
        label.item.setCacheMode(CACHED)  # a text layout drawn at every repaint of the plot, else
        label.setText(html.escape(name, quote=False))  # a run's name is the user's text, not markup
        label.setToolTip(name)
        self.names[id(label)] = name
        self.items.append((sample, label))
        self.place()

    def removeItem(self, item: object) -> None:  # the PlotItem's legend interface: a curve or a name
        for entry in self.items:
            sample, label = entry
            if sample.item is item or self.names.get(id(label)) == item:
                self.items.remove(entry)
                self.names.pop(id(label), None)
                for part in entry:
                    scene = part.scene()
                    part.setParentItem(None)
                    if scene is not None:
                        scene.removeItem(part)
                self.place()
                return

    def setLabelTextColor(self, colour: str) -> None:
        self.colour = colour
        for _sample, label in self.items:
            label.setText(label.text, color=colour)

    def place(self, *_args: object) -> None:
        """Flow the entries into rows as wide as the view box, reserve their height, sit right-aligned."""
        layout = self.plot.layout
        vb = self.plot.vb.geometry()
        available = max(vb.width(), 1.0)
        self._elide(available - self.SAMPLE - 2)
        row_h = max((label.minimumHeight() for _s, label in self.items), default=0.0)
        x = y = width = 0.0
        for sample, label in self.items:
            w = self.SAMPLE + 2 + label.minimumWidth()
            if x > 0 and x + w > available:
                x, y = 0.0, y + row_h
            sample.setPos(x, y + (row_h - self.SAMPLE) / 2)
            label.setGeometry(x + self.SAMPLE + 2, y, label.minimumWidth(), row_h)
            x += w + self.GAP
            width = max(width, x - self.GAP)
        height = y + row_h if self.items else 0.0
        self.setVisible(bool(self.items))
        if abs(layout.rowMinimumHeight(self.ROW) - height) > 0.5:
            layout.setRowFixedHeight(self.ROW, height)  # the view box shrinks; sigResized places us again
        self.setGeometry(max(vb.right() - width, 0.0), max(vb.top() - height, 0.0), width, height)

    def _elide(self, width: float) -> None:
        """Shorten names wider than ``width`` with "…" (the whole name is the entry's tooltip)."""
        font = QFont(self.plot.font())
        font.setPointSizeF(float(self.label_size.removesuffix("pt")))
        metrics = QFontMetricsF(font)
        for _sample, label in self.items:
            name = self.names.get(id(label), label.text)
            # A little under the room: the label's text also has its document margin on each side.
            shown = html.escape(metrics.elidedText(name, Qt.TextElideMode.ElideRight, max(width - 8, 24.0)),
                                quote=False)
            if shown != label.text:
                label.setText(shown)


def legend_above(plot: pg.PlotItem, theme: Theme, label_size: str = "8pt") -> StripLegend:
    """Give ``plot`` a :class:`StripLegend` coloured for ``theme``."""
    return StripLegend(plot, theme.text_dim, label_size)


def make_curve(plot: pg.PlotItem, colour: str | QColor, width: float = 1.6, name: str | None = None,
           dashed: bool = False, symbol: str | None = None) -> pg.PlotDataItem:
    qcolour = QColor(colour)  # QColor, not a string: pyqtgraph reads "#aarrggbb" as "#rrggbbaa"
    pen = pg.mkPen(qcolour, width=width, style=Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine)
    item = pg.PlotDataItem(pen=pen, name=name, symbol=symbol, symbolSize=6, symbolBrush=qcolour, symbolPen=None)
    plot.addItem(item)
    # After addItem: PlotItem.addItem overwrites an item's downsampling with the plot's own mode.
    item.setDownsampling(auto=True, method="peak")
    item.setClipToView(True)
    item.setSkipFiniteCheck(True)  # losses are checked by the engine (a NaN ends the run)
    # ~1.5 samples per pixel column: peak downsampling keeps each column's min and max, which is all a
    # line can show; pyqtgraph's default (5) draws 3× more segments for the same picture.
    item.opts["autoDownsampleFactor"] = 1.5
    # Separate segments (drawLines) instead of one QPainterPath: stroking a long zigzag path costs
    # seconds in Qt's raster engine; segments cost milliseconds. Opaque pens only (see blend).
    item.curve.setSegmentedLineMode("on")
    return item


def recolour(item: pg.PlotDataItem, colour: str | QColor) -> None:
    """Give a curve (and its symbols) a new colour, keeping its pen's width and dash style."""
    qcolour = QColor(colour)
    pen = pg.mkPen(item.opts["pen"])
    pen.setColor(qcolour)
    item.setPen(pen)
    if item.opts.get("symbol") is not None:
        item.setSymbolBrush(qcolour)


def blend(colour: str, background: str, alpha: float) -> QColor:
    """An opaque colour that looks like ``colour`` at ``alpha`` over ``background`` (no per-pixel blending)."""
    a, b = QColor(colour), QColor(background)
    return QColor(round(a.red() * alpha + b.red() * (1 - alpha)), round(a.green() * alpha + b.green() * (1 - alpha)),
                  round(a.blue() * alpha + b.blue() * (1 - alpha)))


class ThemedPlot(pg.PlotWidget):
    """A themed plot with a hover readout of the nearest point of its curves."""

    def __init__(self, title: str, y_label: str, theme: Theme, legend: bool = True, menus: bool = True) -> None:
        super().__init__(background=theme.panel, enableMenu=menus)  # menus later: enable_menus()
        self.theme = theme
        self.title, self.y_label = title, y_label
        # Curves change geometry several times a second: a BSP index of the items would be rebuilt each
        # time for nothing (a plot holds a dozen items).
        self.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self._keep_caches = _KeepCaches(self)
        self.scene().installEventFilter(self._keep_caches)
        item = self.getPlotItem()
        item.setDownsampling(auto=True, mode="peak")  # the plot's mode, as its context menu shows it
        item.setClipToView(True)
        item.showGrid(x=True, y=True, alpha=0.15)
        for axis in ("left", "bottom"):
            # Axes are pictures of text: cached as pixmaps they repaint only when their range changes,
            # not with every new point (replaying them was most of the GUI's cost while training).
            # They stay cached while the plot is hidden and shown again (see _KeepCaches).
            item.getAxis(axis).setCacheMode(CACHED)
        cache_texts(item)
        if legend:
            legend_above(item, theme)
        self.readout = pg.TextItem(anchor=(0, 1))
        self.readout.setZValue(100)
        self.readout.hide()
        item.addItem(self.readout, ignoreBounds=True)
        self.apply_theme(theme)
        self.hover_curves: list[tuple[str, pg.PlotDataItem]] = []
        self.scene().sigMouseMoved.connect(self._hover)
        self.setMinimumSize(160, 110)

    def apply_theme(self, theme: Theme) -> None:
        """Colour the background, title, axes, legend and hover readout from ``theme`` (View ▸ theme)."""
        self.theme = theme
        self.setBackground(theme.panel)
        item = self.getPlotItem()
        item.setTitle(f"<span style='color:{theme.text};font-weight:600'>{self.title}</span>", size="10pt")
        item.setLabel("bottom", "epoch", color=theme.text_dim)
        item.setLabel("left", self.y_label, color=theme.text_dim)
        for axis in ("left", "bottom"):
            ax = item.getAxis(axis)
            ax.setPen(pg.mkPen(theme.border))
            ax.setTextPen(pg.mkPen(theme.text_dim))
            ax.update()  # drop the cached pixmap drawn in the old colours
        if isinstance(item.legend, StripLegend):
            item.legend.setLabelTextColor(theme.text_dim)
        self.readout.setColor(theme.text)
        self.readout.fill = pg.mkBrush(QColor(theme.panel_alt))
        self.readout.update()

    def leaveEvent(self, event: object) -> None:  # Qt override
        self.readout.hide()
        super().leaveEvent(event)  # type: ignore[arg-type]

    def readout_at(self, x: float) -> str | None:
        """The readout text for the points nearest to ``x`` (data coordinates), or ``None``."""
        lines = []
        for label, curve in self.hover_curves:
            xs, ys = curve.getOriginalDataset()
            if xs is None or not len(xs):
                continue
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            if i > 0 and abs(xs[i - 1] - x) < abs(xs[i] - x):
                i -= 1
            lines.append((xs[i], ys[i], f"{label}: {ys[i]:.4g}"))
        if not lines:
            return None
        return f"epoch {lines[0][0]:.2f}\n" + "\n".join(text for *_, text in lines)

    def _hover(self, pos: QPointF) -> None:
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            self.readout.hide()
            return
        point = vb.mapSceneToView(pos)
        text = self.readout_at(point.x())
        if text is None:
            self.readout.hide()
            return
        self.readout.setText(text)
        self.readout.setPos(point.x(), point.y())
        self.readout.show()


__all__ = ["StripLegend", "ThemedPlot", "blend", "cache_texts", "legend_above", "make_curve", "recolour"]
