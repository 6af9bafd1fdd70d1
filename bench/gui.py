"""Editor benchmarks (DESIGN.md §10), offscreen:

1. open the ResNet-152 template in the editor — build the project, the document, the window,
   show it — and time until the canvas has painted once (budget 1.5 s);
2. in a 500-node graph (ResNet-152 with its blocks expanded), change one parameter through the
   undo stack and time until the canvas items show the new analysis (budget 50 ms).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui.py`` (prints times and ratios to budget).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasBench")  # never touch the user's settings
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

OPEN_BUDGET_S = 1.5
EDIT_BUDGET_S = 0.050


class _PaintWatch(QObject):
    """Notes that a Paint event reached the watched widget."""

    def __init__(self) -> None:
        super().__init__()
        self.painted = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False


def bench_open(app: QApplication) -> float:
    import templates
    from gui.document import Document
    from gui.main_window import MainWindow

    watch = _PaintWatch()
    t0 = time.perf_counter()
    project = templates.build_template("resnet152")
    doc = Document.from_project(project, collapse_blocks=True)
    window = MainWindow(doc, restore_layout=False)
    window.resize(1600, 1000)
    window.view.viewport().installEventFilter(watch)
    window.show()
    while not watch.painted:
        app.processEvents()
        if time.perf_counter() - t0 > 60:
            raise SystemExit("the canvas never painted")
    app.processEvents()  # the paint event has been handled once processEvents returns
    elapsed = time.perf_counter() - t0
    window.ask_unsaved = lambda: None  # type: ignore[method-assign]
    window.files.recovery.stop()
    window.code.shutdown()
    window.deleteLater()
    app.processEvents()
    return elapsed


def bench_edit(app: QApplication, repeats: int = 30) -> tuple[float, float, int]:
    import templates
    from gui import commands
    from gui.document import Document
    from gui.main_window import MainWindow

    project = templates.build_template("resnet152")
    for gid in list(project.graph.groups):
        project.graph.set_group(gid, collapsed=False)
    doc = Document.from_project(project)
    window = MainWindow(doc, restore_layout=False)
    window.resize(1600, 1000)
    window.show()
    for _ in range(5):
        app.processEvents()
    n = len(doc.graph.nodes)
    # The stem's width: its new shape flows through bn1, relu, maxpool into layer1's first block.
    times = []
    for i in range(repeats):
        value = 48 if i % 2 == 0 else 64
        t0 = time.perf_counter()
        doc.push(commands.SetParamCommand(doc, "conv1", "out_channels", value))
        app.processEvents()  # deliver anything the scene deferred: labels are current after this
        times.append(time.perf_counter() - t0)
        assert doc.analysis.nodes["bn1"].output_shape == (value, 112, 112)
    window.ask_unsaved = lambda: None  # type: ignore[method-assign]
    window.files.recovery.stop()
    window.code.shutdown()
    window.deleteLater()
    app.processEvents()
    return statistics.median(times), max(times), n


def main() -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    opened = bench_open(app)
    median, worst, n = bench_edit(app)
    print(f"open ResNet-152 template to first paint: {opened * 1000:8.1f} ms   budget {OPEN_BUDGET_S * 1000:.0f} ms"
          f"   ratio {opened / OPEN_BUDGET_S:.2f}")
    print(f"one-parameter edit, {n}-node graph (median): {median * 1000:6.1f} ms   budget "
          f"{EDIT_BUDGET_S * 1000:.0f} ms   ratio {median / EDIT_BUDGET_S:.2f}   (worst {worst * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
