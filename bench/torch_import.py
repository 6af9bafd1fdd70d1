"""Benchmark: what the background import of torch costs the editor's GUI thread, three ways side by side.

- "before": torch opens its native libraries itself (their initialisers hold the interpreter lock);
- "after": :mod:`core.native_libs` opens them first without the lock (what the dock's preload does now);
- "idle": as "after", plus torch's first-run warm-up on the same thread (what the editor starts by itself
  a few seconds after its window shows, :func:`gui.training.preload.preload_when_idle`).

Each round is a fresh process: the editor window (:class:`gui.main_window.MainWindow`, LeNet-5 demo,
1600×1000, offscreen Qt) sits idle with a 5 ms heartbeat (a precise QTimer; its lateness is how long
the GUI thread could not run) while the real :func:`gui.training.preload.preload` runs until its
``warmed`` signal (the collector held meanwhile, as the app holds it). "before" replaces
:func:`core.native_libs.open_torch_libraries` with a no-op. Printed per variant: the median over rounds
of the longest stall, the stalls over 50 ms (DESIGN §10's budget) and the wall time; then ratios to
"before". Rounds are interleaved, so a change in the machine's load hits every variant.

Run: ``.venv/bin/python bench/torch_import.py [--rounds 5]`` (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")
ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("before", "after", "idle")
LABELS = {"before": "before (torch opens its libraries)", "after": "after (libraries opened without the lock)",
          "idle": "idle (as after, and torch warmed up)"}


def one_round(mode: str) -> dict[str, float]:
    """Preload once in this process, the editor window idle meanwhile; see the module doc for ``mode``."""
    import tempfile

    from PySide6.QtWidgets import QApplication

    import gui.training.preload as preload_module
    from bench.gui_training import Heartbeat, open_window, wait_until
    from core.project import load_project

    app = QApplication.instance() or QApplication([])
    window = open_window(app, load_project(ROOT / "resources" / "demo_lenet.json"),
                         Path(tempfile.mkdtemp(prefix="nc-bench-")) / "runs")
    wait_until(app, lambda: False, 1.0)  # the window's first paints and analysis are over: it is idle
    if mode == "before":
        preload_module.open_torch_libraries = lambda: []  # type: ignore[assignment]
    beat = Heartbeat(5)
    beat.start()
    wait_until(app, lambda: False, 0.3)  # the heartbeat settles
    t0 = time.perf_counter()
    loader = preload_module.preload(warm=mode == "idle")
    warmed: list[bool] = []
    loader.warmed.connect(lambda: warmed.append(True))
    wait_until(app, lambda: bool(warmed), 180.0)
    took = time.perf_counter() - t0
    wait_until(app, lambda: False, 0.2)
    late = beat.stop()
    window.close()
    return {"stall_ms": max(late, default=0.0), "over_50": float(sum(v > 50 for v in late)),
            "late_total_ms": sum(v for v in late if v > 50), "import_s": took, "ok": float(bool(warmed))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_round(args.child)))
        return 0
    from bench.stall_watch import load_average

    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in VARIANTS}
    for _ in range(args.rounds):
        for mode in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True,
                                 cwd=ROOT, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"the Training panel's preload (torch and the panel's modules) on its thread, the editor idle, "
          f"{args.rounds} fresh processes each, GUI-thread heartbeat 5 ms (median of rounds):")
    medians: dict[str, tuple[float, float, float]] = {}
    for mode, rows in results.items():
        stall = statistics.median(r["stall_ms"] for r in rows)
        over = statistics.median(r["over_50"] for r in rows)
        total = statistics.median(r["late_total_ms"] for r in rows)
        took = statistics.median(r["import_s"] for r in rows)
        medians[mode] = (stall, total, took)
        worst = max(r["stall_ms"] for r in rows)
        print(f"  {LABELS[mode]:44}  longest stall {stall:6.1f} ms (worst round {worst:6.1f})   stalls over 50 ms: "
              f"{over:.0f}, {total:6.0f} ms in all   wall {took:5.2f} s")
    bs, btot, bt = medians["before"]
    for mode in VARIANTS[1:]:
        ms, mtot, mt = medians[mode]
        print(f"  {mode}/before: longest stall {ms / max(bs, 1e-9):.2f}×, time in stalls over 50 ms "
              f"{mtot / max(btot, 1e-9):.2f}×, wall time {mt / max(bt, 1e-9):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
