"""What a switch of the Training dock's tabs costs the GUI thread while a run trains.

Opens the editor window (offscreen Qt unless a display is set) with the LeNet-5 demo, opens the
Training dock, starts a short run on ``shapes`` and switches through every visible tab ``--rounds``
times. A switch's cost is the GUI-thread time from ``setCurrentIndex`` until the events it set off
(the new page's build on first show, its layout and paint) are handled: ``processEvents`` is run
until it returns in under a millisecond twice running. Printed per tab: the first switch, and the
longest and median of the later ones, side by side (DESIGN §10's budget is 50 ms). Training keeps
running meanwhile, so its signals (epoch rows, probe images) land in whichever switch they fall in.

Run: ``.venv/bin/python bench/tab_switch.py`` (``--rounds``, ``--train``, ``--dwell`` seconds on each
tab between switches, ``--runs N`` earlier runs in the runs folder for the Runs tab to list).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

from bench.gui_training import open_window, wait_until
from bench.stall_watch import load_average

ROOT = Path(__file__).resolve().parent.parent


def settle(app: object) -> None:
    """Handle events until two rounds in a row find (almost) nothing to do."""
    quiet = 0
    end = time.perf_counter() + 5.0
    while quiet < 2 and time.perf_counter() < end:
        t = time.perf_counter()
        app.processEvents()  # type: ignore[attr-defined]
        quiet = quiet + 1 if time.perf_counter() - t < 0.001 else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="switches to each tab")
    ap.add_argument("--train", type=int, default=8000, help="training images (shapes)")
    ap.add_argument("--dwell", type=float, default=0.7, help="seconds on a tab before the next switch")
    ap.add_argument("--epochs", type=int, default=20, help="epochs of the run (it must outlast the switches)")
    args = ap.parse_args()

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    from core.project import load_project

    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {"dataset": "shapes", "train_size": args.train, "val_size": 1000, "epochs": args.epochs,
                        "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "device": "cpu",
                        "probe_interval": 0.5, "checkpoint_every": 1000}
    tmp = Path(tempfile.mkdtemp(prefix="nc-tabs-"))
    window = open_window(app, project, tmp / "runs")
    window.doc.set_selection(["conv1", "conv2"])
    action = next(a for a in window.training_menu.actions() if a.text().replace("&", "") == "Show Training Panel")
    action.trigger()
    dock = window.training
    wait_until(app, lambda: dock.built is not None and dock.built.isVisible(), 120)
    wait_until(app, lambda: dock.built.settings.data is not None, 120)
    from gui.training.worker import WarmUp

    wait_until(app, lambda: WarmUp.done, 120)
    panel = dock.panel
    if not panel.start(epochs=args.epochs):
        raise SystemExit(f"the run did not start: {panel.problem_text}")
    wait_until(app, lambda: False, 3.0)  # past the run's start

    tabs = panel.tabs
    order = [i for i in range(tabs.count()) if tabs.isTabVisible(i)]
    titles = {i: tabs.tabText(i).replace("&&", "&") for i in order}
    times: dict[int, list[float]] = {i: [] for i in order}
    for _ in range(args.rounds):
        for i in order[1:] + order[:1]:
            settle(app)
            t0 = time.perf_counter()
            tabs.setCurrentIndex(i)
            settle(app)
            times[i].append((time.perf_counter() - t0) * 1000)
            wait_until(app, lambda: False, args.dwell)
    running = panel.running
    panel.shutdown()

    print(f"{args.rounds} switches to each tab, {args.dwell:g} s apart, training "
          f"{'still running' if running else 'ENDED before the last switch'}")
    print(f"{'tab':28s} {'first ms':>9s} {'later max':>10s} {'later median':>13s}")
    for i in order:
        first, later = times[i][0], times[i][1:]
        print(f"{titles[i]:28s} {first:9.1f} {max(later, default=0):10.1f} "
              f"{statistics.median(later) if later else 0:13.1f}")
    print(f"load average at the end: {load_average()}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
