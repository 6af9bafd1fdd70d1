"""Auto-arrange off the GUI thread: lay out a snapshot of the graph in a worker thread.

Laying out a big graph takes long enough to freeze the window (an imported DenseNet-201 took
29 s before the layout got faster, and still takes a noticeable fraction of a second), so the
canvas never computes it on the GUI thread. :class:`ArrangeJob` copies the graph (cheap, on the
GUI thread), runs :func:`core.layout.arrange` on the copy in a daemon thread and keeps the
share done and the result in plain attributes; :class:`Arranger` (one per view) polls it with a
timer, shows the progress in the status bar and, when the graph did not change meanwhile,
applies the result as one undoable step. An edit made while the layout runs (a node added,
removed or renamed, a wire, a block folded) stops the job and starts a fresh one from the edited
graph, so nothing the user did is lost and the stale result never lands.

While any job runs, Python's cyclic garbage collector is paused (and resumed on the GUI thread
when the last one ends): a collection triggered in the worker would finalize Qt wrappers on the
wrong thread, the failure the busy export jobs already guard against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QCoreApplication, QObject, QTimer

from core.graph import Graph
from core.layout import arrange
from gui.gc_pause import hold_gc, release_gc

if TYPE_CHECKING:
    from gui.document import Document

Positions = dict[str, tuple[float, float]]
POLL_MS = 40  # how often the GUI thread looks at a running job (cheap: reads two attributes)
_REPORT_S = 0.25  # the status bar's progress text changes at most this often


class _Stopped(Exception):
    """Raised inside the layout (through its progress hook) when the job was cancelled."""


class ArrangeJob:
    """The layout of one snapshot of a graph, computed in a daemon thread."""

    def __init__(self, graph: Graph) -> None:
        self.snapshot = graph.copy()  # the worker never touches the live graph
        self.node_count = len(self.snapshot.nodes)
        self.done = 0.0  # share of the work done, 0..1 (written by the worker)
        self.result: Positions | None = None
        self.error: str | None = None
        self.cancelled = False
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netcanvas-arrange", daemon=True)

    def start(self) -> None:
        _gc_pause.hold(self)
        self._thread.start()

    def cancel(self) -> None:
        self.cancelled = True

    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests and the benchmark; the window never waits)."""
        return self._finished.wait(timeout)

    def _tick(self, done: float) -> None:
        if self.cancelled:
            raise _Stopped
        self.done = done

    def _run(self) -> None:
        try:
            self.result = arrange(self.snapshot, progress=self._tick)
        except _Stopped:
            self.result = None
        except Exception as exc:  # shown in the status bar as one line; the graph is untouched
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._finished.set()


class _GcPause:
    """Keeps the cyclic collector off while any job runs; resumes it from the GUI thread."""

    def __init__(self) -> None:
        self.jobs: list[ArrangeJob] = []
        self.held = False  # our hold_gc() is on
        self.timer: QTimer | None = None

    def hold(self, job: ArrangeJob) -> None:
        if not self.held:
            hold_gc()
            self.held = True
        self.jobs.append(job)
        if self.timer is None:
            # parented to the application, not to a view: a view closed mid-job still resumes GC
            self.timer = QTimer(QCoreApplication.instance())
            self.timer.setInterval(POLL_MS)
            self.timer.timeout.connect(self.release_finished)
        self.timer.start()

    def release_finished(self) -> None:
        self.jobs = [j for j in self.jobs if not j.finished()]
        if not self.jobs:
            if self.timer is not None:
                self.timer.stop()
            if self.held:
                self.held = False
                release_gc()


_gc_pause = _GcPause()


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


class Arranger(QObject):
    """One view's auto-arrange: start, follow, restart after edits, apply as one undo step.

    ``apply(positions)`` pushes the command (the view's job: it owns the undo plumbing and the
    fit); ``say(text)`` shows a line in the status bar.
    """

    def __init__(self, doc: Document, apply: Callable[[Positions], None], say: Callable[[str], None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self._apply = apply
        self._say = say
        self.job: ArrangeJob | None = None
        self._stale = False
        self._reported = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        # what changes the layout: structure, names (the result's keys) and folding, not params
        # or positions (arrange ignores where nodes stand)
        for signal in (doc.node_added, doc.node_removed, doc.node_renamed, doc.edge_added,
                       doc.edge_removed, doc.groups_changed):
            signal.connect(self._graph_changed)

    def running(self) -> bool:
        return self.job is not None

    def start(self) -> bool:
        """Start laying the graph out; False (and a status line) when a layout is already running."""
        if self.job is not None:
            self._say(f"Still arranging {_plural(self.job.node_count, 'node')}…")
            return False
        if not self.doc.graph.nodes:
            self._say("Nothing to arrange: the canvas is empty")
            return False
        self._launch()
        return True

    def stop(self) -> None:
        """Abandon the running layout (the document is going away)."""
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self._timer.stop()

    def _launch(self) -> None:
        self.job = ArrangeJob(self.doc.graph)
        self._stale = False
        self._reported = time.monotonic()
        self.job.start()
        self._timer.start()
        self._say(f"Arranging {_plural(self.job.node_count, 'node')}…")

    def _graph_changed(self, *_: object) -> None:
        if self.job is not None:
            self._stale = True
            self.job.cancel()

    def _poll(self) -> None:
        job = self.job
        if job is None:
            self._timer.stop()
            return
        if not job.finished():
            now = time.monotonic()
            if now - self._reported >= _REPORT_S:
                self._reported = now
                self._say(f"Arranging {_plural(job.node_count, 'node')}… {round(100 * job.done)} %")
            return
        if self._stale:  # the graph changed meanwhile: lay out the edited graph instead
            self._launch()
            return
        self.job = None
        self._timer.stop()
        if job.error is not None:
            self._say(f"Could not arrange the graph: {job.error}")
        elif job.result is not None:
            self._apply(job.result)


__all__ = ["ArrangeJob", "Arranger", "Positions"]
