"""Journey b: a practitioner opens ResNet-50 and VGG-16 from the template gallery, gives each a
10-class head, changes a stride and deletes a stage, watches shapes, receptive fields and
parameters change where they look (cards, inspector, status bar), reads the Summary and Code
tabs, and exports .py and .onnx through the File menu."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog

from gui.dialogs.templates import TemplateGallery
from tests.journeys.conftest import assert_not_clipped, canvas_share, open_window, settle, trigger

pytestmark = pytest.mark.slow


def open_from_gallery(window, typed: str) -> None:
    """Ctrl+Shift+T, type the start of the template's name, Enter: what a keyboard user does."""
    seen: list[TemplateGallery] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, TemplateGallery), dialog
        seen.append(dialog)
        dialog.tree.setFocus()
        QTest.keyClicks(dialog.tree, typed)
        QTest.keyClick(dialog.tree, Qt.Key.Key_Return)

    QTimer.singleShot(0, answer)
    QTest.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    settle(50)
    assert seen, "the template gallery did not open"


def find(window, text: str) -> None:
    """Ctrl+F, the node's id, Enter: the node is selected and centred."""
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    field = window.find_field
    assert QApplication.focusWidget() is field
    QTest.keyClicks(field, text)
    QTest.keyClick(field, Qt.Key.Key_Return)
    settle(10)
    assert window.doc.selection == [text], window.statusBar().currentMessage()
    item = window.view.canvas.nodes[text]
    assert item.isVisible()
    assert window.view.viewport().rect().contains(window.view.mapFromScene(item.sceneBoundingRect().center()))


def total_params(window) -> float:
    """The parameter count the status bar shows, in millions ("23.5 M params")."""
    text = window.totals_label.text()
    m = re.search(r"([\d.]+)\s*([kMG]?)\s*params", text)
    assert m, text
    scale = {"": 1e-6, "k": 1e-3, "M": 1.0, "G": 1e3}[m.group(2)]
    return float(m.group(1)) * scale


def export_both(window, folder: Path, stem: str, monkeypatch) -> tuple[Path, Path]:
    py, onnx_path = folder / f"{stem}.py", folder / f"{stem}.onnx"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(py), "")))
    trigger(window, "File", "Export to Python")
    assert py.exists() and window.statusBar().currentMessage() == f"Exported {py.name}"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(onnx_path), "")))
    trigger(window, "File", "Export to ONNX")
    assert onnx_path.exists() and window.errors == []
    return py, onnx_path


def build_exported(path: Path) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == module.__name__]
    top = [c for c in classes if c.__doc__ and "Input" in c.__doc__] or classes[-1:]
    return top[0]()


def test_resnet50_new_head_stride_stage_summary_code_export(qtbot, isolated: Path, monkeypatch) -> None:
    window = open_window(qtbot)
    open_from_gallery(window, "ResNet-50")
    assert window.doc.project.name == "ResNet-50"
    assert window.windowTitle().startswith("ResNet-50")
    w_share, h_share = canvas_share(window)
    assert w_share >= 0.4 and h_share >= 0.4
    assert total_params(window) == pytest.approx(25.56, abs=0.01)

    # A 10-class head: the card, the inspector and the totals follow.
    find(window, "fc")
    assert window.inspector.stats["shape"].text() == "1000"
    window.inspector.editors["out_features"].box.setValue(10)
    assert window.inspector.stats["shape"].text() == "10"
    assert window.view.canvas.nodes["fc"].shape_text == "10"
    assert total_params(window) == pytest.approx(23.53, abs=0.01)
    assert window.isWindowModified()

    # The receptive field grows through the network, and a stride changes it where the user looks.
    find(window, "layer1.0.conv2")
    rf_before = window.inspector.stats["rf"].text()
    assert rf_before and rf_before != "—"
    find(window, "layer2.0.conv2")
    assert window.inspector.stats["shape"].text() == "128×28×28"
    window.inspector.editors["stride"].fields[0].setValue(1)  # linked: 1×1
    assert window.inspector.stats["shape"].text() == "128×56×56"
    rows = [window.problems.tree.topLevelItem(i).text(1) for i in range(window.problems.tree.topLevelItemCount())]
    assert len(rows) == 1 and "layer2.0" in rows[0], rows  # the Add of the block, one diagnostic
    fix = window.problems.fix_buttons[0]
    assert_not_clipped(fix)
    assert "≥" in window.totals_label.text(), "totals are partial while there is an error"
    fix.click()
    settle(10)
    assert window.doc.analysis.ok and window.problems_label.text() == "No problems"
    assert "≥" not in window.totals_label.text()

    # Summary: a row per layer with the shapes the canvas shows; Code: the module as it is now.
    window.summary_dock.show()
    window.summary_dock.raise_()
    settle(50)
    summary = window.summary
    assert summary.table.model().rowCount() >= len([n for n in window.doc.graph.nodes.values()
                                                     if n.type not in ("Input", "Output")]) - 1
    assert "23.5" in summary.totals.text()
    window.code_dock.show()
    window.code_dock.raise_()
    settle(50)
    qtbot.waitUntil(lambda: "out_features=10" in window.code.editor.toPlainText()
                    or "10)" in window.code.editor.toPlainText(), timeout=10_000)
    code = window.code.editor.toPlainText()
    assert "nn.Conv2d(" in code and "class " in code

    py, onnx_path = export_both(window, isolated, "resnet50_10", monkeypatch)
    model = build_exported(py).eval()
    assert sum(p.numel() for p in model.parameters()) == window.doc.analysis.total_params
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 224, 224)).shape) == (1, 10)
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load(str(onnx_path)))


def test_vgg16_new_head_and_a_deleted_stage(qtbot, isolated: Path) -> None:
    window = open_window(qtbot)
    open_from_gallery(window, "VGG-16")
    assert window.doc.project.name.startswith("VGG-16")
    before = total_params(window)
    assert before == pytest.approx(138.36, abs=0.01)
    head = [n.id for n in window.doc.graph.nodes.values() if n.type == "Linear"][-1]
    find(window, head)
    window.inspector.editors["out_features"].box.setValue(10)
    assert window.view.canvas.nodes[head].shape_text == "10"
    assert total_params(window) == pytest.approx(before - 4096 * 990 / 1e6, abs=0.01)
    # Delete the last convolution stage (the block) with the Delete key: one error, one fix.
    stages = [gid for gid, g in window.doc.graph.groups.items() if g.collapsed]
    last_stage = [gid for gid in stages if any(window.doc.graph.nodes[n].type == "Conv2d"
                                               for n in window.doc.graph.group_nodes(gid)
                                               if n in window.doc.graph.nodes)][-1]
    window.view.select_nodes(list(window.doc.graph.group_nodes(last_stage)))
    window.view.setFocus()
    QTest.keyClick(window.view, Qt.Key.Key_Delete)
    settle(10)
    rows = window.problems.tree.topLevelItemCount()
    assert rows == 1, [window.problems.tree.topLevelItem(i).text(1) for i in range(rows)]
    window.problems.fix_buttons[0].click()
    settle(10)
    assert window.doc.analysis.ok
    assert total_params(window) < before
