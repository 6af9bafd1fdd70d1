"""Train ▸ Load Pretrained Weights…: choose a source, load it off the GUI thread, with Cancel.

The sources are those of :func:`core.training.weights.resolve`: torchvision's weights for the
model the graph mirrors (``DEFAULT`` or a named member of its enum, listed from
``torchvision.models.get_model_weights``), a weights file (``.pth``/``.pt``/``.safetensors``), or
a run folder's checkpoint. :class:`WeightsLoader` compiles a copy of the graph and loads the
weights into it on a worker thread (:func:`core.training.weights.fetch` downloads an enum's file
into torch hub's cache with progress, and stops at the next chunk when cancelled, leaving nothing
half-written) behind a progress dialog whose Cancel sets the flag the download checks. The
collector is held meanwhile (:mod:`gui.gc_pause`), as for every torch worker.

What happens with the result (the weight map, the project's ``weights`` entry, the training
panel starting from it) is :mod:`gui.finetune_actions`'.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressDialog,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.graph import Graph
from core.native_libs import open_torch_libraries
from gui.gc_pause import hold_gc, release_gc

FILE_FILTER = "Weights (*.pth *.pt *.safetensors *.bin *.ckpt);;All files (*)"


@dataclass
class LoadedWeights:
    """A load's result: the spec, the weights report, the compiled model holding the weights and the
    graph (a copy, as it was when loaded) it was compiled from."""

    spec: Any  # core.training.weights.WeightsSpec
    report: Any  # core.training.weights.WeightsReport
    model: Any  # torch.nn.Module
    graph: Graph

    @property
    def from_run(self) -> bool:
        """Whether the weights are a NetCanvas run's (a run folder or its checkpoint file)."""
        from core.training.runs import holds_run

        path = self.spec.path
        if path is None:
            return False
        p = Path(path)
        return p.is_dir() or (p.parent.name == "checkpoints" and holds_run(p.parent.parent))


def enum_choices(arch: str | None) -> list[tuple[str, str]]:
    """``(spec text, what the list shows)`` for the torchvision weights of ``arch``: DEFAULT first (naming
    the member it stands for), then every member with its ImageNet top-1 and file size; empty when
    torchvision has none for it."""
    if arch is None:
        return []
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        return []
    out: list[tuple[str, str]] = []

    def facts(member: Any) -> str:
        meta = member.meta
        acc = meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        size = meta.get("_file_size")
        parts = [f"top-1 {acc:.1f} %" if isinstance(acc, int | float) else "",
                 f"{size:.0f} MB" if isinstance(size, int | float) else ""]
        return " · ".join(p for p in parts if p)

    default = enum.DEFAULT
    out.append(("DEFAULT", f"DEFAULT  ({default.name}, {facts(default)})"))
    for member in enum:
        out.append((member.name, f"{member.name}  ({facts(member)})"))
    return out


def run_choices(runs_root: Path | None) -> list[Path]:
    """Run folders under ``runs_root`` that hold a checkpoint, newest first."""
    if runs_root is None or not runs_root.is_dir():
        return []
    try:
        runs = [p for p in runs_root.iterdir() if (p / "checkpoints" / "last.pt").is_file()]
    except OSError:
        return []
    return sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)


