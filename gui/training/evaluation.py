"""The Training dock's Evaluation tab: where a trained classifier errs (issue 13, section 3).

It shows one run's :class:`core.training.evaluate.Evaluation`: the confusion matrix as a heat map
(:class:`gui.training.confusion.ConfusionView`; hover a cell for what it holds, click it for the
grid of its samples with their predicted probability, click a sample to open it in the
Predictions tab with its Grad-CAM), the per-class table (precision, recall, F1, support; click a
heading to sort) and the most confused pairs (click one to show its cell). Export CSV writes the
per-class table, Export PNG the matrix, both atomically.

Which run: the one selected in the Runs tab, else the run that just ended in this panel. The tab
reads the run folder's ``evaluation.json``; a run without one is evaluated when the tab is opened
on it, and any run again with Evaluate. Evaluating (and reading a cell's images) runs on a worker
thread with progress and Cancel; the garbage collector is held meanwhile (see
:mod:`gui.gc_pause`), and the run's model and data stay open for the next cell and the
Predictions tab. Everything it computes is :mod:`core.training.evaluate`'s; this module only shows.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent, QShowEvent, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.project import atomic_write_bytes, atomic_write_text
from core.training.evaluate import Evaluation, EvaluationError, load_run_evaluation
from gui.gc_pause import hold_gc, release_gc
from gui.theme import Theme, current_theme
from gui.training.confusion import ConfusionView, cell_tooltip
from gui.training.images import ProgressLine, to_qimage

if TYPE_CHECKING:
    from gui.training.dock import TrainingPanel

EMPTY_TEXT = ("Train a run, or select one in the Runs tab, and press Evaluate: the confusion matrix, the "
              "per-class precision, recall and F1, and the samples of any cell show here.")
MAX_GRID = 120  # thumbnails shown for one cell (the most confident first); the heading says how many there are
THUMB = 72  # px
MIN_FIT_HEIGHT = 220  # px of the tab kept in view in a low dock (below it, the panel scrolls as before)
COLUMNS = ("Class", "Precision", "Recall", "F1", "Support")
_SORT_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass
class RunContext:
    """A run opened for looking at its samples: its model (CPU, eval mode), graph analysis and data."""

    run_dir: Path
    model: Any
    analysis: Any
    data: Any  # core.training.data.DataSource
    predict_model: Any = None  # the Predictions tab's own copy (it computes on its thread while we evaluate)

    @property
    def classes(self) -> list[str]:
        return list(self.data.classes)


@dataclass
class CellSamples:
    """The samples of one confusion cell as the grid shows them (the most confident first)."""

    true_idx: int
    pred_idx: int
    indices: list[int]  # dataset indices, in the order shown
    confidence: list[float]  # predicted probability of each
    total: int  # samples in the cell (more than shown when over MAX_GRID)
    images: list[np.ndarray] | None = None  # uint8 H×W×C, once read


@dataclass
class SampleChoice:
    """A sample clicked in the grid, with what the Predictions tab needs to show it."""

    context: RunContext
    cell: CellSamples
    position: int  # in cell.indices
    caption: str


def cell_samples(ev: Evaluation, true_idx: int, pred_idx: int, limit: int = MAX_GRID) -> CellSamples:
    """The cell's samples (:meth:`Evaluation.samples` with their confidences), most confident first."""
    where = ev.indices if ev.indices is not None else range(len(ev.truth))
    rows = [(conf, int(i)) for i, t, p, conf in zip(where, ev.truth, ev.predicted, ev.confidence, strict=True)
            if t == true_idx and p == pred_idx]
    rows.sort(key=lambda r: (-r[0], r[1]))
    shown = rows[:limit]
    return CellSamples(true_idx, pred_idx, [i for _, i in shown], [c for c, _ in shown], len(rows))


class _Signals(QObject):
    """Carries a worker thread's progress and result to the GUI thread."""

    progress = Signal(int, int, int)  # job number, done, total
    done = Signal(int, object)  # job number, result or the error's sentence


