"""The Training dock's Samples tab: what a GAN's generator makes of the run's fixed noise.

The engine sends the generator's output for the same noise vectors all run long
(:class:`core.training.GanSamples`, uint8 ``(n, C, H, W)``) every few seconds and after each epoch.
This tab lays them out as one grid (:func:`core.training.gan_sample.grid_image`, the layout of the
run folder's PNGs) and shows it as large as the tab allows, scaled by whole pixels where it can
(nearest-neighbour, so a 28×28 digit stays crisp squares; one channel shows as grey levels). It
keeps one grid per epoch — the last one sent during that epoch — so a slider ("Epoch N of M") goes
back through the run; it follows the newest epoch unless the user moved it back, and follows again
once moved to the end. The line above the grid gives the shown
epoch's discriminator and generator figures: D(x), the discriminator's mean probability for real
images, D(G(z)) for generated ones, and the two losses.

A run folder opened later (or resumed) shows the grids the trainer saved there,
``samples/epoch_NNN.png``, with the numbers of its ``metrics.csv``. "Save grid…" writes the shown
grid at its own size as a PNG (atomically).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF, QSize, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from core.project import atomic_write_bytes
from core.training.events import EpochMetrics, GanSamples
from core.training.gan_sample import grid_image
from gui.theme import Theme, current_theme
from gui.training.images import ImageView, to_qimage

EMPTY_TEXT = "The generator's samples for a fixed noise appear here, epoch by epoch, once a GAN trains."
SAMPLE_FILE = re.compile(r"epoch_(\d+)\.png$")


def png_bytes(image: QImage) -> bytes:
    """``image`` encoded as PNG."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stubs lack the QIODevice overload
    buffer.close()
    return bytes(data.data())


def metrics_caption(epoch: int, d_real: float | None, d_fake: float | None, d_loss: float | None,
                    g_loss: float | None) -> str:
    """The shown epoch's four numbers in the CLI's words (``D(x) 0.731 · D(G(z)) 0.312 · …``)."""
    parts = []
    if d_real is not None:
        parts.append(f"D(x) {d_real:.3f}")
    if d_fake is not None:
        parts.append(f"D(G(z)) {d_fake:.3f}")
    if d_loss is not None:
        parts.append(f"d_loss {d_loss:.4f}")
    if g_loss is not None:
        parts.append(f"g_loss {g_loss:.4f}")
    return f"Epoch {epoch}: " + " · ".join(parts) if parts else f"Epoch {epoch}: no figures recorded"


@dataclass
class _Epoch:
    """One epoch's grid and, once it ended, its figures (d_real, d_fake, d_loss, g_loss)."""

    image: QImage | None = None
    step: int = 0
    figures: tuple[float | None, float | None, float | None, float | None] | None = None


class GridView(ImageView):
    """The sample grid, scaled by whole pixels when it is at least twice its size in the tab (every
    generated pixel an equal square), by the largest factor that fits otherwise."""

    def target(self) -> QRectF:
        if self.image is None:
            return QRectF()
        w, h = self.image.width(), self.image.height()
        scale = max(min((self.width() - 4) / w, (self.height() - 4) / h), 1e-6)
        if scale >= 2:
            scale = math.floor(scale)
        tw, th = w * scale, h * scale
        return QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)

    def sizeHint(self) -> QSize:
        return QSize(360, 360)


