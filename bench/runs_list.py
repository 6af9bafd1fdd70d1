"""Benchmark: what the Runs tab's list costs the GUI thread in a folder of many runs, with and without a
training thread beside it (issue 11's soak: 147 runs by its end, and stalls over 50 ms at each run's
start and end from the list's rescan).

A folder of ``--runs`` finished LeNet-5 runs (the files the engine writes) is made in a temporary
directory, every folder's time set a minute back. Then, for each condition, side by side:

- ``open``: a new list on that folder with nothing read yet (the Runs tab's first open): the total
  time until every row is shown, and the longest event-loop turn on the way (the list reads a slice
  of the folders per turn);
- ``refresh``: a rescan when nothing changed (a run's start, while the list is shown);
- ``new run``: a rescan after one more run appeared (a run's end);
- ``Refresh``: the button, which reads every folder again, a slice per turn (total and longest turn).

Conditions: ``idle``, and ``thread``: a Python thread trains a small CNN meanwhile, as the editor's
run does (it shares the interpreter lock: every system call and Qt call of the GUI thread lets go of
it, and waits to get it back). The collector is held in ``thread`` as it is during a run. Medians of
``--repeats``; the ratios print thread/idle.

Measured (2 cores, load 0.5, 170 runs, median of 5; idle / thread): a rescan with nothing changed
4.9 / 5.2 ms, after a new run 5.6 / 6.0 ms (stat'ing each run's five files before: 13 / 50 ms, 41 ms of
it the stats); the first open 46 / 77 ms in all, its longest turn 20 / 24 ms (read at once before:
43 / 258 ms in one turn, with the collector running).

Run: ``.venv/bin/python bench/runs_list.py`` (``--runs``, ``--repeats``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

ROOT = Path(__file__).resolve().parent.parent


def make_runs(root: Path, count: int) -> None:
    """``count`` finished runs of the LeNet-5 demo on Shapes, as the engine leaves them."""
    from core.training.config import TrainConfig
    from core.training.runs import RunFolder

    project = json.loads((ROOT / "resources" / "demo_lenet.json").read_text(encoding="utf-8"))
    for i in range(count):
        folder = RunFolder(root / f"lenet-{i:04d}")
        folder.create()
        training = TrainConfig.from_dict({**project["training"], "epochs": 5}).to_dict()  # as the engine writes it
        folder.write_json("config.json", {"training": training, "dataset": {"name": "shapes"}})
        folder.write_json("graph.json", project)
        folder.write_metrics([{"epoch": e, "train_loss": 2.0 / e, "val_acc": 1 - 1 / (e + 1)} for e in range(1, 6)])
        folder.write_json("run.json", {"status": "completed", "epochs_done": 5})
        started = 1_700_000_000.0 + 60 * i
        os.utime(folder.path / "config.json", (started, started))
    back = time.time() - 60
    for folder_path in root.iterdir():
        os.utime(folder_path, (back, back))


class Trainer:
    """A thread training a small CNN on random images until stopped (one torch thread)."""

    def __init__(self) -> None:
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import torch

        model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Flatten(), torch.nn.Linear(6 * 14 * 14, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
        while not self.stop:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

    def __enter__(self) -> Trainer:
        gc.disable()  # as during a run (gui.training.worker holds the collector)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop = True
        self.thread.join()
        gc.enable()


def until_read(app: object, panel: object) -> tuple[float, float]:
    """Handle events until the list has read every folder: (total ms, longest turn ms)."""
    longest = 0.0
    start = time.perf_counter()
    while panel.reading or panel._reading_on:  # type: ignore[attr-defined]
        t = time.perf_counter()
        app.processEvents()  # type: ignore[attr-defined]
        longest = max(longest, (time.perf_counter() - t) * 1000)
    return (time.perf_counter() - start) * 1000, longest


def measure(app: object, root: Path, repeats: int) -> dict[str, float]:
    import gui.training.run_records as records
    from gui.training.runs import RunsPanel

    out: dict[str, list[float]] = {k: [] for k in ("open total", "open turn", "refresh", "new run",
                                                     "Refresh total", "Refresh turn")}
    for rep in range(repeats):
        records._records.clear()
        panel = RunsPanel(root)
        panel.resize(1100, 500)
        panel.show()
        app.processEvents()  # type: ignore[attr-defined]
        t = time.perf_counter()
        panel.refresh()
        first = (time.perf_counter() - t) * 1000
        total, turn = until_read(app, panel)
        out["open total"].append(first + total)
        out["open turn"].append(max(first, turn))
        t = time.perf_counter()
        panel.refresh()
        out["refresh"].append((time.perf_counter() - t) * 1000)
        make_runs_one(root, rep)
        t = time.perf_counter()
        panel.refresh()
        out["new run"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        panel.refresh(fresh=True)
        first = (time.perf_counter() - t) * 1000
        total, turn = until_read(app, panel)
        out["Refresh total"].append(first + total)
        out["Refresh turn"].append(max(first, turn))
        panel.close()
        panel.deleteLater()
        app.processEvents()  # type: ignore[attr-defined]
    return {k: statistics.median(v) for k, v in out.items()}


_extra: list[Path] = []


def make_runs_one(root: Path, rep: int) -> None:
    """One more run in the folder (removed again before the next repeat, so each sees the same count)."""
    import shutil

    for old in _extra:
        shutil.rmtree(old, ignore_errors=True)
    _extra.clear()
    source = next(p for p in sorted(root.iterdir()) if p.name.startswith("lenet-"))
    target = root / f"zz-new-{rep}"
    shutil.copytree(source, target)
    _extra.append(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=170)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from bench.stall_watch import load_average

    app = QApplication.instance() or QApplication([])
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_runs(root, args.runs)
        idle = measure(app, root, args.repeats)
        with Trainer():
            busy = measure(app, root, args.repeats)
    print(f"{args.runs} runs, median of {args.repeats}, load {load_average()}")
    print(f"{'':16}{'idle ms':>10}{'thread ms':>11}{'ratio':>8}")
    for key in idle:
        print(f"{key:16}{idle[key]:10.1f}{busy[key]:11.1f}{busy[key] / max(idle[key], 1e-6):8.2f}")


if __name__ == "__main__":
    main()
