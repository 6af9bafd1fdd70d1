"""File › Import torchvision model… offers torchvision's segmentation models too (issue 15), with
their task in a column, and imports one with its ``out``/``aux`` Outputs named."""

from __future__ import annotations

import pytest

from gui.dialogs import torchvision_import as ti


def test_the_real_lists_hold_the_segmentation_models_with_their_figures() -> None:
    seg = {name: (params, gflops) for name, params, gflops in ti.list_segmentation_models()}
    assert {"fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"} <= set(seg)
    assert seg["fcn_resnet50"][0] == 35_322_218  # torchvision's published parameter count (with aux)
    rows = ti.list_all_models()
    tasks = {name: task for name, _, _, task in rows}
    assert tasks["resnet18"] == "classification" and tasks["fcn_resnet50"] == "segmentation"


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_the_dialog_shows_the_task_column_and_imports_a_segmentation_model(qtbot, monkeypatch) -> None:
    monkeypatch.setattr(ti, "list_classification_models", lambda: [("resnet18", 11_689_512, 1.81)])
    monkeypatch.setattr(ti, "list_segmentation_models", lambda: [("lraspp_mobilenet_v3_large", 3_221_538, 2.09)])
    dialog = ti.TorchvisionImportDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.tree.topLevelItemCount() == 2)
    assert dialog.tree.headerItem().text(3) == "Task"
    assert [dialog.tree.topLevelItem(i).text(3) for i in range(2)] == ["classification", "segmentation"]
    assert dialog.status.text().startswith("1 classification and 1 segmentation models.")
    dialog.filter.setText("lraspp")
    assert dialog.selected_name() == "lraspp_mobilenet_v3_large"
    dialog.start_import()
    qtbot.waitUntil(lambda: dialog.project is not None, timeout=120_000)
    outputs = [n.params.get("name") for n in dialog.project.graph.nodes.values() if n.type == "Output"]
    assert outputs == ["out"]  # LR-ASPP has no auxiliary head
