"""Journey: comparing runs in the Training dock. The runs list labels each run by what sets it apart
(``lr 0.02 · conv1 6 ch``), not "LeNet-5-on-Shapes · time"; ticking two runs and pressing Compare
compares those two (Compare says what to do otherwise); a label can be renamed and the name stays
with the run folder. On the Curves tab an overlaid longer run fits the x axis, the legends sit
beside the data rather than over it, and the probe sample's placeholder is readable at 1600×1000
and 1280×720."""

from __future__ import annotations

import copy
import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QTabBar

from core.training import TrainConfig
from core.training.runs import RunFolder
from gui.training.maps import WAITING_FOR_PROBE
from tests.gui.test_training_panel import make_doc
from tests.journeys.conftest import DEMO, SIZES, assert_not_clipped, open_window, settle, trigger

LEGEND_SHARE = 0.05  # the most of a plot's data area a legend may cover


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread() -> Iterator[None]:
    """As in tests/gui: Qt wrappers are collected here, on the GUI thread, not the training thread's."""
    yield
    gc.collect()


def write_run(root: Path, name: str, *, lr: float = 0.05, conv1: int = 6, epochs: int = 5,
              started: float = 1_700_000_000.0) -> Path:
    """A finished run folder of the demo (LeNet-5 on Shapes), as the engine leaves it."""
    project = json.loads(DEMO.read_text(encoding="utf-8"))
    project = copy.deepcopy(project)
    for node in project["graph"]["nodes"]:
        if node["id"] == "conv1":
            node["params"]["out_channels"] = conv1
    config = TrainConfig.from_dict({**project["training"], "lr": lr, "epochs": epochs})
    folder = RunFolder(root / name)
    folder.create()
    folder.write_json("config.json", {"training": config.to_dict(), "dataset": {"name": "shapes"},
                                      "device": "cpu", "world_size": 1})
    folder.write_json("graph.json", project)
    folder.write_metrics([{"epoch": e, "train_loss": 2.0 / e, "train_acc": 1 - 1 / (e + 1), "val_loss": 2.2 / e,
                           "val_acc": 1 - 1.2 / (e + 1.5), "lr": lr} for e in range(1, epochs + 1)])
    folder.write_json("run.json", {"status": "completed", "epochs_done": epochs, "best_epoch": epochs})
    os.utime(folder.path / "config.json", (started, started))  # the list orders runs by this
    return folder.path


def open_training(qtbot, window) -> Any:  # type: ignore[no-untyped-def]
    """Train › Show Training Panel, as a user opens it; the panel once it is built."""
    trigger(window, "Train", "Show Training Panel")
    qtbot.waitUntil(lambda: window.training.built is not None, timeout=10_000)
    settle()
    return window.training.panel


def click_tab(qtbot, tabs, text: str) -> None:  # type: ignore[no-untyped-def]
    bar: QTabBar = tabs.tabBar()
    for i in range(bar.count()):
        if bar.tabText(i).replace("&&", "&") == text:
            qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
            settle()
            return
    raise AssertionError(f"no “{text}” tab: {[bar.tabText(i) for i in range(bar.count())]}")


def row_of(panel, path: Path):  # type: ignore[no-untyped-def]
    item = panel.runs.item_for(path)
    assert item is not None, f"{path.name} is not in the runs list"
    return item


