"""Journey: the first open of the Training dock, made a few parts per event-loop turn (issue 11), ends with
the whole panel a user expects: the settings, the three curves side by side with their titles, the
feature maps of the demo's convolutions, and behind each tab its viewer, made when the tab is first
clicked, with its controls readable."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.journeys.conftest import assert_not_clipped, open_window, settle, trigger
from tests.journeys.test_training_journey import demo_doc


def click_tab_titled(qtbot, panel, title: str):  # type: ignore[no-untyped-def]
    bar = panel.tabs.tabBar()
    index = next(i for i in range(bar.count()) if bar.tabText(i).replace("&&", "&") == title)
    assert bar.isTabVisible(index), f"the {title} tab is hidden"
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    settle()
    # a tab whose viewer is made in steps (Evaluation imports its modules a turn apart) shows it once made
    qtbot.waitUntil(lambda: not panel.viewer_tabs.making, timeout=10_000)
    settle()
    widget = panel.tabs.currentWidget()
    assert panel.tabs.currentIndex() == index and widget.isVisible()
    return widget


def test_open_the_training_dock_and_see_every_tab(qtbot, isolated):
    window = open_window(qtbot, doc=demo_doc())
    window.training.set_runs_root(isolated / "runs")
    trigger(window, "Train", "Show Training Panel")
    dock = window.training
    qtbot.waitUntil(lambda: dock.built is not None, timeout=30_000)
    panel = dock.built
    settle()
    assert dock.isVisible() and panel.isVisible()

    # Curves: Loss wide on the left, Accuracy above Learning rate on the right, all shown, all titled.
    plots = panel.plots
    titles = {p: p.getPlotItem().titleLabel.text for p in (plots.loss_plot, plots.acc_plot, plots.lr_plot)}
    for plot, name in zip(titles, ("Loss", "Accuracy", "Learning rate"), strict=True):
        assert plot.isVisible() and plot.width() > 150 and plot.height() > 100, name
        assert name in titles[plot]
    assert plots.loss_plot.geometry().right() < plots.acc_plot.geometry().left()
    assert plots.acc_plot.geometry().bottom() < plots.lr_plot.geometry().top()
    assert plots.loss_plot.width() > plots.acc_plot.width()
    # the feature maps offer the demo's first two layers that have maps, the settings show its data set
    assert panel.maps.nodes == ["conv1", "relu1"] and panel.maps.isVisible()
    assert panel.settings.isVisible() and panel.settings.dataset.currentData() == "shapes"
    assert_not_clipped(panel.b_start)

    # Every tab: its viewer is made when the user first opens it, and shows its controls.
    filters = click_tab_titled(qtbot, panel, "Filters")
    assert filters is panel.viewer_tabs.built("filters")
    assert [filters.combo.itemText(i) for i in range(filters.combo.count())] == ["conv1", "conv2"]
    assert filters.info.isVisible() and filters.info.text()

    predict = click_tab_titled(qtbot, panel, "Predictions")
    assert predict is panel.viewer_tabs.built("predict")
    assert predict.open_button.isVisible()
    assert_not_clipped(predict.open_button)

    runs = click_tab_titled(qtbot, panel, "Runs")
    assert runs is panel.viewer_tabs.built("runs")
    assert runs.tree.isVisible()
    overlay = runs.overlay.getPlotItem()  # its plot's right-click menu comes a turn after the tab
    assert overlay.menuEnabled() and overlay.vb.menu is not None
    for button in (runs.b_refresh, runs.b_compare):
        assert_not_clipped(button)

    evaluation = click_tab_titled(qtbot, panel, "Evaluation")
    assert evaluation is panel.viewer_tabs.built("evaluation")
    assert_not_clipped(evaluation.b_evaluate)

    back = click_tab_titled(qtbot, panel, "Curves & feature maps")
    assert back is panel.live and plots.loss_plot.isVisible()
    dock.confirm_close()