class _Job:
    """One piece of background work: open the run (unless ``context`` is given), then ``work(context)``."""

    def __init__(self, number: int, run_dir: Path, context: RunContext | None,
                 work: Callable[[RunContext, _Job], Any], signals: _Signals) -> None:
        self.number = number
        self.run_dir = run_dir
        self.context = context
        self.work = work
        self.signals = signals
        self.cancelled = threading.Event()

    def progress(self, done: int, total: int) -> None:
        self.signals.progress.emit(self.number, done, total)

    def run(self) -> None:
        result: Any
        try:
            ctx = self.context or open_run(self.run_dir)
            result = (ctx, self.work(ctx, self))
        except EvaluationError as exc:
            result = str(exc)
        except Exception as exc:  # the thread's edge: whatever else fails is still one sentence
            text = str(exc).strip().splitlines()
            result = f"{type(exc).__name__}: {text[0] if text else ''}"
        try:
            self.signals.done.emit(self.number, result)
        except RuntimeError:  # the view was closed meanwhile: nobody is waiting
            release_gc()


def open_run(run_dir: Path) -> RunContext:
    """The run's model (last checkpoint) and data, opened as it trained (runs on a worker thread)."""
    from core.analysis import analyze
    from core.training.data import DatasetError
    from core.training.evaluate import load_run_model
    from core.training.session import open_data

    project, config, model, _ = load_run_model(run_dir)
    analysis = analyze(project.graph)
    try:
        data = open_data(config, analysis.input_shape)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    model.eval()
    return RunContext(Path(run_dir), model, analysis, data)


def _evaluate(ctx: RunContext, job: _Job) -> Evaluation:
    from core.training.evaluate import evaluate_run

    try:
        return evaluate_run(ctx.run_dir, model=ctx.model, data=ctx.data, progress=job.progress,
                            cancel=job.cancelled.is_set)
    finally:
        ctx.model.cpu()  # the evaluation ran on the run's device; predictions compute on the CPU


