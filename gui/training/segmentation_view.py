"""Watching a segmentation network learn: true and predicted masks, per-class IoU, the head's receptive field.

:class:`SegmentationView` is the Training dock's "Segmentation" tab. From each probe event
(:class:`core.training.ProbeData`, whose ``masks_true`` / ``masks_pred`` hold class ids per pixel)
it shows one probe sample three times side by side: the image, the true mask blended over it and
the predicted mask blended over it, each class in the data source's ``palette`` colour (pixels of
the ignore index stay uncoloured), with a legend of the colours and class names. After each epoch
a table lists every class's validation IoU (``EpochMetrics.val_iou``) under the mean IoU and the
pixel accuracy.

Clicking a pixel of any of the three pictures draws the receptive field of the network's head
(the node that feeds the first Output) at that pixel: the input box that output pixel sees, from
the analysis's receptive field of that node (:func:`core.explain.rf_region`; nothing is computed
again here). When that field is smaller than the data's typical object
(``DataSource.typical_object_px``), one sentence says so and what would help.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap, QShowEvent, QTextDocumentFragment
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.explain import rf_region, scale_position
from core.receptive_field import fmt_num
from gui.theme import Theme, current_theme
from gui.training.images import ImageView, chw_to_rgb

ALPHA = 0.55  # a class colour's share of an overlay pixel: the shape under it stays readable
BEFORE_RUN = ("While the model trains, each probe sample's true and predicted masks show here over the image, "
              "with every class's IoU after each epoch")
WAITING = "Waiting for the first probe…"
CLICK_HINT = "Click a pixel of the image to see what the head sees there (its receptive field)."
IGNORED = 255  # the usual ignore index: a pixel no class is asked for (hover text)
SWATCH = 12  # px: the legend's and the table's colour squares


# ------------------------------------------------------------------------------------ pure helpers

def fallback_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """``n`` distinct colours for data without a palette: background black, the others around the hue circle."""
    colours = [(0, 0, 0)]
    for i in range(1, n):
        r, g, b = colorsys.hsv_to_rgb(((i - 1) * 0.618034) % 1.0, 0.75, 0.95)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colours[:n])


def overlay(image: np.ndarray, mask: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = ALPHA,
            ignore_index: int = IGNORED) -> np.ndarray:
    """``mask``'s class colours blended over ``image`` (uint8 (H, W, 3)); the ignore index's pixels (and
    any class id without a colour) are left as they are."""
    img = np.asarray(image, dtype=np.float32)
    m = np.asarray(mask).astype(np.int64)
    colours = np.asarray(palette, dtype=np.float32).reshape(-1, 3)
    known = (m >= 0) & (m < len(colours)) & (m != ignore_index)
    out = img.copy()
    out[known] = (1 - alpha) * img[known] + alpha * colours[m[known]]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fmt_iou(value: float | None) -> str:
    """``0.7123`` → ``0.71``; ``None`` (the class is in neither truth nor prediction) → ``—``."""
    return "—" if value is None else f"{value:.2f}"


def head_field(analysis: Any, graph: Any) -> tuple[str, Any, tuple[int, int]] | None:
    """The head (the node feeding the first Output, in file order): its id, its receptive field and its
    output's H×W, read from the analysis; ``None`` when there is no such 2-D map."""
    if analysis is None or graph is None:
        return None
    out = next((nid for nid, node in graph.nodes.items() if node.type == "Output"), None)
    preds = graph.predecessors(out) if out is not None else []
    result = analysis.nodes.get(preds[0]) if preds else None
    shape = result.output_shape if result is not None else None
    if result is None or result.rf is None or shape is None or len(shape) != 3:
        return None
    return preds[0], result.rf, (int(shape[1]), int(shape[2]))


def field_text(rf: Any) -> str:
    """``19×19 px``, or ``the whole image`` for a global field."""
    if rf.size is None:
        return "the whole image"
    return "×".join(fmt_num(s) for s in rf.size[-2:]) + " px"


