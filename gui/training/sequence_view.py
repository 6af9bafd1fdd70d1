"""Watching a sequence model learn: attention maps, hidden states and gradient norms per time step.

:class:`SequenceView` is the Training dock's "Attention" tab for sequence tasks. From each probe
event (:class:`core.training.ProbeData`) it shows

- the **attention** of one probe sample in a chosen layer and head (or the mean of the heads) as a
  T×S heat map, queries as rows and keys as columns, the sample's tokens on the axes (thinned when
  they would not fit), a colour bar, and a hover text ``query 'c' (t=4) → key 'a' (t=2): 0.31``;
- the **hidden states** of a probed T×C node (an RNN/LSTM/GRU output, a Transformer layer): time ×
  units, the first :data:`MAX_UNITS` units, in a blue–white–red map around zero;
- the **gradient norm per time step** ‖∂loss/∂h_t‖ of a recurrent layer on a log scale, with one
  plain sentence when the gradient vanishes or explodes along the sequence.

Each part says in words why it is empty (no probe yet, no attention layer, nothing probed). The
pictures are pyqtgraph ``ImageItem``/``PlotDataItem``s built once and fed new arrays per probe;
a probe that arrives while the tab is hidden is drawn when the tab is shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QCursor, QFont, QFontMetrics, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from core.explain import lookup_table
from core.layers.registry import get_spec
from core.layers.spec import Category
from gui.theme import Theme, current_theme

MAX_UNITS = 64  # hidden-state rows shown; a 512-unit LSTM would be a grey smear at dock height
MAX_LABEL_CHARS = 8  # a word token longer than this is elided on the axes (the hover text has it whole)
TICK_POINT_SIZE = 8.0
WAITING = "Waiting for the first probe…"
BEFORE_RUN = ("While the model trains, the attention, hidden states and gradients per time step of a fixed "
              "probe sample show here")
NO_ATTENTION = "No attention layer in this network"
NO_HIDDEN = ("No sequence output is probed yet: select a recurrent layer (RNN, LSTM, GRU) or another "
             "time × channels node on the canvas to see its hidden states")
NO_GRADIENTS = "Gradient norms per time step show for recurrent layers (RNN, LSTM, GRU); this network has none"
WIDE = 2.8  # width / height above which hidden states and gradients stand side by side
VANISH = 1e-3  # first steps' gradient below this share of the last steps' → "vanishing"
EXPLODE = 1e3
_SHOWN = {" ": "␣", "\n": "↵", "\t": "⇥", "": "∅"}


# ------------------------------------------------------------------------------------ pure helpers

def display_token(token: str, limit: int = MAX_LABEL_CHARS) -> str:
    """A token as an axis shows it: blanks made visible (``␣``), long words elided to ``limit`` chars."""
    shown = _SHOWN.get(token, token.replace("\n", "↵").replace("\t", "⇥"))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def fmt_value(value: float) -> str:
    """``0.3125`` → ``0.31``; tiny or huge values keep two significant digits (``4.2e-05``)."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2f}" if 0.01 <= abs(value) < 1000 or value == 0 else f"{value:.2g}"


def label_step(count: int, slot_px: float, axis_px: float) -> int:
    """Write every ``step``-th of ``count`` labels so that each has ``slot_px`` of an ``axis_px`` axis."""
    if count <= 0:
        return 1
    cell = axis_px / count
    return max(1, math.ceil(slot_px / cell)) if cell > 0 else count


