"""Predictions: drop an image (or pick a dataset sample) and see what the network makes of it.

Top-5 classes as bars, the feature maps of that image at any node, and a Grad-CAM heat map for a
chosen class at a chosen convolution, overlaid on the image (hover the heat map to read it).
Everything is computed by :mod:`core.explain` on the view's own CPU copy of the model (a snapshot
taken between epochs, after a run, or loaded from a run), never on the model being trained.

An image file's header is read on the GUI thread (cheap: it refuses unreadable files and
decompression bombs at once); a big image is then decoded on a worker thread, downscaled while
decoding, and its result arrives by signal while the view says what it is reading.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.explain import (
    ExplainError,
    LoadedImage,
    Prediction,
    decode_image,
    gradcam,
    normalize,
    open_image,
    overlay,
    top_k,
)
from core.training.probes import Prober
from gui.theme import current_theme
from gui.training.images import ImageView, MosaicView, chw_to_rgb
from gui.training.maps import channel_tiles

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Images up to this many pixels are decoded on the GUI thread (a few milliseconds, so a dropped
# thumbnail shows at once); bigger ones on a worker thread, which keeps the window responsive
# (a 100-megapixel photo takes over a second to decode).
SYNC_DECODE_PIXELS = 1_000_000


class _Decoded(QObject):
    """Carries a worker thread's decoded image (or its error message) to the GUI thread."""

    done = Signal(int, object)  # request number, LoadedImage or the error's sentence


