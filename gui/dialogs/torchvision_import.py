"""File ▸ Import torchvision model…: pick a classification or segmentation model, import it as an
editable graph.

Importing torch/torchvision and tracing a model take seconds, so both the model list and the
import run in :class:`_Worker` threads; the dialog stays responsive and shows progress. The
import itself is the importer engineer's ``core.importer.import_torchvision(name)``.

The dialog works from the keyboard alone: focus starts in the filter, whose first match is
always the current row; Up/Down/Page Up/Page Down move through the matches without leaving the
filter, and Enter imports the current one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.native_libs import open_torch_libraries
from core.units import human


class _Worker(QThread):
    """Runs ``job()`` off the GUI thread; emits ``succeeded(result)`` or ``failed(message)``."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, job: Callable[[], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job

    def run(self) -> None:
        open_torch_libraries()  # its first import would hold the interpreter (and the window) 0.3-0.5 s
        try:
            result = self.job()
        except Exception as exc:  # shown to the user as one line, never a traceback
            self.failed.emit(f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__)
                             else str(exc))
            return
        self.succeeded.emit(result)


def _listed_rows(module: Any) -> list[tuple[str, int | None, float | None]]:
    """``(name, parameters, GFLOPs)`` of the models in torchvision's ``module`` (figures from the
    weights' metadata: no download)."""
    from torchvision import models

    out = []
    for name in models.list_models(module=module):
        params = gflops = None
        try:
            meta = models.get_model_weights(name).DEFAULT.meta
            params, gflops = meta.get("num_params"), meta.get("_ops")
        except (ValueError, AttributeError):
            pass
        out.append((name, params, gflops))
    return out


def list_classification_models() -> list[tuple[str, int | None, float | None]]:
    """``(name, parameters, GFLOPs)`` for torchvision's classification models."""
    from torchvision import models

    return _listed_rows(models)


def list_segmentation_models() -> list[tuple[str, int | None, float | None]]:
    """``(name, parameters, GFLOPs)`` for torchvision's semantic segmentation models (FCN, DeepLabV3,
    LR-ASPP; their ``out``/``aux`` dict entries import as named Outputs)."""
    from torchvision import models

    return _listed_rows(models.segmentation)


def list_all_models() -> list[tuple[str, int | None, float | None, str]]:
    """Every model the dialog offers, with its task: classification first, then segmentation."""
    return ([(*row, "classification") for row in list_classification_models()]
            + [(*row, "segmentation") for row in list_segmentation_models()])


def import_model(name: str) -> Any:
    """The importer's project for torchvision model ``name``."""
    from core.importer import import_torchvision

    return import_torchvision(name)


