"""No garbage collection may finalize the GUI's Qt objects on a worker thread.

The ResNet-50 journey failed at random ("QBasicTimer::start: Timers cannot be started from another
thread", or a segfault in a collection): opening a template left the replaced document's canvas scene,
its items and timers in Python cycles, and the Code panel's exporter thread allocated enough to start
the collection that freed them, there. Both halves are pinned: the panel's worker starts no collection,
and the window deletes a replaced scene itself, on the GUI thread.
"""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox
from shiboken6 import Shiboken

import gui.panels.code as code_module
from core.project import load_project
from gui.document import Document
from gui.main_window import MainWindow
from gui.panels.code import CodePanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


@pytest.fixture
def collector_on():
    """The collector on (as in the app), whatever the run had; restored afterwards."""
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_no_collection_starts_on_the_code_panels_worker(qtbot, monkeypatch, collector_on) -> None:
    doc = Document.from_project(load_project(DEMO))
    worker: list[int] = []
    collections: list[int] = []

    def exporter(graph: Any, name: str = "Network") -> str:
        # Allocates like the real exporter on a big graph: thousands of cyclic containers, far past the
        # collector's first threshold, so an enabled collector starts collections on this thread.
        worker.append(threading.get_ident())
        junk = []
        for i in range(20_000):
            node: list[Any] = [i]
            node.append(node)
            junk.append(node)
        del junk
        return f"class {name}:\n    pass\n"

    def record(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(threading.get_ident())

    monkeypatch.setattr(code_module, "python_source", exporter)
    panel = CodePanel()
    qtbot.addWidget(panel)
    panel.show()
    gc.callbacks.append(record)
    try:
        with qtbot.waitSignal(panel.code_ready, timeout=5_000):
            panel.set_document(doc)
    finally:
        gc.callbacks.remove(record)
    assert worker and worker[0] != threading.get_ident(), "the exporter ran on a worker thread"
    assert worker[0] not in collections, "a collection started on the code panel's worker thread"
    assert panel.text().startswith("class ")  # the result still arrives
    assert gc.isenabled(), "the panel gives the collector back once the result is in"
    panel.shutdown()
    doc.dispose()


def test_replacing_the_document_deletes_the_old_scene_on_the_gui_thread(qtbot, collector_on) -> None:
    window = MainWindow(Document.from_project(load_project(DEMO)), restore_layout=False)
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard  # no modal prompt at teardown
    qtbot.addWidget(window)
    old_scene = window.scene
    gc.disable()  # only the window may free it here: no collection (which could run on any thread)
    try:
        window.set_document(Document.from_project(load_project(DEMO)))
        qtbot.waitUntil(lambda: not Shiboken.isValid(old_scene), timeout=2_000)
    finally:
        gc.enable()
    assert Shiboken.isValid(window.scene) and window.view.scene() is window.scene
