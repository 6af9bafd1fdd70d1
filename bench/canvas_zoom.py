"""Benchmark: zooming a 1,000-node canvas with the mouse wheel — how long the GUI thread takes for one
wheel step (the zoom and the repaint it causes), at zoom levels from the whole graph to 150 %.

The graph is :func:`bench.open_big.big_project`'s (residual blocks of Linear, ReLU, Linear, Add, each
block a group), shown with its blocks expanded (each a frame around its cards) or folded
(``--folded``), in the real window at 1600×1000 (offscreen unless a display is set). At each zoom
level the bench sends wheel events to the canvas (a notch in, a notch out) and times each until the
event queue is empty and the canvas has painted. ``--against REV`` runs the same measurement on the
editor as it was at git revision ``REV`` (exported to a temporary folder) in the same run,
alternating rounds, and prints the ratios now / then.

Budget (DESIGN §10): no GUI-thread stall over 50 ms. Machine load skews every number (printed).

Run: ``.venv/bin/python bench/canvas_zoom.py [--nodes 1000] [--folded] [--rounds 3] [--against REV]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")  # never touch the user's settings
ROOT = Path(os.environ.get("NETCANVAS_BENCH_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

LEVELS = (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.5)
STEPS = 8  # wheel notches per level, alternately in and out


def measure(nodes: int, folded: bool) -> dict[str, list[float]]:
    """{zoom level: ms per wheel step} in this process, on the editor under ``ROOT``."""
    from PySide6.QtCore import QEvent, QObject, QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from bench.open_big import big_project
    from core.project import load_project
    from gui.document import Document
    from gui.main_window import MainWindow

    class Paints(QObject):
        count = 0

        def eventFilter(self, _obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                Paints.count += 1
            return False

    app = QApplication.instance() or QApplication([])
    path = Path(tempfile.mkdtemp(prefix="nc-zoom-")) / "big.json"
    big_project(nodes, path)
    project = load_project(path)
    for gid in list(project.graph.groups):
        project.graph.set_group(gid, collapsed=folded)
    window = MainWindow(Document.from_project(project), restore_layout=False)
    window.ask_unsaved = lambda: None  # type: ignore[method-assign]
    window.resize(1600, 1000)
    window.show()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 3.0:  # the build, the wires' routing in slices, the first paints
        app.processEvents()
    view = window.view
    viewport = view.viewport()
    watch = Paints()
    viewport.installEventFilter(watch)
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    view.centerOn(view.scene().itemsBoundingRect().center())
    out: dict[str, list[float]] = {}
    for level in LEVELS:
        view.zoom_by(level / view.zoom())
        app.processEvents()
        times = []
        for i in range(STEPS):
            notch = 120 if i % 2 == 0 else -120
            wheel = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(), QPoint(0, notch),
                                Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                                False)
            painted = Paints.count
            t = time.perf_counter()
            QApplication.sendEvent(viewport, wheel)
            while Paints.count == painted:  # until the canvas has painted the new zoom
                app.processEvents()
            app.processEvents()  # and whatever else the zoom queued
            times.append((time.perf_counter() - t) * 1000)
        out[f"{level:g}"] = times
    window.files.recovery.stop()
    window.code.shutdown()
    return out


def run_child(root: Path, nodes: int, folded: bool) -> dict[str, list[float]]:
    env = {**os.environ, "NETCANVAS_BENCH_ROOT": str(root)}
    script = root / "bench" / "canvas_zoom.py"
    if not script.exists():  # an older tree without this bench: this file measures it
        script = Path(__file__).resolve()
    done = subprocess.run([sys.executable, str(script), "--child", "--nodes", str(nodes),
                           *(["--folded"] if folded else [])], env=env, capture_output=True, text=True, cwd=root)
    if done.returncode != 0:
        raise SystemExit(f"the measurement at {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(rev: str) -> Path:
    """The editor at git revision ``rev`` in a temporary folder (``git archive``)."""
    folder = Path(tempfile.mkdtemp(prefix="nc-zoom-rev-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--folded", action="store_true", help="blocks folded into cards (default: expanded)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also measure the editor at this git revision")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.nodes, args.folded)))
        return 0
    from bench.stall_watch import load_average

    print(f"machine: {os.cpu_count()} CPUs, load average {load_average()}")
    trees = {"now": ROOT}
    if args.against:
        trees = {args.against: export(args.against), "now": ROOT}
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    try:
        for _ in range(args.rounds):
            for name, root in trees.items():  # alternating: a change in the machine's load hits both
                for level, times in run_child(root, args.nodes, args.folded).items():
                    rows[name].setdefault(level, []).extend(times)
    finally:
        for root in trees.values():
            if root != ROOT:
                shutil.rmtree(root, ignore_errors=True)
    blocks = "folded" if args.folded else "expanded"
    print(f"one wheel step on a {args.nodes}-node canvas (blocks {blocks}), ms until painted, "
          f"{args.rounds} rounds × {STEPS} steps per level:")
    ratio = "   ratio now/then (median)" if args.against else ""
    print("  zoom  " + "".join(f"{name:>22}" for name in rows) + ratio)
    for level in rows["now"]:
        line = f"  {level:>4}  "
        for name in rows:
            values = rows[name][level]
            line += f"  median {statistics.median(values):5.1f} max {max(values):5.1f}"
        if args.against:
            line += f"   {statistics.median(rows['now'][level]) / statistics.median(rows[args.against][level]):.2f}×"
        print(line)
    for name in rows:
        every = [v for values in rows[name].values() for v in values]
        print(f"  {name}: steps over 50 ms: {sum(v > 50 for v in every)} of {len(every)}, longest {max(every):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
