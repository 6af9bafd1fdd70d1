"""Benchmark: training in the window vs the same training headless, and the GUI thread's stalls.

Same project (the LeNet-5 demo), same data (the built-in shapes set), same settings, in one run,
interleaved round by round so machine load hits both alike:

- **headless**: ``core.training.session.build_trainer(...).run()``, the CLI's path, no callbacks;
- **window**: the training dock (:class:`gui.training.TrainingPanel`, offscreen) with live plots
  (loss per step, smoothing on) and a feature-map probe on ``conv1`` and ``conv2`` (every 0.5 s),
  while a 200 ms heartbeat ``QTimer`` on the GUI thread records how late each tick fires.

Throughput is the training pass's images/s (validation excluded), the median over epochs after
the first (warm-up). Budgets (DESIGN.md §10): window ≥ 0.95× headless; no heartbeat late by more
than 50 ms. A last section times one plot refresh with 100,000 and 1,000,000 loss points (the
curves are downsampled and clipped to the view) and a full repaint of the plots.

Run: ``.venv/bin/python bench/gui_training.py`` (about two minutes on 2 cores, 5 interleaved rounds; ``--rounds``,
``--train``, ``--epochs``, ``--device``). Offscreen Qt unless a display is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

ROOT = Path(__file__).resolve().parent.parent
HEARTBEAT_MS = 200


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"dataset": "shapes", "train_size": args.train, "val_size": 1000, "epochs": args.epochs,
            "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "device": args.device,
            "probe_interval": 0.5, "checkpoint_every": 1000}


def rate(epochs: list[Any]) -> float:
    """Median training images/s over the epochs after the first."""
    values = [m.images_per_s for m in epochs[1:]] or [m.images_per_s for m in epochs]
    return statistics.median(values)


class Heartbeat:
    """A ``HEARTBEAT_MS`` QTimer on the GUI thread that records how late each tick fires."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.lateness: list[float] = []
        self.clock = QElapsedTimer()
        self.last = 0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = self.clock.elapsed()
        if self.last:
            self.lateness.append(now - self.last - HEARTBEAT_MS)
        self.last = now

    def start(self) -> None:
        self.clock.start()
        self.timer.start()

    def stop(self) -> tuple[float, int, int]:
        """(max lateness in ms, ticks later than 50 ms, ticks)."""
        self.timer.stop()
        return max(self.lateness, default=0.0), sum(v > 50 for v in self.lateness), len(self.lateness)


def headless(project: Any, cfg: Any, run_dir: Path) -> tuple[float, tuple[float, int, int]]:
    """The CLI's path on a plain Python thread, with the heartbeat ticking on an idle event loop:
    (images/s, heartbeat result) — the stalls the training alone causes on this machine."""
    import threading

    from PySide6.QtCore import QEventLoop, QTimer

    from core.training import Callbacks
    from core.training.session import build_trainer

    epochs: list[Any] = []
    result: list[Any] = []
    trainer = build_trainer(project, cfg, Callbacks(epoch_end=epochs.append), run_dir=run_dir)
    thread = threading.Thread(target=lambda: result.append(trainer.run()))
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: None if thread.is_alive() else loop.quit())
    beat = Heartbeat()
    beat.start()
    thread.start()
    poll.start()
    loop.exec()
    poll.stop()
    stalls = beat.stop()
    thread.join()
    if not result or result[0].status != "completed":
        raise SystemExit(f"headless run failed: {result[0].message if result else 'no summary'}")
    return rate(epochs), stalls


