"""Feature maps and filters, live during training.

:class:`FeatureMapView` shows the probe events of the engine (a fixed sample, the activations of
the probed nodes, their statistics): per node a grid of channels (colour map, per-channel or
shared normalisation), small sparklines of mean / std / dead-ReLU share / gradient norm, a click
zooms one channel, and hovering a position draws on the sample the input region that position
sees (its receptive field, from the analysis). Repaints are coalesced to at most
``MAX_FPS`` per second whatever the probe rate.

:class:`FiltersView` shows convolution kernels: the first convolution's as RGB tiles, any other
as a grid (rows = output channels, columns = input channels) in a blue-white-red colour map.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.explain import (
    colormap,
    kernel_grid,
    normalize_channels,
    rf_region,
    rgb_tiles,
    scale_position,
)
from core.layers.spec import fmt_shape
from core.training import ProbeData
from gui.theme import Theme, current_theme
from gui.training.images import ImageView, MosaicView, Sparkline, chw_to_rgb

MAX_FPS = 1.0
MAX_TILES = 32
RF_COLOUR = "#ff3b30"
NO_PROBE_YET = "The probe sample\nshows here once\ntraining starts"
WAITING_FOR_PROBE = "Waiting for the\nfirst probe"


def channel_tiles(act: torch.Tensor | np.ndarray, per_channel: bool = True, cmap: str = "viridis") -> np.ndarray:
    """One sample's activations → coloured tiles ``(C, h, w, 3)``; 1-D features become one square tile."""
    a = act.detach().float().cpu().numpy() if isinstance(act, torch.Tensor) else np.asarray(act, np.float32)
    if a.ndim == 1:
        side = int(np.ceil(np.sqrt(a.size)))
        padded = np.full(side * side, np.nan, dtype=np.float32)
        padded[: a.size] = a
        a = padded.reshape(1, side, side)
    elif a.ndim == 2:
        a = a[None]
    if per_channel:
        norm = normalize_channels(np.nan_to_num(a, nan=float(np.nanmin(a)) if np.isfinite(a).any() else 0.0))
    else:
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        norm = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return colormap(norm, cmap)