def click_row(qtbot, panel, path: Path, modifier=Qt.KeyboardModifier.NoModifier) -> None:  # type: ignore[no-untyped-def]
    tree = panel.runs.tree
    rect = tree.visualRect(tree.indexFromItem(row_of(panel, path), 0))  # on its label, right of the tick box
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def tick(qtbot, panel, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Make the run's row current and press Space: its overlay box toggles."""
    click_row(qtbot, panel, path)
    QTest.keyClick(panel.runs.tree, Qt.Key.Key_Space)
    settle()


def labels(panel) -> dict[str, str]:  # type: ignore[no-untyped-def]
    tree = panel.runs.tree
    return {Path(tree.topLevelItem(i).toolTip(0)).name: tree.topLevelItem(i).text(0)
            for i in range(tree.topLevelItemCount())}


def covered_share(legend_rect: QRectF, data_rect: QRectF) -> float:
    overlap = legend_rect.intersected(data_rect)
    area = data_rect.width() * data_rect.height()
    return 0.0 if overlap.isEmpty() or area <= 0 else overlap.width() * overlap.height() / area


def test_compare_the_two_ticked_runs_labelled_by_what_differs_and_rename_one(qtbot, isolated) -> None:
    root = isolated / "runs"
    base = write_run(root, "LeNet-5-on-Shapes-20261206-100000", started=1_700_000_000)
    slow = write_run(root, "LeNet-5-on-Shapes-20261206-101000", lr=0.02, started=1_700_000_600)
    wide = write_run(root, "LeNet-5-on-Shapes-20261206-102000", conv1=12, started=1_700_001_200)
    window = open_window(qtbot, SIZES[0])
    window.training.set_runs_root(root)
    panel = open_training(qtbot, window)
    runs = panel.runs
    click_tab(qtbot, panel.tabs, "Runs")

    # Each run reads as what sets it apart from the others, not as the project's name and a time.
    assert labels(panel) == {base.name: "lr 0.05 · conv1 6 ch", slow.name: "lr 0.02 · conv1 6 ch",
                             wide.name: "lr 0.05 · conv1 12 ch"}
    assert_not_clipped(runs.b_compare)

    # Nothing ticked: Compare is off and says what to do, whatever rows are selected.
    click_row(qtbot, panel, base)
    click_row(qtbot, panel, slow, Qt.KeyboardModifier.ControlModifier)
    assert len(runs.selected()) == 2
    assert not runs.b_compare.isEnabled()
    assert "Tick two runs" in runs.b_compare.toolTip() and "0 ticked" in runs.b_compare.toolTip()
    assert "Tick two runs" in runs.details.placeholderText()

    tick(qtbot, panel, slow)
    tick(qtbot, panel, wide)
    assert set(runs.ticked()) == {str(slow), str(wide)}
    assert runs.b_compare.isEnabled()
    qtbot.mouseClick(runs.b_compare, Qt.MouseButton.LeftButton)
    assert runs.compared == (str(slow), str(wide))  # the ticked two, the older as A
    shown = runs.details.toPlainText()
    assert "A lr 0.02 · conv1 6 ch" in shown and "B lr 0.05 · conv1 12 ch" in shown
    assert "out_channels 6 → 12" in shown and "0.02" in shown

    tick(qtbot, panel, base)  # a third tick: Compare says so
    assert not runs.b_compare.isEnabled() and "3 ticked" in runs.b_compare.toolTip()
    tick(qtbot, panel, base)

    # Rename: F2 on the selected run opens its label for editing; Enter keeps the new name.
    click_row(qtbot, panel, wide)
    QTest.keyClick(runs.tree, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == "lr 0.05 · conv1 12 ch"
    editor.selectAll()
    QTest.keyClicks(editor, "wide conv1")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: labels(panel)[wide.name] == "wide conv1", timeout=2000)
    assert json.loads((wide / "label.json").read_text(encoding="utf-8")) == {"label": "wide conv1"}
    assert json.loads((wide / "run.json").read_text(encoding="utf-8"))["status"] == "completed"  # untouched
    qtbot.mouseClick(runs.b_refresh, Qt.MouseButton.LeftButton)
    assert labels(panel)[wide.name] == "wide conv1"  # read back from the run folder
    assert "wide conv1" in [label.text for _sample, label in runs.overlay.getPlotItem().legend.items]
    qtbot.mouseClick(runs.b_compare, Qt.MouseButton.LeftButton)
    assert "B wide conv1" in runs.details.toPlainText()

    # An empty name gives the run its automatic label back.
    click_row(qtbot, panel, wide)
    qtbot.mouseClick(runs.b_rename, Qt.MouseButton.LeftButton)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit)
    editor.clear()
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: labels(panel)[wide.name] == "lr 0.05 · conv1 12 ch", timeout=2000)
    assert not (wide / "label.json").exists()
    panel.shutdown()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.width()}x{s.height()}")