class GanSamplesView(QWidget):
    """The fixed-noise grid per epoch, a slider through the epochs, the shown epoch's D(x), D(G(z))
    and losses, and "Save grid…"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.epochs: dict[int, _Epoch] = {}
        self.planned = 0  # the run's epochs (0: unknown)
        self.run_dir: Path | None = None
        self.follow = True  # show the newest epoch (until the user moves the slider back)
        self._setting_slider = False
        self.caption = QLabel(EMPTY_TEXT)
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setToolTip("D(x): the discriminator's mean probability that real images are real; D(G(z)): "
                                "that the generated ones are. Near 0.5 each, it cannot tell them apart; D(G(z)) "
                                "near 0 with a climbing g_loss: the discriminator wins")
        self.grid = GridView(min_size=120)
        self.epoch_label = QLabel("")
        # wide enough for a long run's numbers: the label never clips or makes the slider jump
        self.epoch_label.setMinimumWidth(self.epoch_label.fontMetrics().horizontalAdvance("Epoch 8888 of 8888") + 4)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(1, 1)
        self.slider.setPageStep(1)
        self.slider.setToolTip("Go back through the epochs' grids (the newest is followed while it is at the end)")
        self.slider.valueChanged.connect(self._slider_moved)
        self.save_button = QPushButton("Save grid…")
        self.save_button.setToolTip("Save the shown grid as a PNG at its own size")
        self.save_button.clicked.connect(self._save_dialog)
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.epoch_label)
        row.addWidget(self.slider, 1)
        row.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        # the controls and the figures above the grid: a short dock scrolls the grid's bottom away, not them
        layout.addLayout(row)
        layout.addWidget(self.caption)
        layout.addWidget(self.problem)
        layout.addWidget(self.grid, 1)
        self.set_theme(current_theme())
        self._sync()

    # ------------------------------------------------------------------------------ the contract

    def run_started(self, config: Any, run_dir: str | None) -> None:
        """A run of ``config`` starts (or a run folder is shown): forget the old grids and show those
        ``run_dir`` already holds (a resumed or finished run's ``samples/epoch_NNN.png``)."""
        self.clear()
        self.planned = int(getattr(config, "epochs", 0) or 0)
        self.run_dir = Path(run_dir) if run_dir else None
        if self.run_dir is not None:
            self._load_folder(self.run_dir)
        self._sync()

    def add_samples(self, s: GanSamples) -> None:
        """The generator's grid for the fixed noise at step ``s.step`` of epoch ``s.epoch``: the
        epoch's grid from now on (the last one of an epoch stays)."""
        try:  # laid out as the run folder's samples/epoch_NNN.png (core's grid)
            image = to_qimage(grid_image(s.images).numpy())
        except ValueError as exc:  # images the grid cannot show (not 1 or 3 channels): say so, keep the old
            self._show_problem(f"Cannot show the samples of epoch {s.epoch}: {exc}")
            return
        entry = self.epochs.setdefault(int(s.epoch), _Epoch())
        entry.image = image
        entry.step = int(s.step)
        self._sync()

    def add_epoch(self, m: EpochMetrics) -> None:
        """Epoch ``m.epoch`` ended: its D(x), D(G(z)) and losses go with its grid."""
        entry = self.epochs.setdefault(int(m.epoch), _Epoch())
        entry.figures = (m.d_real, m.d_fake, m.d_loss, m.g_loss)
        self.planned = max(self.planned, int(m.epochs))
        self._sync()

    def clear(self) -> None:
        self.epochs = {}
        self.planned = 0
        self.run_dir = None
        self.follow = True
        self.problem.hide()
        self._sync()

    # ----------------------------------------------------------------------------------- queries

    @property
    def newest(self) -> int:
        """The newest epoch with a grid (0: none yet)."""
        return max((e for e, entry in self.epochs.items() if entry.image is not None), default=0)

    @property
    def shown_epoch(self) -> int:
        return self.slider.value() if self.newest else 0

    def shown_image(self) -> QImage | None:
        """The grid on screen at its own size (``None`` before the first)."""
        entry = self.epochs.get(self.shown_epoch)
        return entry.image if entry is not None else None

    def show_epoch(self, epoch: int) -> None:
        """Show ``epoch``'s grid as the slider would (following again at the newest)."""
        self.slider.setValue(epoch)

    def set_theme(self, theme: Theme) -> None:
        self.epoch_label.setStyleSheet(f"color: {theme.text_dim};")
        self.problem.setStyleSheet(f"color: {theme.error};")
        self.grid.update()

    # ---------------------------------------------------------------------------------- saving

    def save_grid(self, path: str | Path) -> bool:
        """Write the shown grid to ``path`` as a PNG (atomically); False with the reason shown when it can't."""
        image = self.shown_image()
        if image is None:
            return self._show_problem("There is no grid to save yet.")
        try:
            atomic_write_bytes(Path(path), png_bytes(image))
        except OSError as exc:
            return self._show_problem(f"Cannot write {path}: {exc.strerror or exc}")
        self.problem.hide()
        return True

    def _save_dialog(self) -> None:
        folder = self.run_dir if self.run_dir is not None and self.run_dir.is_dir() else Path.home()
        suggested = folder / f"samples-epoch_{self.shown_epoch:03d}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save the sample grid", str(suggested), "PNG image (*.png)")
        if path:
            self.save_grid(path)

    def _show_problem(self, text: str) -> bool:
        self.problem.setText(text.splitlines()[0] if text else "")
        self.problem.show()
        return False

    # ---------------------------------------------------------------------------------- internals

    def _load_folder(self, run_dir: Path) -> None:
        """The grids and figures a run folder holds (unreadable files are skipped: the tab only shows)."""
        samples = run_dir / "samples"
        if samples.is_dir():
            for file in sorted(samples.iterdir()):
                match = SAMPLE_FILE.fullmatch(file.name)
                if match is None:
                    continue
                image = QImage(str(file))
                if not image.isNull():
                    self.epochs.setdefault(int(match.group(1)), _Epoch()).image = image
        try:
            from core.training.runs import RunFolder, RunFolderError

            rows = RunFolder(run_dir).read_metrics() if (run_dir / "metrics.csv").is_file() else []
        except RunFolderError:
            rows = []
        for row in rows:
            epoch = row.get("epoch")
            if epoch is None:
                continue
            figures = (row.get("d_real"), row.get("d_fake"), row.get("d_loss"), row.get("g_loss"))
            if any(v is not None for v in figures):
                self.epochs.setdefault(int(epoch), _Epoch()).figures = figures

    def _slider_moved(self, value: int) -> None:
        if not self._setting_slider:
            self.follow = value >= self.newest
        self._show_current()

    def _sync(self) -> None:
        """Slider range and position (the newest when following), then the grid and the texts."""
        newest = self.newest
        self._setting_slider = True
        try:
            self.slider.setRange(1, max(newest, 1))
            if self.follow and newest:
                self.slider.setValue(newest)
        finally:
            self._setting_slider = False
        self.slider.setEnabled(newest > 1)
        self.save_button.setEnabled(newest > 0)
        self._show_current()

    def _show_current(self) -> None:
        newest = self.newest
        if not newest:
            self.grid.set_image(None, "no samples yet")
            self.caption.setText(EMPTY_TEXT)
            self.epoch_label.setText("Epoch – of –")
            return
        epoch = self.slider.value()
        entry = self.epochs.get(epoch, _Epoch())
        total = max(self.planned, newest)
        self.epoch_label.setText(f"Epoch {epoch} of {total}")
        self.grid.image = entry.image
        self.grid.caption = "" if entry.image is not None else f"no grid was saved for epoch {epoch}"
        self.grid.update()
        if entry.figures is not None:
            self.caption.setText(metrics_caption(epoch, *entry.figures))
        elif entry.image is not None:
            self.caption.setText(f"Epoch {epoch} in progress (step {entry.step:,}): "
                                 "its D(x), D(G(z)) and losses follow when it ends")
        else:
            self.caption.setText(f"Epoch {epoch}")


__all__ = ["EMPTY_TEXT", "GanSamplesView", "metrics_caption", "png_bytes"]
