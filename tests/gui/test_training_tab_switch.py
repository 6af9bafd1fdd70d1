"""Switching back to the Training dock's tabs repaints little (issue 11, DESIGN §10: no GUI-thread stall
over 50 ms): a plot hidden and shown again keeps its axes and texts as cached pixmaps (its scene is not
told the view was deactivated), shows new points in one paint, and still redraws an axis whose range
changed; the sparklines and channel mosaics repaint from a pixmap until their values, size or theme
change; a tab that names the modules its viewer needs is made over a few turns when the user opens
it, and whole at once when code asks for it. Counts, never timings."""

from __future__ import annotations

import gc

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QLabel, QTabWidget, QWidget

from core.training import BatchProgress, EpochMetrics
from gui.theme import DARK, LIGHT, apply_theme
from gui.training.images import MosaicView, Sparkline
from gui.training.plots import MetricsPlots
from gui.training.tabs import ViewerTabs

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()


def settle(turns: int = 10) -> None:
    for _ in range(turns):
        QApplication.processEvents()


def batch(epoch: int, first: int, steps: int = 64, n: int = 8) -> BatchProgress:
    losses = tuple(2.0 / (1 + 0.05 * ((epoch - 1) * steps + first + i)) for i in range(n))
    return BatchProgress(epoch, 20, first + n, steps, (epoch - 1) * steps + first + n, losses[-1], losses, first, 0.05,
                         1000.0, 10.0)


@pytest.fixture
def counts(monkeypatch):
    """Calls of the axes' paint and tick layout, and of each plot view's paint, by plot title."""
    seen: dict[str, int] = {"axis paints": 0, "axis layouts": 0}
    paint, layout, view_paint = pg.AxisItem.paint, pg.AxisItem.generateDrawSpecs, pg.GraphicsView.paintEvent

    def counted_paint(self, *args):  # type: ignore[no-untyped-def]
        seen["axis paints"] += 1
        return paint(self, *args)

    def counted_layout(self, *args):  # type: ignore[no-untyped-def]
        seen["axis layouts"] += 1
        return layout(self, *args)

    def counted_view_paint(self, event):  # type: ignore[no-untyped-def]
        key = getattr(self, "title", "?")
        seen[key] = seen.get(key, 0) + 1
        return view_paint(self, event)

    monkeypatch.setattr(pg.AxisItem, "paint", counted_paint)
    monkeypatch.setattr(pg.AxisItem, "generateDrawSpecs", counted_layout)
    monkeypatch.setattr(pg.GraphicsView, "paintEvent", counted_view_paint)
    return seen


def tabbed_plots(qtbot) -> tuple[QTabWidget, MetricsPlots]:  # type: ignore[no-untyped-def]
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    plots = MetricsPlots()
    tabs.addTab(plots, "Curves")
    tabs.addTab(QLabel("another tab"), "Other")
    tabs.resize(900, 420)
    tabs.show()
    plots.set_epochs(20)
    for first in range(0, 56, 8):
        plots.add_batch(batch(1, first))
    plots.refresh()
    settle()
    return tabs, plots


def test_a_plot_hidden_and_shown_again_keeps_its_axes_and_still_redraws_a_changed_range(qtbot, counts):
    tabs, plots = tabbed_plots(qtbot)
    scenes = [p.scene() for p in (plots.loss_plot, plots.acc_plot, plots.lr_plot)]
    assert all(scene.isActive() for scene in scenes)
    for _ in range(2):
        counts.update({k: 0 for k in counts})
        tabs.setCurrentIndex(1)
        settle()
        tabs.setCurrentIndex(0)
        settle()
        # Painted again (the tab shows), but every axis from its cached pixmap: nothing re-laid or replayed.
        assert counts["Loss"] >= 1 and counts["Accuracy"] >= 1 and counts["Learning rate"] >= 1
        assert counts["axis paints"] == 0 and counts["axis layouts"] == 0
    assert all(scene.isActive() for scene in scenes)  # the scenes still count as active (focus, keys)
    # A range that changes is drawn anew: the x axis of each plot, its ticks laid out again.
    counts.update({k: 0 for k in counts})
    plots.set_epochs(40)
    settle()
    assert counts["axis layouts"] >= 3 and counts["axis paints"] >= 3
    assert plots.loss_plot.getPlotItem().getAxis("bottom").range[1] > 40


def test_a_plot_shown_with_points_that_came_while_hidden_paints_them_once(qtbot, counts):
    tabs, plots = tabbed_plots(qtbot)
    tabs.setCurrentIndex(1)
    settle()
    plots.add_batch(batch(1, 56))  # the run goes on while another tab shows: the plots wait
    assert plots.dirty
    counts.update({k: 0 for k in counts})
    tabs.setCurrentIndex(0)
    settle()
    assert not plots.dirty and plots.step_loss.n == 64
    xs, _ys = plots.c_step.getData()
    assert xs is not None and xs[-1] == pytest.approx(63 / 64)  # the new points are on the curve shown
    assert counts["Loss"] == 1 and counts["Accuracy"] == 1 and counts["Learning rate"] == 1
    assert counts["axis layouts"] == 0  # the loss range had room for them


