"""A GUI-thread stall watch for benchmarks: a heartbeat on the GUI thread and a watchdog thread that
samples the GUI thread's Python stack while a tick is late, so each stall comes with what ran.

Use::

    watch = StallWatch(beat_ms=20, budget_ms=50)
    watch.start()
    ...  # run the event loop; watch.note("switch to Predictions") marks what the user just did
    stalls = watch.stop()
    print(watch.report())

How it attributes: the heartbeat (a precise ``QTimer``) stamps every tick; the watchdog wakes every
``sample_ms`` and, once the GUI thread has not ticked for ``beat_ms + sample_ms``, reads the GUI
thread's frames (``sys._current_frames()``) and, for a hint at who held the interpreter lock, the
innermost frame of every other thread. When the late tick finally fires, the samples of that gap
are attached to the stall. A stack that ends in ``exec``/``processEvents`` means the GUI thread was
inside Qt (layout, paint, a C++ slot): ``events=True`` also records the last event the application
dispatched (an event filter: costs a Python call per event, so off by default).

Samples are taken with the interpreter lock like any Python thread: a stall the GUI thread spends
waiting for the lock shows the line where it waits, and the other threads' frames show who held it.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OURS = ("gui", "core", "bench", "templates", "main.py")  # frames of the project, preferred when naming a cause


@dataclass
class Sample:
    """One look at the GUI thread during a gap: its stack (outermost first) and the others' tops."""

    at: float  # seconds since the watch started
    stack: tuple[tuple[str, int, str], ...]  # (file, line, function)
    others: tuple[str, ...] = ()  # "thread-name: file:line function" of every other thread
    event: str = ""  # the last event dispatched (with ``events=True``)


@dataclass
class Stall:
    """One heartbeat tick later than the budget."""

    at: float  # seconds since the watch started, when the late tick fired
    late_ms: float
    note: str  # what the bench said it was doing (the last note) …
    since_note_ms: float  # … and how long before the stall began
    samples: list[Sample] = field(default_factory=list)

    @property
    def cause(self) -> str:
        """The most sampled project frame (innermost) with its caller, or the innermost frame."""
        names = Counter(describe(s.stack) for s in self.samples)
        return names.most_common(1)[0][0] if names else \
            "(no sample: the watchdog did not run either: the process got no CPU, or a C call held the lock)"

    def detail(self, depth: int = 6) -> str:
        """The commonest stack of the stall (``depth`` innermost frames) and the other threads' tops."""
        if not self.samples:
            return ""
        stacks = Counter(s.stack[-depth:] for s in self.samples)
        stack, n = stacks.most_common(1)[0]
        lines = [f"      {n}/{len(self.samples)} samples:"]
        lines += [f"        {short(f)}:{line} {fn}" for f, line, fn in reversed(stack)]
        others = Counter(o for s in self.samples for o in s.others)
        lines += [f"      other thread ({c}×): {o}" for o, c in others.most_common(2)]
        events = Counter(s.event for s in self.samples if s.event)
        lines += [f"      event ({c}×): {e}" for e, c in events.most_common(2)]
        return "\n".join(lines)


@functools.lru_cache(maxsize=4096)
def short(path: str) -> str:
    """A path relative to the project, or to its package folder (site-packages/…) for a library."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        parts = p.parts
        for marker in ("site-packages", "lib"):
            if marker in parts:
                return "/".join(parts[len(parts) - parts[::-1].index(marker):])
        return p.name


def ours(path: str) -> bool:
    rel = short(path)
    return rel.split("/", 1)[0] in OURS and not rel.startswith("bench/stall_watch")


def describe(stack: tuple[tuple[str, int, str], ...]) -> str:
    """``innermost project frame ← its project caller`` plus the innermost frame when that is a library's."""
    if stack and stack[-1][2] == "wait_until":  # the bench's own event loop is innermost
        return "in Qt, no Python frame (C++ paint/layout/slot, or waiting for the interpreter lock)"
    mine = [f for f in stack if ours(f[0])]
    parts = [f"{short(f)}:{line} {fn}" for f, line, fn in reversed(mine[-2:])]
    text = " ← ".join(parts) if parts else "(no project frame)"
    if stack and not ours(stack[-1][0]):
        f, line, fn = stack[-1]
        text += f"  [in {short(f)}:{line} {fn}]"
    return text


