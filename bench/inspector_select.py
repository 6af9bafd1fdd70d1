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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per mode (default 4)")
    parser.add_argument("--pause", type=float, default=0.15, help="seconds between clicks (default 0.15)")
    parser.add_argument("--train", action="store_true", help="click while a run trains")
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
    types = [window.doc.graph.nodes[n].type for n in nodes]
    moves = sum(a != b for a, b in zip(types, types[1:] + types[:1], strict=True))
    # The reference: clicks between nodes of one type (conv1 → conv2, relu1 → relu2 …), which
    # showed the same widgets with the new values already before the kept forms.
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
