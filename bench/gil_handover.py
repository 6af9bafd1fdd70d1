"""Benchmark: the GUI thread's plot repaints next to a training thread, at several GIL switch intervals.

A small convolutional net trains on random images on a plain Python thread (what the training
thread does: a torch op, the interpreter, the next op) while the GUI thread, every 100 ms, gives the
live plots new points, refreshes and repaints them (what the Training dock does 2.5 times a second).
The process's switch interval (``sys.setswitchinterval``) bounds how long the GUI thread waits to get
the interpreter back each time it gave it up. The intervals take turns in
short rounds, so machine noise falls on all of them alike. Prints, per interval, the GUI thread's
wall time per refresh + repaint (p50, p95, max), how many went over 50 ms, and the training images/s,
with ratios to Python's default (5 ms).

Measured (issue 11, round 2; 2 cores, torch using 2 threads): at load ~6 the repaints' p95 and max
were a little lower at 1 ms (18 vs 24 ms p95) and the throughput the same, but on a quieter machine
(load ~1) 1 ms trained at 0.14× the images/s of 5 ms (436 vs 3073), with the same repaint times: the
app keeps Python's interval. Soaks (``bench/gui_soak.py --switch-interval``) were inconclusive.

Run: ``.venv/bin/python bench/gil_handover.py`` (about a minute; ``--rounds``, ``--round-s``,
``--intervals 0.005,0.001,0.0005``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="rounds; each tries every interval once")
    ap.add_argument("--round-s", type=float, default=4.0, help="seconds per interval per round")
    ap.add_argument("--intervals", default="0.005,0.001,0.0005", help="switch intervals to compare (s)")
    args = ap.parse_args()
    intervals = [float(v) for v in args.intervals.split(",")]

    import numpy as np
    import torch
    from PySide6.QtWidgets import QApplication
    from torch import nn

    from bench.gui_training import percentiles
    from core.training import BatchProgress
    from gui.training.plots import MetricsPlots

    app = QApplication.instance() or QApplication([])
    plots = MetricsPlots()
    plots.resize(1000, 420)
    plots.show()
    plots.set_epochs(100)
    app.processEvents()

    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    images = [0]
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            images[0] += len(x)

    worker = threading.Thread(target=train, name="bench-training", daemon=True)
    worker.start()
    rng = np.random.default_rng(0)
    step = [0]
    walls: dict[float, list[float]] = {v: [] for v in intervals}
    rates: dict[float, list[float]] = {v: [] for v in intervals}
    default = sys.getswitchinterval()
    try:
        for _ in range(args.rounds):
            for interval in intervals:
                sys.setswitchinterval(interval)
                n0, t0 = images[0], time.perf_counter()
                while time.perf_counter() - t0 < args.round_s:
                    losses = tuple((1.0 + 0.1 * rng.random(8)).tolist())
                    s = step[0]
                    step[0] += 8
                    t = time.perf_counter()
                    plots.add_batch(BatchProgress(epoch=s // 1000 + 1, epochs=100, step=s % 1000 + 8, steps=1000,
                                                  global_step=s + 8, loss=losses[-1], losses=losses,
                                                  first_step=s + 1, lr=0.01, images_per_s=1.0, eta_s=0.0))
                    plots.refresh()
                    for view in (plots.loss_plot, plots.acc_plot, plots.lr_plot):
                        view.viewport().repaint()
                    walls[interval].append((time.perf_counter() - t) * 1000)
                    time.sleep(0.1)  # the GUI idle between refreshes, as in the dock
                rates[interval].append((images[0] - n0) / (time.perf_counter() - t0))
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(default)

    base_wall = statistics.median(walls[intervals[0]])
    base_rate = statistics.median(rates[intervals[0]])
    print(f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, {args.rounds} rounds of "
          f"{args.round_s:g} s per interval; GUI: plot refresh + repaint every 100 ms next to training")
    for v in intervals:
        p50, p95, _p99, worst = percentiles(walls[v])
        over = sum(w > 50 for w in walls[v])
        rate = statistics.median(rates[v])
        print(f"switch {v * 1000:4.1f} ms: refresh+repaint p50 {p50:6.1f} p95 {p95:6.1f} max {worst:6.1f} ms, "
              f"over 50 ms {over}/{len(walls[v])}; training {rate:6.0f} images/s "
              f"(×{p50 / base_wall:.2f} repaint p50, ×{rate / base_rate:.2f} throughput vs {intervals[0] * 1000:g} ms)")
    plots.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
