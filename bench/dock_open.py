"""Benchmark: the first open of the Training dock with its other tabs made eagerly (as before issue 11's fix:
Evaluation in ``TrainingDock._place``, then Filters, Predictions and Runs one per event-loop turn after
the first paint) and lazily (now: each when first opened), side by side.

Each round is a fresh process (the first open imports and builds everything once), the LeNet-5
demo in the real :class:`gui.main_window.MainWindow` at 1600×1000, Train › Show Training Panel,
as :func:`bench.gui_training.first_open` does it. Per round: how long ``TrainingDock._place`` held
the GUI thread (putting the made panel in the dock), and the longest GUI-thread stall (a 20 ms
heartbeat's lateness), and the stalls over 50 ms (how many, how long in all) from the click until
a second after the panel is shown, its data preview in and torch warmed up. The
"eager" rounds do what the old code did (``attach(panel)`` in ``_place``, then ``_build_later``);
the "lazy" rounds run the code as it is.

Run: ``.venv/bin/python bench/dock_open.py [--rounds 3]`` (offscreen unless a display is set;
machine load skews the numbers: the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")
ROOT = Path(__file__).resolve().parent.parent


def one_round(mode: str) -> dict[str, float]:
    """Open the dock once in this process; ``mode`` "eager" makes the Evaluation tab inside ``_place``."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from bench.gui_training import Heartbeat, first_open, open_window, wait_until
    from core.project import load_project
    from gui.training.dock import LATER_MS
    from gui.training.panel_dock import TrainingDock

    app = QApplication.instance() or QApplication([])
    place_ms: list[float] = []
    original = TrainingDock._place

    def timed_place(dock: TrainingDock, panel: Any) -> None:
        t0 = time.perf_counter()
        original(dock, panel)
        if mode == "eager":
            assert dock.evaluation is not None  # made now, as attach(panel) in _place did
            QTimer.singleShot(LATER_MS, lambda: build_later(panel, ["filters", "predict", "runs"]))
        place_ms.append((time.perf_counter() - t0) * 1000)

    def build_later(panel: Any, keys: list[str]) -> None:
        """The old panel's _build_later: the other tabs one per event-loop turn after the first paint."""
        if keys:
            panel.viewer_tabs.get(keys[0])
            QTimer.singleShot(LATER_MS, lambda: build_later(panel, keys[1:]))

    TrainingDock._place = timed_place  # type: ignore[method-assign]
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {"dataset": "shapes", "train_size": 512, "val_size": 128}
    window = open_window(app, project, Path(tempfile.mkdtemp(prefix="nc-bench-")) / "runs")
    beat = Heartbeat(20)
    beat.start()
    built, _ready, _warmed, stall = first_open(app, window, 20)
    wait_until(app, lambda: False, 1.0)  # the old code's tabs were built within 0.3 s of the first paint
    late = beat.stop()
    panel = window.training.panel
    result = {"place_ms": place_ms[0], "stall_ms": stall, "shown_s": built,
              "over_50": float(sum(v > 50 for v in late)), "late_total_ms": sum(v for v in late if v > 50)}
    window.training.confirm_close()
    panel.shutdown()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", choices=("eager", "lazy"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_round(args.child)))
        return 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    results: dict[str, list[dict[str, float]]] = {"eager": [], "lazy": []}
    for _ in range(args.rounds):
        for mode in ("eager", "lazy"):  # interleaved, so a change in the machine's load hits both
            out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True,
                                 cwd=ROOT, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"first open of the Training dock, LeNet-5 demo, {args.rounds} fresh processes each (median):")
    medians = {}
    for mode, rows in results.items():
        place = statistics.median(r["place_ms"] for r in rows)
        stall = statistics.median(r["stall_ms"] for r in rows)
        over = statistics.median(r["over_50"] for r in rows)
        total = statistics.median(r["late_total_ms"] for r in rows)
        medians[mode] = (place, stall, total)
        print(f"  {mode:5}  _place {place:6.1f} ms   longest stall {stall:6.1f} ms   stalls over 50 ms: {over:.0f}, "
              f"{total:6.0f} ms in all")
    (ep, es, et), (lp, ls, lt) = medians["eager"], medians["lazy"]
    print(f"  lazy/eager: _place {lp / ep:.2f}×, longest stall {ls / es:.2f}×, time in stalls over 50 ms "
          f"{lt / max(et, 1e-9):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