def test_the_legend_and_titles_survive_a_hide_show_and_a_theme_switch(qtbot):
    tabs, plots = tabbed_plots(qtbot)
    plots.add_epoch(EpochMetrics(1, 20, 1.0, 0.5, 1.1, 0.45, None, 0.05, 1000.0, 1.0, 10.0, 0.0))
    plots.refresh()
    tabs.setCurrentIndex(1)
    settle()
    tabs.setCurrentIndex(0)
    settle()
    legend = plots.loss_plot.getPlotItem().legend
    names = [legend.names[id(label)] for _sample, label in legend.items]
    assert names[:2] == ["train (smoothed)", "train (epoch mean)"]
    assert all(label.isVisible() for _sample, label in legend.items)
    try:
        apply_theme(DARK)
        plots.set_theme(DARK)
        settle()
        image = plots.loss_plot.grab().toImage()
        assert image.pixelColor(5, 5) == QColor(DARK.panel)  # the background restyled, caches and all
        assert DARK.text in plots.loss_plot.getPlotItem().titleLabel.text
    finally:
        apply_theme(LIGHT)
        plots.set_theme(LIGHT)


def near(image, colour: str, tolerance: int = 40) -> bool:  # type: ignore[no-untyped-def]
    """Whether any pixel of ``image`` is within ``tolerance`` (per channel) of ``colour``."""
    target = QColor(colour)
    arr = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(image.width())] for y in range(image.height())])
    diff = np.abs(arr - np.array([target.red(), target.green(), target.blue()]))
    return bool((diff.max(axis=2) <= tolerance).any())


def repaint(widget: QWidget) -> None:
    """What Qt does when a widget must show again: a paint with the next turn."""
    widget.update()
    settle(3)


