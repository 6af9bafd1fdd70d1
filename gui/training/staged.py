"""Widgets built over several event-loop turns, so that no turn holds the GUI thread long (DESIGN §10:
no stall over 50 ms; issue 11: the Training panel's first build held the window ~0.3 s).

A widget whose construction takes longer than that writes it as a generator that yields between
its parts (:data:`Steps`). :func:`begin` runs the steps at once (the default: a widget made in code
or in a test is whole when its constructor returns) or hands them back for a :class:`Slicer`,
which runs them a slice at a time: as many steps as fit in ``slice_ms``, then it lets the event
loop paint and take input for ``gap_ms`` before the next slice. :meth:`Slicer.finish` runs what is
left now, for a caller that needs the widget whole at once.
"""

from __future__ import annotations

import time
from collections.abc import Generator

from PySide6.QtCore import QObject, QTimer, Signal

Steps = Generator[None, None, None]  # a construction: each ``yield`` is a point where the event loop may run
SLICE_MS = 8.0  # a slice ends after the step that passes this: short steps go together, long ones alone
GAP_MS = 10  # between slices: not 0, a zero timer runs before pending input and paints


def begin(steps: Steps, staged: bool) -> Steps | None:
    """``steps`` to run later when ``staged``; else run them all now and return ``None``."""
    if staged:
        return steps
    for _ in steps:
        pass
    return None


class Slicer(QObject):
    """Runs ``steps`` a slice per event-loop turn once :meth:`start`\\ ed; ``done`` when the last ran."""

    done = Signal()

    def __init__(self, steps: Steps, parent: QObject | None = None, slice_ms: float = SLICE_MS,
                 gap_ms: int = GAP_MS) -> None:
        super().__init__(parent)
        self._steps: Steps | None = steps
        self.slice_ms = slice_ms
        self.slices = 0  # how many turns it took (tests and benches read it)
        self._running = False  # inside a step: finish() from there would re-enter the generator
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(gap_ms)
        self._timer.timeout.connect(self._slice)

    @property
    def finished(self) -> bool:
        return self._steps is None

    def start(self) -> None:
        if self._steps is not None and not self._timer.isActive():
            self._timer.start()

    def finish(self) -> None:
        """Run every step left, now."""
        if self._running:
            raise RuntimeError("a construction step asked for what it is still building")
        self._timer.stop()
        self._run(float("inf"))

    def cancel(self) -> None:
        """Drop the steps left (what they were making is not finished, and nothing says ``done``)."""
        if self._running:
            raise RuntimeError("a construction step cancelled its own construction")
        self._timer.stop()
        if self._steps is not None:
            self._steps.close()
            self._steps = None

    def _slice(self) -> None:
        self._run(self.slice_ms)
        if self._steps is not None:
            self._timer.start()

    def _run(self, budget_ms: float) -> None:
        if self._steps is None:
            return
        self.slices += 1
        t0 = time.perf_counter()
        self._running = True
        try:
            next(self._steps)  # at least one step a slice
            while (time.perf_counter() - t0) * 1000 < budget_ms:
                next(self._steps)
        except StopIteration:
            self._steps = None
        except BaseException:
            self._steps = None  # a generator that raised is over: the error goes to the caller
            raise
        finally:
            self._running = False
        if self._steps is None:
            self.done.emit()


__all__ = ["GAP_MS", "SLICE_MS", "Slicer", "Steps", "begin"]
