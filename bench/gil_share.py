"""Benchmark: what a training run next to the window costs the GUI thread, and why — the same tab
switch with no run, with a run in another process, and with the editor's own run (a thread of the
window's process, sharing its Python interpreter lock).

Each condition runs in a fresh process: the LeNet-5 demo in the real :class:`gui.main_window.MainWindow`
at 1600×1000 (offscreen unless a display is set), the Training dock open with ``conv1`` and ``conv2``
probed, then ``--switches`` switches from the Filters tab back to *Curves & feature maps*, each timed
as the longest single event-loop turn until the events it set off are handled (what a stall watch
sees; DESIGN §10's budget is 50 ms):

- ``idle``: a short run is started and stopped first (the tab holds curves and maps), then nothing trains;
- ``process``: the same, while ``main.py train`` trains the same network on the same data in another
  process at the training thread's niceness (+10): the CPUs are as busy as with a run, the
  interpreter is not shared;
- ``thread``: the editor's own run trains meanwhile, as a user's run does.

Conditions take turns (``--rounds``), so machine noise falls on all of them alike. Prints the median
and the longest hold per condition and the ratios to ``idle``.

Measured (issue 11, 2 cores, load ~1–2, 15 switches × 2 rounds, scratch runs before this bench): idle
median 12–13 ms, process 9–10 ms, thread 21–22 ms (max 40–46 ms). Busy CPUs alone do not slow the
window; sharing the interpreter doubles its work: every Qt call from Python lets go of the lock, and
the training thread, waiting for it after each torch op, takes it each time. Python's switch interval
(1 ms, 0.2 ms) changed nothing, and pausing the run at each layer while the GUI worked gained ~20 %.

Run: ``.venv/bin/python bench/gil_share.py`` (about 3 minutes; ``--rounds``, ``--switches``).
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = ("idle", "process", "thread")
TRAINING = {"dataset": "shapes", "train_size": 8000, "val_size": 1000, "batch_size": 128, "optimizer": "sgd",
            "lr": 0.05, "momentum": 0.9, "device": "cpu", "probe_interval": 0.5, "checkpoint_every": 1000}


def child(condition: str, switches: int) -> dict[str, object]:
    """One condition in this process: the holds of ``switches`` tab switches, in ms."""
    from PySide6.QtWidgets import QApplication

    from bench.gui_training import open_training_dock, open_window, wait_until
    from bench.tab_switch import settle
    from core.project import load_project

    app = QApplication.instance() or QApplication([])
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = {**TRAINING, "epochs": 200}
    tmp = Path(tempfile.mkdtemp(prefix="nc-gil-"))
    window = open_window(app, project, tmp / "runs")
    window.doc.set_selection(["conv1", "conv2"])
    panel = open_training_dock(app, window).panel
    if not panel.start(epochs=200):
        raise SystemExit(f"the run did not start: {panel.problem_text}")
    wait_until(app, lambda: False, 3.0)  # curves, maps and filters are filled
    other: subprocess.Popen[bytes] | None = None
    if condition != "thread":
        panel.stop()
        wait_until(app, lambda: not panel.running, 30.0)
    if condition == "process":
        cmd = [sys.executable, str(ROOT / "main.py"), "train", str(ROOT / "resources" / "demo_lenet.json"),
               "--dataset", "shapes", "--train-size", "8000", "--val-size", "1000", "--epochs", "200",
               "--batch-size", "128", "--lr", "0.05", "--out", str(tmp / "other"), "--quiet"]
        other = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 preexec_fn=lambda: os.nice(10))
        wait_until(app, lambda: (tmp / "other" / "metrics.csv").exists() or other.poll() is not None, 60.0)
        if other.poll() is not None:
            raise SystemExit("the training process ended before the switches")
    tabs = panel.tabs
    filters = next(i for i in range(tabs.count()) if tabs.tabText(i).replace("&", "") == "Filters")
    holds = []
    for _ in range(switches):
        tabs.setCurrentIndex(filters)
        settle(app)
        wait_until(app, lambda: False, 0.3)
        tabs.setCurrentIndex(0)
        holds.append(settle(app))
        wait_until(app, lambda: False, 0.3)
    training_alive = (panel.running if condition == "thread"
                      else other is not None and other.poll() is None if condition == "process" else True)
    if other is not None:
        other.terminate()
        other.wait()
    panel.shutdown()
    return {"holds": holds, "training_alive": training_alive}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="rounds; each runs every condition once")
    ap.add_argument("--switches", type=int, default=15, help="tab switches per condition per round")
    ap.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.switches)))
        os._exit(0)  # the run's thread is stopped; skip Qt's teardown of a window nobody looks at

    from bench.stall_watch import load_average

    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    holds: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    for r in range(args.rounds):
        for condition in CONDITIONS:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--child", condition, "--switches", str(args.switches)],
                                 capture_output=True, text=True, cwd=ROOT)
            line = next((x for x in reversed(out.stdout.splitlines()) if x.startswith("{")), None)
            if out.returncode != 0 or line is None:
                print(f"{condition}: the child failed (exit {out.returncode}):\n{out.stderr[-2000:]}")
                return 1
            got = json.loads(line)
            if not got["training_alive"]:
                print(f"{condition}: the training ended before the switches did; use fewer --switches")
                return 1
            holds[condition] += got["holds"]
            print(f"round {r + 1} {condition:8s} median {statistics.median(got['holds']):5.1f} ms  "
                  f"max {max(got['holds']):5.1f} ms  ({time.perf_counter() - t0:.0f} s)")
    print(f"\nCurves & feature maps tab switch, longest hold per switch, {len(holds['idle'])} switches each:")
    base = statistics.median(holds["idle"])
    for condition in CONDITIONS:
        med = statistics.median(holds[condition])
        p90 = sorted(holds[condition])[int(0.9 * len(holds[condition]))]
        print(f"  {condition:8s} median {med:5.1f} ms  p90 {p90:5.1f}  max {max(holds[condition]):5.1f} ms"
              f"   ratio to idle {med / base:4.2f}×")
    print(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