def test_a_sparkline_repaints_from_its_pixmap_until_its_values_or_the_theme_change(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    spark = Sparkline("mean", parent=host)
    spark.setGeometry(0, 0, 104, 30)
    host.resize(120, 40)
    host.show()
    qtbot.waitExposed(host)
    for v in (0.1, 0.4, 0.2, 0.8):
        spark.add(v)
    repaint(spark)
    drawn = spark._painted.draws
    assert drawn >= 1
    for _ in range(3):
        repaint(spark)  # what a tab shown again (or Qt's second pass) does
    assert spark._painted.draws == drawn
    spark.add(0.5)
    repaint(spark)
    assert spark._painted.draws == drawn + 1
    assert near(spark.grab().toImage(), LIGHT.accent)
    try:
        apply_theme(DARK)
        repaint(spark)
        assert spark._painted.draws == drawn + 2 and near(spark.grab().toImage(), DARK.accent)
    finally:
        apply_theme(LIGHT)


def test_a_mosaic_repaints_its_tiles_from_a_pixmap_and_draws_the_hover_over_them(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    view = MosaicView(host)
    view.setGeometry(0, 0, 240, 140)
    host.resize(260, 160)
    host.show()
    qtbot.waitExposed(host)
    tiles = np.zeros((4, 5, 5, 3), dtype=np.uint8)
    tiles[:, :, :, 1] = 200  # green tiles
    view.set_tiles(tiles, None, ["0", "1", "2", "3"])
    repaint(view)
    drawn = view._painted.draws
    assert drawn >= 1 and near(view.grab().toImage(), "#00c800", 2)
    repaint(view)
    assert view._painted.draws == drawn and not near(view.grab().toImage(), LIGHT.accent, 10)
    centre = view.tile_rect(1).center().toPoint()
    qtbot.mouseMove(view, centre)
    qtbot.waitUntil(lambda: view._hover == 1)
    repaint(view)
    assert view._painted.draws == drawn  # the hover frame is drawn over the cached tiles
    assert near(view.grab().toImage(), LIGHT.accent, 10)  # the frame (in nothing else's colour)
    with qtbot.waitSignal(view.tile_clicked) as clicked:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    assert clicked.args == [1] and view.selected == 1
    view.set_tiles(tiles[:2])  # new tiles: painted anew
    repaint(view)
    assert view._painted.draws == drawn + 1


class _Owner(QWidget):
    """What a ViewerTabs serves: the panel, here a bare widget."""


def _viewer_tabs(qtbot, made: list[str]):  # type: ignore[no-untyped-def]
    owner = _Owner()
    qtbot.addWidget(owner)
    tabs = QTabWidget(owner)
    tabs.addTab(QLabel("first"), "First")
    viewer_tabs = ViewerTabs(owner, tabs)

    def make(_owner: QWidget) -> QWidget:
        made.append("made")
        return QLabel("the viewer")

    viewer_tabs.add("slow", "Slow", make, warm=("json", "csv"))
    viewer_tabs.add("plain", "Plain", make)
    owner.resize(400, 300)
    owner.show()
    return owner, tabs, viewer_tabs


def test_a_tab_that_names_its_modules_is_made_a_few_turns_after_the_user_opens_it(qtbot):
    made: list[str] = []
    _owner, tabs, viewer_tabs = _viewer_tabs(qtbot, made)  # the owner held: the tabs hold it weakly
    opened: list[int] = []
    tabs.currentChanged.connect(opened.append)
    tabs.setCurrentIndex(1)  # the user clicks it
    assert made == [] and viewer_tabs.making and viewer_tabs.built("slow") is None
    qtbot.waitUntil(lambda: not viewer_tabs.making, timeout=5_000)
    view = viewer_tabs.built("slow")
    assert made == ["made"] and isinstance(view, QLabel) and tabs.currentWidget() is view
    assert tabs.tabText(1) == "Slow" and view.isVisible()
    assert opened == [1, 1]  # whoever follows the tabs hears of it again once it is there
    tabs.setCurrentIndex(2)  # one without modules to import is made at once, as before
    assert made == ["made", "made"] and not viewer_tabs.making


def test_asking_for_a_tab_while_it_is_made_in_steps_makes_it_at_once(qtbot):
    made: list[str] = []
    _owner, tabs, viewer_tabs = _viewer_tabs(qtbot, made)  # the owner held: the tabs hold it weakly
    tabs.setCurrentIndex(1)
    assert viewer_tabs.making
    view = viewer_tabs.get("slow")  # what dock.evaluation does
    assert made == ["made"] and not viewer_tabs.making and tabs.widget(1) is view
    settle(20)
    assert made == ["made"]  # the steps were dropped: not made twice


def test_the_evaluation_tab_opened_by_the_user_is_made_in_steps_with_every_part(qtbot, tmp_path):
    from gui.training.evaluation import EMPTY_TEXT, EvaluationView
    from tests.gui.test_training_staged import _window

    window = _window(qtbot, tmp_path)
    dock = window.training
    dock.show()
    panel = dock.panel
    settle()
    index = next(i for i in range(panel.tabs.count()) if panel.tabs.tabText(i) == "Evaluation")
    panel.tabs.setCurrentIndex(index)  # the user clicks it
    assert panel.viewer_tabs.making and panel.viewer_tabs.built("evaluation") is None
    qtbot.waitUntil(lambda: not panel.viewer_tabs.making, timeout=20_000)
    view = panel.viewer_tabs.built("evaluation")
    assert isinstance(view, EvaluationView) and panel.tabs.currentWidget() is view
    assert view.isVisible() and view.empty.isVisible() and view.empty.text() == EMPTY_TEXT  # its run was chosen
    whole = EvaluationView()
    qtbot.addWidget(whole)

    def shape(widget: QWidget) -> list[tuple[str, str]]:
        return sorted((type(w).__name__, w.objectName()) for w in widget.findChildren(QWidget))

    assert shape(view) == shape(whole)
    assert dock.evaluation is view
    panel.settings.wait_for_data()
    dock.confirm_close()


def test_a_hidden_page_is_laid_out_at_the_new_size_before_it_is_shown_again(qtbot, counts):
    owner = QWidget()
    qtbot.addWidget(owner)
    tabs = QTabWidget(owner)
    plots = MetricsPlots()
    tabs.addTab(plots, "Curves")
    viewer_tabs = ViewerTabs(owner, tabs)
    viewer_tabs.add("other", "Other", lambda _owner: QLabel("another viewer"))
    tabs.resize(900, 380)
    owner.resize(900, 380)
    owner.show()
    plots.set_epochs(20)
    plots.add_batch(batch(1, 0))
    plots.refresh()
    settle()
    tabs.setCurrentIndex(1)
    settle()
    height = plots.loss_plot.height()
    tabs.resize(900, 480)  # the panel grows while another tab shows (Predictions' first open does)
    qtbot.waitUntil(lambda: viewer_tabs._fitting is not None and viewer_tabs._fitting.finished, timeout=5_000)
    assert plots.loss_plot.height() > height  # laid out at the size it will show at, while hidden
    counts.update({k: 0 for k in counts})
    tabs.setCurrentIndex(0)
    settle()
    assert counts["Loss"] >= 1 and counts["axis layouts"] == 0 and counts["axis paints"] == 0
    assert plots.loss_plot.getPlotItem().getAxis("left").height() > 0.5 * plots.loss_plot.height()
