"""What selecting a node of another layer type costs the GUI thread, with and without kept forms.

Opens the editor window (offscreen Qt unless a display is set) with the LeNet-5 demo and clicks
through its layers in order (conv1 → relu1 → pool1 → conv2 …: nearly every click moves to another
type). ``before`` sets ``InspectorPanel.kept_forms = 1``: only the form on show is kept, so each
click builds the new type's form and destroys the old one. ``after`` keeps the last 8 types' forms
(the default) and shows the one kept. The two alternate round by round in one window, so both see
the same machine load; each "after" round follows an unmeasured one that builds again the forms
"before" dropped. One click's cost runs from ``select_nodes`` until the events it set off are
handled (the inspector's layout and paint, the canvas's repaint, the deletion of a dropped form):
wall time and the GUI thread's CPU time. One unmeasured round per mode goes first (the first
build of each type, the style's caches).

Run: ``.venv/bin/python bench/inspector_select.py`` (``--rounds``, ``--train`` to click while a run
trains on ``shapes``, ``--pause`` seconds between clicks). Prints medians and maxima per mode and
the ratio of the medians, and as a reference the clicks between nodes of one type (``same type``:
the same widgets with new values, with the forms kept or not); no thresholds.

``--first`` measures instead the *first* click on each type after the document is shown, with and
without the forms built ahead in idle time (``InspectorPanel.prebuild``), the two alternating round
by round: each round drops every kept form, shows the document again, leaves the event loop idle
for ``--idle`` seconds (where the prebuild runs, or nothing does) and clicks one node of each type.
It prints the GUI-thread CPU per click (p50, max) of both, their ratios, and the prebuild's own
steps (GUI-thread CPU per event-loop turn). With ``--train`` the prebuild is let run during the run
(the window holds it back while training) to show what its steps cost then.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")

from bench.gui_training import open_training_dock, open_window, wait_until
from bench.stall_watch import load_average

ROOT = Path(__file__).resolve().parent.parent
MODES = {"before": 1, "after": 8}  # InspectorPanel.kept_forms


def settle(app: Any) -> None:
    """Handle what a click set off, as the event loop would before the next input."""
    from PySide6.QtCore import QCoreApplication, QEvent

    app.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()


def click_through(app: Any, window: Any, nodes: list[str], pause: float) -> list[tuple[float, float]]:
    """Select each node in turn; ``(wall ms, GUI CPU ms)`` per click."""
    out = []
    for node in nodes:
        wait_until(app, lambda: False, pause)  # the events of the last click and of training drain
        t, c = time.perf_counter(), time.thread_time()
        window.view.select_nodes([node])
        settle(app)
        out.append(((time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000))
    return out


def first_clicks(app: Any, window: Any, nodes: list[str], args: argparse.Namespace,
                 prebuild: bool) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Show the document with no kept form, wait ``args.idle`` s, click ``nodes`` (one per type):
    ``(wall ms, GUI CPU ms)`` per click and per prebuild step."""
    inspector = window.inspector
    window.view.select_nodes([])  # the overview on show: every node form can go
    settle(app)
    for type_name, form in list(inspector._forms.items()):  # a bench resets the cache
        del inspector._forms[type_name]
        inspector._destroy(form)
    settle(app)
    inspector.prebuild.enabled = prebuild
    before = len(inspector.prebuild.turns_ms)
    inspector.set_document(window.doc)  # as File > Open / New and a theme switch do
    wait_until(app, lambda: False, args.idle)
    if inspector.prebuild.pending:
        print(f"  (the prebuild had not finished in {args.idle} s: raise --idle)")
    turns = list(zip(inspector.prebuild.turns_wall_ms[before:], inspector.prebuild.turns_ms[before:], strict=True))
    clicks = click_through(app, window, nodes, args.pause)
    inspector.prebuild.enabled = True
    return clicks, turns


