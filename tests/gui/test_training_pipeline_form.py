"""The Training panel's data form follows the pretrained weights the project records.

A ResNet-18 project recording torchvision's ImageNet weights (trained at 224×224) with its Input at
3×160×160 and an image folder: the form opens the folder through the weights' input pipeline, so
the preview tiles are the images as the network sees them (``FolderSource.decode``: the shorter side
resized to 256·160/224, then centre-cropped), not the plain cover-and-crop of a folder without
weights; a warning banner (not "The data doesn't fit") says the Input is not the weights' size, and
its Fix sets the Input to 3×224×224 as one undoable edit (the banner goes; undo brings both back).
A run started from the panel says the same advice (the engine's run note) and still trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from core.training.data import FolderSource
from core.training.data.folder import decode_image
from gui.document import Document
from gui.training import TrainingPanel
from gui.training.images import chw_to_rgb
from templates import build_template

pytest.importorskip("torchvision")

RESNET = "ResNet18_Weights.IMAGENET1K_V1"
ADVICE = "The weights were trained at 224×224; your Input is 160×160 — accuracy may drop; set the Input to 3×224×224."


def _folder(root: Path) -> list[Path]:
    """Two classes of landscape and portrait photos-to-be (smooth gradients with a grid of edges),
    so a centre crop and a plain cover crop of them differ."""
    files = []
    for k, name in enumerate(("cats", "dogs")):
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(((300, 200), (210, 330), (257, 240))):
            y, x = np.mgrid[0:h, 0:w]
            img = np.stack([x * 255 // w, y * 255 // h, ((x // 17 + y // 13 + k + i) % 2) * 255], axis=-1)
            files.append(root / name / f"{i}.png")
            Image.fromarray(img.astype(np.uint8)).save(files[-1])
    return files


@pytest.fixture
def panel_doc(qtbot, tmp_path: Path) -> Iterator[tuple[TrainingPanel, Document]]:  # type: ignore[no-untyped-def]
    project = build_template("resnet18")
    project.graph.set_param("input", "shape", [3, 160, 160])
    project.graph.set_param("fc", "out_features", 2)  # the folder's two classes: the data fits
    project.extra["weights"] = {"source": RESNET}  # what loading ResNet-18's ImageNet weights records
    doc = Document.from_project(project)
    panel = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    # The hook the panel's set_document gives the form (it follows the document's recorded weights).
    panel.settings.set_document(doc)
    panel.resize(420, 900)
    panel.show()
    qtbot.waitExposed(panel)
    yield panel, doc
    panel.shutdown()
    doc.dispose()


def test_the_form_previews_through_the_weights_pipeline_and_offers_their_input_size(
        qtbot, tmp_path: Path, panel_doc: tuple[TrainingPanel, Document]) -> None:
    files = _folder(tmp_path / "pets")
    panel, doc = panel_doc
    form = panel.settings
    form.dataset.setCurrentIndex(form.dataset.findData("folder"))
    form.data_arg.clear()
    qtbot.keyClicks(form.data_arg, str(tmp_path / "pets"))
    data = form.wait_for_data()
    assert isinstance(data, FolderSource), form.classes.text()
    from core.training.weights import resolve

    assert form.pipeline == resolve(RESNET, None).transforms() and data.pipeline == form.pipeline
    # the preview shows each training image as the network sees it: decode's centre crop
    tiles = form.preview.tiles
    assert tiles is not None and len(tiles) == data.train_count
    seen = {p: chw_to_rgb(data.decode(str(p))) for p in files}
    plain = {p: chw_to_rgb(decode_image(str(p), (3, 160, 160))) for p in files}  # without the weights
    for tile in tiles:
        match = [p for p, img in seen.items() if np.array_equal(img, tile)]
        assert match, "a preview tile that is not FolderSource.decode of a file"
        assert not np.array_equal(plain[match[0]], tile)  # resized to 182, centre-cropped: not the plain cover
    # the advice banner, apart from the data-fit one
    assert form.weights_banner.isVisible() and not form.banner.isVisible()
    assert ADVICE in form.weights_text.text()
    assert form.weights_fix.isVisible() and "3, 224, 224" in form.weights_fix.text()
    assert form.mismatch is None  # advice never refuses a run

    qtbot.mouseClick(form.weights_fix, Qt.MouseButton.LeftButton)
    assert doc.graph.nodes["input"].params["shape"] == [3, 224, 224]
    data = form.wait_for_data()  # the folder opens again at the new Input size
    assert data is not None and data.sample_shape == (3, 224, 224)
    assert not form.weights_banner.isVisible()

    doc.undo_stack.undo()  # one step restores the Input and the advice
    assert doc.graph.nodes["input"].params["shape"] == [3, 160, 160]
    data = form.wait_for_data()
    assert data is not None and data.sample_shape == (3, 160, 160)
    assert form.weights_banner.isVisible() and ADVICE in form.weights_text.text()


def test_weights_recorded_later_reopen_the_folder_through_their_pipeline(
        tmp_path: Path, panel_doc: tuple[TrainingPanel, Document]) -> None:
    _folder(tmp_path / "pets")
    panel, doc = panel_doc
    form = panel.settings
    doc.project.extra.pop("weights")
    form.refresh_pipeline()
    form.dataset.setCurrentIndex(form.dataset.findData("folder"))
    form.data_arg.setText(str(tmp_path / "pets"))
    plain = form.wait_for_data()
    assert isinstance(plain, FolderSource) and plain.pipeline is None and form.pipeline is None
    assert not form.weights_banner.isVisible()
    # what the weights dialog does: record the weights and mark the document modified
    doc.project.extra["weights"] = {"source": RESNET}
    doc.undo_stack.resetClean()
    data = form.wait_for_data()
    assert isinstance(data, FolderSource) and data is not plain and data.pipeline is not None
    assert form.cached(form.config(), doc.analysis.input_shape) is data  # the plain source is not reused
    assert form.weights_banner.isVisible() and ADVICE in form.weights_text.text()


def test_a_run_from_the_panel_says_the_advice_and_trains(qtbot, tmp_path: Path,
                                                         panel_doc: tuple[TrainingPanel, Document]) -> None:
    from core.training import TrainConfig

    _folder(tmp_path / "pets")
    panel, _doc = panel_doc
    panel.settings.set_config(TrainConfig(dataset=f"folder:{tmp_path / 'pets'}", val_fraction=0.5, epochs=1,
                                          batch_size=2, device="cpu", workers=0))
    assert panel.settings.wait_for_data() is not None
    said: list[str] = []
    panel.message.connect(said.append)
    from core.compiler import compile_graph

    # weights from the editor are carried: the run does not fetch the recorded torchvision weights (offline here)
    panel.loaded_weights = (compile_graph(_doc.graph), _doc.graph.copy())
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as blocker:
        assert panel.start()  # advice only: the run is not refused
    assert panel.worker is not None
    panel.worker.wait()
    summary = blocker.args[0]
    assert summary.status == "completed", summary.message
    assert ADVICE in said  # the engine's run note, shown by the panel (status line and detail)
