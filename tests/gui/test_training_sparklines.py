"""Training statistics on the canvas (issue 6): a probed node's card shows a strip of its recent mean,
gradient norm and dead share; the strip hides at low zoom, goes when cleared, and a run's statistics
reach the window's canvas through the real path (worker → training panel → dock → scene) but never the
canvas of another document."""

from __future__ import annotations

import gc
import math

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from gui.canvas.items import SPARK_POINTS
from gui.canvas.scene import CanvasScene
from gui.canvas.view import CanvasView
from gui.main_window import MainWindow
from gui.theme import LIGHT, apply_theme
from tests.gui.test_training_panel import make_doc

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SERIES = {"mean": [0.1 * i for i in range(60)], "std": [1.0] * 60, "dead": [0.25] * 60,
          "grad": [math.sin(i / 5) for i in range(60)]}


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """As in test_training_panel: Qt wrappers are collected here, on the GUI thread."""
    yield
    gc.collect()


@pytest.fixture
def canvas(qtbot):
    scene = CanvasScene(make_doc())
    view = CanvasView(scene)
    view.resize(700, 600)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.resetTransform()
    view.centerOn(scene.nodes["conv"])
    yield scene, view
    view.close()


def snap(view: CanvasView) -> QImage:
    view.viewport().repaint()
    return view.grab().toImage()


def test_the_scene_api_draws_a_strip_under_the_card_and_clearing_removes_it(qtbot, canvas):
    scene, view = canvas
    item = scene.nodes["conv"]
    bare_bounds = item.boundingRect()
    before = snap(view)
    assert scene.set_node_sparklines("conv", SERIES)
    assert scene.sparkline_nodes() == ["conv"]
    assert set(item.sparklines) == {"mean", "std", "dead", "grad"}
    assert len(item.sparklines["mean"]) == SPARK_POINTS and item.sparklines["mean"][-1] == pytest.approx(5.9)
    assert [key for key, _ in item._spark_paths] == ["mean", "grad"]
    assert item.boundingRect().bottom() > bare_bounds.bottom()  # the strip hangs under the card
    assert "Training: mean 5.9" in item.toolTip() and "dead 25%" in item.toolTip()
    shown = snap(view)
    assert shown != before
    # The strip ends left of the output port: the port (and its edge's label) stay uncovered.
    strip = item._spark_rect()
    assert strip.top() > item.out_port_pos().y() - item.scenePos().y()
    assert strip.right() < item.mapFromScene(item.out_port_pos()).x() - 4
    scene.show_sparklines({})
    assert scene.sparkline_nodes() == [] and item._spark_paths == [] and "Training:" not in item.toolTip()
    assert item.boundingRect() == bare_bounds
    assert snap(view) == before


def test_the_strip_hides_at_low_zoom_and_skips_missing_values(qtbot, canvas):
    scene, view = canvas
    view.scale(0.3, 0.3)
    view.centerOn(scene.nodes["conv"])
    far = snap(view)
    scene.set_node_sparklines("conv", SERIES)
    assert snap(view) == far  # cards are plain tiles at this zoom: no strip
    assert not scene.set_node_sparklines("gone", SERIES)  # a node of an older graph: ignored
    scene.set_node_sparklines("relu", {"mean": [1.0, float("nan"), 2.0], "grad": [None, None]})
    relu = scene.nodes["relu"]
    assert relu.sparklines == {"mean": [1.0, 2.0]}  # the layer without parameters has no gradient norm
    scene.show_sparklines({"relu": {"mean": [3.0, 4.0]}})
    assert scene.sparkline_nodes() == ["relu"]


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NETCANVAS_DATA_DIR", str(tmp_path / "data"))  # recovery files stay in the test's folder
    w = MainWindow(make_doc(), restore_layout=False)
    w.ask_unsaved = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.training.set_runs_root(tmp_path / "runs")
    panel = w.training.panel
    panel.settings.wait_for_data()
    yield w
    panel.shutdown()
    apply_theme(LIGHT)


def test_a_run_draws_its_probed_nodes_statistics_on_the_canvas(qtbot, window):
    panel, scene, view = window.training.panel, window.scene, window.view
    view.resetTransform()
    view.centerOn(scene.nodes["conv"])
    before = snap(view)
    probed = panel.maps.nodes
    assert probed == ["conv", "relu"]  # the panel's default probes
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        assert panel.start()
    # The last probe may wait for the throttle: wait until the canvas holds everything the panel has.
    qtbot.waitUntil(lambda: all(len(scene.nodes[n].sparklines.get("mean", [])) == len(panel._stats[n]["mean"])
                                for n in probed), timeout=5_000)
    assert sorted(scene.sparkline_nodes()) == sorted(probed)
    conv = scene.nodes["conv"]
    assert {"mean", "std", "dead", "grad"} <= set(conv.sparklines)  # a convolution has a gradient norm
    assert 0.0 <= conv.sparklines["dead"][-1] <= 1.0
    assert snap(view) != before
    panel.clear_node_stats()
    assert scene.sparkline_nodes() == []
    # Another document: the finished run's statistics are not about its nodes.
    window.set_document(make_doc())
    assert window.scene is not scene
    panel._stats = {"conv": {"mean": [1.0, 2.0]}}
    panel._send_node_stats()
    assert window.scene.sparkline_nodes() == []
