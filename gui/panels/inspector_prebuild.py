"""The inspector's forms built ahead of the first click, in the GUI's idle time (issue 11).

Selecting a node of a type the inspector has not shown yet built that type's form on the click
(45-60 ms of GUI-thread time, over DESIGN §10's 50 ms). :class:`FormPrebuilder` builds the forms of
the types present in the document's graph (the most common first, into the inspector's free kept
forms only) before the user clicks one, under these rules:

* it starts :data:`IDLE_MS` after the document is shown or edited, or after the last user input
  (a press, a key, the wheel, a drag), and waits again after each such input while it has work;
* one step per event-loop turn, :data:`GAP_MS` apart: a form is built a section a turn
  (``InspectorPanel.prebuild_steps``: ~3-8 ms each on a 2-core machine, the whole form 7-19 ms);
* never while a mouse button is held (a drag on the canvas) nor while :attr:`FormPrebuilder.blocked`
  says so (the window: while a run trains, as the training thread shares the interpreter lock and
  makes every step slower; it looks again every :data:`BLOCKED_MS` and goes on after the run);
* a click on the type being built finishes its form at once (:meth:`FormPrebuilder.finish`), and
  a click on another type only postpones the work.

The host (the inspector, this object's Qt parent) provides ``prebuild_targets()`` and
``prebuild_steps(type_name)``: the scheduler knows nothing of forms.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

IDLE_MS = 400  # quiet time before a step: after the document is shown, an edit, a click or a key
GAP_MS = 15  # between steps: not 0, a zero timer runs before pending input and paints
BLOCKED_MS = 2000  # while blocked (a run trains): how often it looks whether the run ended

# The user's hands on the app: any of these postpones the next step by IDLE_MS. Plain mouse moves
# do not (a user moving to the node to click would keep the forms from ever being built); moves
# with a button held do, and a held button stops every step until it is released.
_INPUT = frozenset({QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick, QEvent.Type.KeyPress,
                    QEvent.Type.Wheel, QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop,
                    QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate})


class _Host(Protocol):
    def prebuild_targets(self) -> list[str]: ...
    def prebuild_steps(self, type_name: str) -> Iterator[None]: ...


def _never() -> bool:
    return False


def while_training(dock: Any) -> Callable[[], bool]:
    """A :attr:`FormPrebuilder.blocked` for the window: true while ``dock``'s run trains. Held
    weakly: the inspector must not keep the window's training dock alive."""
    ref = weakref.ref(dock)

    def blocked() -> bool:
        d = ref()
        panel = d.built if d is not None else None  # None until the panel is made: nothing can run
        return bool(panel is not None and panel.running)

    return blocked


class FormPrebuilder(QObject):
    """Builds the host's missing forms one step per idle event-loop turn (see the module)."""

    def __init__(self, host: QObject, idle_ms: int = IDLE_MS, gap_ms: int = GAP_MS) -> None:
        super().__init__(host)  # the host is reached through parent(): no Python reference cycle
        self.enabled = True  # the bench compares with and without
        self.blocked: Callable[[], bool] = _never
        self.idle_ms, self.gap_ms, self.blocked_ms = idle_ms, gap_ms, BLOCKED_MS
        self.built: list[str] = []  # the types whose forms were finished here (tests read it)
        self.turns_ms: list[float] = []  # GUI-thread CPU of each step (the bench reads it)
        self.turns_wall_ms: list[float] = []  # and its wall time (waits for the interpreter lock included)
        self._type: str | None = None  # the type being built
        self._steps: Iterator[None] | None = None
        self._running = False  # inside a step
        self._filtering = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._turn)

    @property
    def pending(self) -> bool:
        """Whether a step is waiting for its turn."""
        return self._timer.isActive()

    @property
    def building(self) -> str | None:
        """The type whose form is half built, if any."""
        return self._type

    def schedule(self) -> None:
        """Look for forms to build once the GUI has been idle for ``idle_ms`` (after a document is
        shown or edited: the caller need not know whether there is anything to do)."""
        if not self.enabled:
            return
        self._timer.start(self.idle_ms)
        self._watch(True)

    def postpone(self) -> None:
        """The user did something: the next step waits ``idle_ms`` again (if there is one)."""
        if self._timer.isActive():
            self._timer.start(self.idle_ms)

    def finish(self, type_name: str) -> None:
        """A click needs ``type_name``'s form now: if it is half built, build the rest at once."""
        if self._type == type_name and self._steps is not None and not self._running:
            steps, self._steps, self._type = self._steps, None, None
            for _ in steps:
                pass
            self.built.append(type_name)

    def cancel(self) -> None:
        """Drop the half-built form (the host's steps destroy it) and the waiting step."""
        self._timer.stop()
        self._watch(False)
        steps, self._steps, self._type = self._steps, None, None
        if steps is not None and not self._running:
            close = getattr(steps, "close", None)
            if close is not None:
                close()

    def _turn(self) -> None:
        if not self.enabled:
            self.cancel()
            return
        host = cast(_Host, self.parent())
        if self.blocked():  # a run trains: look again later, without filtering its events meanwhile
            self._watch(False)
            if self._steps is not None or host.prebuild_targets():
                self._timer.start(self.blocked_ms)
            return
        self._watch(True)
        if QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton:
            self._timer.start(self.idle_ms)  # a drag or a press in progress: not now
            return
        t0, w0 = time.thread_time(), time.perf_counter()
        if self._steps is None:
            targets = host.prebuild_targets()
            if not targets:
                self._watch(False)
                return
            self._type, self._steps = targets[0], host.prebuild_steps(targets[0])
        self._running = True
        try:
            next(self._steps)
        except StopIteration:
            assert self._type is not None
            self.built.append(self._type)
            self._steps, self._type = None, None
        finally:
            self._running = False
        self.turns_ms.append((time.thread_time() - t0) * 1000)
        self.turns_wall_ms.append((time.perf_counter() - w0) * 1000)
        self._timer.start(self.gap_ms)

    # -- the user's input while there is work ----------------------------------------------------
    def _watch(self, on: bool) -> None:
        """Filter the application's events only while steps are due (a Python filter sees every event)."""
        app = QApplication.instance()
        if app is None or on == self._filtering:
            return
        self._filtering = on
        if on:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt override
        kind = event.type()
        if kind in _INPUT or (kind == QEvent.Type.MouseMove and QGuiApplication.mouseButtons()
                              != Qt.MouseButton.NoButton):
            self.postpone()
        return False


__all__ = ["BLOCKED_MS", "GAP_MS", "IDLE_MS", "FormPrebuilder", "while_training"]
