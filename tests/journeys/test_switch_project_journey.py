"""Another project opened after a run: the Training dock no longer says the graph "changed since this
run started" (the run was another project's), and weights loaded for the first project are not
carried into the second one's next run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QKeySequence

from tests.journeys.conftest import open_window, settle
from tests.journeys.test_training_journey import demo_doc, finish

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def test_opening_a_template_after_a_run_drops_that_runs_chip_and_weights(qtbot, isolated):
    window = open_window(qtbot, doc=demo_doc())
    dock = window.training
    dock.show()
    dock.set_runs_root(isolated / "runs")
    panel = dock.panel
    panel.settings.wait_for_data()
    start = next(a for a in window.training_menu.actions() if a.shortcut() == QKeySequence("F5"))
    summary = finish(qtbot, panel, start.trigger)
    assert summary.status == "completed"
    assert panel.load_weights(Path(summary.run_dir))  # Runs › Load weights: the next start carries them
    assert panel.loaded_weights is not None

    first = window.doc
    conv1 = first.graph.nodes["conv1"]
    from gui.commands import SetParamCommand

    first.push(SetParamCommand(first, "conv1", "out_channels", conv1.params.get("out_channels", 6) + 2))
    settle()
    assert panel.changed_chip.isVisible()
    assert panel.changed_chip.text() == "Graph changed since this run started (1 node)"

    assert window.files.open_template_named("resnet18")
    settle()
    assert window.doc is not first and window.windowTitle().startswith("ResNet-18")
    assert not panel.changed_chip.isVisible()  # LeNet's run says nothing about ResNet-18's graph
    assert panel.loaded_weights is None and panel._recorded_weights() is None
