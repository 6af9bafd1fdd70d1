"""Benchmark: what the Training panel's background import of torch costs the GUI thread, with torch's
native libraries opened first without the interpreter lock (now, :mod:`core.native_libs`) and without
(before), side by side.

Each round is a fresh process: a bare QApplication with a 5 ms heartbeat (a precise QTimer; its
lateness is how long the GUI thread could not run) calls the real
:func:`gui.training.preload.preload` and waits for its ``warmed`` signal (every module of
``HEAVY_MODULES`` imported, the collector held meanwhile as the app holds it). "before" replaces
:func:`core.native_libs.open_torch_libraries` with a no-op. Printed per variant: the median over
rounds of the longest stall, the stalls over 50 ms (DESIGN §10's budget) and the import's wall time;
then after/before ratios. Rounds are interleaved, so a change in the machine's load hits both.

Run: ``.venv/bin/python bench/torch_import.py [--rounds 5]`` (offscreen Qt; the load average is printed).
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
ROOT = Path(__file__).resolve().parent.parent


def one_round(mode: str) -> dict[str, float]:
    """Preload the panel's modules once in this process; ``mode`` "before" skips the native pre-open."""
    from PySide6.QtWidgets import QApplication

    import gui.training.preload as preload_module
    from bench.gui_training import Heartbeat, wait_until

    app = QApplication.instance() or QApplication([])
    if mode == "before":
        preload_module.open_torch_libraries = lambda: []  # type: ignore[assignment]
    beat = Heartbeat(5)
    beat.start()
    wait_until(app, lambda: False, 0.3)  # the heartbeat settles
    t0 = time.perf_counter()
    loader = preload_module.preload()
    warmed: list[bool] = []
    loader.warmed.connect(lambda: warmed.append(True))
    wait_until(app, lambda: bool(warmed), 120.0)
    took = time.perf_counter() - t0
    wait_until(app, lambda: False, 0.2)
    late = beat.stop()
    return {"stall_ms": max(late, default=0.0), "over_50": float(sum(v > 50 for v in late)),
            "late_total_ms": sum(v for v in late if v > 50), "import_s": took, "ok": float(bool(warmed))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--child", choices=("before", "after"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_round(args.child)))
        return 0
    from bench.stall_watch import load_average

    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for mode in ("before", "after"):
            out = subprocess.run([sys.executable, __file__, "--child", mode], capture_output=True, text=True,
                                 cwd=ROOT, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"the Training panel's preload (torch and the panel's modules) on its thread, {args.rounds} fresh "
          "processes each, GUI-thread heartbeat 5 ms (median of rounds):")
    medians: dict[str, tuple[float, float, float]] = {}
    for mode, rows in results.items():
        stall = statistics.median(r["stall_ms"] for r in rows)
        over = statistics.median(r["over_50"] for r in rows)
        total = statistics.median(r["late_total_ms"] for r in rows)
        took = statistics.median(r["import_s"] for r in rows)
        medians[mode] = (stall, total, took)
        worst = max(r["stall_ms"] for r in rows)
        label = "before (torch opens its libraries)" if mode == "before" else "after (opened without the lock)"
        print(f"  {label:36}  longest stall {stall:6.1f} ms (worst round {worst:6.1f})   stalls over 50 ms: "
              f"{over:.0f}, {total:6.0f} ms in all   import {took:5.2f} s")
    (bs, btot, bt), (as_, atot, at) = medians["before"], medians["after"]
    print(f"  after/before: longest stall {as_ / max(bs, 1e-9):.2f}×, time in stalls over 50 ms "
          f"{atot / max(btot, 1e-9):.2f}×, import wall time {at / max(bt, 1e-9):.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
