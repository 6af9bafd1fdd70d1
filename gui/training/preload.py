"""The training panel's heavy modules, imported on a background thread before the panel is built.

Imported on the GUI thread, torch alone froze the window for seconds. :func:`preload` starts a
:class:`Preloader` (once per process) when the Training dock is first shown or the Train menu
opens; the dock builds the panel when it reports ``done``. The cyclic collector is held off
meanwhile (:func:`hold_gc`): a collection on that thread would finalize the GUI's Qt wrappers there.
"""

from __future__ import annotations

import gc
import importlib
import threading

from PySide6.QtCore import QObject, Signal

from core.native_libs import open_torch_libraries
from gui.gc_pause import hold_gc, release_gc

# What the panel imports that takes long (torch: 2 s on an idle 2-core machine, 10 s on a busy one),
# in import order; the last one pulls in the rest of the panel.
HEAVY_MODULES = ("numpy", "torch", "pyqtgraph", "core.compiler", "core.training", "core.training.session",
                 "core.explain", "gui.training.dock")

class Preloader(QObject):
    """Imports :data:`HEAVY_MODULES` once per process on a plain Python thread, then emits ``done`` (on
    the GUI thread) and ``warmed`` (the thread ends; the panel warms torch up itself, see
    :class:`~gui.training.worker.WarmUp`).
    The GUI thread keeps running meanwhile, but for the moments an extension module's initialisation
    holds the interpreter lock."""

    done = Signal()  # the modules are imported
    warmed = Signal()  # and the thread ends

    def __init__(self) -> None:
        super().__init__()
        self.started = False
        self.finished = False

    def start(self) -> None:
        if not self.started:
            self.started = True
            hold_gc()
            self.warmed.connect(self._release_gc)  # a method of a GUI-thread object: runs on the GUI thread
            threading.Thread(target=self._run, name="netcanvas-preload", daemon=True).start()

    def _run(self) -> None:
        # torch's native libraries first, without the interpreter lock: opened by the import itself, their
        # initialisers held it (and so the GUI thread) for 0.3-0.5 s.
        open_torch_libraries()
        try:
            for name in HEAVY_MODULES:
                importlib.import_module(name)
        except Exception:  # the GUI thread imports it again when it builds the panel, and says why
            self.finished = True
            self.done.emit()
            self.warmed.emit()
            return
        self.finished = True
        self.done.emit()  # queued to the GUI thread, where the preloader lives
        # Not the first-run warm-up here (torch._dynamo's ~900 modules): the panel is built meanwhile,
        # and every Qt call of the GUI thread then waited for this thread's hold of the interpreter
        # (0.6 s stalls at the first open). The panel starts it once its viewers are built.
        self.warmed.emit()

    def _release_gc(self) -> None:
        # What the imports made goes straight to the oldest generation (freeze, then unfreeze: moved, not
        # scanned). Left in the young ones, the first collections after the hold scanned all of torch
        # (~0.4 s each on the GUI thread, while the panel was being made); full collections still see it.
        gc.freeze()
        gc.unfreeze()
        release_gc()


_preloader: Preloader | None = None


def preload() -> Preloader:
    """Start importing the training panel's modules in the background (call on the GUI thread)."""
    global _preloader
    if _preloader is None:
        _preloader = Preloader()
    _preloader.start()
    return _preloader


__all__ = ["HEAVY_MODULES", "Preloader", "preload"]