class NodeSection(QFrame):
    """One probed node: title, statistics sparklines and its channel grid."""

    def __init__(self, node_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t = current_theme()
        self.node_id = node_id
        self.setObjectName("nodeSection")
        self.title = QLabel(f"<b>{node_id}</b>")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.spark = {"mean": Sparkline("mean"), "std": Sparkline("std"),
                      "dead": Sparkline("dead", "{:.0%}", t.warning), "grad": Sparkline("grad norm", "{:.2g}", t.ok)}
        self.mosaic = MosaicView()
        self.mosaic.setMinimumHeight(140)
        stats = QVBoxLayout()
        stats.setSpacing(2)
        for s in self.spark.values():
            s.setFixedWidth(104)
            stats.addWidget(s)
        stats.addStretch(1)
        body = QHBoxLayout()
        body.setSpacing(8)
        body.addLayout(stats)
        body.addWidget(self.mosaic, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addLayout(body, 1)
        self.set_theme(t)

    def reset(self, node_id: str) -> None:
        """Show ``node_id`` from now on, with nothing recorded yet."""
        self.node_id = node_id
        self.title.setText(f"<b>{node_id}</b>")
        for spark in self.spark.values():
            spark.clear()
        self.mosaic.set_tiles(None)

    def set_theme(self, theme: Theme) -> None:
        self.setStyleSheet(f"#nodeSection {{ border: 1px solid {theme.border}; border-radius: 6px; "
                           f"background: {theme.panel}; }}")
        self.spark["dead"].colour = theme.warning
        self.spark["grad"].colour = theme.ok
        for spark in self.spark.values():
            spark.update()
        self.mosaic.update()


class FeatureMapView(QWidget):
    """Activation grids of the probed nodes for the probe sample; RF rectangle on hover."""

    probes_wanted = Signal(list)  # node ids the view wants the engine to capture

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t = current_theme()
        self.analysis: Any = None
        self.latest: ProbeData | None = None
        self.sample = 0
        self.sections: dict[str, NodeSection] = {}
        self.renders = 0  # how many probes were drawn (tests, benchmark)
        self._last_render = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.render)
        self.zoom: tuple[str, int] | None = None

        self.sample_view = ImageView(min_size=110)
        self.sample_view.setToolTip("The fixed probe sample; hover a feature map to see what it looks at")
        self.sample_view.hide()  # until the first probe; the placeholder says why it is empty
        # The placeholder's lines are short and broken by hand: the column is ~120 px wide at 1280×720,
        # and a label never gets narrower than its longest line, so no word is ever cut off.
        self.waiting = QLabel(NO_PROBE_YET)
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.waiting.setStyleSheet(f"color: {t.text_dim};")
        self.waiting.setMinimumHeight(110)
        self.samples = MosaicView()
        self.samples.setFixedHeight(64)
        self.samples.tile_clicked.connect(self.set_sample)
        self.prediction = QLabel("")
        self.prediction.setWordWrap(True)
        self.prediction.setStyleSheet(f"color: {t.text_dim};")
        self.zoom_view = ImageView(min_size=96)
        self.zoom_view.set_image(None, "click a channel")
        self.zoom_view.hovered.connect(self._zoom_hover)
        self.zoom_label = QLabel("")
        self.zoom_label.setStyleSheet(f"color: {t.text_dim};")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(4, 4, 4, 4)
        lv.addWidget(QLabel("<b>Probe sample</b>"))
        lv.addWidget(self.sample_view, 3)
        lv.addWidget(self.waiting, 3)
        lv.addWidget(self.samples)
        lv.addWidget(self.prediction)
        lv.addWidget(self.zoom_label)
        lv.addWidget(self.zoom_view, 2)

        self.cmap = QComboBox()
        for name in ("viridis", "gray", "jet"):
            self.cmap.addItem(name)
        self.cmap.currentTextChanged.connect(lambda _: self.render())
        self.per_channel = QCheckBox("Per-channel scale")
        self.per_channel.setChecked(True)
        self.per_channel.setToolTip("Stretch each channel to the full colour range (off: one scale per node)")
        self.per_channel.toggled.connect(lambda _: self.render())
        self.hint = QLabel("Select nodes on the canvas to see their feature maps.")
        self.hint.setStyleSheet(f"color: {t.text_dim};")
        self.hint.setWordWrap(True)
        self.hint.setMinimumWidth(40)
        tools = QHBoxLayout()
        tools.addStretch(1)
        tools.addWidget(QLabel("Colours"))
        tools.addWidget(self.cmap)
        tools.addWidget(self.per_channel)
        self.list_widget = QWidget()
        self.list_layout = QVBoxLayout(self.list_widget)
        self.list_layout.setContentsMargins(0, 0, 0, 0)
        self.list_layout.setSpacing(6)
        self.list_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.list_widget)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(4, 4, 4, 4)
        rv.addLayout(tools)
        rv.addWidget(self.hint)
        rv.addWidget(scroll, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 3)
        split.setSizes([200, 600])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    # ------------------------------------------------------------------------------------- inputs

    def set_analysis(self, analysis: Any) -> None:
        self.analysis = analysis

    def set_nodes(self, node_ids: Sequence[str], reason: str = "") -> None:
        """Show sections for ``node_ids`` (in order) and ask for them to be probed."""
        ids = list(dict.fromkeys(node_ids))
        # A section no longer wanted is given to a new node rather than deleted: building one (its
        # style sheet, four sparklines, a mosaic) took ~20 ms of the GUI thread at every selection.
        spare = [self.sections.pop(nid) for nid in list(self.sections) if nid not in ids]
        added = [nid for nid in ids if nid not in self.sections]
        for i, nid in enumerate(ids):
            if nid not in self.sections:
                section = spare.pop() if spare else self._new_section()
                section.reset(nid)
                self.sections[nid] = section
                self.list_layout.removeWidget(section)
                self.list_layout.insertWidget(i, section, 1)
            self._update_title(nid)
        for section in spare:
            self.list_layout.removeWidget(section)
            section.deleteLater()
        self.sections = {nid: self.sections[nid] for nid in ids}
        self.hint.setText(reason or ("Select nodes on the canvas to see their feature maps." if not ids else ""))
        self.hint.setVisible(bool(self.hint.text()))
        self.hint.setToolTip("Select nodes on the canvas to choose which feature maps are shown")
        self.probes_wanted.emit(ids)
        if self.latest is not None and any(nid in self.latest.activations for nid in added):
            self.render()  # the last probe holds a new node's maps; the others show theirs already

    def _new_section(self) -> NodeSection:
        section = NodeSection("")
        section.mosaic.tile_hovered.connect(lambda tile, r, c, s=section: self._hover(s.node_id, tile, r, c))
        section.mosaic.tile_clicked.connect(lambda tile, s=section: self.set_zoom(s.node_id, tile))
        return section

    @property
    def nodes(self) -> list[str]:
        return list(self.sections)

    def show_probe(self, data: ProbeData) -> None:
        """Take a probe event; the repaint happens now or at the next allowed moment."""
        self.latest = data
        for nid, stats in data.stats.items():
            section = self.sections.get(nid)
            if section is not None:
                section.spark["mean"].add(stats.mean)
                section.spark["std"].add(stats.std)
                section.spark["dead"].add(stats.zero_fraction)
                section.spark["grad"].add(stats.grad_norm)
        wait = 1.0 / MAX_FPS - (time.perf_counter() - self._last_render)
        if wait <= 0:
            self.render()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def clear(self) -> None:
        self.latest = None
        for section in self.sections.values():
            for s in section.spark.values():
                s.clear()
            section.mosaic.set_tiles(None)
        self.sample_view.set_image(None)
        self.sample_view.hide()
        self.waiting.setText(WAITING_FOR_PROBE)
        self.waiting.show()
        self.zoom_view.set_image(None, "click a channel")

    def set_sample(self, index: int) -> None:
        self.sample = index
        self.render()

    def set_zoom(self, node_id: str, channel: int) -> None:
        self.zoom = (node_id, channel)
        self.render()

    # ------------------------------------------------------------------------------------ drawing

    def render(self) -> None:
        data = self.latest
        self._last_render = time.perf_counter()
        if data is None:
            return
        self.renders += 1
        n = int(data.images.shape[0])
        self.sample = min(self.sample, max(n - 1, 0))
        self.samples.setVisible(data.images.ndim == 4)
        if n and data.images.ndim != 4:  # token ids (samples, T): the sample as text, no picture
            self.waiting.hide()
            self.sample_view.hide()
            tokens = data.tokens[self.sample] if self.sample < len(data.tokens) else ()
            words = "".join(tokens) if all(len(t) <= 1 for t in tokens) else " ".join(tokens)
            self.prediction.setText(f"sample {self.sample}: <tt>{html.escape(words)}</tt>")
        elif n:
            thumbs = np.stack([chw_to_rgb(img.numpy()) for img in data.images])
            self.samples.set_tiles(thumbs, columns=n)
            self.samples.selected = self.sample
            self.sample_view.set_image(chw_to_rgb(data.images[self.sample].numpy()))
            self.waiting.hide()
            self.sample_view.show()
            probs = data.probabilities[self.sample]
            classes = self._classes()
            best = int(probs.argmax())
            truth = data.labels[self.sample] if self.sample < len(data.labels) else None
            name = classes[best] if best < len(classes) else f"class {best}"
            true_name = classes[truth] if truth is not None and truth < len(classes) else str(truth)
            self.prediction.setText(f"predicts <b>{name}</b> ({float(probs[best]):.0%}) · label {true_name}")
        per_channel, cmap = self.per_channel.isChecked(), self.cmap.currentText()
        for nid, section in self.sections.items():
            act = data.activations.get(nid)
            if act is None:
                section.mosaic.set_tiles(None)
                continue
            for spark in section.spark.values():
                spark.update()
            tiles = channel_tiles(act[self.sample][:MAX_TILES], per_channel, cmap)
            labels = [str(i) for i in range(len(tiles))] if act.ndim == 4 else []
            section.mosaic.set_tiles(tiles, None, labels)
            self._update_title(nid, data.channels.get(nid))
        self._render_zoom()

    def _render_zoom(self) -> None:
        data = self.latest
        if self.zoom is None or data is None:
            return
        nid, channel = self.zoom
        act = data.activations.get(nid)
        if act is None or act.ndim != 4 or channel >= act.shape[1]:
            self.zoom_view.set_image(None)
            return
        tile = channel_tiles(act[self.sample][channel:channel + 1], True, self.cmap.currentText())[0]
        self.zoom_view.set_image(tile)
        h, w = tile.shape[:2]
        self.zoom_label.setText(f"<b>{nid}</b> channel {channel} · {h}×{w}")

    def set_theme(self, theme: Theme) -> None:
        """Restyle the labels, node sections and images for ``theme`` (View ▸ theme)."""
        for label in (self.prediction, self.zoom_label, self.hint, self.waiting):
            label.setStyleSheet(f"color: {theme.text_dim};")
        for nid, section in self.sections.items():
            section.set_theme(theme)
            channels = getattr(self.latest, "channels", None) or {}
            self._update_title(nid, channels.get(nid))
        for view in self.findChildren(QWidget):
            view.update()  # images and sparklines paint with current_theme()

    def _update_title(self, nid: str, channels: int | None = None) -> None:
        section = self.sections.get(nid)
        if section is None:
            return
        result = self.analysis.nodes.get(nid) if self.analysis is not None else None
        t = current_theme()
        parts = [f"<b>{nid}</b>"]
        if result is not None:
            parts.append(f"<span style='color:{t.text_dim}'>{result.type}</span>")
            if result.output_shape is not None:
                parts.append(f"<span style='color:{t.text_dim}'>{fmt_shape(result.output_shape)}</span>")
            if result.rf is not None:
                parts.append(f"<span style='color:{t.text_dim}'>RF {result.rf.short()}</span>")
        if channels is not None and channels > MAX_TILES:
            parts.append(f"<span style='color:{t.text_dim}'>first {MAX_TILES} of {channels} channels</span>")
        section.title.setText(" · ".join(parts))

    def _classes(self) -> list[str]:
        return list(getattr(self, "classes", []))

    def set_classes(self, classes: Sequence[str]) -> None:
        self.classes = list(classes)

    # --------------------------------------------------------------------------- receptive field

    def region_for(self, node_id: str, row: int, col: int, shown: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """The input rectangle (top, left, bottom, right) behind a position of a shown (maybe downsampled) map."""
        if self.analysis is None or self.latest is None:
            return None
        result = self.analysis.nodes.get(node_id)
        if result is None or result.output_shape is None or len(result.output_shape) != 3:
            return None
        actual = (int(result.output_shape[1]), int(result.output_shape[2]))
        pos = scale_position((row, col), shown, actual)
        img = self.latest.images
        region = rf_region(result.rf, pos, (int(img.shape[2]), int(img.shape[3])))
        return region.top, region.left, region.bottom, region.right

    def _hover(self, node_id: str, tile: int, row: int, col: int) -> None:
        if tile < 0 or self.latest is None:
            self.sample_view.set_rects([])
            return
        act = self.latest.activations.get(node_id)
        if act is None or act.ndim != 4:
            return
        rect = self.region_for(node_id, row, col, (int(act.shape[2]), int(act.shape[3])))
        self.sample_view.set_rects([(*rect, RF_COLOUR)] if rect else [])

    def _zoom_hover(self, row: int, col: int) -> None:
        if self.zoom is None or row < 0:
            self.sample_view.set_rects([])
            return
        self._hover(self.zoom[0], self.zoom[1], row, col)


class FiltersView(QWidget):
    """Convolution kernels of the current model (live snapshots during training)."""

    node_wanted = Signal(str)  # the conv whose kernels the user picked (the worker snapshots it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        t = current_theme()
        self.weights: dict[str, torch.Tensor] = {}
        self._stale = False  # weights came while hidden: render() when shown
        self.combo = QComboBox()
        self.combo.setMinimumWidth(160)
        self.combo.currentTextChanged.connect(self._picked)
        self.info = QLabel("Filters appear once a model is trained or loaded.")
        self.info.setStyleSheet(f"color: {t.text_dim};")
        self.mosaic = MosaicView()
        self.mosaic.gap = 3
        top = QHBoxLayout()
        top.addWidget(QLabel("Convolution"))
        top.addWidget(self.combo)
        top.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.mosaic, 1)

    def set_theme(self, theme: Theme) -> None:
        self.info.setStyleSheet(f"color: {theme.text_dim};")
        self.mosaic.update()

    def set_convs(self, node_ids: Sequence[str]) -> None:
        current = self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(list(node_ids))
        if current in node_ids:
            self.combo.setCurrentText(current)
        self.combo.blockSignals(False)
        self._picked(self.combo.currentText())

    def set_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        self.weights.update(weights)
        if self.combo.currentText() in weights:
            if self.isVisible():
                self.render()
            else:  # snapshots come with every probe: a hidden tab draws the latest when shown (showEvent)
                self._stale = True

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        if self._stale:
            self.render()
        super().showEvent(event)

    @property
    def current(self) -> str:
        return self.combo.currentText()

    def _picked(self, node_id: str) -> None:
        if node_id:
            self.node_wanted.emit(node_id)
        self.render()

    def render(self) -> None:
        self._stale = False
        w = self.weights.get(self.combo.currentText())
        if w is None:
            self.mosaic.set_tiles(None)
            return
        shape = "×".join(map(str, w.shape))
        if w.ndim == 4 and w.shape[1] in (1, 3):
            tiles = (rgb_tiles(w[:64]) * 255 + 0.5).astype(np.uint8)
            self.mosaic.set_tiles(tiles, None, [str(i) for i in range(len(tiles))])
            self.info.setText(f"{shape} weights · one tile per output channel, each scaled to its own range")
            return
        grid = kernel_grid(w, max_out=32, max_in=16)
        out_c, in_c = grid.shape[:2]
        tiles = colormap((grid.reshape(out_c * in_c, *grid.shape[2:]) + 1) / 2, "diverging")
        self.mosaic.set_tiles(tiles, in_c)
        shown = f" (first {out_c}×{in_c})" if (out_c, in_c) != tuple(w.shape[:2]) else ""
        self.info.setText(f"{shape} weights{shown} · rows: output channels, columns: input channels · "
                          "blue < 0 < red")


__all__ = ["FeatureMapView", "FiltersView", "NodeSection", "channel_tiles"]