class EvaluationView(QWidget):
    """The Evaluation tab; see the module docstring."""

    message = Signal(str)  # status-bar text
    sample_opened = Signal(object)  # SampleChoice

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir: Path | None = None
        self.evaluation: Evaluation | None = None
        self.context: RunContext | None = None
        self.cell: CellSamples | None = None
        self._signals = _Signals(self)
        self._signals.progress.connect(self._progress)
        self._signals.done.connect(self._done)
        self._number = 0
        self._job: _Job | None = None  # running
        self._thread: threading.Thread | None = None
        self._pending: _Job | None = None  # waits for the running one
        self._gc_held = 0

        self.b_evaluate = QPushButton("Evaluate")
        self.b_evaluate.setToolTip("Measure the run's last checkpoint on its validation set")
        self.b_evaluate.clicked.connect(lambda: self.evaluate())
        self.b_cancel = QPushButton("Cancel")
        self.b_cancel.clicked.connect(self.cancel)
        self.b_cancel.hide()
        self.b_csv = QPushButton("Export CSV…")
        self.b_csv.setToolTip("Save the per-class table (class, precision, recall, F1, support)")
        self.b_csv.clicked.connect(self._csv_dialog)
        self.b_png = QPushButton("Export PNG…")
        self.b_png.setToolTip("Save the confusion matrix as a picture")
        self.b_png.clicked.connect(self._png_dialog)
        self.progress = ProgressLine(1000)
        self.progress.hide()
        self.summary = QLabel("")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem = QLabel("")  # one line: what failed and where
        self.problem.setWordWrap(True)
        self.problem.hide()
        bar = QHBoxLayout()
        bar.addWidget(self.b_evaluate)
        bar.addWidget(self.b_cancel)
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.b_csv)
        bar.addWidget(self.b_png)

        self.matrix = ConfusionView()
        self.matrix.cell_clicked.connect(self.show_cell)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.model.setSortRole(_SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        # The names as wide as they are, the figures share the rest (stretched, the names got "c…").
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for c in range(1, len(COLUMNS)):
            self.table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Click a heading to sort (F1 lowest first shows the weakest classes)")
        self.pairs = QLabel("")
        self.pairs.setWordWrap(True)
        self.pairs.linkActivated.connect(self._pair_clicked)
        self.pairs.setToolTip("Click a pair to see its samples")
        table_box = QWidget()
        tv = QVBoxLayout(table_box)
        tv.setContentsMargins(0, 0, 0, 0)
        tv.addWidget(self.table, 1)
        tv.addWidget(self.pairs)
        self.grid_title = QLabel("Click a cell of the matrix to see its samples.")
        self.grid_title.setWordWrap(True)
        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 16, THUMB + 24))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setWordWrap(False)
        self.grid.itemActivated.connect(self._sample_clicked)
        self.grid.itemClicked.connect(self._sample_clicked)
        grid_box = QWidget()
        gv = QVBoxLayout(grid_box)
        gv.setContentsMargins(0, 0, 0, 0)
        gv.addWidget(self.grid_title)
        gv.addWidget(self.grid, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.matrix)
        self.split.addWidget(table_box)
        self.split.addWidget(grid_box)
        for i in range(3):
            self.split.setStretchFactor(i, 1)
        self.split.setSizes([420, 420, 420])

        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.split)
        layout = self._layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self._scroll: QScrollArea | None = None  # the dock's, watched for its height (see _fit_to_dock)
        layout.addLayout(bar)
        layout.addWidget(self.progress)
        layout.addWidget(self.problem)
        layout.addWidget(self.stack, 1)
        self.set_theme(current_theme())
        self._sync()

    def set_theme(self, t: Theme) -> None:
        """Restyle the texts coloured by the theme (the matrix paints with the current theme)."""
        self.problem.setStyleSheet(f"color: {t.error};")
        self.grid_title.setStyleSheet(f"color: {t.text_dim};")
        self.empty.setStyleSheet(f"color: {t.text_dim}; padding: 24px;")
        self.matrix.update()

    # ------------------------------------------------------------------------------ fitting in

    def showEvent(self, event: QShowEvent) -> None:  # Qt override
        super().showEvent(event)
        if self._scroll is None:
            parent = self.parentWidget()
            while parent is not None and not isinstance(parent, QScrollArea):
                parent = parent.parentWidget()
            if parent is not None:
                self._scroll = parent
                parent.viewport().installEventFilter(self)
        self._fit_to_dock()

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        self._fit_to_dock()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override: the dock's viewport resized
        if event.type() == QEvent.Type.Resize:
            self._fit_to_dock()
        return False

    def _fit_to_dock(self) -> None:
        """Keep the tab's content in the part of the dock that shows without scrolling.

        The Training panel scrolls inside its dock, as tall as its tallest tab needs (Predictions);
        in a dock lower than that, the matrix's last rows and the grid's lower half would sit below
        the fold. The bottom margin takes what the dock hides, while what remains is enough to read.
        """
        scroll = self._scroll
        inner = scroll.widget() if scroll is not None else None
        hidden = 0
        if scroll is not None and inner is not None and inner.isAncestorOf(self):
            bottom = self.mapTo(inner, QPoint(0, self.height())).y()
            hidden = max(0, bottom - scroll.viewport().height())
            if self.height() - hidden < MIN_FIT_HEIGHT:
                hidden = max(0, self.height() - MIN_FIT_HEIGHT)
        margins = self._layout.contentsMargins()
        if margins.bottom() != 6 + hidden:
            self._layout.setContentsMargins(6, 6, 6, 6 + hidden)

    # ---------------------------------------------------------------------------------- the run

    def set_run(self, run_dir: Path | None, evaluate_missing: bool = False) -> None:
        """Show ``run_dir``'s evaluation (its ``evaluation.json``); without one, say so, or evaluate it
        (``evaluate_missing``). The same run again re-reads the file only when none is shown."""
        if run_dir is not None and run_dir == self.run_dir and self.evaluation is not None:
            return
        if run_dir != self.run_dir:
            self.cancel()
            self.context = None
            self._show(None)
        self.run_dir = run_dir
        self.problem.hide()
        if run_dir is None:
            self.empty.setText(EMPTY_TEXT)
        else:
            try:
                ev = load_run_evaluation(run_dir)
            except EvaluationError as exc:
                self.show_problem(str(exc))
                ev = None
            if ev is not None:
                self._show(ev)
            elif evaluate_missing and self.problem.isHidden() and (run_dir / "checkpoints").is_dir():
                self.evaluate()
            else:
                self.empty.setText(f"Run {run_dir.name} has not been evaluated yet: press Evaluate to measure it on "
                                   "its validation set.")
        self._sync()

    def evaluate(self) -> bool:
        """Evaluate the run's last checkpoint on a worker thread (progress and Cancel show meanwhile)."""
        if self.run_dir is None or self.evaluating:
            return False
        self.problem.hide()
        self.progress.setValue(0)
        self.summary.setText(f"Evaluating {self.run_dir.name}…")
        self._start(_evaluate)
        return True

    def cancel(self) -> None:
        """Stop the running evaluation before its next batch (what is shown stays)."""
        self._pending = None
        if self._job is not None:
            self._job.cancelled.set()

    @property
    def busy(self) -> bool:
        """A worker thread runs (an evaluation, or a cell's images being read)."""
        return self._job is not None

    @property
    def evaluating(self) -> bool:
        """This run is being evaluated (or its evaluation waits for the thread)."""
        return any(j is not None and j.work is _evaluate and j.run_dir == self.run_dir and not j.cancelled.is_set()
                   for j in (self._job, self._pending))

    def shutdown(self, ms: int = 30_000) -> None:
        """Cancel and wait for the worker thread (a closing window calls this)."""
        self.cancel()
        thread = self._thread
        if thread is not None:
            thread.join(ms / 1000)
        from PySide6.QtCore import QCoreApplication

        QCoreApplication.sendPostedEvents(self._signals)  # deliver the result: it ends the GC hold

    # --------------------------------------------------------------------------------- showing

    def show_evaluation(self, ev: Evaluation) -> None:
        """Show ``ev`` (from a test, or a file read elsewhere)."""
        self._show(ev)
        self._sync()

    def _show(self, ev: Evaluation | None) -> None:
        self.evaluation = ev
        self.cell = None
        self.grid.clear()
        self.grid_title.setText("Click a cell of the matrix to see its samples.")
        if ev is None:
            self.matrix.set_matrix([], [])
            self.model.removeRows(0, self.model.rowCount())
            self.pairs.setText("")
            self.summary.setText("")
            return
        self.matrix.set_matrix(ev.classes, ev.confusion)
        self.table.setSortingEnabled(False)
        self.model.removeRows(0, self.model.rowCount())
        for i, row in enumerate(ev.per_class):
            items = [_item(row.name, i, number=False)]  # the class column sorts in the dataset's class order
            items += [_item(f"{v:.3f}", v) for v in (row.precision, row.recall, row.f1)]
            items.append(_item(f"{row.support:,}", row.support))
            self.model.appendRow(items)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # class order until a heading is clicked
        pairs = ev.most_confused(5)
        index = {name: i for i, name in enumerate(ev.classes)}
        links = [f"<a href='{index[a]},{index[b]}'>{_esc(a)} → {_esc(b)}</a> ({n})" for a, b, n in pairs]
        self.pairs.setText("<b>Most confused:</b> " + (" · ".join(links) if links else "none — no sample is "
                                                        "mistaken for another class"))
        self.summary.setText(summary_text(ev))

    def show_cell(self, true_idx: int, pred_idx: int) -> None:
        """List the cell's samples (their images are read on the worker thread)."""
        ev = self.evaluation
        if ev is None:
            return
        self.matrix.select(true_idx, pred_idx)
        self.grid.clear()
        heading = cell_tooltip(ev.classes, ev.confusion, true_idx, pred_idx)
        if not ev.truth:
            self.grid_title.setText(f"{heading}. This evaluation has no per-sample list: press Evaluate to see them.")
            return
        cell = self.cell = cell_samples(ev, true_idx, pred_idx)
        more = f"; the {len(cell.indices)} most confident shown" if cell.total > len(cell.indices) else ""
        self.grid_title.setText(f"{heading}{more}." + (" Click one to open it in Predictions." if cell.total else ""))
        if not cell.indices or self.run_dir is None:
            return
        split = ev.split

        def read(ctx: RunContext, job: _Job) -> CellSamples:
            from core.training.evaluate import sample_images

            cell.images = sample_images(ctx.data, cell.indices, split)
            return cell

        self.grid.addItem("Reading the samples…")
        self._start(read)

    def _fill_grid(self, cell: CellSamples) -> None:
        if cell is not self.cell or cell.images is None or self.evaluation is None:
            return  # another cell was clicked meanwhile
        self.grid.clear()
        classes = self.evaluation.classes
        truth, pred = classes[cell.true_idx], classes[cell.pred_idx]
        for k, (index, conf, image) in enumerate(zip(cell.indices, cell.confidence, cell.images, strict=True)):
            pix = QPixmap.fromImage(to_qimage(image))
            mode = (Qt.TransformationMode.FastTransformation if max(pix.width(), pix.height()) < THUMB
                    else Qt.TransformationMode.SmoothTransformation)  # small images stay crisp pixels
            pix = pix.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, mode)
            item = QListWidgetItem(pix, f"{conf:.0%}")
            item.setData(Qt.ItemDataRole.UserRole, k)
            item.setToolTip(f"sample {index}: true {truth}, predicted {pred} with probability {conf:.1%}")
            self.grid.addItem(item)

    def _sample_clicked(self, item: QListWidgetItem) -> None:
        k = item.data(Qt.ItemDataRole.UserRole)
        cell, ctx = self.cell, self.context
        if k is None or cell is None or ctx is None or cell.images is None or self.evaluation is None:
            return
        classes = self.evaluation.classes
        caption = (f"sample {cell.indices[k]} of {ctx.run_dir.name}'s {self.evaluation.split} set · true "
                   f"{classes[cell.true_idx]}, predicted {classes[cell.pred_idx]} ({cell.confidence[k]:.0%})")
        self.sample_opened.emit(SampleChoice(ctx, cell, int(k), caption))

    def _pair_clicked(self, link: str) -> None:
        t, p = (int(v) for v in link.split(","))
        self.show_cell(t, p)

    # ---------------------------------------------------------------------------------- export

    def export_csv(self, path: str | Path) -> bool:
        """Write the per-class table to ``path`` (atomically); False with the reason shown when it can't."""
        if self.evaluation is None:
            return False
        try:
            atomic_write_text(Path(path), self.evaluation.to_csv())
        except OSError as exc:
            return self.show_problem(f"Cannot write {path}: {exc.strerror or exc}")
        self.message.emit(f"Saved the per-class table to {path}")
        return True

    def export_png(self, path: str | Path) -> bool:
        """Write the confusion matrix picture to ``path`` (atomically); False with the reason shown when it can't."""
        if self.evaluation is None:
            return False
        try:
            atomic_write_bytes(Path(path), self.matrix.png_bytes())
        except OSError as exc:
            return self.show_problem(f"Cannot write {path}: {exc.strerror or exc}")
        self.message.emit(f"Saved the confusion matrix to {path}")
        return True

    def _csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the per-class table", self._suggest(".csv"),
                                              "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def _png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the confusion matrix", self._suggest(".png"),
                                              "PNG image (*.png)")
        if path:
            self.export_png(path)

    def _suggest(self, suffix: str) -> str:
        name = f"evaluation-{self.run_dir.name}" if self.run_dir is not None else "evaluation"
        folder = self.run_dir if self.run_dir is not None else Path.home()
        return str(folder / f"{name}{suffix}")

    def show_problem(self, text: str) -> bool:
        """One line under the buttons saying what failed (never a traceback); returns False."""
        self.problem.setText(text.splitlines()[0] if text else "")
        self.problem.show()
        self.message.emit(text)
        return False

    # ---------------------------------------------------------------------------------- worker

    def _start(self, work: Callable[[RunContext, _Job], Any]) -> None:
        assert self.run_dir is not None
        self._number += 1
        job = _Job(self._number, self.run_dir, self.context, work, self._signals)
        if self._job is not None:
            self._pending = job  # after the running one (a newer request replaces an older waiting one)
        else:
            self._launch(job)
        self._sync()

    def _launch(self, job: _Job) -> None:
        if self.context is not None and self.context.run_dir == job.run_dir:
            job.context = self.context  # opened by the job before it
        self._job = job
        hold_gc()  # torch on the worker would start collections there (see gui.gc_pause)
        self._gc_held += 1
        self._thread = threading.Thread(target=job.run, name="evaluation", daemon=True)
        self._thread.start()

    def _progress(self, number: int, done: int, total: int) -> None:
        if self._job is not None and number == self._job.number and total:
            self.progress.setValue(int(1000 * done / total))
            self.summary.setText(f"Evaluating {self._job.run_dir.name}… {done:,} of {total:,} samples")

    def _done(self, number: int, result: Any) -> None:
        if self._gc_held:
            self._gc_held -= 1
            release_gc()
        job, self._job, self._thread = self._job, None, None
        current = job is not None and job.number == number and job.run_dir == self.run_dir
        if current and job is not None:
            if isinstance(result, str):
                cancelled = job.cancelled.is_set()
                if job.work is _evaluate:
                    self.summary.setText(summary_text(self.evaluation) if self.evaluation is not None else "")
                self.show_problem("Evaluation cancelled." if cancelled else f"Evaluation failed: {result}")
            else:
                ctx, value = result
                self.context = ctx
                if isinstance(value, Evaluation):
                    self._show(value)
                    self.message.emit(f"Evaluated {ctx.run_dir.name}: accuracy {value.accuracy:.1%}")
                elif isinstance(value, CellSamples):
                    self._fill_grid(value)
        pending, self._pending = self._pending, None
        if pending is not None and pending.run_dir == self.run_dir:
            self._launch(pending)
        self._sync()

    def _sync(self) -> None:
        has = self.evaluation is not None
        evaluating = self.evaluating
        self.b_evaluate.setEnabled(self.run_dir is not None and not evaluating)
        self.b_cancel.setVisible(evaluating)
        self.progress.setVisible(evaluating)
        self.b_csv.setVisible(has)
        self.b_png.setVisible(has)
        if has:
            self.stack.setCurrentWidget(self.split)
        else:
            self.stack.setCurrentWidget(self.empty)
            if evaluating:
                self.empty.setText("Evaluating… the matrix shows here when it is done.")