def nice_step(step: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50 … at least ``step`` (index labels read 0, 5, 10, not 0, 4, 8)."""
    nice = 1
    while nice < step:
        nice = nice * 5 // 2 if str(nice).startswith("2") else nice * 2
    return nice


def _position(tokens: Sequence[str], index: int, axis: str) -> str:
    if index < len(tokens):
        return f"{axis} {_quoted(tokens[index])} (t={index})"
    return f"{axis} t={index}"


def _quoted(token: str) -> str:
    return "'" + _SHOWN.get(token, token) + "'"


def attention_tooltip(queries: Sequence[str], keys: Sequence[str], t: int, s: int, value: float) -> str:
    """``query 'c' (t=4) → key 'a' (t=2): 0.31`` (positions only when the tokens are not known)."""
    return f"{_position(queries, t, 'query')} → {_position(keys, s, 'key')}: {fmt_value(value)}"


def hidden_tooltip(tokens: Sequence[str], t: int, unit: int, value: float) -> str:
    """``t=4 'c' · unit 17: 0.82``."""
    token = f" {_quoted(tokens[t])}" if t < len(tokens) else ""
    return f"t={t}{token} · unit {unit}: {fmt_value(value)}"


def head_map(attention: np.ndarray, sample: int, head: int | None) -> np.ndarray:
    """One sample's ``(T, S)`` map from ``(samples, heads, T, S)``: one head, or their mean (``None``)."""
    a = attention[min(sample, attention.shape[0] - 1)]
    return np.ascontiguousarray(a.mean(axis=0) if head is None else a[min(head, a.shape[0] - 1)], dtype=np.float32)


def gradient_caption(norms: np.ndarray, layer_type: str = "") -> str:
    """One plain sentence on how ‖∂loss/∂h_t‖ changes from the first time steps to the last ones."""
    n = np.asarray(norms, dtype=np.float64)
    if not n.size:
        return ""
    if not np.isfinite(n).all():
        return ("Some gradients are not finite (inf or NaN): training is diverging — turn on gradient "
                "clipping or lower the learning rate")
    k = max(1, n.size // 10)
    first, last = float(n[:k].mean()), float(n[-k:].mean())
    if first <= 0 and last <= 0:
        return "No gradient reached this layer on the probe batch"
    ratio = first / last if last > 0 else math.inf
    if ratio < VANISH:
        fix = ("try shorter sequences or gradient clipping" if layer_type in ("LSTM", "GRU")
               else "try an LSTM or GRU, or gradient clipping")
        return f"Gradients vanish over the sequence: earlier steps barely learn — {fix}"
    if ratio > EXPLODE:
        return ("Gradients explode towards the start of the sequence: training may become unstable — "
                "turn on gradient clipping or lower the learning rate")
    return f"The first steps get {ratio:.2g}× the gradient of the last ones: the whole sequence learns"


def _colour_map(name: str) -> pg.ColorMap:
    lut = lookup_table(name)
    return pg.ColorMap(np.linspace(0.0, 1.0, len(lut)), lut)


def _tick_font() -> QFont:
    font = QFont()
    font.setPointSizeF(TICK_POINT_SIZE)
    return font


# ---------------------------------------------------------------------------------------- pictures

class _ThemedPlot(pg.PlotWidget):
    """A pyqtgraph plot that does not pan or zoom, with axes in the theme's colours."""

    def __init__(self, x_title: str, y_title: str) -> None:
        super().__init__(background=current_theme().panel)
        self.x_title, self.y_title = x_title, y_title
        item = self.getPlotItem()
        item.setMouseEnabled(False, False)
        item.setMenuEnabled(False)
        item.hideButtons()
        for axis in ("left", "bottom"):
            ax = item.getAxis(axis)
            ax.setStyle(tickFont=_tick_font())
            ax.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setMinimumSize(120, 60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def apply_theme(self, theme: Theme) -> None:
        self.setBackground(theme.panel)
        item = self.getPlotItem()
        for axis, title in (("bottom", self.x_title), ("left", self.y_title)):
            if title:
                item.setLabel(axis, title, color=theme.text_dim, size="8pt")
            ax = item.getAxis(axis)
            ax.setPen(pg.mkPen(theme.border))
            ax.setTextPen(pg.mkPen(theme.text_dim))
            ax.update()


class HeatMap(_ThemedPlot):
    """A matrix as one ``ImageItem`` (rows top to bottom), labelled axes, a colour bar and a hover text."""

    def __init__(self, x_title: str, y_title: str, cmap: str) -> None:
        super().__init__(x_title, y_title)
        item = self.getPlotItem()
        self.values = np.zeros((0, 0), dtype=np.float32)
        # autoDownsample: 64 unit rows in 50 px otherwise alias into stripes of skipped rows.
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        item.addItem(self.image)
        item.getViewBox().invertY(True)
        # Names centred on the first and last cells stick out past the axis' ends: pyqtgraph hides such a
        # label on a horizontal axis (the first token went missing), and the top one was cut off.
        item.getAxis("bottom").setStyle(hideOverlappingLabels=40)
        item.setContentsMargins(2, 8, 2, 2)
        self.bar = pg.ColorBarItem(values=(0.0, 1.0), width=12, colorMap=_colour_map(cmap), interactive=False,
                                   colorMapMenu=False)
        self.bar.setImageItem(self.image, insert_in=item)
        self.row_names: list[str] = []
        self.col_names: list[str] = []
        self.row_ticks: list[tuple[int, str]] = []  # what the axes write now (tests and screenshots read it)
        self.col_ticks: list[tuple[int, str]] = []
        self.describe: Callable[[int, int, float], str] = lambda r, c, v: f"row {r}, column {c}: {fmt_value(v)}"
        self.hover_text = ""
        item.getViewBox().sigResized.connect(self._update_ticks)
        self.scene().sigMouseMoved.connect(self._hover)
        self.apply_theme(current_theme())

    def set_map(self, values: np.ndarray, row_names: Sequence[str], col_names: Sequence[str],
                levels: tuple[float, float]) -> None:
        """Show ``values`` (rows × columns) with the given axis names and colour range."""
        shape_changed = values.shape != self.values.shape
        self.values = values
        self.image.setImage(values, autoLevels=False)
        self.bar.setLevels(levels)
        names = ([display_token(n) for n in row_names], [display_token(n) for n in col_names])
        if shape_changed:
            self.getPlotItem().getViewBox().setRange(xRange=(0, values.shape[1]), yRange=(0, values.shape[0]),
                                                     padding=0)
        if shape_changed or names != (self.row_names, self.col_names):
            self.row_names, self.col_names = names
            self._update_ticks()

    def set_empty(self) -> None:
        self.values = np.zeros((0, 0), dtype=np.float32)
        self.image.clear()

    def _update_ticks(self, *_: Any) -> None:
        rows, cols = self.values.shape if self.values.ndim == 2 else (0, 0)
        fm = QFontMetrics(_tick_font())
        rect = self.getPlotItem().getViewBox().boundingRect()
        row_step = label_step(rows, fm.height() + 1, rect.height())
        widest = max([fm.horizontalAdvance(n) for n in self.col_names] or [fm.horizontalAdvance("00")])
        col_step = label_step(cols, widest + 8, rect.width())
        if self._numbered(self.row_names):
            row_step = nice_step(row_step)
        if self._numbered(self.col_names):
            col_step = nice_step(col_step)
        self.row_ticks = [(i, self._name(self.row_names, i)) for i in range(0, rows, row_step)]
        self.col_ticks = [(i, self._name(self.col_names, i)) for i in range(0, cols, col_step)]
        item = self.getPlotItem()
        item.getAxis("left").setTicks([[(i + 0.5, name) for i, name in self.row_ticks], []])
        item.getAxis("bottom").setTicks([[(i + 0.5, name) for i, name in self.col_ticks], []])
        # The left axis is as wide as its widest name (pyqtgraph's default is sized for numbers).
        left = max([fm.horizontalAdvance(n) for _, n in self.row_ticks] or [0])
        item.getAxis("left").setWidth(left + fm.height() + 16)

    @staticmethod
    def _numbered(names: Sequence[str]) -> bool:
        return all(name == str(i) for i, name in enumerate(names))

    @staticmethod
    def _name(names: Sequence[str], i: int) -> str:
        return names[i] if i < len(names) else str(i)

    def cell_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The ``(row, column)`` under a scene position, or None outside the map."""
        if self.values.ndim != 2 or not self.values.size:
            return None
        p = self.getPlotItem().getViewBox().mapSceneToView(scene_pos)
        row, col = math.floor(p.y()), math.floor(p.x())
        return (row, col) if 0 <= row < self.values.shape[0] and 0 <= col < self.values.shape[1] else None

    def text_at(self, row: int, col: int) -> str:
        return self.describe(row, col, float(self.values[row, col]))

    def _hover(self, scene_pos: QPointF) -> None:
        cell = self.cell_at(scene_pos)
        text = self.text_at(*cell) if cell is not None else ""
        if text == self.hover_text:
            return
        self.hover_text = text
        self.image.setToolTip(text)
        if text and QToolTip.isVisible():
            QToolTip.showText(QCursor.pos(), text, self)  # a shown tooltip follows the mouse cell by cell

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        # The bar's frame is its four axes, white by default (lost on a light panel).
        for side in ("left", "top", "right", "bottom"):
            self.bar.getAxis(side).setPen(pg.mkPen(theme.border))
        self.bar.axis.setTextPen(pg.mkPen(theme.text_dim))
        self.bar.axis.setStyle(tickFont=_tick_font())
        self.bar.update()


class GradientPlot(_ThemedPlot):
    """‖∂loss/∂h_t‖ against the time step t, on a log scale."""

    def __init__(self) -> None:
        super().__init__("", "")
        item = self.getPlotItem()
        item.setLogMode(x=False, y=True)
        item.showGrid(x=False, y=True, alpha=0.2)
        self.curve = pg.PlotDataItem(symbol="o", symbolSize=4)
        item.addItem(self.curve)
        self.norms = np.zeros(0)
        self.hover_text = ""
        self.scene().sigMouseMoved.connect(self._hover)
        self.apply_theme(current_theme())

    def set_norms(self, norms: np.ndarray) -> None:
        self.norms = np.asarray(norms, dtype=np.float64)
        y = np.where(np.isfinite(self.norms) & (self.norms > 0), self.norms, np.nan)  # log axes skip 0 and inf
        self.curve.setData(np.arange(len(y), dtype=np.float64), y, connect="finite")

    def text_at(self, step: int) -> str:
        """``t=4: ‖∂loss/∂h‖ 0.031``."""
        return f"t={step}: ‖∂loss/∂h‖ {fmt_value(float(self.norms[step]))}"

    def _hover(self, scene_pos: QPointF) -> None:
        vb = self.getPlotItem().getViewBox()
        step = round(vb.mapSceneToView(scene_pos).x())
        inside = vb.sceneBoundingRect().contains(scene_pos) and 0 <= step < len(self.norms)
        text = self.text_at(step) if inside else ""
        if text != self.hover_text:
            self.hover_text = text
            vb.setToolTip(text)  # the scene shows an item's tooltip: the nearest step's norm anywhere over the plot
            if text and QToolTip.isVisible():
                QToolTip.showText(QCursor.pos(), text, self)

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        colour = QColor(theme.accent)
        self.curve.setPen(pg.mkPen(colour, width=1.6))
        self.curve.setSymbolBrush(colour)
        self.curve.setSymbolPen(None)


class _Section(QFrame):
    """A titled box: choosers on the title row, then the picture or a sentence saying why there is none."""

    def __init__(self, title: str, body: QWidget) -> None:
        super().__init__()
        self.setObjectName("sequenceSection")
        self.title = QLabel(f"<b>{title}</b>")
        self.tools = QHBoxLayout()
        self.tools.setSpacing(6)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addLayout(self.tools)
        self.message = QLabel(WAITING)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(60)
        self.body = body
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(body)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(head)
        layout.addWidget(self.stack, 1)
        layout.addWidget(self.caption)
        self.set_message(WAITING)

    @property
    def empty(self) -> bool:
        return self.stack.currentWidget() is self.message

    def set_message(self, text: str) -> None:
        """Show ``text`` instead of the picture (and no caption)."""
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message)
        self.caption.setText("")
        self.caption.hide()
        self._show_tools(False)  # empty choosers next to "No attention layer" would look broken

    def show_body(self, caption: str) -> None:
        self.stack.setCurrentWidget(self.body)
        self.caption.setText(caption)
        self.caption.setVisible(bool(caption))
        self._show_tools(True)

    def _show_tools(self, visible: bool) -> None:
        for i in range(self.tools.count()):
            entry = self.tools.itemAt(i)
            widget = entry.widget() if entry is not None else None
            if widget is not None:
                widget.setVisible(visible)

    def apply_theme(self, theme: Theme) -> None:
        self.setStyleSheet(f"#sequenceSection {{ border: 1px solid {theme.border}; border-radius: 6px; "
                           f"background: {theme.panel}; }}")
        self.message.setStyleSheet(f"color: {theme.text_dim};")
        self.caption.setStyleSheet(f"color: {theme.text_dim};")


def _set_items(combo: QComboBox, items: Sequence[str], keep: bool = True) -> bool:
    """Give ``combo`` these items (silently; the current one kept when still there). True if they changed."""
    if [combo.itemText(i) for i in range(combo.count())] == list(items):
        return False
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(list(items))
    if keep and current in items:
        combo.setCurrentText(current)
    combo.blockSignals(False)
    return True


# -------------------------------------------------------------------------------------- the view

class SequenceView(QWidget):
    """Attention maps, hidden states and per-time-step gradient norms of the latest probe."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.latest: Any = None  # the last ProbeData (None: nothing yet)
        self.analysis: Any = None
        self.renders = 0  # probes drawn (tests: a hidden tab draws nothing)
        self._dirty = False

        self.sample_combo = QComboBox()
        self.sample_combo.setToolTip("Which probe sample the attention and hidden-state maps show")
        self.sample_combo.setMinimumContentsLength(32)
        self.sample_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.info = QLabel("")
        self.info.setWordWrap(True)  # the sentence before a run must not make a narrow dock wider
        self.info.setMinimumWidth(40)
        top = QHBoxLayout()
        top.setContentsMargins(4, 4, 4, 0)
        self.sample_label = QLabel("Probe sample")
        top.addWidget(self.sample_label)
        top.addWidget(self.sample_combo)
        top.addWidget(self.info, 1)

        self.attention_map = HeatMap("key (attended to)", "query", "viridis")
        self.attention = _Section("Attention", self.attention_map)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("The attention layer shown")
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One attention head, or the mean of all heads")
        # No "Layer"/"Head" labels: the choices name themselves (encoder.attn, head 2) and the title row
        # must fit a 400 px half of the dock.
        for combo in (self.layer_combo, self.head_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            self.attention.tools.addWidget(combo)

        # No "time step" title under the hidden states and gradients: at dock height (~300 px) it took a
        # fifth of the picture, and their captions say what the columns are.
        self.hidden_map = HeatMap("", "unit", "diverging")
        self.hidden = _Section("Hidden states", self.hidden_map)
        self.hidden_combo = QComboBox()
        self.hidden_combo.setToolTip("The probed node whose output (time × units) is shown")
        self.hidden.tools.addWidget(self.hidden_combo)

        self.gradient_plot = GradientPlot()
        self.gradients = _Section("Gradient per time step", self.gradient_plot)
        self.gradients.title.setToolTip("‖∂loss/∂hₜ‖ on the probe batch: how strongly the loss pulls on the "
                                        "layer's output at each time step (log scale)")
        self.gradient_combo = QComboBox()
        self.gradient_combo.setToolTip("The recurrent layer whose gradient norms are shown")
        self.gradients.tools.addWidget(self.gradient_combo)

        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(self.hidden)
        self.right.addWidget(self.gradients)
        self.split = QSplitter()
        self.split.addWidget(self.attention)
        self.split.addWidget(self.right)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.split, 1)
        self._balanced_for: tuple[bool, bool] | None = None

        for combo in (self.sample_combo, self.layer_combo, self.head_combo, self.hidden_combo, self.gradient_combo):
            combo.currentIndexChanged.connect(lambda _=0: self.redraw())
        self.hidden_combo.currentTextChanged.connect(self._follow_hidden)
        self.set_theme(current_theme())
        self.clear()

    # ------------------------------------------------------------------------------------ inputs

    def set_analysis(self, analysis: Any) -> None:
        """The graph's analysis (optional): names the layer types in titles and advice."""
        self.analysis = analysis

    def show_probe(self, data: Any) -> None:
        """Take a probe event (a ProbeData); drawn now, or when the tab is next shown."""
        self.latest = data
        if self.isVisible():
            self.redraw()
        else:
            self._dirty = True

    def clear(self) -> None:
        """Forget the last probe: every part says it is waiting for the first one."""
        self.latest = None
        self._dirty = False
        for section in (self.attention, self.hidden, self.gradients):
            section.set_message(WAITING)
        self.attention_map.set_empty()
        self.hidden_map.set_empty()
        self.gradient_plot.set_norms(np.zeros(0))
        for combo in (self.sample_combo, self.layer_combo, self.head_combo, self.hidden_combo, self.gradient_combo):
            _set_items(combo, [])
            combo.setEnabled(False)
        self.sample_label.hide()
        self.sample_combo.hide()
        self.info.setText(BEFORE_RUN)

    def set_theme(self, theme: Theme) -> None:
        """Restyle the sections, plots and colour bars for ``theme`` (View ▸ theme)."""
        self.theme = theme
        for section in (self.attention, self.hidden, self.gradients):
            section.apply_theme(theme)
        for plot in (self.attention_map, self.hidden_map, self.gradient_plot):
            plot.apply_theme(theme)
        self.info.setStyleSheet(f"color: {theme.text_dim};")

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        # A wide, short dock (1280×300) stacked hidden states over gradients into two 60 px strips whose
        # axes were cut off; there they stand side by side, in a taller one one above the other.
        wide = event.size().width() >= WIDE * event.size().height()
        orientation = Qt.Orientation.Horizontal if wide else Qt.Orientation.Vertical
        if orientation != self.right.orientation():
            self.right.setOrientation(orientation)
            self.right.setSizes([1000, 1000])  # halves (the splitter scales them to its size)
        super().resizeEvent(event)

    def showEvent(self, event: QShowEvent) -> None:  # Qt override: draw what came while hidden
        super().showEvent(event)
        if self._dirty:
            self.redraw()

    # ----------------------------------------------------------------------------------- drawing

    def redraw(self) -> None:
        data = self.latest
        if data is None:
            return
        self._dirty = False
        self.renders += 1
        attention: Mapping[str, Any] = getattr(data, "attention", None) or {}
        activations: Mapping[str, Any] = getattr(data, "activations", None) or {}
        grads: Mapping[str, Any] = getattr(data, "time_grad_norms", None) or {}
        tokens: Sequence[Sequence[str]] = getattr(data, "tokens", None) or ()
        sequences = self._sequence_outputs(activations, grads)
        self._samples(tokens, attention, sequences)
        self.info.setText(f"epoch {data.epoch} · step {data.step}")
        sample = max(self.sample_combo.currentIndex(), 0)
        sample_tokens = list(tokens[sample]) if sample < len(tokens) else []
        self._render_attention(attention, sample, sample_tokens)
        self._render_hidden(sequences, sample, sample_tokens, getattr(data, "channels", None) or {})
        self._render_gradients(grads)
        self._balance()

    def _samples(self, tokens: Sequence[Sequence[str]], attention: Mapping[str, Any],
                 sequences: Mapping[str, Any]) -> None:
        counts = [int(a.shape[0]) for a in (*attention.values(), *sequences.values())]
        n = max([len(tokens), *counts]) if counts or tokens else 0
        names = []
        for i in range(n):
            text = "".join(tokens[i]) if i < len(tokens) and all(len(t) <= 1 for t in tokens[i]) else (
                " ".join(tokens[i]) if i < len(tokens) else "")
            text = text.replace("\n", " ").strip()
            names.append(f"{i + 1} · {text[:40]}{'…' if len(text) > 40 else ''}" if text else f"sample {i + 1}")
        _set_items(self.sample_combo, names)
        self.sample_combo.setEnabled(n > 1)
        for widget in (self.sample_label, self.sample_combo):
            widget.setVisible(n > 0)  # an empty chooser before the first probe looks broken

    def _render_attention(self, attention: Mapping[str, Any], sample: int, tokens: list[str]) -> None:
        _set_items(self.layer_combo, list(attention))
        self.layer_combo.setEnabled(len(attention) > 1)
        nid = self.layer_combo.currentText()
        if nid not in attention:
            _set_items(self.head_combo, [])
            self.head_combo.setEnabled(False)
            self.attention_map.set_empty()
            self.attention.set_message(NO_ATTENTION)
            return
        a = _numpy(attention[nid])
        heads = int(a.shape[1])
        _set_items(self.head_combo, ["mean of heads", *(f"head {h + 1}" for h in range(heads))] if heads > 1
                   else ["head 1"])
        self.head_combo.setEnabled(heads > 1)
        pick = self.head_combo.currentIndex()
        head = None if heads > 1 and pick <= 0 else max(pick - 1, 0) if heads > 1 else 0
        m = np.nan_to_num(head_map(a, sample, head))  # a fully masked row is NaN: shown as no attention
        t, s = m.shape
        queries = tokens if len(tokens) == t else []
        keys = tokens if len(tokens) == s else []
        top = float(np.nanmax(m)) if m.size and np.isfinite(m).any() else 1.0
        self.attention_map.describe = lambda r, c, v: attention_tooltip(queries, keys, r, c, v)
        self.attention_map.set_map(m, queries, keys, (0.0, top if top > 0 else 1.0))
        which = "mean of heads" if head is None else f"head {head + 1} of {heads}"
        causal = t == s and t > 1 and bool(np.allclose(np.triu(m, 1), 0.0))
        note = " · causal: a token sees only itself and earlier ones" if causal else ""
        self.attention.show_body(f"{self._node_label(nid)} · {which} · {t}×{s} · each row: where one query "
                                 f"looks (sums to 1){note}")

    def _render_hidden(self, sequences: Mapping[str, Any], sample: int, tokens: list[str],
                       channels: Mapping[str, int]) -> None:
        _set_items(self.hidden_combo, list(sequences))
        self.hidden_combo.setEnabled(len(sequences) > 1)
        nid = self.hidden_combo.currentText()
        if nid not in sequences:
            self.hidden_map.set_empty()
            self.hidden.set_message(NO_HIDDEN)
            return
        act = _numpy(sequences[nid])
        h = act[min(sample, act.shape[0] - 1)]  # (T, C)
        units = int(h.shape[1])
        shown = np.ascontiguousarray(np.nan_to_num(h[:, :MAX_UNITS].T), dtype=np.float32)  # rows: units
        finite = shown[np.isfinite(shown)]
        reach = float(np.abs(finite).max()) if finite.size else 1.0
        reach = reach if reach > 0 else 1.0
        steps = tokens if len(tokens) == shown.shape[1] else []
        self.hidden_map.describe = lambda r, c, v: hidden_tooltip(steps, c, r, v)
        self.hidden_map.set_map(shown, [str(u) for u in range(shown.shape[0])], steps, (-reach, reach))
        total = max(int(channels.get(nid, units)), units)  # the probe may have cut the units already
        cap = f"first {shown.shape[0]} of {total} units" if shown.shape[0] < total else f"{total} units"
        self.hidden.show_body(f"{self._node_label(nid)} · {cap} (rows) over {h.shape[0]} time steps (columns) · "
                              "blue < 0 < red")

    def _render_gradients(self, grads: Mapping[str, Any]) -> None:
        _set_items(self.gradient_combo, list(grads))
        self.gradient_combo.setEnabled(len(grads) > 1)
        nid = self.gradient_combo.currentText()
        if nid not in grads:
            self.gradient_plot.set_norms(np.zeros(0))
            self.gradients.set_message(NO_GRADIENTS)
            return
        norms = _numpy(grads[nid]).reshape(-1)
        self.gradient_plot.set_norms(norms)
        self.gradients.show_body(gradient_caption(norms, self._node_type(nid)))

    def _sequence_outputs(self, activations: Mapping[str, Any], grads: Mapping[str, Any]) -> dict[str, Any]:
        """The probed outputs laid out time × channels, recurrent layers first (the default choice).

        A 3-D output of a Conv1d, a 1-D pool or BatchNorm1d is channels × length, not one state per
        time step: it is left out when the analysis names its type."""
        found = {nid: a for nid, a in activations.items()
                 if getattr(a, "ndim", 0) == 3 and not _channels_first(self._node_type(nid))}
        return dict(sorted(found.items(), key=lambda item: item[0] not in grads))

    def _follow_hidden(self, nid: str) -> None:
        """Picking a recurrent layer's hidden states shows its gradients too."""
        if nid and self.gradient_combo.findText(nid) >= 0:
            self.gradient_combo.setCurrentText(nid)

    def _balance(self) -> None:
        """Give the space to the parts that show something (once per change of what is empty)."""
        state = (self.attention.empty, self.hidden.empty and self.gradients.empty)
        if state == self._balanced_for:
            return
        self._balanced_for = state
        total = max(self.split.width(), 600)
        share = {(False, False): 0.55, (True, False): 0.25, (False, True): 0.7, (True, True): 0.5}[state]
        self.split.setSizes([int(total * share), total - int(total * share)])

    def _node_type(self, nid: str) -> str:
        result = self.analysis.nodes.get(nid) if self.analysis is not None else None
        return str(getattr(result, "type", "") or "")

    def _node_label(self, nid: str) -> str:
        kind = self._node_type(nid)
        return f"{nid} ({kind})" if kind else nid


def _channels_first(layer_type: str) -> bool:
    """Whether a layer's 3-D output is channels × length (convolutions, pools, BatchNorm1d, GroupNorm)."""
    spec = get_spec(layer_type) if layer_type else None
    if spec is None:
        return False
    return spec.category in (Category.CONV, Category.POOL) or layer_type.endswith("1d") or layer_type == "GroupNorm"


def _numpy(value: Any) -> np.ndarray:
    """A probe tensor (torch, CPU) or array as float32 numpy."""
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


__all__ = ["BEFORE_RUN", "MAX_UNITS", "NO_ATTENTION", "NO_GRADIENTS", "NO_HIDDEN", "WAITING", "GradientPlot", "HeatMap",
           "SequenceView", "attention_tooltip", "display_token", "gradient_caption", "head_map", "hidden_tooltip",
           "label_step", "nice_step"]
