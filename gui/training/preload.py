"""The training panel's heavy modules, imported on a background thread before the panel is built.

Imported on the GUI thread, torch alone froze the window for seconds. :func:`preload` starts a
:class:`Preloader` (once per process) when the Training dock is first shown or the Train menu
opens; the dock builds the panel when it reports ``done``. The cyclic collector is held off
meanwhile (:func:`hold_gc`): a collection on that thread would finalize the GUI's Qt wrappers there.

The editor also starts it a few seconds after its window shows (:func:`preload_when_idle`), with
torch's first-run warm-up on the same thread: most users open the Training dock later than that, and
then find everything imported and warm. Done while the window is idle, that work costs the GUI thread
nothing it would notice; done beside the panel's making and first paints (the dock opened first), every
Python call of the GUI thread shared the interpreter with it, and a 40 ms paint became 60-100 ms.
"""

from __future__ import annotations

import importlib
import threading

from PySide6.QtCore import QObject, QTimer, Signal

from core.native_libs import open_torch_libraries
from gui.gc_pause import hold_gc, release_gc_after_imports
from gui.idle_gate import IdleGate, polite_imports, shared_gate

# What the panel imports that takes long (torch: 2 s on an idle 2-core machine, 10 s on a busy one),
# in import order; the last one pulls in the rest of the panel.
HEAVY_MODULES = ("numpy", "torch", "pyqtgraph", "core.compiler", "core.training", "core.training.session",
                 "core.explain", "gui.training.dock")

# How long after the editor's window shows it starts the preload by itself (gui.app): after the first
# paints and the project's analysis, before most users reach for the Training dock.
IDLE_PRELOAD_MS = 2500


class Preloader(QObject):
    """Imports :data:`HEAVY_MODULES` once per process on a plain Python thread, then emits ``done`` (on
    the GUI thread) and ``warmed`` (the thread ends). Started for the dock, it leaves torch's warm-up to the
    panel (:class:`~gui.training.worker.WarmUp`, once the panel is made); started idle (``warm``), it warms
    torch up itself before ``done``, so a dock opened meanwhile is made after both, not beside them.
    The GUI thread keeps running meanwhile, but for the moments an extension module's initialisation
    holds the interpreter lock."""

    done = Signal()  # the modules are imported
    warmed = Signal()  # and the thread ends

    def __init__(self) -> None:
        super().__init__()
        self.started = False
        self.finished = False
        self.warm = False  # warm torch up on the thread too (an idle start)
        self.gate: IdleGate | None = None  # the thread's imports give way to the GUI thread's bursts of work

    def start(self, warm: bool = False) -> None:
        if not self.started:
            self.started = True
            self.warm = warm
            hold_gc()
            self.gate = shared_gate()
            self.warmed.connect(self._release_gc)  # a method of a GUI-thread object: runs on the GUI thread
            threading.Thread(target=self._run, name="netcanvas-preload", daemon=True).start()

    def _run(self) -> None:
        if self.gate is not None:
            self.gate.settle()  # the dock (or the window) shown first: torch's import has long holds
        with polite_imports(self.gate):
            self._work()

    def _work(self) -> None:
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
        if self.warm:
            from gui.training.worker import WarmUp

            try:
                WarmUp.run_once()
            except Exception:  # only a head start: a first run imports what it needs itself
                pass
        self.finished = True
        self.done.emit()  # queued to the GUI thread, where the preloader lives
        # Started for the dock, no warm-up here (torch._dynamo's ~900 modules): the panel is built once
        # ``done`` lands, and every Qt call of the GUI thread would wait for this thread's holds of the
        # interpreter (0.6 s stalls at the first open). The panel starts it once its viewers are built.
        self.warmed.emit()

    def _release_gc(self) -> None:
        release_gc_after_imports()


_preloader: Preloader | None = None


def preload(warm: bool = False) -> Preloader:
    """Start importing the training panel's modules in the background, and with ``warm`` warming torch up
    after them (call on the GUI thread). Once per process: a later call returns the running preloader."""
    global _preloader
    if _preloader is None:
        _preloader = Preloader()
    _preloader.start(warm)
    return _preloader


def preload_when_idle(window: QObject, delay_ms: int = IDLE_PRELOAD_MS) -> None:
    """Start :func:`preload` with the warm-up ``delay_ms`` after now, unless ``window`` is gone by then (the
    editor calls this once its window shows)."""
    QTimer.singleShot(delay_ms, window, lambda: preload(warm=True))


__all__ = ["HEAVY_MODULES", "IDLE_PRELOAD_MS", "Preloader", "preload", "preload_when_idle"]
