"""The window's fine-tuning actions (issue 13): Train ▸ Load Pretrained Weights… and Replace Head
for N Classes…, and what a load does when it finishes.

A finished load (:class:`gui.dialogs.weights.WeightsLoader`):

- shows the weights report as one status-bar line (:meth:`WeightsReport.summary`);
- draws the weight map on the canvas (:mod:`gui.canvas.weight_map`): pretrained, partly loaded,
  new, or "from run" for a run's checkpoint;
- records the source and its hash in the project (``"weights"``, saved with it; the document is
  marked modified — not an undo step, as the weights are not part of the graph);
- hands the loaded model and the graph it was compiled from to the Training panel as the weights
  the next run starts from, exactly as its Runs ▸ Load weights does
  (``TrainingPanel.loaded_weights`` → ``RunRequest.weights`` → :func:`core.compiler.carry_weights`):
  every layer unchanged since keeps its loaded weights, the replaced head starts fresh.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QInputDialog

from gui.canvas.weight_map import set_weight_map, weight_map
from gui.dialogs.weights import LoadedWeights, LoadWeightsDialog, WeightsLoader
from gui.finetune_commands import ReplaceHeadCommand

if TYPE_CHECKING:
    from gui.document import Document
    from gui.main_window import MainWindow

STATUS_MS = 20_000  # the weights report stays in the status bar this long (it is read, not glanced at)


def install_finetune(window: MainWindow) -> list[QAction]:
    """Add the actions to the Train menu (after its run actions); the window keeps them."""
    ref = weakref.ref(window)
    actions = []
    for text, slot, tip in (
            ("Load Pretrained &Weights…", lambda: _call(ref, load_pretrained),
             "Load torchvision's pretrained weights, a weights file or a run's checkpoint into the network"),
            ("Replace &Head for N Classes…", lambda: _call(ref, ask_replace_head),
             "Give the last Linear / 1×1 conv before the Output one output per class of your data")):
        action = QAction(text, window)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False, f=slot: f())
        actions.append(action)
    menu = window.training_menu
    menu.addSeparator()
    menu.addActions(actions)
    return actions


def _call(ref: weakref.ref[MainWindow], fn: Any) -> None:
    window = ref()
    if window is not None:
        fn(window)


def _doc(window: MainWindow) -> Document:
    doc = window.doc
    assert doc is not None  # a window always shows a document
    return doc


def _arch(window: MainWindow) -> str | None:
    from core.training.weights import project_arch

    return project_arch(_doc(window).project)


def _runs_root(window: MainWindow) -> Any:
    from gui.training.runs import default_runs_root

    return default_runs_root(_doc(window))


def load_pretrained(window: MainWindow, spec_text: str | None = None) -> WeightsLoader | None:
    """Ask for a source (unless ``spec_text`` is given) and start loading it; the loader, or ``None``
    when the user cancelled the dialog."""
    arch = _arch(window)
    if spec_text is None:
        dialog = LoadWeightsDialog(arch, _runs_root(window), window, recorded=recorded_source(_doc(window)))
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            spec_text = dialog.spec_text()
        finally:
            dialog.deleteLater()
    doc = _doc(window)
    loader = WeightsLoader(doc.graph.copy(), spec_text, arch, window)
    doc_ref = weakref.ref(doc)
    win_ref = weakref.ref(window)

    def done(result: LoadedWeights) -> None:
        w, d = win_ref(), doc_ref()
        if w is not None and d is not None and w.doc is d:
            apply_loaded(w, result)

    def failed(message: str) -> None:
        w = win_ref()
        if w is not None:
            w.show_status(f"Cannot load the weights: {message}", STATUS_MS)

    def cancelled() -> None:
        w = win_ref()
        if w is not None:
            w.show_status("Loading the weights was cancelled; nothing was changed", STATUS_MS)

    loader.loaded.connect(done)
    loader.failed.connect(failed)
    loader.cancelled.connect(cancelled)
    window.show_status(f"Loading the weights {spec_text}…", STATUS_MS)
    loader.start()
    window.weights_loader = loader  # type: ignore[attr-defined]  # tests wait on it
    return loader


def apply_loaded(window: MainWindow, result: LoadedWeights) -> None:
    """A load finished: status line, weight map, the project's ``weights`` entry, the next run's start."""
    from core.training.weights import set_project_weights

    doc = _doc(window)
    report = result.report
    statuses = report.node_status(result.graph)
    if result.from_run:
        statuses = {n: "run" if s == "pretrained" else s for n, s in statuses.items()}
    wmap = set_weight_map(doc, statuses, result.graph, report.source, window.view.canvas)
    wmap.message.connect(window.show_status)
    set_project_weights(doc.project, report)
    doc.undo_stack.resetClean()  # the project file changes (its "weights" entry): unsaved
    window.training.panel.loaded_weights = (result.model, result.graph)
    window.show_status(report.summary(), STATUS_MS)


def recorded_source(doc: Document) -> str | None:
    """The project's recorded weights source (its ``"weights"`` entry), read without importing torch;
    ``core.training.weights.project_weights`` checks it when the weights are loaded."""
    entry = doc.project.extra.get("weights")
    source = entry.get("source") if isinstance(entry, dict) else None
    return source.strip() if isinstance(source, str) and source.strip() else None


def attach(window: MainWindow) -> None:
    """The window shows another document (or a new canvas): its weight map goes on that canvas; a
    project whose file records weights it was not given yet says how to load them."""
    doc = _doc(window)
    wmap = weight_map(doc)
    if wmap is not None:
        wmap.attach(window.view.canvas)
        return
    source = recorded_source(doc)
    if source is not None:
        ref = weakref.ref(window)
        text = (f"This project's weights come from {source}: a run starts from them; Train ▸ Load Pretrained "
                "Weights… shows them on the canvas")
        # after the window's own "Opened …" line, which follows set_document
        QTimer.singleShot(0, lambda: _call(ref, lambda w: w.show_status(text, STATUS_MS)))


def head_classes_default(window: MainWindow) -> int:
    """What Replace Head offers: the class count of the Training panel's dataset when it is open,
    else the head's current width."""
    from core.finetune import head_width

    panel = window.training.built
    data = getattr(getattr(panel, "settings", None), "data", None) if panel is not None else None
    if data is not None and list(data.classes):
        return len(list(data.classes))
    return head_width(_doc(window).graph) or 10