class LoadWeightsDialog(QDialog):
    """Pick a weights source; :meth:`spec_text` is what :func:`core.training.weights.resolve` takes."""

    def __init__(self, arch: str | None, runs_root: Path | None = None, parent: QWidget | None = None,
                 recorded: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Load Pretrained Weights")
        self.arch = arch
        lay = QVBoxLayout(self)
        grid = QGridLayout()
        self.r_enum = QRadioButton(f"torchvision weights for {arch}" if arch else "torchvision weights")
        self.enum_box = QComboBox()
        for spec, text in enum_choices(arch):
            self.enum_box.addItem(text, spec)
        self.r_file = QRadioButton("A weights file (.pth, .pt, .safetensors)")
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("path of the file")
        b_file = QPushButton("Browse…")
        b_file.clicked.connect(self._browse)
        self.r_run = QRadioButton("A training run's checkpoint")
        self.run_box = QComboBox()
        self.run_box.setEditable(True)
        edit = self.run_box.lineEdit()
        if edit is not None:
            edit.setPlaceholderText("run folder")
        for run in run_choices(runs_root):
            self.run_box.addItem(run.name, str(run))
        b_run = QPushButton("Browse…")
        b_run.clicked.connect(self._browse_run)
        self.group = QButtonGroup(self)
        for i, (radio, widget, button) in enumerate(((self.r_enum, self.enum_box, None),
                                                    (self.r_file, self.file_edit, b_file),
                                                    (self.r_run, self.run_box, b_run))):
            self.group.addButton(radio, i)
            grid.addWidget(radio, 2 * i, 0, 1, 2)
            row = QHBoxLayout()
            row.setContentsMargins(24, 0, 0, 6)
            row.addWidget(widget, 1)
            if button is not None:
                row.addWidget(button)
            grid.addLayout(row, 2 * i + 1, 0, 1, 2)
        lay.addLayout(grid)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("dim")
        lay.addWidget(self.note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Load")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        has_enum = self.enum_box.count() > 0
        self.r_enum.setEnabled(has_enum)
        self.enum_box.setEnabled(has_enum)
        if not has_enum:
            self.r_enum.setToolTip("This network mirrors no torchvision model with pretrained weights")
        (self.r_enum if has_enum else self.r_file).setChecked(True)
        self.group.idToggled.connect(lambda *_: self._update())
        self.file_edit.textChanged.connect(self._update)
        self.run_box.currentTextChanged.connect(self._update)
        self.file_edit.textChanged.connect(self._typed_file)
        if recorded:
            self.choose(recorded)
        self._update()
        self.setMinimumWidth(520)

    def choose(self, source: str) -> None:
        """Preselect ``source`` (the project's recorded weights): an enum entry, a run folder or a file."""
        member = source.rsplit(".", 1)[-1] if "_Weights." in source else source
        index = self.enum_box.findData(member)
        if index >= 0 and self.r_enum.isEnabled():
            self.enum_box.setCurrentIndex(index)
            self.r_enum.setChecked(True)
        elif Path(source).is_dir():
            self.run_box.setEditText(source)
            self.r_run.setChecked(True)
        else:
            self.file_edit.setText(source)

    def _typed_file(self, text: str) -> None:
        if text:  # typing a path chooses the file source
            self.r_file.setChecked(True)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights file", self.file_edit.text(), FILE_FILTER)
        if path:
            self.file_edit.setText(path)

    def _browse_run(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder", self.run_box.currentText())
        if path:
            self.run_box.setEditText(path)
            self.r_run.setChecked(True)

    def spec_text(self) -> str:
        """The chosen source: ``DEFAULT``, an enum member name, a file path or a run folder."""
        if self.r_enum.isChecked():
            return str(self.enum_box.currentData() or "")
        if self.r_file.isChecked():
            return self.file_edit.text().strip()
        data = self.run_box.currentData()
        text = self.run_box.currentText().strip()
        return str(data) if data and self.run_box.itemText(self.run_box.currentIndex()) == text else text

    def _update(self) -> None:
        spec = self.spec_text()
        ok = bool(spec)
        if self.r_enum.isChecked():
            self.note.setText("Downloaded once into torch hub's cache (checked against its hash), "
                              "then read from there.")
        elif self.r_file.isChecked():
            self.note.setText("Tensors are matched by name (a common prefix such as module. is stripped); "
                              "those whose shape differs keep their fresh initialisation.")
        else:
            self.note.setText("The run's last checkpoint: layers that did not change since keep their weights.")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)


class _LoadThread(QThread):
    progressed = Signal(int, int)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, graph: Graph, spec_text: str, arch: str | None, cancel: threading.Event,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph, self.spec_text, self.arch, self.cancel = graph, spec_text, arch, cancel

    def run(self) -> None:
        open_torch_libraries()  # its first import would hold the interpreter (and the window) 0.3-0.5 s
        try:
            result = load_weights_into(self.graph, self.spec_text, self.arch, self.progressed.emit, self.cancel.is_set)
        except Exception as exc:  # one line for the status bar, never a traceback
            self.failed.emit(_one_line(exc))
            return
        self.succeeded.emit(result)


def load_weights_into(graph: Graph, spec_text: str, arch: str | None, progress: Any = None,
                      cancel: Any = None) -> LoadedWeights:
    """Compile ``graph`` and load the weights ``spec_text`` names into it (any thread)."""
    from core.compiler import compile_graph
    from core.training.weights import fetch, load_weights, resolve

    spec = resolve(spec_text, arch)
    model = compile_graph(graph)
    state, sha = fetch(spec, progress, cancel)
    report = load_weights(model, state, spec.label, sha)
    model.eval()
    return LoadedWeights(spec, report, model, graph)


def _one_line(exc: BaseException) -> str:
    from core.compiler import CompileError

    if isinstance(exc, CompileError):
        return f"the network does not compile: {exc}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


class WeightsLoader(QObject):
    """One load behind a cancellable progress dialog: ``loaded(LoadedWeights)``, ``failed(message)``
    or ``cancelled()``; exactly one of them, once."""

    loaded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, graph: Graph, spec_text: str, arch: str | None, parent: QWidget) -> None:
        super().__init__(parent)
        self.spec_text = spec_text
        self._cancel = threading.Event()
        self.dialog = QProgressDialog(f"Loading weights: {spec_text}", "Cancel", 0, 0, parent)
        self.dialog.setWindowTitle("Load Pretrained Weights")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(400)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self.cancel)
        self.worker = _LoadThread(graph, spec_text, arch, self._cancel, self)
        self.worker.progressed.connect(self._progress)
        self.worker.succeeded.connect(self._succeeded)
        self.worker.failed.connect(self._failed)
        self.worker.finished.connect(self._finished)
        self._held = False

    def start(self) -> None:
        hold_gc()  # a collection on the worker would finalize Qt wrappers there
        self._held = True
        self.worker.start()

    def cancel(self) -> None:
        """Stop at the next chunk of the download (nothing half-written is left)."""
        self._cancel.set()
        self.dialog.setLabelText("Cancelling…")

    def running(self) -> bool:
        return self.worker.isRunning()

    def _progress(self, done: int, total: int) -> None:
        if total > 0:
            self.dialog.setMaximum(1000)
            self.dialog.setValue(min(1000, int(1000 * done / total)))
            self.dialog.setLabelText(f"Downloading {self.spec_text}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")

    def _succeeded(self, result: LoadedWeights) -> None:
        if self._cancel.is_set():
            self.cancelled.emit()
        else:
            self.loaded.emit(result)

    def _failed(self, message: str) -> None:
        from core.training.weights import WeightsCancelled

        if self._cancel.is_set() or message.startswith(WeightsCancelled.__name__):
            self.cancelled.emit()
        else:
            self.failed.emit(message)

    def _finished(self) -> None:
        self.worker.wait()  # "finished" comes just before the thread ends: let it end before deleting it
        if self._held:
            self._held = False
            release_gc()
        self.dialog.reset()
        self.dialog.hide()
        self.dialog.deleteLater()
        # The loader itself stays, a small QObject owned by its parent (the window): deleting it, and
        # its finished thread with it, right after the run crashed in ~QObject now and then.


__all__ = ["LoadWeightsDialog", "LoadedWeights", "WeightsLoader", "enum_choices", "load_weights_into", "run_choices"]