def test_plots_show_every_overlaid_run_with_legends_beside_the_data(qtbot, isolated, size: QSize) -> None:
    root = isolated / "runs"
    long_run = write_run(root, "LeNet-5-on-Shapes-20261206-090000", epochs=12, started=1_700_000_000)
    window = open_window(qtbot, size, make_doc(epochs=2))
    window.training.set_runs_root(root)
    panel = open_training(qtbot, window)
    maps = panel.maps

    # Before any run the probe column says, readably, what will appear there (was "iting for the first pro").
    assert maps.waiting.isVisible()
    assert_not_clipped(maps.waiting)
    assert_not_clipped(maps.waiting, WAITING_FOR_PROBE)

    panel.settings.wait_for_data()
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        trigger(window, "Train", "Start Training")  # F5: a 2-epoch run of the tiny project
    assert blocker.args[0].status == "completed"
    panel.worker.wait()
    settle()

    click_tab(qtbot, panel.tabs, "Runs")
    tick(qtbot, panel, long_run)
    click_tab(qtbot, panel.tabs, "Curves & feature maps")
    plots = panel.plots
    assert len(plots.overlay_items) == 2  # its validation loss and accuracy
    for plot in (plots.loss_plot, plots.acc_plot, plots.lr_plot):
        x0, x1 = plot.getPlotItem().vb.viewRange()[0]
        assert x0 <= 0 and x1 >= 12, f"{plot.title}: x axis {x0:.2f}…{x1:.2f} cuts off the 12-epoch run"

    for plot in (plots.loss_plot, plots.acc_plot, panel.runs.overlay):
        item = plot.getPlotItem()
        legend = item.legend
        assert legend.isVisible() and legend.items
        data = item.vb.sceneBoundingRect()
        share = covered_share(legend.sceneBoundingRect(), data)
        assert share <= LEGEND_SHARE, f"the legend covers {share:.0%} of the {getattr(plot, 'title', 'runs')!r} plot"
        assert QRectF(plot.viewport().rect()).contains(legend.sceneBoundingRect()), "the legend is cut off"
    acc_names = [label.text for _sample, label in plots.acc_plot.getPlotItem().legend.items]
    assert acc_names == ["train", "validation"]  # runs are named once, in the loss plot's legend
    _sample, entry = plots.loss_plot.getPlotItem().legend.items[-1]
    name = labels(panel)[long_run.name]
    assert name.startswith("shapes · batch 128 · input 3×32×32"), name  # what sets it apart from the tiny run
    assert entry.toolTip() == name  # the long run, named as in the runs list
    shown = entry.text
    assert shown == name or (shown.endswith("…") and name.startswith(shown[:-1])), shown  # whole, or elided
    panel.shutdown()


def test_a_folder_of_many_runs_fills_the_list_and_old_runs_name_no_defaults(qtbot, isolated, monkeypatch) -> None:
    """What a real window showed on a runs folder of 170 runs (issue 11): Refresh reads the folder again
    over a few turns, saying so beside its buttons while the rows stay, and a run written without some
    settings (an older version's) is not labelled by them ("schedule default · wd default …") against
    runs that name their defaults."""
    import time

    import gui.training.runs as runs_module

    monkeypatch.setattr(runs_module, "READ_SLICE_S", 0.0)  # the least a turn reads: 8 folders
    root = isolated / "runs"
    runs = [write_run(root, f"LeNet-5-on-Shapes-20261206-10{i:02d}00", started=1_700_000_000 + 60 * i)
            for i in range(19)]
    old = RunFolder(root / "LeNet-5-on-Shapes-20261205-090000")  # an older version named only what it changed
    old.create()
    old.write_json("config.json", {"training": {"dataset": "shapes", "lr": 0.05, "epochs": 5},
                                   "dataset": {"name": "shapes"}})
    old.write_json("graph.json", json.loads((runs[0] / "graph.json").read_text(encoding="utf-8")))
    old.write_metrics([{"epoch": 1, "val_acc": 0.5}])
    os.utime(old.path / "config.json", (1_699_000_000, 1_699_000_000))
    back = time.time() - 60
    for folder in root.iterdir():
        os.utime(folder, (back, back))
    window = open_window(qtbot, SIZES[0])
    window.training.set_runs_root(root)
    panel = open_training(qtbot, window)
    qtbot.waitUntil(lambda: panel.runs.reading == 0, timeout=10_000)  # read while the dock was made
    click_tab(qtbot, panel.tabs, "Runs")
    qtbot.mouseClick(panel.runs.b_refresh, Qt.MouseButton.LeftButton)  # every folder read again, a slice a turn
    where = panel.runs.where
    assert where.text() == "Reading 12 more runs…" and panel.runs.tree.topLevelItemCount() == 20  # rows stay
    assert_not_clipped(where)
    qtbot.waitUntil(lambda: panel.runs.reading == 0 and panel.runs.tree.topLevelItemCount() == 20, timeout=10_000)
    assert "Reading" not in where.text() and where.toolTip() == f"Runs are kept in {root}"
    shown = labels(panel)
    names = list(shown)
    assert names[0] == runs[-1].name and names[-1] == old.path.name  # newest first
    assert not any("default" in label for label in shown.values()), shown
    assert shown[old.path.name] == "LeNet-5-on-Shapes · 09:00:00"  # set apart by nothing but its time