def report_first(samples: dict[str, list[tuple[float, float]]], turns: list[tuple[float, float]], nodes: int) -> None:
    """The ``--first`` table: per mode, and the ratios prebuilt / click-built."""
    print(f"first click on each of {nodes} types after the document is shown (ms per click)")
    print(f"{'':12} {'wall p50':>9} {'wall max':>9} {'cpu p50':>9} {'cpu max':>9}")
    stats: dict[str, tuple[float, float, float, float]] = {}
    for mode, got in samples.items():
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        stats[mode] = (statistics.median(walls), max(walls), statistics.median(cpus), max(cpus))
        print(f"{mode:12} " + " ".join(f"{v:9.1f}" for v in stats[mode]))
    a, b = stats["prebuilt"], stats["click-built"]
    print(f"prebuilt / click-built: GUI cpu p50 {a[2] / b[2]:.2f}, max {a[3] / b[3]:.2f}; "
          f"wall p50 {a[0] / b[0]:.2f}, max {a[1] / b[1]:.2f}")
    if turns:
        walls, cpus = [w for w, _ in turns], [c for _, c in turns]
        print(f"prebuild steps: {len(turns)} turns; per turn GUI cpu p50 {statistics.median(cpus):.1f} ms, "
              f"max {max(cpus):.1f} ms; wall p50 {statistics.median(walls):.1f} ms, max {max(walls):.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per mode (default 4)")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds between clicks (default 0.15)")
    parser.add_argument("--train", action="store_true", help="click while a run trains")
    parser.add_argument("--first", action="store_true",
                        help="first click on each type, with and without the forms prebuilt in idle time")
    parser.add_argument("--idle", type=float, default=2.0, help="--first: idle seconds after showing (default 2)")
    args = parser.parse_args()

    from PySide6.QtWidgets import QApplication

    from core.project import load_project

    app = QApplication.instance() or QApplication([])
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    if args.train:
        project.training = {"dataset": "shapes", "train_size": 8000, "val_size": 1000, "epochs": 50,
                            "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "device": "cpu", "probe_interval": 0.5}
    window = open_window(app, project, Path(tempfile.mkdtemp()) / "runs")
    panel = None
    if args.train:
        panel = open_training_dock(app, window).panel
        panel.settings.wait_for_data()
        panel.start(epochs=50)
        wait_until(app, lambda: panel.plots.step_loss.n > 0, 60)
    nodes = [n for n in window.doc.analysis.order if n not in ("input", "output")]
    if args.first:
        if args.train:  # the window holds the prebuild back while training: let it run, to measure its steps
            window.inspector.prebuild.blocked = lambda: False
        firsts = list({window.doc.graph.nodes[n].type: n for n in reversed(nodes)}.values())[::-1]
        got_first: dict[str, list[tuple[float, float]]] = {"click-built": [], "prebuilt": []}
        turns: list[tuple[float, float]] = []
        for round_ in range(args.rounds + 1):
            for mode in got_first:
                clicks, steps = first_clicks(app, window, firsts, args, mode == "prebuilt")
                if round_:  # round 0 warms up
                    got_first[mode] += clicks
                    turns += steps
        if panel is not None:
            panel.stop()
            panel.worker.wait()
        print(f"{args.rounds} rounds per mode{', training' if args.train else ''}; load {load_average()}")
        report_first(got_first, turns, len(firsts))
        return 0
    types = [window.doc.graph.nodes[n].type for n in nodes]
    moves = sum(a != b for a, b in zip(types, types[1:] + types[:1], strict=True))
    # The reference: clicks between nodes of one type (conv1 → conv2, relu1 → relu2 …), which
    # showed the same widgets with the new values already before the kept forms.
    window.inspector.prebuild.enabled = False  # kept forms alone, as before the prebuild (see --first)
    by_type = sorted(nodes, key=lambda n: window.doc.graph.nodes[n].type)
    same = [i for i in range(1, len(by_type))
            if window.doc.graph.nodes[by_type[i]].type == window.doc.graph.nodes[by_type[i - 1]].type]
    samples: dict[str, list[tuple[float, float]]] = {m: [] for m in (*MODES, "same type")}
    for round_ in range(args.rounds + 1):
        for mode, kept in MODES.items():
            window.inspector.kept_forms = kept
            if mode == "after":  # builds again the forms that "before" dropped: not measured
                click_through(app, window, nodes, args.pause)
            got = click_through(app, window, nodes, args.pause)
            if round_:  # round 0 warms up
                samples[mode] += got
        got = click_through(app, window, by_type, args.pause)
        if round_:
            samples["same type"] += [got[i] for i in same]
    if panel is not None:
        panel.stop()
        panel.worker.wait()

    print(f"{len(nodes)} nodes, {moves} of {len(nodes)} clicks to another type; {args.rounds} rounds per mode"
          f"{', training' if args.train else ''}; load {load_average()}")
    med: dict[str, tuple[float, float]] = {}
    print(f"{'':10} {'wall p50':>9} {'wall max':>9} {'cpu p50':>9} {'cpu max':>9}   (ms per click)")
    for mode, got in samples.items():
        walls, cpus = [w for w, _ in got], [c for _, c in got]
        med[mode] = (statistics.median(walls), statistics.median(cpus))
        print(f"{mode:10} {med[mode][0]:9.1f} {max(walls):9.1f} {med[mode][1]:9.1f} {max(cpus):9.1f}")
    print(f"after / before medians: wall {med['after'][0] / med['before'][0]:.2f}, "
          f"GUI cpu {med['after'][1] / med['before'][1]:.2f}; after / same type: "
          f"wall {med['after'][0] / med['same type'][0]:.2f}, GUI cpu {med['after'][1] / med['same type'][1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
