"""Journey (issue 12 §2): File › Open of an ONNX model shows its graph on the canvas, ready to edit;
a broken .onnx names the file once and keeps the document."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import torch
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from torch import nn

from gui.files import RenameProjectCommand
from tests.journeys.conftest import SIZES, assert_not_clipped, open_window, settle, trigger
from tests.journeys.test_files_journey import assert_status_fits


def _small_onnx(path: Path) -> Path:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}}, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return path


def _held_imports(monkeypatch) -> threading.Event:  # type: ignore[no-untyped-def]
    """Hold the worker's import until the returned event is set: on a fast machine a small model was
    imported (and its result shown) before the test could look at the window while it imports."""
    import gui.dialogs.onnx_import as onnx_import

    go = threading.Event()
    real = onnx_import._import_onnx

    def held(path: Path) -> object:
        go.wait(20)
        return real(path)

    monkeypatch.setattr(onnx_import, "_import_onnx", held)
    return go


def test_file_open_of_an_onnx_model_lands_its_graph_on_the_canvas(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot, SIZES[1])
    path = _small_onnx(isolated / "tiny_net.onnx")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    before = window.doc
    go = _held_imports(monkeypatch)
    trigger(window, "File", "Open")
    # the import runs on a worker thread: the status bar says so and the window keeps answering
    assert window.statusBar().currentMessage() == "Importing tiny_net.onnx…"
    go.set()
    qtbot.waitUntil(lambda: window.doc is not before, timeout=20000)
    settle(50)
    assert not window.errors
    doc = window.doc
    assert doc.project.name == "tiny_net" and doc.path is None  # a new, unsaved project
    types = [n.type for n in doc.graph.nodes.values()]
    assert types == ["Input", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "Output"]
    # one card per node on the canvas, every one shown
    assert set(window.scene.nodes) == set(doc.graph.nodes)
    assert all(item.isVisible() for item in window.scene.nodes.values())
    message = assert_status_fits(window)
    assert message.startswith("Imported tiny_net.onnx: 6 layers")
    # the status bar's totals are the imported model's: 224 + 16 + 5,130 parameters, 8 nodes
    assert window.totals_label.text().startswith("5.37 k params") and window.totals_label.text().endswith("8 nodes")
    assert_not_clipped(window.totals_label)
    assert window.windowTitle().startswith("tiny_net")


def test_a_broken_onnx_file_names_its_path_once_and_keeps_the_document(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    doc = window.doc
    bad = isolated / "cut.onnx"
    bad.write_bytes(_small_onnx(isolated / "whole.onnx").read_bytes()[:300])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    trigger(window, "File", "Open")
    qtbot.waitUntil(lambda: bool(window.errors), timeout=20000)
    title, text = window.errors[-1]
    assert title == "Cannot import the ONNX model"
    assert text.count(str(bad)) == 1 and "not a readable ONNX model" in text and "\n" not in text
    assert window.doc is doc
    assert QApplication.overrideCursor() is None  # the busy cursor is gone


def test_edits_made_while_an_onnx_model_imports_are_asked_about(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot)
    doc = window.doc
    path = _small_onnx(isolated / "later.onnx")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    asked: list[bool] = []
    window.ask_unsaved = lambda: asked.append(True) or QMessageBox.StandardButton.Cancel  # type: ignore[method-assign]
    go = _held_imports(monkeypatch)
    trigger(window, "File", "Open")
    doc.undo_stack.push(RenameProjectCommand(doc, "edited meanwhile", lambda: None))  # an edit while it imports
    go.set()
    qtbot.waitUntil(lambda: "was not imported" in window.statusBar().currentMessage(), timeout=20000)
    assert asked == [True] and window.doc is doc and doc.project.name == "edited meanwhile"  # the user said Cancel
    assert window.statusBar().currentMessage() == "Kept your changes; later.onnx was not imported"


def test_dropping_an_onnx_model_on_the_window_imports_it(qtbot, isolated) -> None:
    from tests.journeys.test_files_journey import drop_on_window

    window = open_window(qtbot, SIZES[1])
    before = window.doc
    drop_on_window(window, _small_onnx(isolated / "dropped.onnx"))
    qtbot.waitUntil(lambda: window.doc is not before, timeout=20000)
    settle(50)
    assert not window.errors and window.doc.project.name == "dropped"
    assert set(window.scene.nodes) == set(window.doc.graph.nodes) and len(window.doc.graph.nodes) == 8
    assert assert_status_fits(window).startswith("Imported dropped.onnx: 6 layers")
