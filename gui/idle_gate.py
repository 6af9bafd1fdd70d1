"""Background imports that give way to the GUI thread while it is busy.

Python runs one thread at a time: while a worker imports torch (or warms it up: ~1,000 modules), each
Python call of the GUI thread waits its turn, and a 40 ms paint of the canvas or the plots takes 60-100 ms.
The GUI thread is busy only in short bursts between its waits for the next event, so a worker that pauses
during those bursts costs itself little and gives the window the whole interpreter when it needs it.

:class:`IdleGate` asks the GUI thread: a worker posts it a "ping" event and waits for the answer, which
comes once the events before it are handled (at once when the window is idle, after the paint when it
paints). :func:`polite_imports` makes each import started on the calling thread wait at the gate first,
a ping at most every ``every`` seconds (between two, the worker runs freely: a burst of GUI work that
starts then shares the interpreter for that long at most). A wait never lasts past ``patience``: a GUI
thread busy that long is in a long job of its own, or is itself waiting for this import (Python's
per-module import lock), and the worker then goes on rather than hold it up.

(The event loop's own ``awake``/``aboutToBlock`` signals would be cheaper, but under the GLib event
dispatcher that Qt uses on Linux a timer's event is handled after ``aboutToBlock``.)
"""

from __future__ import annotations

import importlib.abc
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal, Slot

# Longest a worker waits for one burst of GUI work: past it, it runs beside it (see the module doc).
PATIENCE_S = 0.04
# How often a worker asks at most: about Python's switch interval (the longest it holds the interpreter
# against a waiting thread anyway).
EVERY_S = 0.005


class IdleGate(QObject):
    """Lets worker threads wait until the GUI thread has handled its pending events.

    Make it on the GUI thread (or take :func:`shared_gate`); :meth:`wait` is for worker threads.
    """

    _ping = Signal(object)

    def __init__(self, patience_s: float = PATIENCE_S, every_s: float = EVERY_S) -> None:
        super().__init__()
        self.patience, self.every = patience_s, every_s
        self.pings = 0  # how many times a worker asked (for tests and benches)
        self._last = 0.0
        self._pending: threading.Event | None = None  # the last ask's answer
        self._ping.connect(self._pong, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _pong(self, answer: threading.Event) -> None:
        answer.set()

    def ask(self, timeout_s: float) -> float | None:
        """On a worker: ask the GUI thread and wait up to ``timeout_s`` for its answer; the seconds it took,
        or ``None`` when it did not come in time (or the gate went with the application).

        While an earlier ask is still unanswered the GUI thread is not handling events at all (a long
        job, a modal wait for this very thread): the answer is ``None`` at once, not another wait."""
        pending = self._pending
        if pending is not None and not pending.is_set():
            return None
        answer = self._pending = threading.Event()
        try:
            self._ping.emit(answer)
        except RuntimeError:
            return None
        self.pings += 1
        asked = time.monotonic()
        return time.monotonic() - asked if answer.wait(timeout_s) else None  # waiting releases the interpreter

    def wait(self) -> None:
        """On a worker: return once the GUI thread has handled what was pending, or after ``patience``."""
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()  # claimed: another worker asking meanwhile goes on
        self.ask(self.patience)
        self._last = time.monotonic()

    def settle(self, quiet: int = 3, timeout_s: float = 0.5) -> None:
        """On a worker: return once the GUI thread answered ``quiet`` asks in a row at once (it has nothing
        left to handle: the layouts and paints a click set off are over), or after ``timeout_s``.

        For work that cannot give way once begun, like an extension module's initialisation (torch's
        holds the interpreter ~150 ms in one go): begun between two of a click's paints, it held the
        rest of them up."""
        end = time.monotonic() + timeout_s
        calm = 0
        while calm < quiet and time.monotonic() < end:
            took = self.ask(max(0.0, end - time.monotonic()))
            if took is None:
                return
            calm = calm + 1 if took < 0.002 else 0
            time.sleep(0.005)  # room for the next event the GUI thread is given


_shared: IdleGate | None = None


def shared_gate() -> IdleGate:
    """The process's gate, made on first use (call that on the GUI thread) and kept with the application:
    the preload and the warm-up ask the one GUI thread."""
    global _shared
    if _shared is None:
        _shared = IdleGate()
        app = QCoreApplication.instance()
        if app is not None:
            _shared.setParent(app)  # goes with the application, on its thread
    return _shared


class _GivingWay(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: on its thread, waits at the gate before each import; finds nothing itself."""

    def __init__(self, gate: IdleGate, thread: int) -> None:
        self.gate, self.thread = gate, thread

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if threading.get_ident() == self.thread:
            self.gate.wait()
        return None  # the usual finders find it


@contextmanager
def polite_imports(gate: IdleGate | None) -> Iterator[None]:
    """Within, each module the calling thread imports first waits for ``gate`` (nothing with ``None``)."""
    if gate is None:
        yield
        return
    finder = _GivingWay(gate, threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        try:
            sys.meta_path.remove(finder)
        except ValueError:
            pass


__all__ = ["EVERY_S", "PATIENCE_S", "IdleGate", "polite_imports", "shared_gate"]