class TorchvisionImportDialog(QDialog):
    """Lists the models, imports the chosen one; :attr:`project` holds the result when accepted."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import torchvision model")
        self.resize(560, 560)
        self.project: Any = None
        self._note = ""  # the status line under the list once it is loaded
        self.worker: _Worker | None = None
        self._gc_held = False  # a hold_gc() of ours is on (the worker runs)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter models (e.g. resnet, efficientnet)")
        self.filter.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Parameters", "GFLOPs", "Task"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.status = QLabel("Loading torchvision's model list…")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # busy: torch gives no progress for import or tracing
        self.progress.setTextVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setEnabled(False)
        self.import_button.setDefault(True)  # Enter in the list imports (the filter handles its own Enter)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.filter)
        lay.addWidget(self.tree, 1)
        lay.addWidget(self.status)
        lay.addWidget(self.progress)
        lay.addWidget(self.buttons)
        self.filter.textChanged.connect(self._filter)
        self.filter.installEventFilter(self)
        self.tree.currentItemChanged.connect(lambda *_: self._update_button())
        self.tree.itemDoubleClicked.connect(lambda *_: self.start_import())
        self.filter.setFocus()
        self._run(list_all_models, self._listed, "Loading torchvision's model list…")

    def _busy(self) -> bool:
        return self.worker is not None and self.worker.isRunning()

    def _run(self, job: Callable[[], Any], done: Callable[[Any], None], message: str) -> None:
        from gui.gc_pause import hold_gc

        self.status.setText(message)
        self.progress.show()
        # Building and tracing a model allocates enough to start collections on the worker, which
        # would finalize the GUI's dropped Qt wrappers there (a Qt abort): the collector waits.
        if not self._gc_held:
            hold_gc()
            self._gc_held = True
        self.worker = _Worker(job, self)
        self.worker.succeeded.connect(done)
        self.worker.failed.connect(self._failed)
        self.worker.start()

    def _join(self) -> None:
        # A worker emits its result just before its run() returns: wait for that, so the dialog
        # is no longer busy when it enables Import or takes the next Enter.
        if self.worker is not None:
            self.worker.wait()
        self._release_gc()

    def _release_gc(self) -> None:
        from gui.gc_pause import release_gc

        if self._gc_held:
            self._gc_held = False
            release_gc()

    def _listed(self, rows: list[tuple[str, int | None, float | None, str]]) -> None:
        self._join()
        self.progress.hide()
        seg = sum(1 for row in rows if row[3] == "segmentation")
        kinds = f"{len(rows) - seg} classification" + (f" and {seg} segmentation" if seg else "")
        self._note = f"{kinds} models. Importing traces the model with torch.fx; no weights are downloaded."
        self.status.setText(self._note)
        for name, params, gflops, task in rows:
            item = QTreeWidgetItem([name, human(params), f"{gflops:.2f}" if gflops is not None else "?", task])
            for col in (1, 2):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.tree.addTopLevelItem(item)
        self._filter(self.filter.text())

    def _filter(self, text: str) -> None:
        words = text.lower().split()
        first = None
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setHidden(not all(w in item.text(0) for w in words))
            if first is None and not item.isHidden():
                first = item
        current = self.tree.currentItem()
        if current is None or current.isHidden():
            # The current row is always a visible match, so Enter imports what the list shows.
            self.tree.setCurrentItem(first)  # None clears it: nothing matches
        current = self.tree.currentItem()
        if current is not None:
            current.setSelected(True)
            self.tree.scrollToItem(current)
        if self._note and not self._busy():
            self.status.setText(self._note if first is not None or not words
                                else f"No model name contains “{text.strip()}”")
        self._update_button()

    def _update_button(self) -> None:
        self.import_button.setEnabled(self.selected_name() is not None and not self._busy())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """In the filter field, the arrow and page keys move through the list and Enter imports."""
        if watched is self.filter and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
                QApplication.sendEvent(self.tree, QKeyEvent(event.type(), key, event.modifiers()))
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.start_import()
                return True  # handled here: the dialog's default button must not import twice
        return super().eventFilter(watched, event)

    def selected_name(self) -> str | None:
        item = self.tree.currentItem()
        return item.text(0) if item is not None and not item.isHidden() else None

    def start_import(self) -> None:
        name = self.selected_name()
        if name is None or self._busy():
            return
        self.import_button.setEnabled(False)
        self.tree.setEnabled(False)
        self._run(lambda: import_model(name), self._imported, f"Importing {name}… (tracing the model)")

    def _imported(self, project: Any) -> None:
        self._join()
        self.progress.hide()
        self.project = project
        self.accept()

    def _failed(self, message: str) -> None:
        self._join()
        self.progress.hide()
        self.tree.setEnabled(True)
        self._update_button()
        self.status.setText(f"<span style='color:#d92d20'>{message}</span>")
        self.status.setProperty("role", "error")

    def done(self, result: int) -> None:
        # Closing while a worker runs: wait for it so no thread outlives its dialog.
        if self.worker is not None:
            self.worker.wait()
        self._release_gc()
        super().done(result)


__all__ = ["TorchvisionImportDialog", "import_model", "list_all_models", "list_classification_models",
           "list_segmentation_models"]
