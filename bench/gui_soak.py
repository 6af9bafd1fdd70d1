"""Soak benchmark: the editor window training for minutes while a scripted user switches the Training
dock's tabs and selects nodes; every GUI-thread stall over 50 ms is reported with what ran.

The LeNet-5 demo trains on ``shapes`` in the real :class:`gui.main_window.MainWindow` (offscreen Qt
unless a display is set), run after run (each a few epochs, so run starts recur), curves and the
feature maps of two nodes visible. The scripted user, on a one-minute cycle like the issue's soak:
Curves & feature maps 0–30 s, Predictions 30–45 s (15 s a minute), Runs 45–52 s, Filters 52–60 s;
selects another pair of layers every 5 s (the maps follow, so two probes stay on) and zooms the
canvas every 7 s. The first open of the Training dock (torch not yet imported) is part of the soak.

Each stall comes from :class:`bench.stall_watch.StallWatch`: a heartbeat tick later than the
budget, the last scripted action before it and the GUI thread's Python stack sampled during the gap
(``--events`` also records the last Qt event dispatched). A bare event loop's heartbeat is measured
first for the machine's own noise (``--bare`` seconds).

Run: ``.venv/bin/python bench/gui_soak.py --soak 300`` (the issue's soak was 630 s; ``--run-epochs``,
``--train``, ``--beat``, ``--events``, ``--json FILE`` for every stall with its samples). Compare
before and after a change in the same quiet period: the load average is printed first and last.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

from bench.gui_training import fmt_pcts, open_training_dock, open_window, wait_until
from bench.stall_watch import StallWatch, bare_baseline, load_average

ROOT = Path(__file__).resolve().parent.parent
CYCLE = ((0, "Curves"), (30, "Predictions"), (45, "Runs"), (52, "Filters"))  # second of the minute → tab
PAIRS = (("conv1", "conv2"), ("relu1", "pool1"), ("conv2", "pool2"), ("conv1", "relu2"))
SELECT_EVERY_S = 5.0
ZOOM_EVERY_S = 7.0


def tab_for(second: float) -> str:
    name = CYCLE[0][1]
    for start, tab in CYCLE:
        if second % 60 >= start:
            name = tab
    return name


class User:
    """The scripted user: acts on a 100 ms poll of the event loop, telling the watch what it does."""

    def __init__(self, app: Any, window: Any, watch: StallWatch, seconds: float, run_epochs: int) -> None:
        self.app, self.window, self.watch = app, window, watch
        self.seconds = seconds
        self.run_epochs = run_epochs
        self.t0 = time.perf_counter()
        self.tab = ""
        self.next_select = SELECT_EVERY_S
        self.next_zoom = ZOOM_EVERY_S
        self.turn = 0
        self.runs = 0
        self.actions: Counter[str] = Counter()
        self.images_per_s: list[float] = []  # every epoch's training images/s but each run's first

    def _epoch(self, metrics: Any) -> None:
        if metrics.epoch > 1:
            self.images_per_s.append(metrics.images_per_s)

    def tick(self) -> None:
        t = time.perf_counter() - self.t0
        panel = self.window.training.panel
        if not panel.running and t < self.seconds - 5:
            self.watch.note("run start")
            self.actions["run start"] += 1
            if not panel.start(epochs=self.run_epochs):
                raise SystemExit(f"the run did not start: {panel.problem_text}")
            panel.worker.epoch_ended.connect(self._epoch)
            self.runs += 1
            return
        tab = tab_for(t)
        if tab != self.tab:
            self.tab = tab
            index = next(i for i in range(panel.tabs.count()) if panel.tabs.tabText(i).startswith(tab))
            self.watch.note(f"tab → {tab}")
            self.actions[f"tab → {tab}"] += 1
            panel.tabs.setCurrentIndex(index)
            return
        if t >= self.next_select:
            self.next_select += SELECT_EVERY_S
            pair = list(PAIRS[self.turn % len(PAIRS)])
            self.turn += 1
            self.watch.note(f"select {'+'.join(pair)}")
            self.actions["select"] += 1
            self.window.view.select_nodes(pair)
            return
        if t >= self.next_zoom:
            self.next_zoom += ZOOM_EVERY_S
            self.watch.note("zoom")
            self.actions["zoom"] += 1
            self.window.view.zoom_by(1.15 if self.turn % 2 else 1 / 1.15)

    def done(self) -> bool:
        return time.perf_counter() - self.t0 >= self.seconds


def classify(note: str) -> str:
    """The kind of moment a stall came at, from the scripted action before it."""
    for kind in ("run start", "tab →", "select", "zoom", "open dock"):
        if note.startswith(kind):
            return kind
    return note


def rss_mb() -> float | None:
    """This process's resident memory in MB (Linux; ``None`` elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--soak", type=float, default=300.0, help="seconds of training with the scripted user")
    ap.add_argument("--run-epochs", type=int, default=4, help="epochs per run (runs restart until the end)")
    ap.add_argument("--train", type=int, default=8000, help="training images (shapes)")
    ap.add_argument("--beat", type=int, default=20, help="heartbeat interval in ms")
    ap.add_argument("--budget", type=float, default=50.0, help="a stall is a tick later than this (ms)")
    ap.add_argument("--bare", type=float, default=10.0, help="seconds of bare event loop first (0: skip)")
    ap.add_argument("--events", action="store_true", help="record the last Qt event too (costs a little)")
    ap.add_argument("--json", type=Path, help="write every stall with its samples here")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="the process's GIL switch interval in s (default: Python's, 0.005)")
    ap.add_argument("--nice", type=int, default=None,
                    help="how much the training thread lowers its CPU priority (default: the app's, "
                         "gui.training.worker.TRAINING_NICENESS; 0: not at all)")
    ap.add_argument("--no-gate", action="store_true",
                    help="torch's background import and warm-up do not give way to the GUI thread "
                         "(as before gui.idle_gate), to compare")
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()} (compare runs made close together)")
    if args.bare > 0:
        bare = bare_baseline(args.bare, args.beat, args.budget)
        print(f"bare event loop {args.bare:.0f} s: {fmt_pcts(bare)}; over {args.budget:.0f} ms: "
              f"{sum(v > args.budget for v in bare)}")

    from core.project import load_project

    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {"dataset": "shapes", "train_size": args.train, "val_size": 1000, "epochs": args.run_epochs,
                        "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "device": "cpu",
                        "probe_interval": 0.5, "checkpoint_every": 1000}
    tmp = Path(tempfile.mkdtemp(prefix="nc-soak-"))
    window = open_window(app, project, tmp / "runs")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)  # the whole soak: the GUI thread's waits for the GIL
    print(f"GIL switch interval: {sys.getswitchinterval() * 1000:g} ms")
    if args.no_gate:
        from gui.idle_gate import IdleGate

        IdleGate.wait = lambda self: None  # type: ignore[method-assign]
    print(f"background imports give way to the GUI thread (gui.idle_gate): {'no' if args.no_gate else 'yes'}")
    import gui.training.worker as worker_module

    if args.nice is not None:
        worker_module.TRAINING_NICENESS = args.nice
    print(f"training thread niceness: +{worker_module.TRAINING_NICENESS}")
    window.doc.set_selection(["conv1", "conv2"])

    watch = StallWatch(args.beat, args.budget, events=args.events)
    watch.start()
    wait_until(app, lambda: False, 0.5)
    watch.note("open dock")
    t0 = time.perf_counter()
    open_training_dock(app, window)
    print(f"dock open, data in and torch warmed up after {time.perf_counter() - t0:.2f} s")

    user = User(app, window, watch, args.soak, args.run_epochs)
    from PySide6.QtCore import QTimer

    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(user.tick)
    poll.start()
    rss = [rss_mb()]  # the process's resident memory once a minute (the soak grew ~8 MB in 10 min)
    minute = QTimer()
    minute.setInterval(60_000)
    minute.timeout.connect(lambda: rss.append(rss_mb()))
    minute.start()
    wait_until(app, user.done, args.soak + 60)
    poll.stop()
    minute.stop()
    rss.append(rss_mb())
    watch.note("end: stopping the run")
    window.training.panel.shutdown()
    stalls = watch.stop()

    print(f"\nsoak {args.soak:.0f} s: {user.runs} runs of {args.run_epochs} epochs, actions "
          + ", ".join(f"{k} ×{v}" for k, v in sorted(user.actions.items())))
    print(f"heartbeat every {args.beat} ms: {fmt_pcts(watch.lateness)}")
    if user.images_per_s:
        print(f"training: median {statistics.median(user.images_per_s):.0f} images/s over "
              f"{len(user.images_per_s)} epochs (each run's first left out)")
    print(watch.report())
    kinds = Counter(classify(s.note) for s in stalls)
    print("stalls by moment: " + (", ".join(f"{k} {v}" for k, v in kinds.most_common()) or "none"))
    causes = Counter(s.cause for s in stalls)
    print("stalls by cause:")
    for cause, n in causes.most_common(12):
        print(f"  {n:3d}  {cause}")
    if rss[0] is not None:
        print("memory (RSS, MB) at the start and each minute: " + " ".join(f"{m:.0f}" for m in rss if m is not None)
              + (f"; from the first minute to the end {rss[-1] - rss[1]:+.1f} MB" if len(rss) > 2 and rss[1] else ""))
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps([
            {"at": s.at, "late_ms": s.late_ms, "note": s.note, "since_note_ms": s.since_note_ms, "cause": s.cause,
             "samples": [{"at": x.at, "stack": x.stack, "others": x.others, "event": x.event} for x in s.samples]}
            for s in stalls], indent=1))
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