class StallWatch:
    """Heartbeat + stack-sampling watchdog of the GUI thread (create and start on the GUI thread)."""

    def __init__(self, beat_ms: int = 20, budget_ms: float = 50.0, sample_ms: float = 5.0,
                 events: bool = False) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.beat_ms = beat_ms
        self.budget_ms = budget_ms
        self.sample_s = sample_ms / 1000
        self.lateness: list[float] = []
        self.stalls: list[Stall] = []
        self._t0 = 0.0
        self._last = 0.0  # perf_counter of the last tick (written by the GUI thread, read by the watchdog)
        self._gap: list[Sample] = []
        self._lock = threading.Lock()
        self._note = ("start", 0.0)
        self._event = ""
        self._filter: Any = None
        self._events = events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gui = threading.get_ident()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(beat_ms)
        self.timer.timeout.connect(self._beat)

    # ------------------------------------------------------------------------------------ control

    def start(self) -> None:
        self._gui = threading.get_ident()
        self._t0 = self._last = time.perf_counter()
        if self._events:
            self._install_filter()
        self.timer.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> list[Stall]:
        self.timer.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._filter is not None:
            from PySide6.QtWidgets import QApplication

            QApplication.instance().removeEventFilter(self._filter)
            self._filter = None
        return self.stalls

    def note(self, text: str) -> None:
        """Say what the bench (the "user") does now: stalls name the last note and the time since."""
        self._note = (text, time.perf_counter())

    def elapsed(self) -> float:
        return time.perf_counter() - self._t0

    # ---------------------------------------------------------------------------------- GUI thread

    def _beat(self) -> None:
        now = time.perf_counter()
        late = max(0.0, (now - self._last) * 1000 - self.beat_ms)
        with self._lock:
            gap, self._gap = self._gap, []
            previous, self._last = self._last, now
        self.lateness.append(late)
        if late > self.budget_ms:
            text, when = self._note
            self.stalls.append(Stall(at=now - self._t0, late_ms=late, note=text,
                                     since_note_ms=max(0.0, (previous + self.beat_ms / 1000 - when) * 1000),
                                     samples=gap))

    def _install_filter(self) -> None:
        from PySide6.QtCore import QObject
        from PySide6.QtWidgets import QApplication

        watch = self

        class LastEvent(QObject):
            def eventFilter(self, obj: Any, event: Any) -> bool:
                name = obj.objectName() or type(obj).__name__
                watch._event = f"{event.type().name} → {name}"
                return False

        self._filter = LastEvent()
        QApplication.instance().installEventFilter(self._filter)

    # ---------------------------------------------------------------------------- watchdog thread

    def _watch(self) -> None:
        due = (self.beat_ms / 1000) + self.sample_s
        while not self._stop.wait(self.sample_s):
            now = time.perf_counter()
            if now - self._last < due:
                continue
            sample = self._sample(now)
            with self._lock:
                if now - self._last >= due:  # still the same gap
                    self._gap.append(sample)

    def _sample(self, now: float) -> Sample:
        """Read the threads' stacks into plain tuples, then describe them.

        No frame may outlive the reading, and nothing in it may let go of the interpreter lock (a file
        system call would): a frame held here while the GUI thread returns from a paint event keeps
        that event's ``QPainter`` alive, to be destroyed later on this thread, which crashes Qt.
        """
        me = threading.get_ident()
        names = {t.ident: t.name for t in threading.enumerate()}
        stacks: dict[int, list[tuple[str, int, str]]] = {}
        frames = sys._current_frames()
        for ident, frame in frames.items():
            if ident == me:
                continue
            stack = stacks[ident] = []
            while frame is not None:
                stack.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
                frame = frame.f_back
        frames.clear()
        del frames, frame
        # Only plain data from here on.
        gui = stacks.pop(self._gui, [])
        others = []
        for ident, stack in stacks.items():
            where = next((f for f in stack if ours(f[0])), stack[0] if stack else ("?", 0, "?"))
            others.append(f"{names.get(ident, ident)}: {short(where[0])}:{where[1]} {where[2]}")
        return Sample(at=now - self._t0, stack=tuple(reversed(gui)), others=tuple(others), event=self._event)

    # ------------------------------------------------------------------------------------ report

    def report(self, detail: bool = True, limit: int = 40) -> str:
        """Every stall over the budget: when, how long, the last note, the cause (and its stack)."""
        lines = [f"stalls over {self.budget_ms:.0f} ms: {len(self.stalls)} of {len(self.lateness)} ticks"]
        for s in self.stalls[:limit]:
            lines.append(f"  t={s.at:7.2f} s  {s.late_ms:6.0f} ms  after '{s.note}' (+{s.since_note_ms:.0f} ms)")
            lines.append(f"      cause: {s.cause}")
            if detail and s.samples:
                lines.append(s.detail())
        if len(self.stalls) > limit:
            lines.append(f"  … {len(self.stalls) - limit} more")
        return "\n".join(lines)


def bare_baseline(seconds: float, beat_ms: int = 20, budget_ms: float = 50.0,
                  run: Callable[[float], None] | None = None) -> list[float]:
    """Heartbeat lateness of the bare event loop (no window) for ``seconds``: the machine's own noise."""
    from PySide6.QtCore import QEventLoop, QTimer

    watch = StallWatch(beat_ms, budget_ms)
    watch.start()
    if run is not None:
        run(seconds)
    else:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
    watch.stop()
    return watch.lateness


def load_average() -> str:
    if hasattr(os, "getloadavg"):
        a, b, c = os.getloadavg()
        return f"{a:.2f} {b:.2f} {c:.2f}"
    return "n/a"


__all__ = ["Sample", "Stall", "StallWatch", "bare_baseline", "describe", "load_average"]
