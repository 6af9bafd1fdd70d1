"""The Runs tab's overlay plot is made a turn after the list is first shown (issue 11: the tab's first
open held the GUI thread 0.12–0.24 s while training), yet shows what was ticked before it existed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from core.training.runs import RunFolder
from gui.training.runs import RunsPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

GRAPH: dict[str, Any] = {
    "nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
              {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 6, "kernel_size": 5}},
              {"id": "output", "type": "Output"}],
    "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "output"}],
}


def _run(root: Path, name: str, lr: float) -> None:
    folder = RunFolder(root / name)
    folder.create()
    folder.write_json("config.json", {"training": {"dataset": "shapes", "lr": lr, "epochs": 2},
                                      "dataset": {"name": "shapes"}})
    folder.write_json("graph.json", {"graph": GRAPH})
    folder.write_metrics([{"epoch": 1, "val_acc": 0.25}, {"epoch": 2, "val_acc": 0.5}])


def test_the_overlay_plot_comes_after_the_first_show_with_the_runs_ticked_before(qtbot: Any, tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.05)
    _run(tmp_path, "b", 0.02)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(tmp_path)
    assert panel.tree.topLevelItemCount() == 2
    first = panel.tree.topLevelItem(0)
    first.setCheckState(0, Qt.CheckState.Checked)  # ticked while there is no plot yet
    label = first.text(0)
    assert panel.findChildren(pg.PlotWidget) == []  # built hidden: no plot made for nobody

    panel.resize(900, 600)
    panel.show()
    qtbot.waitUntil(lambda: len(panel.findChildren(pg.PlotWidget)) == 1)
    plot = panel.findChildren(pg.PlotWidget)[0]
    assert plot is panel.overlay
    qtbot.waitUntil(plot.isVisible)
    assert plot.height() >= 120
    legend = plot.getPlotItem().legend
    assert [text.text for _sample, text in legend.items] == [label]
    curves = plot.getPlotItem().listDataItems()
    assert len(curves) == 1 and list(curves[0].getData()[1]) == [25.0, 50.0]

    panel.tree.topLevelItem(1).setCheckState(0, Qt.CheckState.Checked)  # made: it follows the ticks at once
    assert len(plot.getPlotItem().listDataItems()) == 2


def test_asking_for_the_overlay_makes_it_at_once(qtbot: Any, tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.05)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(tmp_path)
    panel.tree.topLevelItem(0).setCheckState(0, Qt.CheckState.Checked)
    plot = panel.overlay  # code (a test, a screenshot) that reads it before the list was shown
    assert panel.findChildren(pg.PlotWidget) == [plot]
    assert len(plot.getPlotItem().listDataItems()) == 1
    assert panel.overlay is plot  # made once
