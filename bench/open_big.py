"""File › Open of a big project (issue 11): how long until the new canvas paints, how long in all,
and the longest time the GUI thread did not answer, offscreen.

The project is made here: ``N`` nodes as residual blocks (Linear, ReLU, Linear, Add with a skip
wire), each block a group, laid out in columns of 200 rows. The window shows the demo network,
then opens the file the way File › Open does (a file over 2 MiB is read on a worker thread);
a zero-interval timer on the GUI thread notes the gap between its turns: the longest gap is the
longest stall the user would feel.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/open_big.py`` (20,000 and 100,000 nodes);
``--nodes 20000`` for one size; ``--against REV`` also runs this bench on the editor as it was at
git revision ``REV`` (an export of it in a temporary folder) and prints the ratios.

Then the user edits the opened graph, each step through the undo stack as the inspector and the
canvas do it: select a block in the middle, change a Linear's ``out_features`` (the shapes below it
change and the Add under it becomes an error), undo that, move a node, add a node, delete it, undo
the delete. For each step: the time the step's own call held the GUI thread, and the longest gap of
the heartbeat in the second after it (analysis, the panels' deferred refreshes, repaints).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")  # never touch the user's settings
ROOT = Path(os.environ.get("NETCANVAS_BENCH_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

STALL_BUDGET_S = 0.050  # DESIGN §10: no stall over 50 ms
PER_COLUMN = 200


def big_project(nodes: int, path: Path) -> None:
    """Write a project of at most ``nodes`` nodes (residual blocks, one group each) to ``path``
    (the loader refuses more than 100,000)."""
    from core.project import new_project, save_project

    project = new_project(name=f"Big {nodes}")
    g = project.graph
    g.add_node("Input", "input", {"shape": [64]})
    g.set_position("input", (0.0, 0.0))
    previous, block, k = "input", 0, 1
    while len(g.nodes) + 4 <= nodes - 1:
        ids = []
        for kind, params in (("Linear", {"out_features": 64}), ("ReLU", {}), ("Linear", {"out_features": 64}),
                             ("Add", {})):
            nid = f"b{block}_{kind.lower()}{len(ids)}"
            g.add_node(kind, nid, params)
            column, row = divmod(k, PER_COLUMN)
            g.set_position(nid, (column * 600.0 + (120.0 if kind == "ReLU" else 0.0), row * 100.0))
            k += 1
            ids.append(nid)
        for src, dst in ((previous, ids[0]), (ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[3]), (previous, ids[3])):
            g.add_edge(src, dst)
        g.add_group(f"block{block}", f"Block {block}", ids)
        previous, block = ids[3], block + 1
    g.add_node("Output", "output")
    g.add_edge(previous, "output")
    column, row = divmod(k, PER_COLUMN)
    g.set_position("output", (column * 600.0, row * 100.0))
    save_project(project, path)


def measure(path: Path) -> dict[str, float | int]:
    """Open ``path`` in a shown window; the times from File › Open to the new canvas's first paint
    and to the end, the longest GUI-thread stall, and the items the canvas ends with."""
    from PySide6.QtCore import QEvent, QEventLoop, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    from core.project import load_project
    from gui.document import Document
    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(Document.from_project(load_project(ROOT / "resources" / "demo_lenet.json")),
                        restore_layout=False)
    window.resize(1600, 1000)

    def refused(title: str, text: str) -> None:  # a message box would wait for a click forever
        print(f"{title}: {text}", file=sys.stderr)
        os._exit(2)

    window.show_error = refused  # type: ignore[method-assign]
    window.show()
    for _ in range(20):
        app.processEvents()
    old_doc, old_view = window.doc, window.view
    painted: list[float] = []

    class PaintWatch(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not painted:
                painted.append(time.perf_counter())
            return False

    watch = PaintWatch()
    gaps = {"last": 0.0, "worst": 0.0}
    worst_in: dict[str, float] = {}  # the longest stall while reading, drawing and after

    def phase() -> str:
        files = window.files
        if window.doc is not old_doc:
            return "shown"
        building = getattr(files, "building", None)  # (an older revision draws in one go)
        return "drawing" if building is not None and building.running() else "reading"

    def beat() -> None:
        now = time.perf_counter()
        gap = now - gaps["last"]
        gaps["worst"] = max(gaps["worst"], gap)
        where = phase()
        worst_in[where] = max(worst_in.get(where, 0.0), gap)
        gaps["last"] = now

    loop = QEventLoop()
    done: list[float] = []

    def check() -> None:
        if window.view is not old_view and not window.view.viewport().property("bench_watched"):
            window.view.viewport().setProperty("bench_watched", True)
            window.view.viewport().installEventFilter(watch)
        if window.doc is not old_doc and window.files.opening is None and painted and not done:
            done.append(time.perf_counter())
            loop.quit()

    heart = QTimer(interval=0)
    heart.timeout.connect(beat)
    poll = QTimer(interval=1)
    poll.timeout.connect(check)
    t0 = gaps["last"] = time.perf_counter()
    heart.start()
    poll.start()
    window.files.open_path(path, ask=False)  # what File › Open does once the dialog closed
    gaps["worst"] = max(gaps["worst"], time.perf_counter() - t0)  # the call itself held the thread
    gaps["last"] = time.perf_counter()
    loop.exec()
    heart.stop()
    poll.stop()
    scene = window.scene
    opened_worst = gaps["worst"]
    edits = _edit_after_open(app, window, beat, gaps)
    result: dict[str, float | int] = {
        "first_paint_s": painted[0] - t0, "total_s": done[0] - t0, "worst_stall_s": opened_worst,
        "nodes": len(window.doc.graph.nodes), "node_items": len(scene.nodes), "edge_items": len(scene.edges),
        "edges": len(window.doc.graph.edges),
        **{f"stall_{where}_s": gap for where, gap in worst_in.items()},
        **edits,
    }
    window.ask_unsaved = lambda: None  # type: ignore[method-assign]
    window.files.recovery.stop()
    window.code.shutdown()
    window.summary.shutdown()
    window.deleteLater()
    app.processEvents()
    return result


EDIT_STEPS = ("select", "set_param", "undo_param", "move", "add", "delete", "undo_delete")


def _edit_after_open(app: Any, window: Any, beat: Callable[[], None],
                     gaps: dict[str, float]) -> dict[str, float]:
    """The user's first edits on the opened graph (see the module docstring): per step, the call's
    own time (``edit_<step>_call_s``) and the longest heartbeat gap in the second after it
    (``edit_<step>_stall_s``)."""
    from PySide6.QtCore import QTimer

    from gui.commands import AddNodeCommand, MoveNodesCommand, RemoveItemsCommand, SetParamCommand

    doc = window.doc
    linears = [nid for nid, n in doc.graph.nodes.items() if n.type == "Linear"]
    middle = linears[len(linears) // 2]
    block = middle.split("_")[0]
    members = [nid for nid in doc.graph.nodes if nid.startswith(block + "_")]
    pos = doc.graph.nodes[middle].pos or (0.0, 0.0)
    steps: dict[str, Callable[[], Any]] = {
        "select": lambda: doc.set_selection(members),
        "set_param": lambda: doc.push(SetParamCommand(doc, middle, "out_features", 32)),
        "undo_param": lambda: doc.undo_stack.undo(),
        "move": lambda: doc.push(MoveNodesCommand(doc, {middle: (pos, (pos[0] + 40.0, pos[1] + 20.0))})),
        "add": lambda: doc.push(AddNodeCommand(doc, "ReLU", "bench_relu", pos=(pos[0] + 300.0, pos[1]))),
        "delete": lambda: doc.push(RemoveItemsCommand(doc, ["bench_relu"])),
        "undo_delete": lambda: doc.undo_stack.undo(),
    }
    heart = QTimer(interval=0)
    heart.timeout.connect(beat)
    heart.start()
    out: dict[str, float] = {}
    for name in EDIT_STEPS:
        t0 = time.perf_counter()
        steps[name]()
        out[f"edit_{name}_call_s"] = time.perf_counter() - t0
        gaps["last"], gaps["worst"] = time.perf_counter(), 0.0
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            app.processEvents()
        out[f"edit_{name}_stall_s"] = max(gaps["worst"], out[f"edit_{name}_call_s"])
    heart.stop()
    return out


def _run_at(rev: str, nodes: int, path: Path) -> dict[str, float | int]:
    """This bench against the editor at git revision ``rev`` (exported to a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="netcanvas-bench-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        shutil.copy(Path(__file__), Path(tmp) / "bench" / "open_big_current.py")
        env = {**os.environ, "NETCANVAS_BENCH_ROOT": tmp}
        out = subprocess.run([sys.executable, str(Path(tmp) / "bench" / "open_big_current.py"), "--one", str(path)],
                             check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def _line(label: str, r: dict[str, float | int]) -> str:
    return (f"  {label:<10} first paint {r['first_paint_s']:7.2f} s   total {r['total_s']:7.2f} s   "
            f"longest stall {r['worst_stall_s'] * 1000:8.1f} ms (budget {STALL_BUDGET_S * 1000:.0f} ms, ratio "
            f"{r['worst_stall_s'] / STALL_BUDGET_S:.2f})   canvas {r['node_items']:,} node / {r['edge_items']:,} "
            f"wire items of {r['nodes']:,} / {r['edges']:,}\n"
            f"  {'':<10} longest stall while " + ", ".join(
                f"{where} {r[f'stall_{where}_s'] * 1000:.0f} ms" for where in ("reading", "drawing", "shown")
                if f"stall_{where}_s" in r)
            + (f"\n  {'':<10} editing after open, longest stall per step: " + ", ".join(
                f"{step} {r[f'edit_{step}_stall_s'] * 1000:.0f} ms" for step in EDIT_STEPS)
               if "edit_select_stall_s" in r else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--against", metavar="REV", help="also measure the editor at this git revision")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child run: measure this file, print JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0
    with tempfile.TemporaryDirectory(prefix="netcanvas-big-") as tmp:
        for n in args.nodes:
            path = Path(tmp) / f"big{n}.json"
            big_project(n, path)
            print(f"open a {n:,}-node project ({path.stat().st_size / 1_048_576:.1f} MiB):")
            # each measurement in a fresh process: the same imports and caches for both revisions
            now = _run_at_current(path)
            print(_line("now", now))
            if args.against:
                then = _run_at(args.against, n, path)
                print(_line(args.against, then))
                print(f"  ratio now/{args.against}: first paint {now['first_paint_s'] / then['first_paint_s']:.2f}   "
                      f"total {now['total_s'] / then['total_s']:.2f}   "
                      f"longest stall {now['worst_stall_s'] / then['worst_stall_s']:.3f}")
    return 0


def _run_at_current(path: Path) -> dict[str, float | int]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