class TopKBars(QWidget):
    """Horizontal probability bars, best first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.predictions: list[Prediction] = []
        self.truth: int | None = None
        self.setMinimumHeight(5 * 24 + 8)

    def set_predictions(self, predictions: Sequence[Prediction], truth: int | None = None) -> None:
        self.predictions = list(predictions)
        self.truth = truth
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        t = current_theme()
        if not self.predictions:
            p.setPen(QColor(t.text_dim))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Drop an image here or pick a sample")
            return
        name_w, value_w, row_h = 96, 48, 24
        bar_w = max(self.width() - name_w - value_w - 12, 20)
        for i, pred in enumerate(self.predictions):
            y = 4 + i * row_h
            p.setPen(QColor(t.text))
            p.drawText(QRectF(0, y, name_w - 6, row_h - 4), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       pred.name)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(t.panel_alt))
            p.drawRoundedRect(QRectF(name_w, y + 3, bar_w, row_h - 10), 3, 3)
            correct = self.truth is not None and pred.index == self.truth
            colour = t.ok if correct else (t.accent if i == 0 else t.text_dim)
            p.setBrush(QColor(colour))
            p.drawRoundedRect(QRectF(name_w, y + 3, max(bar_w * pred.probability, 2), row_h - 10), 3, 3)
            p.setPen(QColor(t.text))
            p.drawText(QRectF(name_w + bar_w + 6, y, value_w, row_h - 4),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{pred.probability:.1%}")


class PredictionView(QWidget):
    """Top-5, Grad-CAM overlay and feature maps for one image."""

    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        t = current_theme()
        self.model: Any = None
        self.analysis: Any = None
        self.classes: list[str] = []
        self.mean: Sequence[float] = ()
        self.std: Sequence[float] = ()
        self.samples: torch.Tensor | None = None  # uint8 (N, C, H, W) dataset samples to pick from
        self.sample_labels: list[int] = []
        self.display: torch.Tensor | None = None  # uint8 (C, H, W) of the current image
        self.tensor: torch.Tensor | None = None  # normalised (1, C, H, W)
        self.truth: int | None = None
        # Where the current image came from (a sample index or an image file): it is read again when
        # the model, the normalisation or the class names change, so the view never shows an image
        # normalised for another model or a sample without its label.
        self.source: int | Path | None = None
        self.cam: Any = None
        self.predictions: list[Prediction] = []
        # Each image request gets a number; a worker's result for an older request (another image was
        # opened, a sample picked or the model changed meanwhile) is dropped.
        self._request = 0
        self._reading: Path | None = None  # the image file a worker thread decodes
        self._decoded = _Decoded(self)
        self._decoded.done.connect(self._image_decoded)
        self._state: dict[str, torch.Tensor] | None = None  # weights the next computation loads first
        self._computer = _Computer(self)
        self._computer.done.connect(self._show)

        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._open_dialog)
        self.sample_spin = QSpinBox()
        self.sample_spin.setPrefix("sample ")
        self.sample_spin.setRange(0, 0)
        self.sample_spin.valueChanged.connect(self.pick_sample)
        self.source_label = QLabel("")
        self.source_label.setStyleSheet(f"color: {t.text_dim};")
        self.image_view = ImageView(min_size=180)
        self.cam_view = ImageView(min_size=180)
        self.cam_view.hovered.connect(self._cam_hover)
        self.bars = TopKBars()
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class whose evidence Grad-CAM shows (default: the predicted one)")
        self.class_combo.currentIndexChanged.connect(lambda _: self.update_cam())
        self.cam_node = QComboBox()
        self.cam_node.setToolTip("The convolution (or any node with C×H×W output) Grad-CAM looks at; "
                                 "the last one is coarsest and most semantic")
        self.cam_node.currentIndexChanged.connect(lambda _: self.update_cam())
        self.alpha = QSlider(Qt.Orientation.Horizontal)
        self.alpha.setRange(0, 100)
        self.alpha.setValue(60)
        self.alpha.setFixedWidth(100)
        self.alpha.valueChanged.connect(lambda _: self._draw_cam())
        self.cam_info = QLabel("")
        self.cam_info.setStyleSheet(f"color: {t.text_dim};")
        self.map_node = QComboBox()
        self.map_node.currentIndexChanged.connect(lambda _: self.update_maps())
        self.maps = MosaicView()

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.sample_spin)
        top.addWidget(self.source_label, 1)
        cam_tools = QHBoxLayout()
        cam_tools.addWidget(QLabel("Grad-CAM for"))
        cam_tools.addWidget(self.class_combo, 1)
        cam_tools.addWidget(QLabel("at"))
        cam_tools.addWidget(self.cam_node, 1)
        cam_tools.addWidget(QLabel("Opacity"))
        cam_tools.addWidget(self.alpha)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.addWidget(_heading("Image"), 0, 0)
        grid.addWidget(_heading("Top-5"), 0, 1)
        grid.addWidget(_heading("Grad-CAM"), 0, 2)
        grid.addWidget(self.image_view, 1, 0)
        grid.addWidget(self.bars, 1, 1)
        grid.addWidget(self.cam_view, 1, 2)
        grid.addLayout(cam_tools, 2, 1, 1, 2)
        grid.addWidget(self.cam_info, 3, 1, 1, 2)
        grid.setColumnStretch(0, 2)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(2, 2)
        maps_tools = QHBoxLayout()
        maps_tools.addWidget(_heading("Feature maps of this image at"))
        maps_tools.addWidget(self.map_node)
        maps_tools.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addLayout(grid, 3)
        layout.addLayout(maps_tools)
        layout.addWidget(self.maps, 2)

    # ------------------------------------------------------------------------------------ setup

    def set_model(self, model: Any, analysis: Any, classes: Sequence[str], mean: Sequence[float] = (),
                  std: Sequence[float] = (), state: dict[str, torch.Tensor] | None = None) -> None:
        """A CPU model in eval mode (the view never trains it) and what it needs to read images;
        ``state``: weights to load into it first (on the computing thread: see :meth:`flush`)."""
        self.model = model
        self._state = state
        self.analysis = analysis
        self.classes = list(classes)
        self.mean, self.std = tuple(mean), tuple(std)
        spatial = [nid for nid in analysis.order
                   if (r := analysis.nodes.get(nid)) is not None and r.output_shape is not None
                   and len(r.output_shape) == 3 and r.type != "Input"]
        convs = [nid for nid in spatial if "Conv" in analysis.nodes[nid].type]
        _refill(self.cam_node, convs or spatial, prefer_last=True)
        _refill(self.map_node, spatial + [n for n in analysis.order if n not in spatial
                                          and analysis.nodes[n].type not in ("Input", "Output")])
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("predicted class", -1)
        for i, name in enumerate(self.classes):
            self.class_combo.addItem(name, i)
        self.class_combo.blockSignals(False)
        self.reload()

    def set_samples(self, images: torch.Tensor | None, labels: Sequence[int] = (), classes: Sequence[str] = (),
                    mean: Sequence[float] = (), std: Sequence[float] = ()) -> None:
        """Dataset samples to pick from (uint8 ``(N, C, H, W)``) with their labels; ``classes``, ``mean`` and
        ``std`` are the dataset's, used to name and read the samples until a model brings its own."""
        self.samples = images
        self.sample_labels = list(labels)
        if self.model is None:
            self.classes = list(classes) or self.classes
            self.mean, self.std = tuple(mean) or self.mean, tuple(std) or self.std
        n = 0 if images is None else int(images.shape[0])
        self.sample_spin.blockSignals(True)
        self.sample_spin.setRange(0, max(n - 1, 0))
        self.sample_spin.blockSignals(False)
        self.sample_spin.setEnabled(n > 0)
        if n and (self.display is None or isinstance(self.source, int)):
            self.pick_sample(min(self.sample_spin.value(), n - 1))

    def reload(self) -> None:
        """Read the current image again (the model, its normalisation or class names changed) and predict."""
        if isinstance(self.source, int):
            self.pick_sample(self.source)
        elif isinstance(self.source, Path):
            self.open_image(self.source)
        elif self.tensor is not None:
            self.run()

    # ------------------------------------------------------------------------------------ inputs

    def pick_sample(self, index: int) -> None:
        if self.samples is None or not 0 <= index < len(self.samples):
            return
        self._request += 1  # an image still decoding no longer replaces this sample
        self._reading = None
        self.source = index
        if self.sample_spin.value() != index:
            self.sample_spin.blockSignals(True)
            self.sample_spin.setValue(index)
            self.sample_spin.blockSignals(False)
        self.display = self.samples[index]
        self.tensor = normalize(self.display, self.mean, self.std)
        self.truth = self.sample_labels[index] if index < len(self.sample_labels) else None
        label = self.classes[self.truth] if self.truth is not None and self.truth < len(self.classes) else ""
        self.source_label.setText(f"dataset sample {index}" + (f" · label {label}" if label else ""))
        self.run()

    def open_image(self, path: str | Path) -> bool:
        """Show predictions for an image file; False (with a message) when it cannot be read.

        A big image is decoded on a worker thread: this returns True at once, the view says what it
        is reading, and the image appears when :attr:`decoding` turns False.
        """
        shape = self.analysis.input_shape if self.analysis is not None else None
        if shape is None:
            self.message.emit("Train or load a model first: predictions need a network with a known Input shape.")
            return False
        self._request += 1
        request, self._reading = self._request, None
        try:
            opened = open_image(path)
        except ExplainError as exc:
            self.message.emit(str(exc))
            return False
        width, height = opened.size
        if width * height <= SYNC_DECODE_PIXELS:
            try:
                img = decode_image(opened, path, shape, self.mean, self.std)
            except ExplainError as exc:
                self.message.emit(str(exc))
                return False
            self._show_file(img, Path(path), shape)
            return True
        self.source_label.setText(f"Reading {Path(path).name} ({width}×{height})…")
        mean, std = self.mean, self.std

        def work() -> None:
            result: LoadedImage | str
            try:
                result = decode_image(opened, path, shape, mean, std)
            except ExplainError as exc:
                result = str(exc)
            try:
                self._decoded.done.emit(request, result)
            except RuntimeError:  # the view was closed while decoding: nobody is waiting
                pass

        self._reading = Path(path)
        threading.Thread(target=work, name="decode image", daemon=True).start()
        return True

    @property
    def decoding(self) -> bool:
        """True while a worker thread decodes an image for this view."""
        return self._reading is not None

    def _image_decoded(self, request: int, result: LoadedImage | str) -> None:
        if request != self._request:
            return  # a later request replaced this one
        path, self._reading = self._reading, None
        if isinstance(result, str):
            self.source_label.setText("")
            self.message.emit(result)
            return
        shape = self.analysis.input_shape if self.analysis is not None else None
        if path is None or shape is None or tuple(result.tensor.shape[1:]) != tuple(shape):
            return  # the model changed meanwhile; its own reload reads the image again
        self._show_file(result, path, shape)

    def _show_file(self, img: LoadedImage, path: Path, shape: Sequence[int]) -> None:
        self.display, self.tensor, self.truth = img.display, img.tensor, None
        self.source = path
        self.source_label.setText(f"{path.name} ({img.source_size[0]}×{img.source_size[1]} → "
                                  f"{shape[2]}×{shape[1]})")
        self.run()

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "",
                                              "Images (" + " ".join(f"*{s}" for s in IMAGE_SUFFIXES) + ")")
        if path:
            self.open_image(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # Qt override
        if _image_url(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # Qt override
        path = _image_url(event)
        if path is not None:
            event.acceptProposedAction()
            self.open_image(path)

    # ---------------------------------------------------------------------------------- compute

    def flush(self) -> None:
        """Wait for the computation in flight and show its result now (tests, and before the model is
        handed elsewhere).

        Every computation runs on a worker thread, one at a time, the latest request winning. On the
        GUI thread the ~60 torch operations of a LeNet prediction with Grad-CAM held the window
        0.3–0.5 s at an epoch end while a run trained (its thread holds the interpreter between
        operations), and a ResNet-50's take longer than the 50 ms budget on a CPU even when nothing
        trains; off it they take as long, but the window answers and the result shows when it arrives.
        """
        self._computer.wait()
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)  # the queued ``done``

    def run(self) -> None:
        if self.display is not None:
            self.image_view.set_image(chw_to_rgb(self.display.numpy()))
        self._compute(("top", "cam", "maps"))

    def update_cam(self) -> None:
        self._compute(("cam",))

    def update_maps(self) -> None:
        self._compute(("maps",))

    def _compute(self, parts: tuple[str, ...]) -> None:
        if self.model is None or self.tensor is None:
            return
        wanted = self.class_combo.currentData()
        job = _Job(parts=parts, model=self.model, state=self._state, tensor=self.tensor, display=self.display,
                   classes=list(self.classes), cam_node=self.cam_node.currentText(),
                   cam_class=None if wanted is None or wanted < 0 else int(wanted),
                   map_node=self.map_node.currentText())
        self._state = None  # loaded by this job, before it computes
        self._computer.submit(job)

    def _show(self, number: int, result: _Result) -> None:
        """Show a computation's result (one for an older request than the latest is dropped)."""
        if number != self._computer.number:
            return
        if result.top_error:
            self.message.emit(f"Prediction failed: {result.top_error}")
            return
        if result.predictions is not None:
            self.predictions = result.predictions
            self.bars.set_predictions(self.predictions, self.truth)
        if "cam" in result.parts and result.cam_node:
            if result.cam_error:
                self.cam = None
                self.cam_info.setText(result.cam_error)
            else:
                self.cam = result.cam
                i = self.cam.class_index
                name = self.classes[i] if i < len(self.classes) else f"class {i}"
                h, w = self.cam.map_size
                self.cam_info.setText(f"evidence for <b>{name}</b> (score {self.cam.score:.2f}) in {result.cam_node}'s "
                                      f"{h}×{w} maps, upsampled to the image")
                self._draw_cam()
        if "maps" in result.parts and result.map_node:
            if result.map_error:
                self.message.emit(f"Could not compute {result.map_node}'s feature maps: {result.map_error}")
            else:
                self.maps.set_tiles(result.tiles)

    def _draw_cam(self) -> None:
        if self.cam is None or self.display is None:
            return
        rgb = chw_to_rgb(self.display.numpy())
        self.cam_view.set_image(overlay(rgb, self.cam.heatmap, self.alpha.value() / 100))

    def _cam_hover(self, row: int, col: int) -> None:
        if self.cam is None or row < 0:
            self.cam_view.setToolTip("")
            return
        self.cam_view.setToolTip(f"heat {self.cam.heatmap[row, col]:.2f} at ({row}, {col})")


@dataclass
class _Result:
    """What one computation found (errors as the sentence to show)."""

    parts: tuple[str, ...]
    predictions: list[Prediction] | None = None
    top_error: str = ""
    cam_node: str = ""
    cam: Any = None
    cam_error: str = ""
    map_node: str = ""
    tiles: Any = None
    map_error: str = ""


@dataclass
class _Job:
    """One computation's inputs, taken on the GUI thread: it may run on another."""

    parts: tuple[str, ...]  # of "top", "cam", "maps"
    model: Any
    state: dict[str, torch.Tensor] | None  # weights to load into ``model`` first (a snapshot of the run)
    tensor: torch.Tensor
    display: torch.Tensor | None
    classes: list[str]
    cam_node: str
    cam_class: int | None
    map_node: str

    def run(self) -> _Result:
        if self.state is not None:
            self.model.load_state_dict(self.state)
        out = _Result(parts=self.parts)
        if "top" in self.parts:
            try:
                out.predictions = top_k(self.model, self.tensor, 5, self.classes)
            except (ExplainError, RuntimeError) as exc:
                out.top_error = str(exc)
                return out
        if "cam" in self.parts and self.cam_node:
            out.cam_node = self.cam_node
            try:
                out.cam = gradcam(self.model, self.tensor, self.cam_node, self.cam_class)
            except (ExplainError, RuntimeError) as exc:
                out.cam_error = str(exc)
        if "maps" in self.parts and self.map_node and self.display is not None:
            out.map_node = self.map_node
            prober = Prober(max_channels=64, max_size=64)
            prober.set_nodes([self.map_node])
            device = next(self.model.parameters(), torch.zeros(0)).device
            try:
                data = prober.capture(self.model, self.tensor.to(device), self.display[None], (0,), 0, 0, 0)
            except RuntimeError as exc:
                out.map_error = str(exc)
            else:
                act = data.activations.get(self.map_node)
                out.tiles = channel_tiles(act[0]) if act is not None else None
        return out


class _Computer(QObject):
    """Runs the view's computations one at a time on a worker thread, the latest request only: one
    asked for while another runs waits, and is replaced by any newer one. ``done`` arrives on the
    GUI thread with the request's number."""

    done = Signal(int, object)  # request number, _Result

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.number = 0  # of the latest request (the view shows only its result)
        self._pending: tuple[int, _Job] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, job: _Job) -> None:
        self.number += 1
        with self._lock:
            self._pending = (self.number, job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="predictions", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._pending is None:
                    self._thread = None
                    return
                (number, job), self._pending = self._pending, None
            result = job.run()
            try:
                self.done.emit(number, result)
            except RuntimeError:  # the view was closed meanwhile: nobody is waiting
                pass

    def wait(self) -> None:
        """Block until no computation runs or waits (then the model is the GUI thread's again)."""
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return
            thread.join()


def _heading(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    return label


def _refill(combo: QComboBox, items: Sequence[str], prefer_last: bool = False) -> None:
    current = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(list(items))
    if current in items:
        combo.setCurrentText(current)
    elif items:
        combo.setCurrentIndex(len(items) - 1 if prefer_last else 0)
    combo.blockSignals(False)


def _image_url(event: QDragEnterEvent | QDropEvent) -> str | None:
    md = event.mimeData()
    if not md.hasUrls():
        return None
    for url in md.urls():
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES:
            return url.toLocalFile()
    return None


__all__ = ["IMAGE_SUFFIXES", "PredictionView", "TopKBars"]