def in_window(app: Any, panel: Any, epochs_wanted: int) -> tuple[float, tuple[float, int, int], int, int, float]:
    """(images/s, heartbeat result, progress signals, feature-map renders, GUI-thread CPU share) of a run."""
    from PySide6.QtCore import QEventLoop

    epochs: list[Any] = []
    loop = QEventLoop()
    panel.run_finished.connect(loop.quit)
    renders_before = panel.maps.renders
    beat = Heartbeat()
    beat.start()
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    if not panel.start(epochs=epochs_wanted):
        raise SystemExit(f"the window run did not start: {panel.problem_text}")
    panel.worker.epoch_ended.connect(epochs.append)
    loop.exec()
    gui_cpu = (time.thread_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    stalls = beat.stop()
    panel.run_finished.disconnect(loop.quit)
    summary = panel.last_summary
    if summary is None or summary.status != "completed":
        raise SystemExit(f"window run failed: {summary.message if summary else 'no summary'}")
    signals = panel.worker.runner.progress_signals
    return rate(epochs), stalls, signals, panel.maps.renders - renders_before, gui_cpu


def plot_stress(app: Any) -> list[tuple[int, float, float]]:
    """(points, ms per refresh with new data, ms per full repaint) for big loss histories."""
    import numpy as np

    from core.training import BatchProgress
    from gui.training.plots import MetricsPlots

    out = []
    for n in (100_000, 1_000_000):
        plots = MetricsPlots()
        plots.resize(1000, 420)
        plots.show()
        steps = 1000
        rng = np.random.default_rng(0)
        chunk = 5000
        for start in range(0, n, chunk):
            losses = tuple((2.0 * np.exp(-np.arange(start, start + chunk) / n * 5) + rng.random(chunk) * 0.1).tolist())
            epoch = start // steps + 1
            plots.add_batch(BatchProgress(epoch=epoch, epochs=n // steps, step=start % steps + 1, steps=steps,
                                          global_step=start + chunk, loss=losses[-1], losses=losses,
                                          first_step=start + 1, lr=0.1, images_per_s=1.0, eta_s=0.0))
        plots.refresh()
        app.processEvents()
        timings, paints = [], []
        for i in range(10):
            extra = (0.5,) * 20
            plots.add_batch(BatchProgress(epoch=n // steps, epochs=n // steps, step=1, steps=steps,
                                          global_step=n + 20 * (i + 1), loss=0.5, losses=extra,
                                          first_step=n + 20 * i + 1, lr=0.1, images_per_s=1.0, eta_s=0.0))
            t = time.perf_counter()
            plots.refresh()
            timings.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            plots.loss_plot.viewport().repaint()
            plots.acc_plot.viewport().repaint()
            plots.lr_plot.viewport().repaint()
            paints.append((time.perf_counter() - t) * 1000)
        out.append((plots.step_loss.n, statistics.median(timings), statistics.median(paints)))
        plots.close()
        plots.deleteLater()
        app.processEvents()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--train", type=int, default=8000, help="training images (shapes)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import tempfile

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from core.project import load_project
    from core.training import TrainConfig
    from gui.document import Document
    from gui.training import TrainingPanel

    project = load_project(ROOT / "resources" / "demo_lenet.json")
    project.training = settings(args)
    cfg = TrainConfig.from_dict(project.training)
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    doc = Document.from_project(project)
    panel = TrainingPanel(doc, runs_root=tmp / "window")
    panel.resize(1500, 600)
    panel.show()
    doc.set_selection(["conv1", "conv2"])
    panel.settings.wait_for_data()
    app.processEvents()

    print(f"LeNet-5 on shapes, {args.train} images, batch 128, {args.epochs} epochs per run, device {args.device}, "
          f"torch threads {__import__('torch').get_num_threads()}")
    print(f"{'round':>5} {'headless img/s':>15} {'window img/s':>13} {'ratio':>6} {'stall headless':>15} "
          f"{'stall window':>13} {'>50ms h/w':>10} {'beats':>6} {'progress sig':>13} {'map renders':>12} "
          f"{'GUI CPU':>8}")
    ratios, stalls, base = [], [], []
    for r in range(1, args.rounds + 1):
        h, (h_max, h_late, _) = headless(project, cfg, tmp / f"headless-{r}")
        w, (w_max, w_late, beats), signals, renders, gui_cpu = in_window(app, panel, args.epochs)
        ratios.append(w / h)
        stalls.append(w_max)
        base.append(h_max)
        print(f"{r:>5} {h:>15,.0f} {w:>13,.0f} {w / h:>6.3f} {h_max:>13.0f}ms {w_max:>11.0f}ms "
              f"{h_late:>4}/{w_late:<5} {beats:>6} {signals:>13} {renders:>12} {gui_cpu:>8.1%}")
    print(f"\nwindow / headless throughput: median {statistics.median(ratios):.3f}  (budget ≥ 0.95)")
    print(f"GUI heartbeat ({HEARTBEAT_MS} ms) max lateness with the window training: {max(stalls):.0f} ms "
          f"(budget ≤ 50 ms); with the same training headless on a thread and an idle GUI: {max(base):.0f} ms")
    panel.shutdown()

    print("\nplots with big histories (one PlotDataItem per curve, peak downsampling, clip to view):")
    for n, refresh, paint in plot_stress(app):
        print(f"  {n:>9,} points: refresh {refresh:6.2f} ms, repaint of the three plots {paint:6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
