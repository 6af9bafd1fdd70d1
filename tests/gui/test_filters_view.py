"""The Filters tab draws a run's live kernel snapshots when it is shown, not while it is hidden: the
snapshots come with every probe, and drawing them in a hidden tab was GUI-thread time for nothing
(issue 11: no stall over 50 ms while training)."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtWidgets import QLabel, QTabWidget

from gui.training.maps import FiltersView

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _tabs(qtbot) -> tuple[QTabWidget, FiltersView]:
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    tabs.addTab(QLabel("curves"), "Curves")
    view = FiltersView()
    tabs.addTab(view, "Filters")
    view.set_convs(["conv1", "conv2"])
    tabs.resize(800, 400)
    tabs.show()
    qtbot.waitExposed(tabs)
    return tabs, view


def test_hidden_filters_draw_the_latest_snapshot_when_shown(qtbot) -> None:
    tabs, view = _tabs(qtbot)
    assert not view.isVisible()
    calls = view.mosaic._tiles_set
    view.set_weights({"conv1": torch.randn(6, 1, 5, 5)})
    view.set_weights({"conv1": torch.randn(4, 1, 5, 5)})  # the one to show: 4 output channels
    assert view.mosaic._tiles_set == calls  # nothing drawn while hidden
    assert view.info.text() == "Filters appear once a model is trained or loaded."

    tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.isVisible)
    assert view.mosaic._tiles_set == calls + 1  # one drawing, of the latest weights
    assert view.mosaic.count == 4
    assert view.info.text().startswith("4×1×5×5 weights")

    view.set_weights({"conv1": torch.randn(3, 1, 5, 5)})  # shown: drawn at once
    assert view.mosaic.count == 3 and view.info.text().startswith("3×1×5×5 weights")


def test_a_snapshot_of_another_conv_is_kept_but_not_drawn(qtbot) -> None:
    tabs, view = _tabs(qtbot)
    tabs.setCurrentWidget(view)
    qtbot.waitUntil(view.isVisible)
    view.set_weights({"conv1": torch.randn(2, 1, 3, 3)})
    drawn = view.mosaic._tiles_set
    view.set_weights({"conv2": torch.randn(8, 2, 3, 3)})
    assert view.mosaic._tiles_set == drawn and view.mosaic.count == 2
    view.combo.setCurrentText("conv2")  # picking it draws the kept snapshot
    assert view.mosaic.count == 8 * 2 and view.info.text().startswith("8×2×3×3 weights")
