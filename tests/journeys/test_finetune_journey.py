"""Story (issue 13 §5): fine-tune a pretrained ResNet-18 on my own images.

A practitioner opens the ResNet-18 template, loads weights (a .pth made here from torchvision's
resnet18 with ``weights=None``, saved as a bare state_dict) through Train ▸ Load Pretrained
Weights…, reads the report in the status bar and the weight map on the cards, replaces the head
for 4 classes (the undo text says it drops the pretrained fc weights), freezes layer1 and layer2
from the canvas's context menu, and trains one epoch on a tiny folder of images: the frozen
layers come out of the run with exactly the loaded weights.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QInputDialog, QMenu

from gui.canvas.blocks import FrameTitleItem
from gui.canvas.weight_map import badge_texts
from gui.dialogs.weights import LoadWeightsDialog
from gui.document import Document
from templates import build_template
from tests.journeys.conftest import open_window, settle, trigger

pytestmark = [pytest.mark.slow, pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints",
                                                   "This plugin does not support grabbing the keyboard")]

CLASSES = ("cat", "dog", "fox", "owl")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():  # type: ignore[no-untyped-def]
    yield
    gc.collect()


def make_weights(folder: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    path = folder / "resnet18_mine.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def make_images(folder: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for i, name in enumerate(CLASSES):
            d = folder / split / name
            d.mkdir(parents=True)
            for k in range(3):
                pixels = rng.integers(0, 80, (40, 40, 3), dtype=np.uint8) + np.uint8(40 * i)
                Image.fromarray(pixels).save(d / f"{k}.png")
    return folder


def answer_dialog(qtbot, path: Path, seen: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Pick "A weights file", type its path, press Load: what a user does in the dialog."""
    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, LoadWeightsDialog), dialog
    seen.append(dialog.enum_box.currentText())
    assert dialog.r_enum.isChecked()  # the template mirrors resnet18: its torchvision weights come first
    dialog.r_file.click()
    dialog.file_edit.setText(str(path))
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "Load" and ok.isEnabled()
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)


def right_click_menu(window, scene_item, action_text: str) -> None:  # type: ignore[no-untyped-def]
    """Right-click ``scene_item`` on the canvas and choose ``action_text`` from the menu that opens."""
    view = window.view
    view.centerOn(scene_item)
    settle()
    pos: QPoint = view.mapFromScene(scene_item.sceneBoundingRect().center())
    chosen: list[str] = []

    def pick() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu), menu
        texts = [a.text() for a in menu.actions()]
        chosen.extend(texts)
        action = next(a for a in menu.actions() if a.text() == action_text)
        menu.setActiveAction(action)
        action.trigger()
        menu.close()

    QTimer.singleShot(50, pick)
    from PySide6.QtGui import QContextMenuEvent

    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, view.viewport().mapToGlobal(pos))
    QApplication.sendEvent(view.viewport(), event)
    settle()
    assert action_text in chosen, chosen


