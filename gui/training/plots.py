"""Live training curves (pyqtgraph): loss, accuracy (perplexity for language models, mean IoU for
segmentation, D(x) and D(G(z)) for GANs: :data:`METRICS`) and learning rate.

Built to stay smooth at 100,000+ points: each series lives in a preallocated numpy buffer that
doubles when full (:class:`Series`), each curve is ONE ``PlotDataItem`` whose data is replaced in
place by views of those buffers, with ``setDownsampling(auto=True, method="peak")`` and
``setClipToView(True)`` so a repaint touches only what is visible, at screen resolution. The
smoothed curve is an exponential moving average (TensorBoard's slider) updated incrementally as
points arrive and recomputed blockwise (a 256×256 matrix product per block) when the slider moves.

The x axis is in epochs for every plot: step ``s`` of an epoch with ``n`` steps sits at
``epoch − 1 + s/n``, so per-step and per-epoch points (and other runs' curves) share one axis.
It spans the current run's epochs and every overlaid run's, so a longer run is never cut off.
Legends sit in a strip above the data (:class:`StripLegend`), never over the curves. The plots
themselves, their legend and curves are made in :mod:`gui.training.plot_parts`.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.training import BatchProgress, EpochMetrics
from gui.theme import Theme, current_theme
from gui.training.plot_parts import StripLegend, ThemedPlot, blend, legend_above, make_curve, recolour
from gui.training.series import Series, ema
from gui.training.staged import Steps, begin

LR_INTERVAL_S = 1.0
OVERLAY_COLOURS = ("#8a5bd6", "#0f9a8f", "#c8416a", "#7b8a3a", "#e0892b", "#5b6b7f")


@dataclass(frozen=True)
class MetricPlot:
    """What the second plot shows: its title and axis, the EpochMetrics fields (and metrics.csv columns)
    of its two curves with their legend names, the scale, where the first curve's points sit (training
    averages mid-epoch, ``-0.5``; validation at the epoch's end, ``0``) and the fixed y range (None: auto)."""

    title: str
    y_label: str
    first: str
    second: str
    names: tuple[str, str]
    scale: float = 1.0
    first_at: float = -0.5
    y_range: tuple[float, float] | None = None


METRICS = {
    "accuracy": MetricPlot("Accuracy", "%", "train_acc", "val_acc", ("train", "validation"), 100.0, y_range=(0, 100)),
    # language models: exp of the per-token loss, from the vocabulary's size down towards 1 (no fixed scale)
    "perplexity": MetricPlot("Perplexity", "perplexity", "train_perplexity", "val_perplexity", ("train", "validation")),
    "miou": MetricPlot("Mean IoU", "IoU", "val_pixel_acc", "val_miou", ("val pixel acc", "val mIoU"), first_at=0.0,
                       y_range=(0, 1)),
    # the discriminator's mean output on real images and on generated ones (training averages)
    "gan": MetricPlot("D(x) and D(G(z))", "D output", "d_real", "d_fake", ("D(x)", "D(G(z))"), y_range=(0, 1)),
}


def short_label(name: str) -> str:
    """``LeNet-5-20261123-133129`` → ``LeNet-5 · 13:31:29`` (the folder name otherwise)."""
    m = re.match(r"^(.*?)-?(\d{8})-(\d{2})(\d{2})(\d{2})(?:-(\d+))?$", name)
    if not m:
        return name
    stem, _day, hh, mm, ss, n = m.groups()
    return f"{stem or 'run'} · {hh}:{mm}:{ss}" + (f" ({n})" if n else "")