def summary_text(ev: Evaluation) -> str:
    """The line above the matrix: which run and epoch, on what, and the headline numbers."""
    where = ev.extra.get("run")
    epoch = ev.extra.get("epoch")
    split = "validation set" if ev.split == "val" else "training set (the data has no validation split)"
    parts = [f"<b>{_esc(Path(str(where)).name)}</b>" if where else "", f"epoch {epoch}" if epoch else "",
             f"{split}, {ev.count or sum(map(sum, ev.confusion)):,} samples", f"accuracy <b>{ev.accuracy:.1%}</b>",
             f"top-5 {ev.top5:.1%}" if ev.top5 is not None else "", f"macro F1 {ev.macro_f1:.3f}"]
    return " · ".join(p for p in parts if p)


def _item(text: str, key: Any, number: bool = True) -> QStandardItem:
    item = QStandardItem(text)
    item.setData(key, _SORT_ROLE)
    if number:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -------------------------------------------------------------------------------- the panel's side


def open_in_predictions(panel: TrainingPanel, choice: SampleChoice) -> None:
    """Show a clicked sample in the panel's Predictions tab with the evaluated run's model (as Load
    weights does for predictions, without making it the next run's start): its top-5 and Grad-CAM."""
    import torch

    ctx, cell = choice.context, choice.cell
    if cell.images is None:
        return
    panel.tabs.setCurrentWidget(panel.predict)  # first: the tab's own refresh would replace the sample
    if ctx.predict_model is None:
        ctx.predict_model = copy.deepcopy(ctx.model)
    model = ctx.predict_model
    panel.predict_model = model
    # What the panel's own later refreshes of the tab name and normalise by (as its load_weights sets).
    panel._classes = ctx.classes
    panel._norm = (tuple(ctx.data.mean), tuple(ctx.data.std))
    view = panel.predict
    images = torch.from_numpy(np.stack(cell.images).transpose(0, 3, 1, 2).copy())
    view.set_model(model, ctx.analysis, ctx.classes, ctx.data.mean, ctx.data.std)
    view.set_samples(images, [cell.true_idx] * len(cell.images), ctx.classes, ctx.data.mean, ctx.data.std)
    view.pick_sample(choice.position)
    view.source_label.setText(choice.caption)


