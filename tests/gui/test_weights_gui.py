"""Weights and fine-tuning in the editor (issue 13 §1–2): the canvas context menu's freeze and
learning-rate entries, replace head, the cards' pills (frozen, lr ×N, pretrained/new), the
weight map following edits, and the Load Weights dialog on its worker thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu

from gui.canvas.items import NodeItem
from gui.canvas.weight_map import badge_texts, pill_rects, set_weight_map, weight_map
from gui.document import Document
from gui.finetune_commands import FreezeNodesCommand, ReplaceHeadCommand, SetLrMultCommand
from templates import build_template
from tests.gui.canvas_helpers import make_view

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _resnet_view(qtbot):  # type: ignore[no-untyped-def]
    doc = Document.from_project(build_template("resnet18"))
    view = make_view(qtbot, doc)
    return doc, view


def _menu_at(view, node_id: str) -> QMenu:  # type: ignore[no-untyped-def]
    from gui.canvas.finetune_menu import build_menu

    view.center_on_node(node_id)
    item = view.canvas.nodes[node_id]
    pos = view.mapFromScene(item.sceneBoundingRect().center())
    menu = build_menu(view, pos)
    assert menu is not None
    return menu


def _action(menu: QMenu, text: str):  # type: ignore[no-untyped-def]
    for a in menu.actions():
        if a.text() == text:
            return a
    raise AssertionError(f"no {text!r} in {[a.text() for a in menu.actions()]}")


def test_freeze_from_the_context_menu_is_one_undo_step_and_the_cards_look_frozen(qtbot) -> None:
    doc, view = _resnet_view(qtbot)
    menu = _menu_at(view, "layer1.1.bn2")
    assert not _action(menu, "Unfreeze").isEnabled()
    _action(menu, "Freeze Everything up to Here").trigger()
    g = doc.graph
    assert doc.undo_stack.undoText().startswith("Freeze everything up to layer1.1.bn2 (")
    frozen = [n for n in g.nodes if g.nodes[n].frozen]
    assert "conv1" in frozen and "layer1.1.bn2" in frozen and "layer2.0.conv1" not in frozen
    assert "input" not in frozen  # an Input has nothing to freeze
    card: NodeItem = view.canvas.nodes["conv1"]
    assert badge_texts(card) == ["frozen"]
    assert "frozen (not trained)" in card.toolTip()
    assert badge_texts(view.canvas.nodes["layer2.0.conv1"]) == []
    doc.undo_stack.undo()
    assert not any(n.frozen for n in g.nodes.values())
    assert badge_texts(card) == []


def test_a_block_is_frozen_and_unfrozen_as_a_whole(qtbot) -> None:
    doc, view = _resnet_view(qtbot)
    assert view.canvas.nodes  # the blocks are expanded: right-click the first card's frame
    from gui.canvas.blocks import FrameTitleItem
    from gui.canvas.finetune_menu import build_menu

    titles = [i for i in view.canvas.items() if isinstance(i, FrameTitleItem) and i.group_id == "layer1"]
    assert titles
    view.centerOn(titles[0])
    menu = build_menu(view, view.mapFromScene(titles[0].sceneBoundingRect().center()))
    assert menu is not None
    _action(menu, "Freeze layer1").trigger()
    assert doc.undo_stack.undoText() == "Freeze layer1 (8 layers)"  # convolutions and BatchNorms: not the ReLUs
    assert not doc.graph.nodes["layer1.0.relu"].frozen
    assert all(doc.graph.nodes[n].frozen for n in ("layer1.0.conv1", "layer1.1.bn2"))
    menu = build_menu(view, view.mapFromScene(titles[0].sceneBoundingRect().center()))
    assert menu is not None
    assert not _action(menu, "Freeze layer1").isEnabled()
    _action(menu, "Unfreeze layer1").trigger()
    assert not any(n.frozen for n in doc.graph.nodes.values())


def test_learning_rate_multiplier_shows_on_the_card(qtbot, monkeypatch) -> None:
    import gui.canvas.finetune_menu as fm

    doc, view = _resnet_view(qtbot)
    asked: list[tuple[str, float]] = []
    monkeypatch.setattr(fm, "ask_lr_mult", lambda parent, what, cur: asked.append((what, cur)) or 10.0)
    _action(_menu_at(view, "fc"), "Learning-Rate Multiplier…").trigger()
    assert asked == [("fc", 1.0)]
    assert doc.graph.nodes["fc"].lr_mult == 10.0
    assert doc.undo_stack.undoText() == "Set learning rate ×10 on fc"
    card = view.canvas.nodes["fc"]
    assert badge_texts(card) == ["lr ×10"]
    assert "learning rate ×10" in card.toolTip()
    doc.undo_stack.undo()
    assert badge_texts(card) == []


def test_a_bad_multiplier_is_refused_with_a_message(qtbot) -> None:
    doc, _view = _resnet_view(qtbot)
    with pytest.raises(ValueError, match="learning-rate multiplier of fc"):
        SetLrMultCommand(doc, ["fc"], -1.0, "fc")
    with pytest.raises(ValueError, match="no layers"):
        FreezeNodesCommand(doc, ["input"], True, "input")


def test_replace_head_is_one_undoable_edit(qtbot) -> None:
    doc, view = _resnet_view(qtbot)
    doc.push(ReplaceHeadCommand(doc, 4))
    assert doc.graph.nodes["fc"].params["out_features"] == 4
    assert doc.undo_stack.undoText() == "Replace head for 4 classes"
    assert "×4" in view.canvas.nodes["fc"].shape_text or "4" in view.canvas.nodes["fc"].shape_text
    doc.undo_stack.undo()
    assert doc.graph.nodes["fc"].params["out_features"] == 1000
    with pytest.raises(ValueError, match="positive integer"):
        ReplaceHeadCommand(doc, 0)


def test_weight_map_follows_edits_and_names_what_an_edit_drops(qtbot) -> None:
    doc, view = _resnet_view(qtbot)
    statuses = {n: "pretrained" for n, r in doc.analysis.nodes.items() if r.params}
    messages: list[str] = []
    wmap = set_weight_map(doc, statuses, doc.graph.copy(), "test", view.canvas)
    wmap.message.connect(messages.append)
    assert weight_map(doc) is wmap
    fc, conv = view.canvas.nodes["fc"], view.canvas.nodes["conv1"]
    assert badge_texts(fc) == ["pretrained"] and badge_texts(conv) == ["pretrained"]
    assert badge_texts(view.canvas.nodes["relu"]) == []  # no weights, no pill
    # replace head says it drops the pretrained head, in its undo text, before it happens
    cmd = ReplaceHeadCommand(doc, 4)
    assert cmd.text() == "Replace head for 4 classes (drops pretrained fc weights)"
    doc.push(cmd)
    assert badge_texts(fc) == ["new"]
    assert badge_texts(conv) == ["pretrained"]
    assert messages[-1] == "Loaded weights dropped: fc no longer fits them and starts fresh (Ctrl+Z brings them back)"
    doc.undo_stack.undo()
    assert badge_texts(fc) == ["pretrained"]
    # any reshaping edit: the status bar says so and the undo text names what it dropped
    from gui.commands import SetParamCommand

    doc.push(SetParamCommand(doc, "conv1", "out_channels", 32))
    assert doc.undo_stack.undoText().startswith("Set conv1.out_channels = 32 (drops pretrained conv1, bn1, ")
    assert badge_texts(conv) == ["new"] and badge_texts(view.canvas.nodes["bn1"]) == ["new"]
    doc.undo_stack.undo()
    doc.undo_stack.redo()  # redo does not add the note twice
    assert doc.undo_stack.undoText().count("drops pretrained") == 1
    # frozen and pretrained pills do not overlap, and stay on the card's top edge
    doc.undo_stack.undo()
    doc.push(FreezeNodesCommand(doc, ["conv1"], True, "conv1"))
    assert badge_texts(conv) == ["frozen", "pretrained"]
    a, b = pill_rects(conv)
    assert a.right() < b.left() and b.right() <= conv.boundingRect().right()


def _make_pth(tmp_path: Path) -> Path:
    import torch
    import torchvision

    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


# -- the Load Weights dialog and its worker ---------------------------------------------------------

def test_dialog_lists_the_torchvision_weights_of_the_mirrored_model(qtbot, tmp_path: Path) -> None:
    from gui.dialogs.weights import LoadWeightsDialog

    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    dialog = LoadWeightsDialog("resnet50", tmp_path / "runs")
    qtbot.addWidget(dialog)
    items = [dialog.enum_box.itemData(i) for i in range(dialog.enum_box.count())]
    assert items == ["DEFAULT", "IMAGENET1K_V1", "IMAGENET1K_V2"]
    assert dialog.enum_box.itemText(0).startswith("DEFAULT  (IMAGENET1K_V2, top-1 80.9 %")
    assert dialog.r_enum.isChecked() and dialog.spec_text() == "DEFAULT"
    dialog.enum_box.setCurrentIndex(1)
    assert dialog.spec_text() == "IMAGENET1K_V1"
    dialog.file_edit.setText("/some/where.safetensors")  # typing a path chooses the file source
    assert dialog.r_file.isChecked() and dialog.spec_text() == "/some/where.safetensors"
    dialog.r_run.click()
    assert dialog.run_box.currentText() == "r1" and dialog.spec_text() == str(run)
    dialog.file_edit.clear()
    dialog.r_file.click()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()  # nothing chosen


def test_dialog_without_a_torchvision_model_offers_files(qtbot) -> None:
    from gui.dialogs.weights import LoadWeightsDialog

    dialog = LoadWeightsDialog(None)
    qtbot.addWidget(dialog)
    assert not dialog.r_enum.isEnabled() and dialog.r_file.isChecked()
    assert "mirrors no torchvision model" in dialog.r_enum.toolTip()


def _loader(qtbot, doc: Document, spec: str, arch: str | None = "resnet18"):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QWidget

    from gui.dialogs.weights import WeightsLoader

    host = QWidget()
    qtbot.addWidget(host)
    loader = WeightsLoader(doc.graph.copy(), spec, arch, host)
    got: dict[str, object] = {"host": host}  # the dialog's parent lives as long as the test
    loader.loaded.connect(lambda r: got.setdefault("loaded", r))
    loader.failed.connect(lambda m: got.setdefault("failed", m))
    loader.cancelled.connect(lambda: got.setdefault("cancelled", True))
    return loader, got


def test_loader_loads_a_file_off_the_gui_thread(qtbot, tmp_path: Path) -> None:
    import gc

    doc = Document.from_project(build_template("resnet18"))
    loader, got = _loader(qtbot, doc, str(_make_pth(tmp_path)))
    loader.start()
    assert not gc.isenabled()  # held while torch works on the worker
    qtbot.waitUntil(lambda: len(got) > 1, timeout=60_000)
    qtbot.waitUntil(lambda: gc.isenabled(), timeout=10_000)
    result = got["loaded"]
    assert result.report.summary() == f"Loaded 122 tensors from {tmp_path / 'resnet18.pth'}"  # type: ignore[attr-defined]
    assert not result.from_run  # type: ignore[attr-defined]
    assert set(result.report.node_status(result.graph).values()) == {"pretrained"}  # type: ignore[attr-defined]


def test_loader_says_in_one_line_what_is_wrong(qtbot, tmp_path: Path) -> None:
    doc = Document.from_project(build_template("resnet18"))
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    loader, got = _loader(qtbot, doc, str(bad))
    loader.start()
    qtbot.waitUntil(lambda: len(got) > 1, timeout=60_000)
    message = got["failed"]
    assert isinstance(message, str) and "broken.pth" in message and "\n" not in message
    loader, got = _loader(qtbot, doc, "IMAGENET1K_V9")
    loader.start()
    qtbot.waitUntil(lambda: len(got) > 1, timeout=60_000)
    assert got["failed"] == "resnet18 has no weights 'IMAGENET1K_V9'; its weights: DEFAULT, IMAGENET1K_V1"


def test_cancel_stops_a_download_and_leaves_nothing(qtbot, tmp_path: Path, monkeypatch) -> None:
    """A slow local server stands in for download.pytorch.org; Cancel in the progress dialog stops it."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stop = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            try:
                for _ in range(64):
                    if stop.is_set():
                        return
                    self.wfile.write(b"\0" * (1 << 20))
                    time.sleep(0.05)
            except OSError:  # the client went away: it cancelled
                return

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("NETCANVAS_WEIGHTS_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:
        doc = Document.from_project(build_template("resnet18"))
        loader, got = _loader(qtbot, doc, "DEFAULT")
        loader.start()
        qtbot.waitUntil(lambda: loader.dialog.maximum() == 1000 and loader.dialog.value() > 0, timeout=30_000)
        assert loader.dialog.labelText().startswith("Downloading DEFAULT: ")
        from PySide6.QtWidgets import QPushButton

        buttons = loader.dialog.findChildren(QPushButton)
        assert [b.text() for b in buttons] == ["Cancel"]
        buttons[0].click()  # the progress dialog's Cancel button
        qtbot.waitUntil(lambda: len(got) > 1, timeout=30_000)
        assert got.keys() == {"host", "cancelled"}, got.get("failed")
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_deleting_a_pretrained_layer_says_it_drops_its_weights(qtbot) -> None:
    from gui.commands import RemoveItemsCommand

    doc, view = _resnet_view(qtbot)
    statuses = {n: "pretrained" for n, r in doc.analysis.nodes.items() if r.params}
    messages: list[str] = []
    set_weight_map(doc, statuses, doc.graph.copy(), "test", view.canvas).message.connect(messages.append)
    doc.push(RemoveItemsCommand(doc, ["fc"]))
    assert doc.undo_stack.undoText() == "Delete fc (drops pretrained fc weights)"
    assert messages[-1] == "Loaded weights dropped: fc is deleted (Ctrl+Z brings them back)"
    doc.undo_stack.undo()
    assert badge_texts(view.canvas.nodes["fc"]) == ["pretrained"]


def test_dialog_preselects_the_source_the_project_recorded(qtbot, tmp_path: Path) -> None:
    from gui.dialogs.weights import LoadWeightsDialog

    dialog = LoadWeightsDialog("resnet18", None, recorded="ResNet18_Weights.IMAGENET1K_V1")
    qtbot.addWidget(dialog)
    assert dialog.r_enum.isChecked() and dialog.spec_text() == "IMAGENET1K_V1"
    dialog = LoadWeightsDialog("resnet18", None, recorded=str(tmp_path / "mine.pth"))
    qtbot.addWidget(dialog)
    assert dialog.r_file.isChecked() and dialog.spec_text() == str(tmp_path / "mine.pth")
    dialog = LoadWeightsDialog("resnet18", None, recorded=str(tmp_path))
    qtbot.addWidget(dialog)
    assert dialog.r_run.isChecked() and dialog.spec_text() == str(tmp_path)


def test_right_click_on_a_selected_card_acts_on_the_selection(qtbot) -> None:
    doc, view = _resnet_view(qtbot)
    view.select_nodes(["conv1", "bn1", "fc"])
    menu = _menu_at(view, "bn1")
    _action(menu, "Freeze").trigger()
    assert doc.undo_stack.undoText() == "Freeze 3 selected layers"
    assert [n for n, node in doc.graph.nodes.items() if node.frozen] == ["conv1", "bn1", "fc"]
    menu = _menu_at(view, "input")  # an Input holds nothing to freeze: the entries are there, disabled
    assert not any(a.isEnabled() for a in menu.actions() if not a.isSeparator())
