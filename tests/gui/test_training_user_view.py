"""What the training dock shows a user (issue 9): the first Predictions view after a run names the
sample's class and shows its Grad-CAM; Runs › Resume extends a finished run to the Epochs field (or says
why not) and keeps its start time; a run started from loaded weights says what it kept; an Epochs
override (``main.py FILE --train --epochs N``) does not mark the document modified."""

from __future__ import annotations

import gc
import os
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QPushButton

from core.training.runs import RunFolder
from gui import commands
from gui.training import TrainingPanel
from tests.gui.test_training_panel import make_doc, train

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """As in test_training_panel: Qt wrappers are collected here, on the GUI thread."""
    yield
    gc.collect()


@pytest.fixture
def panel(qtbot, tmp_path):
    doc = make_doc()
    p = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(p)
    p.resize(1400, 700)
    p.show()
    p.settings.wait_for_data()
    p.messages = []
    p.message.connect(p.messages.append)
    yield p
    p.shutdown()
    doc.dispose()


def click_tab(qtbot, panel: TrainingPanel, widget) -> None:
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(panel.tabs.indexOf(widget)).center())
    assert panel.tabs.currentWidget() is widget


def click_run(qtbot, panel: TrainingPanel, path) -> None:
    """Select one run's row in the Runs list with the mouse."""
    tree = panel.runs.tree
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.toolTip(0) == str(path):
            qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())
            assert [r.path for r in panel.runs.selected()] == [path]
            return
    raise AssertionError(f"{path} is not in the runs list")


def test_the_first_predictions_view_after_a_run_names_the_sample_and_shows_grad_cam(qtbot, panel):
    train(qtbot, panel)
    click_tab(qtbot, panel, panel.predict)  # first open after training
    view = panel.predict
    truth = view.sample_labels[0]
    name = view.classes[truth]
    assert view.source_label.text() == f"dataset sample 0 · label {name}"
    view.flush()  # computed on its worker thread
    assert view.cam is not None and float(view.cam.heatmap.max()) > 0
    assert view.cam_view.isVisible() and view.cam_view.image is not None
    assert view.cam_view.image != view.image_view.image  # the heat map is drawn over the image
    first = [(p.name, round(p.probability, 5)) for p in view.predictions]
    view.sample_spin.stepUp()  # step away and back: the same reading of the same image
    view.sample_spin.stepDown()
    view.flush()
    assert view.source_label.text() == f"dataset sample 0 · label {name}"
    assert [(p.name, round(p.probability, 5)) for p in view.predictions] == first


def test_predictions_name_the_sample_before_any_run(qtbot, panel):
    view = panel.predict
    name = panel.settings.data.classes[view.sample_labels[0]]
    assert view.source_label.text() == f"dataset sample 0 · label {name}"


def test_resume_extends_a_finished_run_to_the_epochs_field_and_keeps_its_start_time(qtbot, panel):
    first = train(qtbot, panel)
    assert first.status == "completed" and first.epochs_done == 1
    run = panel.run_dir
    long_ago = time.time() - 3 * 24 * 3600
    os.utime(run / "config.json", (long_ago, long_ago))
    click_tab(qtbot, panel, panel.runs)
    panel.runs.refresh()
    started = panel.runs.records[str(run)].started
    click_run(qtbot, panel, run)

    panel.settings.epochs.setValue(1)  # not more than it has done: the dock says what to do
    qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton)
    assert not panel.running
    assert "is finished: it trained 1 epoch" in panel.problem_text and "Set Epochs above 1" in panel.problem_text

    panel.settings.epochs.setValue(3)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton)
    panel.worker.wait()
    summary = blocker.args[0]
    assert summary.status == "completed" and summary.epochs_done == 3
    assert panel.progress_text.text().startswith("Finished · 3 epochs")
    assert panel.progress.isVisible() and panel.progress.value() == panel.progress.maximum()  # a full bar
    assert panel.problem_text == ""
    assert panel.plots.epoch_loss.n == 3  # its first epoch, then the two new ones
    panel.runs.refresh()
    record = panel.runs.records[str(run)]
    assert len(record.metrics) == 3 and record.config["epochs"] == 3
    assert record.started == started  # still the run it was, started when it was
    assert len(panel.runs.records) == 1


def test_resume_a_stopped_run_goes_on_to_its_planned_epochs(qtbot, panel):
    panel.settings.epochs.setValue(12)  # long enough to stop it on the way
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        assert panel.start()
        qtbot.waitUntil(lambda: (panel.run_dir / "checkpoints" / "last.pt").is_file(), timeout=60_000)
        panel.stop()
    panel.worker.wait()
    run = panel.run_dir
    done = RunFolder(run).read_json("run.json")["epochs_done"]
    assert panel.last_summary.status == "stopped" and done < 12
    panel.settings.epochs.setValue(1)  # a smaller field does not cut the run short
    click_tab(qtbot, panel, panel.runs)
    click_run(qtbot, panel, run)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.runs.b_resume, Qt.MouseButton.LeftButton)
    panel.worker.wait()
    assert blocker.args[0].status == "completed" and blocker.args[0].epochs_done == 12


def test_a_run_from_loaded_weights_says_what_it_kept(qtbot, panel):
    first = train(qtbot, panel)
    panel.doc.push(commands.SetParamCommand(panel.doc, "conv", "out_channels", 6))  # conv and fc change
    assert panel.load_weights(panel.run_dir)
    second = train(qtbot, panel)
    assert first.status == second.status == "completed"
    said = [m for m in panel.messages if m.startswith("Starting from the loaded weights")]
    assert said == ["Starting from the loaded weights: 0 layers kept their weights; conv, fc start fresh "
                    "(changed since that run)."]
    assert "Training could not run" not in " ".join(panel.messages) and panel.problem_text == ""


def test_loaded_weights_carry_into_an_unchanged_graph(qtbot, panel):
    train(qtbot, panel)
    assert panel.load_weights(panel.run_dir)
    assert train(qtbot, panel).status == "completed"
    assert "Starting from the loaded weights: 2 layers kept their weights." in panel.messages


def test_an_epochs_override_does_not_mark_the_document_modified(qtbot, panel):
    assert not panel.doc.is_modified()
    summary = train(qtbot, panel, epochs=2)
    assert summary.epochs_done == 2
    assert not panel.doc.is_modified() and panel.doc.undo_stack.count() == 0
    assert panel.settings.epochs.value() == 1


def test_a_tab_opened_before_its_viewer_is_built_shows_it(qtbot, tmp_path):
    doc = make_doc()
    panel = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.resize(1400, 700)
    panel.show()
    bar = panel.tabs.tabBar()
    assert bar.tabText(3) == "Runs" and panel.tabs.widget(3).findChildren(QPushButton) == []  # not built yet
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(3).center())
    assert panel.tabs.currentIndex() == 3 and panel.tabs.currentWidget() is panel.runs
    assert panel.runs.tree.isVisible() and panel.runs.b_resume.isVisible()
    shown = [bar.tabText(i) for i in range(bar.count()) if bar.isTabVisible(i)]  # the task's tabs (Text: hidden)
    assert shown == ["Curves && feature maps", "Filters", "Predictions", "Runs"]
    panel.settings.wait_for_data()
    qtbot.wait(300)
    assert panel._filters is None and panel.tabs.widget(1).findChildren(QComboBox) == []  # made when opened
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert panel.tabs.currentWidget() is panel.filters and panel.filters.combo.isVisible()
    panel.shutdown()
    doc.dispose()