def rf_diagnostic(rf: Any, typical_object_px: float | None, head: str = "the head") -> str:
    """One sentence when the head's field is smaller than a typical object (else ``""``)."""
    if rf is None or rf.size is None or not typical_object_px:
        return ""
    if min(float(s) for s in rf.size[-2:]) >= typical_object_px:
        return ""
    return (f"{head} sees {field_text(rf)} but objects are ~{typical_object_px:.0f} px across: it cannot see a "
            "whole object; add downsampling (a stride or pooling) or dilation so that it sees more")


def _swatch(colour: Sequence[int]) -> QPixmap:
    pixmap = QPixmap(SWATCH, SWATCH)
    pixmap.fill(QColor(*colour[:3]))
    return pixmap


# -------------------------------------------------------------------------------------- the view

class SegmentationView(QWidget):
    """One probe sample's image, true and predicted masks; the legend; per-class IoU; the head's field."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.latest: Any = None  # the last ProbeData
        self.classes: list[str] = []
        self.class_colours: tuple[tuple[int, int, int], ...] = ()
        self.typical_object_px: float | None = None
        self.ignore_index = IGNORED
        self.head: tuple[str, Any, tuple[int, int]] | None = None
        self.clicked_at: tuple[int, int] | None = None  # (row, column) of the last click, image pixels
        self.last_epoch: Any = None
        self.renders = 0  # probes drawn (tests: a hidden tab draws nothing)
        self._dirty = False

        self.sample_combo = QComboBox()
        self.sample_combo.setToolTip("Which probe sample is shown")
        self.sample_combo.currentIndexChanged.connect(lambda _=0: self.redraw())
        self.info = QLabel("")
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setMinimumWidth(40)
        self.legend.setToolTip("Each class's colour in the true and predicted masks")
        top = QHBoxLayout()
        top.setContentsMargins(4, 4, 4, 0)
        top.setSpacing(10)
        top.addWidget(self.sample_combo)
        top.addWidget(self.legend, 1)

        self.image_view = ImageView(min_size=90)
        self.truth_view = ImageView(min_size=90)
        self.pred_view = ImageView(min_size=90)
        pictures = QHBoxLayout()
        pictures.setSpacing(6)
        for view in self.views:
            view.clicked.connect(self.show_field_at)
            view.hovered.connect(self._hover)
            pictures.addWidget(view, 1)
        left = QVBoxLayout()
        left.setSpacing(4)
        left.addLayout(top)
        left.addLayout(pictures, 1)

        # The side column: the epoch's figures per class, then what the probe and the head show. The
        # sentences sit under the table, not under the pictures, where a short dock cut them off.
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Class", "IoU"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setToolTip("Intersection over union on the validation split after the last epoch: the "
                              "pixels of a class both true and predicted over those either true or predicted "
                              "(— : the class is in neither)")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.table.setMinimumHeight(60)
        self.field = QLabel(CLICK_HINT)
        self.diagnostic = QLabel("")
        for label in (self.info, self.field, self.diagnostic):
            label.setWordWrap(True)
            label.setMinimumWidth(40)
        self.diagnostic.hide()
        side = QFrame()
        side.setMinimumWidth(200)
        side.setMaximumWidth(320)
        side.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        sv = QVBoxLayout(side)
        sv.setContentsMargins(4, 4, 4, 4)
        sv.setSpacing(4)
        sv.addWidget(self.summary)
        sv.addWidget(self.table, 1)
        sv.addWidget(self.info)
        sv.addWidget(self.field)
        sv.addWidget(self.diagnostic)
        sv.addStretch(0)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(left, 3)
        layout.addWidget(side, 1)
        self.set_theme(current_theme())
        self.clear()

    @property
    def views(self) -> tuple[ImageView, ImageView, ImageView]:
        return self.image_view, self.truth_view, self.pred_view

    # ------------------------------------------------------------------------------------ inputs

    def set_data(self, data: Any) -> None:
        """The data source the run trains on (or the form's): class names, palette, typical object size."""
        if data is None:
            return
        classes = [str(c) for c in getattr(data, "classes", ())]
        palette = tuple((int(c[0]), int(c[1]), int(c[2])) for c in getattr(data, "palette", None) or ())
        self.classes = classes
        self.class_colours = palette if len(palette) >= len(classes) else fallback_palette(len(classes))
        typical = getattr(data, "typical_object_px", None)
        self.typical_object_px = float(typical) if typical else None
        self.ignore_index = int(getattr(data, "ignore_index", IGNORED))
        self._show_legend()
        self._show_diagnostic()
        if self.last_epoch is not None:
            self.add_epoch(self.last_epoch)
        self.redraw()

    def set_analysis(self, analysis: Any, graph: Any) -> None:
        """The graph the run trains: the head whose receptive field a click shows."""
        self.head = head_field(analysis, graph)
        self._show_diagnostic()
        self._show_field()

    def show_probe(self, data: Any) -> None:
        """Take a probe event; drawn now, or when the tab is next shown."""
        if getattr(data, "masks_true", None) is None and getattr(data, "masks_pred", None) is None:
            return  # a probe without masks (not a segmentation run) changes nothing here
        self.latest = data
        if self.isVisible():
            self.redraw()
        else:
            self._dirty = True

    def add_epoch(self, m: Any) -> None:
        """The epoch's validation IoU per class, the mean IoU and the pixel accuracy."""
        self.last_epoch = m
        ious: Sequence[float | None] = tuple(getattr(m, "val_iou", ()) or ())
        names = self._names(len(ious))
        self.table.setRowCount(len(ious))
        for row, (name, value) in enumerate(zip(names, ious, strict=True)):
            item = QTableWidgetItem(name)
            item.setIcon(_swatch(self._colour(row)))
            item.setToolTip(name)
            number = QTableWidgetItem(fmt_iou(value))
            number.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if value is None:
                number.setToolTip(f"{name} is in neither the true nor the predicted masks of the validation split")
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, number)
        self._fit_table()
        miou, acc = getattr(m, "val_miou", None), getattr(m, "val_pixel_acc", None)
        parts = [f"epoch {m.epoch}"]
        if miou is not None:
            parts.append(f"mean IoU <b>{miou:.2f}</b>")
        if acc is not None:
            parts.append(f"pixel accuracy {acc:.1%}")
        self.summary.setText(" · ".join(parts))

    def _fit_table(self) -> None:
        """As tall as its rows (the sentences follow right under it); scrolled when the dock is shorter."""
        rows = self.table.rowCount()
        need = self.table.horizontalHeader().height() + rows * self.table.verticalHeader().defaultSectionSize()
        self.table.setMaximumHeight(need + 2 * self.table.frameWidth() + 2)

    def clear(self) -> None:
        """Forget the run's probes and epochs: the view says what will show here."""
        self.latest = None
        self.last_epoch = None
        self._dirty = False
        self.clicked_at = None
        for view, caption in zip(self.views, ("Image", "Truth", "Prediction"), strict=True):
            view.set_image(None, WAITING if view is self.image_view else caption)
            view.set_rects([])
        self.sample_combo.clear()
        self.sample_combo.hide()
        self.info.setText(BEFORE_RUN)
        self.table.setRowCount(0)
        self._fit_table()
        self.summary.setText("Per-class IoU shows after the first epoch")
        self._show_field()

    def set_theme(self, theme: Theme) -> None:
        self.theme = theme
        for label in (self.info, self.field, self.summary):
            label.setStyleSheet(f"color: {theme.text_dim};")
        self.diagnostic.setStyleSheet(f"color: {theme.warning};")
        self._show_legend()
        for view in self.views:
            view.update()

    def hasHeightForWidth(self) -> bool:  # Qt override
        # Its wrapped sentences give the view a height-for-width, and then the dock's tab stack (Qt's
        # QStackedLayout) takes every other tab's preferred height as its minimum: the panel grew 60 px
        # taller than the dock and its bottom (these pictures' captions, the legend) was cut off.
        return False

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
        images = _numpy(data.images)
        n = int(images.shape[0])
        if self.sample_combo.count() != n:
            self.sample_combo.blockSignals(True)
            self.sample_combo.clear()
            self.sample_combo.addItems([f"Sample {i + 1} of {n}" for i in range(n)])
            self.sample_combo.blockSignals(False)
        self.sample_combo.setVisible(n > 1)
        i = min(max(self.sample_combo.currentIndex(), 0), n - 1)
        rgb = chw_to_rgb(images[i])
        truth = _numpy(data.masks_true)[i] if data.masks_true is not None else None
        pred = _numpy(data.masks_pred)[i] if data.masks_pred is not None else None
        palette = self.class_colours or fallback_palette(max(_max_class(truth, pred) + 1, 2))
        self.image_view.set_image(rgb, "Image")
        for view, mask, caption in ((self.truth_view, truth, "Truth"), (self.pred_view, pred, "Prediction")):
            view.set_image(overlay(rgb, mask, palette, ignore_index=self.ignore_index) if mask is not None else None,
                           caption)
        self.info.setText(f"epoch {data.epoch} · step {data.step}")
        self._show_field()

    def show_field_at(self, row: int, col: int) -> None:
        """A click at image pixel (row, col): the head's receptive field there, on all three pictures."""
        self.clicked_at = (row, col)
        self._show_field()

    def _show_field(self) -> None:
        image = self.image_view.image
        if self.clicked_at is None or image is None or self.head is None:
            for view in self.views:
                view.set_rects([])
            self.field.setText(CLICK_HINT if self.head is not None or self.latest is None else
                               "The head's receptive field is not known (the graph has no 2-D map before its Output).")
            return
        node, rf, out_hw = self.head
        size = (image.height(), image.width())
        row, col = self.clicked_at
        region = rf_region(rf, scale_position((row, col), size, out_hw), size)
        colour = self.theme.accent
        rects = [(region.top, region.left, region.bottom, region.right, colour), (row, col, row, col, "#ffffff")]
        for view in self.views:
            view.set_rects(rects)
        self.field.setText(f"At pixel ({row}, {col}) the head ({node}) sees {field_text(rf)}: rows "
                           f"{region.top}–{region.bottom}, columns {region.left}–{region.right} of the image.")

    def _show_diagnostic(self) -> None:
        text = rf_diagnostic(self.head[1], self.typical_object_px, f"The head ({self.head[0]})") \
            if self.head is not None else ""
        self.diagnostic.setText(text)
        self.diagnostic.setVisible(bool(text))

    def _show_legend(self) -> None:
        entries = [f"<span style='color:{QColor(*self._colour(i)).name()}'>■</span>&nbsp;{_escape(name)}"
                   for i, name in enumerate(self.classes)]
        self.legend.setText("&nbsp;&nbsp; ".join(entries))
        self.legend.setVisible(bool(entries))

    def legend_text(self) -> str:
        """The legend as a user reads it (``■ background   ■ circle …``)."""
        return QTextDocumentFragment.fromHtml(self.legend.text()).toPlainText() if self.legend.isVisible() else ""

    def _hover(self, row: int, col: int) -> None:
        data = self.latest
        if data is None or row < 0:
            if data is not None:
                self.info.setText(f"epoch {data.epoch} · step {data.step}")
            return
        i = max(self.sample_combo.currentIndex(), 0)
        parts = [f"pixel ({row}, {col})"]
        for word, masks in (("truth", data.masks_true), ("predicted", data.masks_pred)):
            if masks is not None:
                parts.append(f"{word} {self._class_name(int(_numpy(masks)[i][row, col]))}")
        self.info.setText(" · ".join(parts))

    def _names(self, n: int) -> list[str]:
        return [self.classes[i] if i < len(self.classes) else f"class {i}" for i in range(n)]

    def _class_name(self, index: int) -> str:
        if index == self.ignore_index:
            return "ignored"
        return self._names(index + 1)[index]

    def _colour(self, index: int) -> tuple[int, int, int]:
        palette = self.class_colours or fallback_palette(max(len(self.classes), index + 1))
        return tuple(palette[index]) if index < len(palette) else (128, 128, 128)  # type: ignore[return-value]


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def _max_class(*masks: np.ndarray | None) -> int:
    values = [int(m[m != IGNORED].max()) for m in masks if m is not None and (m != IGNORED).any()]
    return max(values, default=1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["SegmentationView", "fallback_palette", "field_text", "fmt_iou", "head_field", "overlay", "rf_diagnostic"]
