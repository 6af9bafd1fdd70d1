"""What a switch of the Training dock's tabs costs the GUI thread while a run trains.

Opens the editor window (offscreen Qt unless a display is set) with the LeNet-5 demo, opens the
Training dock, starts a short run on ``shapes`` and switches through every visible tab ``--rounds``
times. A switch's cost is the GUI-thread time from ``setCurrentIndex`` until the events it set off
(the new page's build on first show, its layout and paint) are handled: ``processEvents`` is run
until it returns in under a millisecond twice running and no tab is still being made in steps
(``ViewerTabs.making``: the Evaluation tab imports its modules a turn apart before it is made, and
the quiet turns between those steps would end the switch early). Printed per tab: the first switch,
and the longest and median of the later ones, side by side, both for that whole time and for its
longest single hold of the GUI thread (what a stall watch sees; DESIGN §10's budget is 50 ms).
Other work deferred to a later timer falls outside the switch (a hidden page laid out at a new tab
stack size, ``ViewerTabs._fit_hidden_pages``). Training keeps running meanwhile, so its signals
(epoch rows, probe images) land in whichever switch they fall in.

Run: ``.venv/bin/python bench/tab_switch.py`` (``--rounds``, ``--train``, ``--dwell`` seconds on each
tab between switches). ``--runs-panel`` measures instead, without training, the Runs tab's first
open alone, repeated: the turn that makes the list and paints it, and the longest turn after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

from bench.gui_training import open_training_dock, open_window, wait_until
from bench.stall_watch import load_average

ROOT = Path(__file__).resolve().parent.parent


def settle(app: object, busy: Callable[[], bool] = lambda: False) -> float:
    """Handle events until two rounds in a row find (almost) nothing to do and ``busy()`` is false (a
    viewer made over several turns: the turns between its steps are quiet); the longest round in ms."""
    quiet, longest = 0, 0.0
    end = time.perf_counter() + 5.0
    while (quiet < 2 or busy()) and time.perf_counter() < end:
        t = time.perf_counter()
        app.processEvents()  # type: ignore[attr-defined]
        took = time.perf_counter() - t
        longest = max(longest, took * 1000)
        quiet = quiet + 1 if took < 0.001 else 0
    return longest


def runs_panel_open(app: object, reps: int) -> None:
    """The Runs list made, put in a shown tab and painted (one turn), then the longest turn in the 150 ms
    after (what it deferred), ``reps`` times over a folder of five runs."""
    from PySide6.QtWidgets import QLabel, QTabWidget

    from core.training.runs import RunFolder
    from gui.training.runs import RunsPanel

    root = Path(tempfile.mkdtemp(prefix="nc-runs-"))
    graph = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
                       {"id": "output", "type": "Output"}], "edges": [{"from": "input", "to": "output"}]}
    for i in range(5):
        folder = RunFolder(root / f"run{i}")
        folder.create()
        folder.write_json("config.json", {"training": {"dataset": "shapes", "lr": 0.01 * (i + 1), "epochs": 2},
                                          "dataset": {"name": "shapes"}})
        folder.write_json("graph.json", {"graph": graph})
        folder.write_metrics([{"epoch": 1, "val_acc": 0.25}, {"epoch": 2, "val_acc": 0.5}])
    first: list[float] = []
    after: list[float] = []
    for _ in range(reps + 2):  # the first two warm up
        tabs = QTabWidget()
        tabs.addTab(QLabel("other"), "other")
        tabs.resize(1100, 600)
        tabs.show()
        app.processEvents()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        panel = RunsPanel()
        panel.set_root(root)
        tabs.setCurrentIndex(tabs.addTab(panel, "Runs"))
        app.processEvents()  # type: ignore[attr-defined]
        first.append((time.perf_counter() - t0) * 1000)
        worst, end = 0.0, time.perf_counter() + 0.15
        while time.perf_counter() < end:
            t1 = time.perf_counter()
            app.processEvents()  # type: ignore[attr-defined]
            worst = max(worst, (time.perf_counter() - t1) * 1000)
        after.append(worst)
        tabs.close()
        tabs.deleteLater()
        app.processEvents()  # type: ignore[attr-defined]
    print(f"Runs tab first open, {reps} times: made and painted in {statistics.median(first[2:]):.1f} ms "
          f"(median; min {min(first[2:]):.1f}), longest turn after it {statistics.median(after[2:]):.1f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="switches to each tab")
    ap.add_argument("--train", type=int, default=8000, help="training images (shapes)")
    ap.add_argument("--dwell", type=float, default=0.7, help="seconds on a tab before the next switch")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the run (it must outlast the switches)")
    ap.add_argument("--runs-panel", type=int, default=0, metavar="N",
                    help="only time the Runs tab's first open, N times, without training")
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    if args.runs_panel:
        runs_panel_open(app, args.runs_panel)
        return 0
    from core.project import load_project

    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {"dataset": "shapes", "train_size": args.train, "val_size": 1000, "epochs": args.epochs,
                        "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "device": "cpu",
                        "probe_interval": 0.5, "checkpoint_every": 1000}
    tmp = Path(tempfile.mkdtemp(prefix="nc-tabs-"))
    window = open_window(app, project, tmp / "runs")
    window.doc.set_selection(["conv1", "conv2"])
    dock = open_training_dock(app, window)
    panel = dock.panel
    if not panel.start(epochs=args.epochs):
        raise SystemExit(f"the run did not start: {panel.problem_text}")
    wait_until(app, lambda: False, 3.0)  # past the run's start

    tabs = panel.tabs
    order = [i for i in range(tabs.count()) if tabs.isTabVisible(i)]
    titles = {i: tabs.tabText(i).replace("&&", "&") for i in order}
    times: dict[int, list[float]] = {i: [] for i in order}  # until quiet
    blocks: dict[int, list[float]] = {i: [] for i in order}  # the longest single hold of the GUI thread
    for _ in range(args.rounds):
        for i in order[1:] + order[:1]:
            settle(app)
            t0 = time.perf_counter()
            tabs.setCurrentIndex(i)
            switched = (time.perf_counter() - t0) * 1000
            longest = settle(app, lambda: panel.viewer_tabs.making)
            times[i].append((time.perf_counter() - t0) * 1000)
            blocks[i].append(max(switched, longest))
            wait_until(app, lambda: False, args.dwell)
    running = panel.running
    panel.shutdown()

    print(f"{args.rounds} switches to each tab, {args.dwell:g} s apart, training "
          f"{'still running' if running else 'ENDED before the last switch'}")
    print("ms; 'until quiet': setCurrentIndex until the events it set off are handled; 'longest hold': the "
          "longest single call among them (what a stall watch would see)")
    print(f"{'':28s} {'--- until quiet (ms) ---':>32s}   {'--- longest hold (ms) ---':>32s}")
    print(f"{'tab':28s} {'first':>8s} {'later max':>11s} {'later med':>11s}   "
          f"{'first':>8s} {'later max':>11s} {'later med':>11s}")
    for i in order:
        cells = []
        for series in (times[i], blocks[i]):
            first, later = series[0], series[1:]
            cells.append(f"{first:8.1f} {max(later, default=0):11.1f} {statistics.median(later) if later else 0:11.1f}")
        print(f"{titles[i]:28s} {cells[0]}   {cells[1]}")
    print(f"load average at the end: {load_average()}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