def test_finetune_resnet18_on_my_images(qtbot, isolated: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    weights = make_weights(isolated)
    data = make_images(isolated / "photos")
    project = build_template("resnet18")
    project.training = {**project.training, "dataset": f"folder:{data}", "epochs": 1, "batch_size": 4,
                        "device": "cpu", "probe_interval": 0.0, "workers": 0}
    window = open_window(qtbot, doc=Document.from_project(project))
    doc = window.doc
    cards = window.view.canvas.nodes
    assert badge_texts(cards["conv1"]) == []  # no weights loaded: no weight map yet

    # 1. Train ▸ Load Pretrained Weights…: a .pth file
    seen: list[str] = []
    QTimer.singleShot(0, lambda: answer_dialog(qtbot, weights, seen))
    trigger(window, "Train", "Load Pretrained Weights…")
    assert seen and seen[0].startswith("DEFAULT  (IMAGENET1K_V1")
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Loaded "), timeout=60_000)
    status = window.statusBar().currentMessage()
    assert status == f"Loaded 122 tensors from {weights}", status
    weighted = [n for n, r in doc.analysis.nodes.items() if r.params]
    assert all(badge_texts(cards[n]) == ["pretrained"] for n in weighted)
    assert badge_texts(cards["relu"]) == []
    assert cards["fc"].isVisible() and "pretrained weights" in cards["fc"].toolTip()
    assert window.windowTitle().startswith("*") or "*" in window.windowTitle()  # the project records the source
    assert doc.project.extra["weights"]["source"] == str(weights)
    assert len(doc.project.extra["weights"]["sha256"]) == 64

    # 2. Replace the head for my 4 classes: the undo text names what it drops
    def answer_int() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QInputDialog), box
        assert "Its pretrained weights are dropped" in box.labelText()
        assert box.intValue() == 4  # the dataset's class count, once the Training panel has opened it
        box.setIntValue(4)
        box.accept()

    window.training.panel.settings.wait_for_data()
    QTimer.singleShot(0, answer_int)
    trigger(window, "Train", "Replace Head for N Classes…")
    assert doc.graph.nodes["fc"].params["out_features"] == 4
    assert doc.undo_stack.undoText() == "Replace head for 4 classes (drops pretrained fc weights)"
    assert window.act_undo.text().replace("&", "") == "Undo Replace head for 4 classes (drops pretrained fc weights)"
    assert window.statusBar().currentMessage().startswith("Replace head for 4 classes (drops pretrained fc")
    assert badge_texts(cards["fc"]) == ["new"] and badge_texts(cards["layer4.1.conv2"]) == ["pretrained"]

    # 3. Freeze layer1 and layer2 from the canvas's context menu (right-click their frame titles)
    titles = {i.group_id: i for i in window.view.canvas.items() if isinstance(i, FrameTitleItem)}
    right_click_menu(window, titles["layer1"], "Freeze layer1")
    right_click_menu(window, titles["layer2"], "Freeze layer2")
    assert doc.undo_stack.undoText() == "Freeze layer2 (10 layers)"
    assert badge_texts(cards["layer1.0.conv1"]) == ["frozen", "pretrained"]
    assert badge_texts(cards["layer2.0.downsample.0"]) == ["frozen", "pretrained"]
    assert badge_texts(cards["layer3.0.conv1"]) == ["pretrained"]
    assert badge_texts(cards["fc"]) == ["new"]

    # 4. Train one epoch: the run starts from the loaded weights, the frozen stages keep them
    panel = window.training.panel
    assert panel.loaded_weights is not None
    window.training.set_runs_root(isolated / "runs")
    with qtbot.waitSignal(panel.run_finished, timeout=300_000) as blocker:
        trigger(window, "Train", "Start Training")
    panel.worker.wait()
    settle()
    summary = blocker.args[0]
    assert summary.status == "completed" and summary.epochs_done == 1, summary
    import torch

    ckpt = torch.load(panel.run_dir / "checkpoints" / "last.pt", weights_only=True)
    loaded = torch.load(weights, weights_only=True)
    for key in ("layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer2.1.bn2.weight"):
        assert torch.equal(ckpt["model"][key], loaded[key]), key
    assert not torch.equal(ckpt["model"]["layer4.1.conv2.weight"], loaded["layer4.1.conv2.weight"])
    assert ckpt["model"]["fc.weight"].shape == (4, 512)
    saved = json.loads((panel.run_dir / "graph.json").read_text())
    assert sum(1 for n in saved["graph"]["nodes"] if n.get("frozen")) == 8 + 10  # convolutions and BatchNorms

    # ... and the Evaluation tab shows where it errs: the 4×4 confusion matrix of my classes
    view = window.training.evaluation
    assert view is not None
    panel.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.evaluation is not None and not view.busy, timeout=60_000)
    settle()
    ev = view.evaluation
    assert ev.classes == list(panel.settings.data.classes) and len(ev.confusion) == 4
    assert sum(map(sum, ev.confusion)) == ev.count
    assert view.matrix.isVisible() and view.summary.text().startswith(f"<b>{panel.run_dir.name}</b> · epoch 1")
    assert [lab.text for lab in view.matrix.drawn_labels if lab.axis == "true"] == ev.classes

    # 5. Save: the project file records where the weights came from; reopened, the window says how to
    # load them again and the Load dialog starts on that file
    from PySide6.QtWidgets import QFileDialog

    target = isolated / "finetune.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    trigger(window, "File", "Save As…")
    entry = json.loads(target.read_text())["weights"]
    assert entry["source"] == str(weights) and len(entry["sha256"]) == 64
    assert window.files.open_path(target, ask=False)
    settle()
    assert window.doc is not doc and window.doc.project.extra["weights"]["source"] == str(weights)
    assert window.statusBar().currentMessage() == (
        f"This project's weights come from {weights}: a run starts from them; Train ▸ Load Pretrained Weights… "
        "shows them on the canvas")
    assert badge_texts(window.view.canvas.nodes["conv1"]) == []  # not loaded yet: no weight map
    reopened: list[str] = []

    def look_and_cancel() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, LoadWeightsDialog), dialog
        reopened.append(dialog.spec_text())
        dialog.reject()

    QTimer.singleShot(0, look_and_cancel)
    trigger(window, "Train", "Load Pretrained Weights…")
    assert reopened == [str(weights)]