def attach(panel: TrainingPanel) -> EvaluationView:
    """Add the Evaluation tab to ``panel`` (last) and wire it: the Runs tab's selection and the end of a
    run choose the run it shows, a clicked sample opens in Predictions, its messages reach the window."""
    view = EvaluationView()
    view.message.connect(panel.message)
    _Wiring(panel, view, panel.tabs.addTab(view, "Evaluation"))
    return view


class _Wiring(QObject):
    """The tab's connections to its panel (a child of the view, so it goes with it). The panel is held
    weakly: closures holding it kept the whole panel alive past its window, threads and all."""

    def __init__(self, panel: TrainingPanel, view: EvaluationView, index: int) -> None:
        super().__init__(view)
        self.panel = weakref.ref(panel)
        self.view = view
        self.index = index
        self.runs: Any = None  # the Runs tab, once its selection is followed
        view.sample_opened.connect(self.sample_opened)
        panel.tabs.currentChanged.connect(self.opened)
        panel.run_finished.connect(self.finished)

    def sample_opened(self, choice: SampleChoice) -> None:
        panel = self.panel()
        if panel is not None:
            open_in_predictions(panel, choice)

    def selected(self) -> None:
        panel = self.panel()
        chosen = self.runs.selected() if self.runs is not None else []
        if panel is not None and len(chosen) == 1:  # a click elsewhere (nothing selected) keeps what is shown
            self.view.set_run(Path(chosen[0].path), panel.tabs.currentWidget() is self.view and not panel.running)

    def opened(self, i: int) -> None:
        panel = self.panel()
        if i != self.index or panel is None:
            return
        if self.runs is None:
            self.runs = panel.runs  # built by now (the panel builds its tabs right after its first paint)
            self.runs.tree.itemSelectionChanged.connect(self.selected)
        run = self.view.run_dir
        if run is None:
            chosen = self.runs.selected()
            summary = panel.last_summary
            run = (Path(chosen[0].path) if len(chosen) == 1
                   else Path(summary.run_dir) if summary is not None and summary.run_dir else None)
        self.view.set_run(run, evaluate_missing=not panel.running)

    def finished(self, summary: Any) -> None:
        panel = self.panel()
        if panel is not None and summary.run_dir and summary.epochs_done:
            self.view.run_dir = None  # the folder has a new checkpoint: read it again
            self.view.set_run(Path(summary.run_dir), panel.tabs.currentWidget() is self.view)


__all__ = ["EMPTY_TEXT", "CellSamples", "EvaluationView", "RunContext", "SampleChoice", "attach", "cell_samples",
           "open_in_predictions", "open_run"]
