"""Story: export a GAN's generator alone, from the File menu.

A student with the DCGAN template open finds File › Export Generator… (offered only while the
canvas holds a generator and a discriminator), saves it as a .py and gets a standalone module
of the generator alone — no discriminator layer in it — that turns 100×1×1 noise into 3×32×32
images in [-1, 1]; as .onnx it is an ONNX model of the generator alone. On a canvas that is no
GAN the action is not offered, and asked for anyway it says why in one sentence.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from PySide6.QtWidgets import QFileDialog

from core.analysis import analyze
from core.gan_graph import split_gan
from core.sources import load_source
from gui.document import Document
from gui.gan_export import export_generator
from tests.journeys.conftest import open_window, trigger

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def load_module(path: Path) -> type[torch.nn.Module]:
    """The last nn.Module class the exported file defines (the network; block classes come first)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == path.stem]
    return classes[-1]


def test_export_the_generator_alone(qtbot, isolated, monkeypatch) -> None:
    window = open_window(qtbot, doc=Document.from_project(load_source("template:dcgan")))
    window.file_menu.aboutToShow.emit()  # what opening the File menu does
    assert window.act_export_generator.isVisible()
    target = isolated / "dcgan-generator.py"
    asked: list[str] = []

    def dialog(_parent, title, suggested, _filter):  # type: ignore[no-untyped-def]
        asked.append(suggested)
        return str(target), "Python files (*.py)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    trigger(window, "File", "Export Generator")
    assert not window.errors, window.errors
    assert Path(asked[0]).name.endswith("-generator.py")  # the dialog suggests a generator's file name
    source = target.read_text()
    assert "self.generator" in source and "discriminator" not in source  # modules are named after the groups
    net = load_module(target)().eval()
    with torch.no_grad():
        fake = net(torch.randn(2, 100, 1, 1))
    assert tuple(fake.shape) == (2, 3, 32, 32) and float(fake.abs().max()) <= 1.0
    # the generator's weights only: its own parameter count, less than the whole canvas's
    generator = analyze(split_gan(window.doc.graph).generator)
    assert sum(p.numel() for p in net.parameters()) == generator.total_params < window.doc.analysis.total_params
    assert "Exported the generator" in window.statusBar().currentMessage()

    # As ONNX: one input (the noise) and one output (the images)
    onnx_path = isolated / "generator.onnx"
    assert export_generator(window, onnx_path), window.errors
    import onnx

    model = onnx.load(str(onnx_path))
    assert [len(model.graph.input), len(model.graph.output)] == [1, 1]
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim[1:]]
    assert dims == [3, 32, 32]

    # A canvas that is no GAN: not offered, and asked anyway, one sentence saying why
    trigger(window, "File", "New")
    window.file_menu.aboutToShow.emit()
    assert not window.act_export_generator.isVisible()
    assert not export_generator(window, isolated / "x.py")
    title, text = window.errors[-1]
    assert title == "Cannot export the generator" and "two separate networks" in text and "\n" not in text
    assert not (isolated / "x.py").exists()
    window.close()