class MetricsPlots(QWidget):
    """Loss (per step, smoothed, per epoch, validation), accuracy and learning rate, with tools."""

    smoothing_changed = Signal(float)

    def __init__(self, theme: Theme | None = None, parent: QWidget | None = None, staged: bool = False) -> None:
        super().__init__(parent)
        t = theme or current_theme()
        self.theme = t
        pg.setConfigOptions(antialias=True)
        self.step_loss, self.smooth_loss = Series(), Series()
        self.epoch_loss, self.val_loss = Series(64), Series(64)
        self.train_acc, self.val_acc = Series(64), Series(64)
        self.d_loss, self.g_loss = Series(64), Series(64)  # a GAN's two losses, per epoch
        self.lr = Series()
        self.shows = "accuracy"  # a key of METRICS: what train_acc/val_acc hold
        self.smoothing = 0.9
        self._smooth_last: float | None = None
        self._dirty = False
        # Each plot takes ~40 ms to make: staged, the Training panel makes them one event-loop turn apart.
        self.construction = begin(self._build(t), staged)

    def _build(self, t: Theme) -> Steps:
        self.loss_plot = ThemedPlot("Loss", "loss", t, menus=False)
        yield
        self.acc_plot = ThemedPlot("Accuracy", "%", t, menus=False)
        yield
        self.lr_plot = ThemedPlot("Learning rate", "lr", t, legend=False, menus=False)
        yield
        lp = self.loss_plot.getPlotItem()
        self.c_step = make_curve(lp, blend(t.accent, t.panel, 0.3), 1.0)
        self.c_step.setData(antialias=False)  # the noisy raw curve: a pixel-exact zigzag draws 2× faster
        self.c_smooth = make_curve(lp, t.accent, 2.0, "train (smoothed)")
        self.c_epoch = make_curve(lp, t.text_dim, 1.5, "train (epoch mean)", symbol="o")
        self.c_val = make_curve(lp, t.warning, 2.0, "validation", symbol="o")
        self.c_d_loss = make_curve(lp, t.error, 2.0, "D loss", symbol="o")
        self.c_g_loss = make_curve(lp, t.ok, 2.0, "G loss", symbol="o")
        for curve in (self.c_d_loss, self.c_g_loss):  # on the plot (and in its legend) for GAN runs only
            lp.removeItem(curve)
        self.loss_plot.hover_curves = [("train", self.c_step), ("smoothed", self.c_smooth),
                                       ("val", self.c_val)]
        yield
        ap = self.acc_plot.getPlotItem()
        self.c_train_acc = make_curve(ap, t.accent, 2.0, "train", symbol="o")
        self.c_val_acc = make_curve(ap, t.warning, 2.0, "validation", symbol="o")
        self.acc_plot.hover_curves = [("train", self.c_train_acc), ("val", self.c_val_acc)]
        ap.setYRange(0, 100, padding=0.02)
        self.c_lr = make_curve(self.lr_plot.getPlotItem(), t.ok, 2.0)
        self.lr_plot.hover_curves = [("lr", self.c_lr)]
        self.overlay_items: list[tuple[pg.PlotItem, pg.PlotDataItem]] = []
        self._pairs = [(self.c_step, self.step_loss), (self.c_smooth, self.smooth_loss),
                       (self.c_epoch, self.epoch_loss), (self.c_val, self.val_loss),
                       (self.c_train_acc, self.train_acc), (self.c_val_acc, self.val_acc), (self.c_lr, self.lr),
                       (self.c_d_loss, self.d_loss), (self.c_g_loss, self.g_loss)]
        self._shown: dict[int, int] = {}
        self._lr_range: float | None = None
        self._lr_shown_at = 0.0
        self._loss_fixed = False
        self._epochs: float | None = None  # the current run's planned epochs (None: no run yet)
        yield
        tools = QHBoxLayout()
        tools.setContentsMargins(6, 2, 6, 0)
        tools.addWidget(QLabel("Smoothing"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 99)
        self.slider.setValue(round(self.smoothing * 100))
        self.slider.setFixedWidth(140)
        self.slider.setToolTip("Exponential moving average of the per-step loss (0 = raw)")
        self.slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.smooth_label = QLabel(f"{self.smoothing:.2f}")
        self.smooth_label.setMinimumWidth(32)
        tools.addWidget(self.slider)
        tools.addWidget(self.smooth_label)
        tools.addSpacing(12)
        self.log_box = QCheckBox("Log scale")
        self.log_box.setToolTip("Logarithmic loss and learning-rate axes")
        self.log_box.toggled.connect(self.set_log)
        tools.addWidget(self.log_box)
        tools.addStretch(1)
        self.status = QLabel("")
        self.status.setStyleSheet(f"color: {t.text_dim};")
        tools.addWidget(self.status)
        tools.addSpacing(12)
        export = QToolButton()
        export.setText("Export")
        export.setToolTip("Save the plots as a PNG image or every point as CSV")
        export.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(export)
        menu.addAction("Plots as PNG…", self._export_png_dialog)
        menu.addAction("Points as CSV…", self._export_csv_dialog)
        export.setMenu(menu)
        tools.addWidget(export)

        grid = QHBoxLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        right = QVBoxLayout()
        right.setSpacing(4)
        right.addWidget(self.acc_plot)
        right.addWidget(self.lr_plot)
        grid.addWidget(self.loss_plot, 3)
        grid.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(tools)
        layout.addLayout(grid, 1)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):  # a third of a plot's making: apart
            yield
            plot.getPlotItem().setMenuEnabled(True)  # the right-click menus, as pyqtgraph makes them

    def set_theme(self, theme: Theme) -> None:
        """Restyle the plots and their curves for ``theme`` (the window's View ▸ theme switch)."""
        self.theme = t = theme
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.apply_theme(t)
        for curve, colour in ((self.c_step, blend(t.accent, t.panel, 0.3)), (self.c_smooth, t.accent),
                              (self.c_epoch, t.text_dim), (self.c_val, t.warning), (self.c_train_acc, t.accent),
                              (self.c_val_acc, t.warning), (self.c_lr, t.ok), (self.c_d_loss, t.error),
                              (self.c_g_loss, t.ok)):
            recolour(curve, colour)
        self.status.setStyleSheet(f"color: {t.text_dim};")

    # ------------------------------------------------------------------------------------ data in

    def set_epochs(self, epochs: float) -> None:
        """Fix the x axis to the whole run (0..epochs, or further for a longer overlaid run): curves grow
        into it and the axes stay still."""
        self._epochs = float(epochs)
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            plot.getPlotItem().enableAutoRange(axis="y")
        self._fit_x_range()
        self._loss_fixed = False
        self._fit_metric_range()
        self._lr_range = None

    def x_extent(self) -> float | None:
        """The last epoch the x axis must show: the run's planned epochs, its points, every overlaid run's."""
        ends = [self._epochs] if self._epochs is not None else []
        ends += [float(s.x.max()) for s in (self.epoch_loss, self.val_loss, self.step_loss) if s.n]
        for _plot, curve in self.overlay_items:
            xs = curve.getOriginalDataset()[0]
            if xs is not None and len(xs):
                ends.append(float(np.max(xs)))
        return max(ends) if ends else None

    def _fit_x_range(self) -> None:
        end = self.x_extent()
        for plot in (self.loss_plot, self.acc_plot, self.lr_plot):
            item = plot.getPlotItem()
            if end is None:
                item.enableAutoRange(axis="x")
            else:
                item.setXRange(0, max(end, 1.0), padding=0.02)

    def clear(self) -> None:
        for s in (self.step_loss, self.smooth_loss, self.epoch_loss, self.val_loss, self.train_acc, self.val_acc,
                  self.lr, self.d_loss, self.g_loss):
            s.clear()
        self._smooth_last = None
        for plot in (self.loss_plot, self.lr_plot):
            plot.getPlotItem().enableAutoRange(axis="y")
        self._loss_fixed = False
        self.refresh(force=True)
        self._fit_x_range()

    def add_batch(self, event: BatchProgress) -> None:
        """Append every step loss the event carries (x in epochs) and the learning rate."""
        losses = np.asarray(event.losses, dtype=np.float64)
        if not len(losses):
            return
        steps = max(event.steps, 1)
        first_in_epoch = event.first_step - (event.epoch - 1) * steps
        xs = (event.epoch - 1) + (first_in_epoch + np.arange(len(losses))) / steps
        self.step_loss.extend(xs, losses)
        smoothed = ema(losses, self.smoothing, self._smooth_last)
        self.smooth_loss.extend(xs, smoothed)
        self._smooth_last = float(smoothed[-1])
        self.lr.append(float(xs[-1]), event.lr)
        self._dirty = True

    def set_metric(self, metric: str) -> None:
        """What the second plot shows, a key of :data:`METRICS`: ``"accuracy"`` (percent, 0–100),
        ``"perplexity"`` (language models), ``"miou"`` (segmentation: val mean IoU and pixel accuracy,
        0–1) or ``"gan"`` (D(x) and D(G(z)), 0–1; the loss plot then adds D's and G's losses). Its
        points go with it: a run of another kind is not drawn on these axes."""
        if metric == self.shows:
            return
        self.shows = metric
        spec = METRICS[metric]
        plot = self.acc_plot
        plot.title, plot.y_label = spec.title, spec.y_label
        plot.apply_theme(self.theme)
        legend = plot.getPlotItem().legend
        for curve, name in zip((self.c_train_acc, self.c_val_acc), spec.names, strict=True):
            if isinstance(legend, StripLegend) and legend.names.get(id(_entry(legend, curve))) != name:
                legend.removeItem(curve)
                legend.addItem(curve, name)
        plot.hover_curves = [(name, curve) for name, curve in zip(spec.names, (self.c_train_acc, self.c_val_acc),
                                                                  strict=True)]
        lp = self.loss_plot.getPlotItem()
        gan = metric == "gan"
        for curve in (self.c_d_loss, self.c_g_loss):
            if gan and curve not in lp.items:
                lp.addItem(curve)
            elif not gan and curve in lp.items:
                lp.removeItem(curve)
        self.loss_plot.hover_curves = [("train", self.c_step), ("smoothed", self.c_smooth), ("val", self.c_val),
                                       *((("D", self.c_d_loss), ("G", self.c_g_loss)) if gan else ())]
        for series in (self.train_acc, self.val_acc, self.d_loss, self.g_loss):
            series.clear()
        self._fit_metric_range()
        self.refresh(force=True)

    def _fit_metric_range(self) -> None:
        item = self.acc_plot.getPlotItem()
        bounds = METRICS[self.shows].y_range
        if bounds is None:
            item.enableAutoRange(axis="y")  # no fixed scale (perplexity starts near the vocabulary's size)
        else:
            item.setYRange(*bounds, padding=0.02)

    def add_epoch(self, m: EpochMetrics) -> None:
        # Training figures are averages over the epoch's steps: drawn mid-epoch, where the per-step
        # curve they summarise is; validation is measured at the epoch's end.
        self.epoch_loss.append(m.epoch - 0.5, m.train_loss)
        if m.val_loss is not None:
            self.val_loss.append(m.epoch, m.val_loss)
        spec = METRICS[self.shows]
        first, second = getattr(m, spec.first, None), getattr(m, spec.second, None)
        if first is not None:
            self.train_acc.append(m.epoch + spec.first_at, spec.scale * first)
        if second is not None:
            self.val_acc.append(m.epoch, spec.scale * second)
        for series, value in ((self.d_loss, getattr(m, "d_loss", None)), (self.g_loss, getattr(m, "g_loss", None))):
            if value is not None:
                series.append(m.epoch - 0.5, value)
        self._dirty = True

    def load_history(self, rows: Sequence[Mapping[str, float | None]]) -> None:
        """Show a finished run from its metrics.csv rows (per epoch only)."""
        self.clear()
        for r in rows:
            e = float(r.get("epoch") or 0)
            if r.get("train_loss") is not None:
                self.epoch_loss.append(e - 0.5, float(r["train_loss"]))  # type: ignore[arg-type]
            train, val, scale = self._metric_keys()
            if r.get(train) is not None:
                self.train_acc.append(e + METRICS[self.shows].first_at, scale * float(r[train]))  # type: ignore[arg-type]
            if r.get("val_loss") is not None:
                self.val_loss.append(e, float(r["val_loss"]))  # type: ignore[arg-type]
            if r.get(val) is not None:
                self.val_acc.append(e, scale * float(r[val]))  # type: ignore[arg-type]
            if r.get("lr") is not None:
                self.lr.append(e, float(r["lr"]))  # type: ignore[arg-type]
            for series, key in ((self.d_loss, "d_loss"), (self.g_loss, "g_loss")):
                if r.get(key) is not None:
                    series.append(e - 0.5, float(r[key]))  # type: ignore[arg-type]
        self.refresh(force=True)
        self._fit_x_range()

    def _metric_keys(self) -> tuple[str, str, float]:
        """The metrics.csv columns of the second plot (train, validation) and their scale."""
        spec = METRICS[self.shows]
        return spec.first, spec.second, spec.scale

    def set_overlays(self, runs: Mapping[str, Sequence[Mapping[str, float | None]]]) -> None:
        """Dashed validation (or train) curves of other runs (label → metrics rows), one colour per run.

        Each run is named once, in the loss plot's legend; its accuracy curve has the same colour
        and dashes, so the small accuracy plot's legend stays two entries long.
        """
        for plot, item in self.overlay_items:
            plot.removeItem(item)  # also takes it out of the legend
        self.overlay_items = []
        for i, (name, rows) in enumerate(runs.items()):
            colour = OVERLAY_COLOURS[i % len(OVERLAY_COLOURS)]
            epochs = [float(r["epoch"] or 0) for r in rows]
            _train, val, metric_scale = self._metric_keys()
            for plot, key, scale in ((self.loss_plot, "val_loss", 1.0), (self.acc_plot, val, metric_scale)):
                fallback = key.replace("val_", "train_")
                ys = [r.get(key) if r.get(key) is not None else r.get(fallback) for r in rows]
                pts = [(x, float(y) * scale) for x, y in zip(epochs, ys, strict=True) if y is not None]
                if not pts:
                    continue
                label = name if plot is self.loss_plot else None
                item = make_curve(plot.getPlotItem(), colour, 1.6, label, dashed=True, symbol="t")
                item.setData(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
                self.overlay_items.append((plot.getPlotItem(), item))
        self._loss_fixed = False
        self._fit_loss_range()
        self._fit_x_range()

    # ------------------------------------------------------------------------------------ display

    def refresh(self, force: bool = False) -> None:
        """Push the buffers that grew to their curves (the dock calls this at most 10 times a second).

        A curve whose series did not change is left alone, so it is not repainted: the accuracy
        plot, for one, only changes once per epoch.
        """
        self._dirty = False
        changed = False
        now = time.monotonic()
        for curve, series in self._pairs:
            if not force and self._shown.get(id(curve)) == series.n:
                continue
            if curve is self.c_lr and not force and now - self._lr_shown_at < LR_INTERVAL_S:
                continue  # the learning rate moves slowly: its plot repaints once a second
            self._shown[id(curve)] = series.n
            curve.setData(series.x, series.y)
            if curve is self.c_lr:
                self._lr_shown_at = now
            changed = True
        if changed:
            self._fit_loss_range()
        if self.lr.n and not self.log_box.isChecked():
            lo, hi = float(self.lr.y.min()), float(self.lr.y.max())
            if hi - lo <= 1e-12 * max(abs(hi), 1e-30):  # a constant rate: show it from 0, not ±∞ around it
                if self._lr_range != hi:
                    self._lr_range = hi
                    self.lr_plot.getPlotItem().setYRange(0, hi * 1.25 if hi > 0 else 1, padding=0)
            elif self._lr_range is not None:
                self._lr_range = None
                self.lr_plot.getPlotItem().enableAutoRange(axis="y")
        n = self.step_loss.n
        self.status.setText(f"{n:,} steps" if n else "")

    def _fit_loss_range(self) -> None:
        """Keep the loss axis still unless the curves leave it or shrink well inside it.

        pyqtgraph's auto-range refits on every new point, and every refit re-renders the axis; a
        range with some slack changes a few times per run instead.
        """
        item = self.loss_plot.getPlotItem()
        if self.log_box.isChecked():
            item.enableAutoRange(axis="y")
            return
        parts = [s.y for s in (self.step_loss, self.epoch_loss, self.val_loss, self.d_loss, self.g_loss) if s.n]
        parts += [curve.getOriginalDataset()[1] for plot, curve in self.overlay_items
                  if plot is item and curve.getOriginalDataset()[1] is not None]
        if not parts:
            return
        lo = min(float(np.min(p)) for p in parts)
        hi = max(float(np.max(p)) for p in parts)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return
        (y0, y1) = item.getViewBox().viewRange()[1]
        span = max(hi - lo, 1e-9)
        inside = lo >= y0 and hi <= y1
        snug = (hi - lo) >= 0.6 * (y1 - y0)
        if self._loss_fixed and inside and snug:
            return
        # A loss leaving the range keeps going the same way (falling, most of a run): refitted with room
        # on that side (35% of the span, still snug), the axis and the plot's grid are re-rendered a few
        # times per run instead of at almost every refresh while the loss falls fast.
        below = 0.35 if self._loss_fixed and lo < y0 else 0.05
        above = 0.35 if self._loss_fixed and hi > y1 else 0.05
        bottom = lo - below * span
        if lo >= 0:
            bottom = max(bottom, -0.05 * span)  # a loss never goes under 0: no room for it there
        self._loss_fixed = True
        item.setYRange(bottom, hi + above * span, padding=0)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        # The dock refreshes the plots only while they are shown (a hidden plot's new data would be
        # downsampled and its axes re-fitted for nobody): shown again, they catch up at once.
        if self._dirty:
            self.refresh()
        super().showEvent(event)

    def set_smoothing(self, weight: float) -> None:
        self.smoothing = float(np.clip(weight, 0.0, 0.99))
        self.smooth_label.setText(f"{self.smoothing:.2f}")
        if self.step_loss.n:
            smoothed = ema(self.step_loss.y, self.smoothing)
            self.smooth_loss.clear()
            self.smooth_loss.extend(self.step_loss.x, smoothed)
            self._smooth_last = float(smoothed[-1])
            self.c_smooth.setData(self.smooth_loss.x, self.smooth_loss.y)
            self._shown[id(self.c_smooth)] = self.smooth_loss.n
        self.smoothing_changed.emit(self.smoothing)

    def set_log(self, on: bool) -> None:
        self.loss_plot.getPlotItem().setLogMode(y=on)
        self.lr_plot.getPlotItem().setLogMode(y=on)
        self._loss_fixed = False
        self._fit_loss_range()
        if self.log_box.isChecked() != on:
            self.log_box.setChecked(on)

    # ------------------------------------------------------------------------------------- export

    def export_png(self, path: str | Path) -> bool:
        return bool(self.grab().save(str(path), "PNG"))

    def export_csv(self, path: str | Path) -> None:
        """Every point: ``series, epoch, value`` rows (per-step loss, lr, per-epoch metrics)."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["series", "epoch", "value"])
            for name, s in (("train_loss_step", self.step_loss), ("train_loss_smoothed", self.smooth_loss),
                            ("lr", self.lr), ("train_loss", self.epoch_loss), ("val_loss", self.val_loss),
                            ("d_loss", self.d_loss), ("g_loss", self.g_loss), *self._metric_series()):
                for x, y in zip(s.x.tolist(), s.y.tolist(), strict=True):
                    w.writerow([name, f"{x:.6g}", f"{y:.6g}"])

    def _metric_series(self) -> tuple[tuple[str, Series], tuple[str, Series]]:
        if self.shows == "accuracy":
            return ("train_acc_percent", self.train_acc), ("val_acc_percent", self.val_acc)
        spec = METRICS[self.shows]
        return (spec.first, self.train_acc), (spec.second, self.val_acc)

    def _export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "training-curves.png", "PNG image (*.png)")
        if path:
            self.export_png(path)

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export points", "training-curves.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)


def _entry(legend: StripLegend, curve: pg.PlotDataItem) -> object:
    """The legend's label of ``curve`` (None when it has no entry)."""
    return next((label for sample, label in legend.items if sample.item is curve), None)


# StripLegend and legend_above are imported from here by the Runs tab (and were defined here).
__all__ = ["METRICS", "MetricPlot", "MetricsPlots", "Series", "StripLegend", "ema", "legend_above"]
