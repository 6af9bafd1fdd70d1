"""Benchmark: the first open of the Training dock with the panel made in one go (as before issue 11's
fix: the whole panel in one event-loop turn, put in the dock on the next) and in slices (now: a few
parts per turn, :class:`gui.training.staged.Slicer`), side by side.

Each round is a fresh process (the first open imports and builds everything once), the LeNet-5
demo in the real :class:`gui.main_window.MainWindow` at 1600×1000, Train › Show Training Panel,
as :func:`bench.gui_training.first_open` does it. Per round: the longest turn of the panel's making
(one slice of the Slicer: what held the GUI thread in one go), how many turns it took, the longest
GUI-thread stall (a 20 ms heartbeat's lateness) and the stalls over 50 ms (how many, how long in
all) from the moment the panel's making starts until a second after the panel is shown, its data
preview in and torch warmed up (the stalls of torch's import before it are the preload's, not the
panel's, and are left out: see ``--all``). "whole" runs today's panel code in one go: it shows what
the slices gain, not what the panel's other changes gained (built bottom-up, it took longer still).

Run: ``.venv/bin/python bench/dock_open.py [--rounds 3] [--all]`` (offscreen unless a display is
set; machine load skews the numbers: the load average is printed).
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


def one_round(mode: str, everything: bool) -> dict[str, float]:
    """Open the dock once in this process; ``mode`` "whole" makes the panel in one turn, as before."""
    from PySide6.QtWidgets import QApplication

    from bench.gui_training import Heartbeat, first_open, open_window, wait_until
    from core.project import load_project
    from gui.training.panel_dock import TrainingDock, _scroll_area
    from gui.training.staged import Slicer

    app = QApplication.instance() or QApplication([])
    turns: list[float] = []
    beats: list[Heartbeat] = []
    original_run = Slicer._run

    def timed_run(slicer: Slicer, budget_ms: float) -> None:
        if not beats:  # the panel's making starts: from here on its stalls are the panel's
            beats.append(Heartbeat(20))
            beats[0].start()
        t0 = time.perf_counter()
        original_run(slicer, budget_ms)
        turns.append((time.perf_counter() - t0) * 1000)

    def whole_make(dock: TrainingDock) -> Any:
        """The code before the slices: the panel made in one go, placed on the next turn."""
        from gui.training.dock import TrainingPanel

        scroll = _scroll_area(dock)
        panel = TrainingPanel(None, dock._runs_root, parent=scroll.viewport())
        yield
        dock._connect(panel)
        scroll.setWidget(panel)
        dock._place(panel, scroll)  # which shows the document, as it did

    Slicer._run = timed_run  # type: ignore[method-assign]
    if mode == "ungated":  # the background imports do not give way to the GUI thread (before gui.idle_gate)
        from gui.idle_gate import IdleGate

        IdleGate.wait = lambda self: None  # type: ignore[method-assign]
    if mode == "whole":
        TrainingDock._make = whole_make  # type: ignore[method-assign, assignment]
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {"dataset": "shapes", "train_size": 512, "val_size": 128}
    window = open_window(app, project, Path(tempfile.mkdtemp(prefix="nc-bench-")) / "runs")
    if everything:
        beats.append(Heartbeat(20))
        beats[0].start()
    built, _ready, _warmed, _stall = first_open(app, window, 20)
    wait_until(app, lambda: False, 1.0)
    late = beats[0].stop()
    panel = window.training.panel
    result = {"turn_ms": max(turns), "turns": float(len(turns)), "stall_ms": max(late, default=0.0),
              "shown_s": built, "over_50": float(sum(v > 50 for v in late)),
              "late_total_ms": sum(v for v in late if v > 50)}
    window.training.confirm_close()
    panel.shutdown()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--all", action="store_true", help="count the stalls from the click on (torch's import too)")
    ap.add_argument("--modes", default="whole,sliced",
                    help="comma-separated, of: whole, sliced, ungated (sliced, the imports not giving way to the GUI)")
    ap.add_argument("--child", choices=("whole", "sliced", "ungated"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_round(args.child, args.all)))
        return 0
    from bench.stall_watch import load_average

    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    modes = [m for m in args.modes.split(",") if m in ("whole", "sliced", "ungated")]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:  # interleaved, so a change in the machine's load hits both
            out = subprocess.run([sys.executable, __file__, "--child", mode, *(["--all"] if args.all else [])],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    since = "the click" if args.all else "the panel's making starts"
    print(f"first open of the Training dock, LeNet-5 demo, {args.rounds} fresh processes each (median; stalls from "
          f"{since} until a second after torch's warm-up):")
    medians = {}
    for mode, rows in results.items():
        turn = statistics.median(r["turn_ms"] for r in rows)
        turns = statistics.median(r["turns"] for r in rows)
        stall = statistics.median(r["stall_ms"] for r in rows)
        over = statistics.median(r["over_50"] for r in rows)
        total = statistics.median(r["late_total_ms"] for r in rows)
        medians[mode] = (turn, stall, total)
        print(f"  {mode:7}  longest making turn {turn:6.1f} ms ({turns:.0f} turns)   longest stall {stall:6.1f} ms   "
              f"stalls over 50 ms: {over:.0f}, {total:6.0f} ms in all")
    for new, old in (("sliced", "whole"), ("sliced", "ungated")):
        if new in medians and old in medians:
            (ot, os_, otot), (nt, ns, ntot) = medians[old], medians[new]
            print(f"  {new}/{old}: longest making turn {nt / ot:.2f}×, longest stall {ns / os_:.2f}×, time in stalls "
                  f"over 50 ms {ntot / max(otot, 1e-9):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
