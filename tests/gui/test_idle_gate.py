"""Background imports give way to the GUI thread's bursts of work (gui.idle_gate), within a patience."""

from __future__ import annotations

import sys
import threading
import time

from PySide6.QtCore import QTimer

from gui.idle_gate import IdleGate, polite_imports, shared_gate


def _import_on_a_worker_during_a_gui_burst(qtbot, tmp_path, gate: IdleGate | None, burst_s: float) -> dict[str, float]:
    """The GUI thread handles one event for ``burst_s``; a worker starts importing a fresh module at its
    start. When did the import run, and when did the burst end?"""
    name = f"nc_gate_probe_{time.monotonic_ns()}"
    (tmp_path / f"{name}.py").write_text("import time\nRAN_AT = time.monotonic()\n")
    sys.path.insert(0, str(tmp_path))
    started, times = threading.Event(), {}

    def worker() -> None:
        started.wait(10)
        with polite_imports(gate):
            module = __import__(name)
        times["import"] = module.RAN_AT

    def burst() -> None:  # an event the GUI thread spends a while on (a paint, a layout)
        started.set()
        end = time.monotonic() + burst_s
        while time.monotonic() < end:
            time.sleep(0.001)
        times["burst_end"] = time.monotonic()

    thread = threading.Thread(target=worker)
    thread.start()
    QTimer.singleShot(0, burst)
    qtbot.waitUntil(lambda: len(times) == 2, timeout=10_000)
    thread.join(10)
    sys.path.remove(str(tmp_path))
    return times


def test_a_worker_import_waits_for_the_gui_thread_to_go_idle(qtbot, tmp_path):
    gate = IdleGate(patience_s=5.0)
    times = _import_on_a_worker_during_a_gui_burst(qtbot, tmp_path, gate, burst_s=0.1)
    assert times["import"] > times["burst_end"]  # it ran after the burst, not beside it
    assert gate.pings >= 1


def test_a_gui_burst_longer_than_the_patience_is_not_waited_out(qtbot, tmp_path):
    # A GUI thread busy that long may itself be waiting for this import (Python's module lock): go on.
    gate = IdleGate(patience_s=0.02)
    times = _import_on_a_worker_during_a_gui_burst(qtbot, tmp_path, gate, burst_s=1.0)
    assert times["import"] < times["burst_end"]


def test_imports_outside_the_gate_do_not_wait(qtbot, tmp_path):
    times = _import_on_a_worker_during_a_gui_burst(qtbot, tmp_path, None, burst_s=0.5)
    assert times["import"] < times["burst_end"]
    assert not any(type(f).__name__ == "_GivingWay" for f in sys.meta_path)  # none is left behind


def test_a_gate_asks_at_most_every_few_milliseconds_and_the_process_shares_one(qtbot):
    gate = IdleGate(patience_s=5.0, every_s=60.0)
    for _ in range(3):
        threading.Thread(target=gate.wait).start()
    qtbot.waitUntil(lambda: gate.pings >= 1, timeout=5_000)
    qtbot.wait(50)
    assert gate.pings == 1  # the first asked; the others came within ``every``
    assert shared_gate() is shared_gate()


def test_settle_waits_until_the_gui_thread_answers_at_once_several_times_running(qtbot):
    gate = IdleGate()
    settled: list[float] = []
    burst_end: list[float] = []
    worker = threading.Thread(target=lambda: (gate.settle(quiet=3, timeout_s=10.0), settled.append(time.monotonic())))

    def burst() -> None:  # the paints a click sets off, here one long event; the worker starts within it
        worker.start()
        time.sleep(0.15)
        burst_end.append(time.monotonic())

    QTimer.singleShot(0, burst)
    qtbot.waitUntil(lambda: bool(settled), timeout=10_000)
    worker.join(10)
    assert settled[0] > burst_end[0]  # not before the GUI thread was calm again
    assert gate.pings >= 3  # and only after three prompt answers


def test_a_gui_thread_that_handles_no_events_costs_a_worker_one_patience_not_one_per_ask(qtbot):
    # e.g. the GUI thread blocked in QThread.wait() for the training thread: its steps must not each wait
    gate = IdleGate(patience_s=0.2, every_s=0.0)
    took: list[float] = []

    def worker() -> None:
        for _ in range(5):
            t = time.monotonic()
            gate.wait()
            took.append(time.monotonic() - t)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(10)  # the GUI thread handles no events meanwhile
    assert len(took) == 5 and took[0] >= 0.2  # the first ask waited its patience out
    assert gate.pings == 1  # the others did not ask again while it was unanswered
    qtbot.waitUntil(lambda: gate._pending is not None and gate._pending.is_set(), timeout=5_000)
    threading.Thread(target=gate.wait).start()  # answered later: asking works again
    qtbot.waitUntil(lambda: gate.pings == 2, timeout=5_000)