def ask_replace_head(window: MainWindow) -> bool:
    """Ask for N and replace the head: one undo step; a refusal goes to the status bar."""
    from core.finetune import head_node

    head = head_node(_doc(window).graph)
    if head is None:
        window.show_status("No head to replace: the Output is not fed by a Linear or 1×1 Conv2d layer", STATUS_MS)
        return False
    wmap = weight_map(_doc(window))
    warn = " Its pretrained weights are dropped (the new head starts fresh)." if wmap and wmap.loaded(head) else ""
    n, ok = QInputDialog.getInt(window, "Replace Head", f"Number of classes for {head}:{warn}",
                                head_classes_default(window), 1, 1_000_000)
    return ok and replace_head(window, n)


def replace_head(window: MainWindow, n: int) -> bool:
    from gui.commands import try_push

    doc = _doc(window)
    error = try_push(doc, lambda: ReplaceHeadCommand(doc, n))
    if error:
        window.show_status(f"Cannot replace the head: {error}", STATUS_MS)
        return False
    window.show_status(f"{doc.undo_stack.undoText()} (Ctrl+Z undoes it)", STATUS_MS)
    return True


__all__ = ["apply_loaded", "ask_replace_head", "attach", "head_classes_default", "install_finetune",
           "load_pretrained", "recorded_source", "replace_head"]
