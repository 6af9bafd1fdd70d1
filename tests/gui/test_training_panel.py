"""The training dock: a run fills the plots, feature maps and runs list; failures show in the window;
the data-fit fix is one undo step; canvas edits during a run don't touch it; closing asks and keeps
the checkpoint; runs compare and load; plots export and smooth."""

from __future__ import annotations

import csv
import gc

import numpy as np
import pytest
import torch

from core.project import new_project
from core.training import TrainConfig
from gui import commands
from gui.document import Document
from gui.training import TrainingPanel
from gui.training.plots import Series, ema
from tests.gui.test_training_worker import tiny_graph

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Collect the Qt wrappers a test leaves behind here, on the GUI thread: Python's cyclic GC would
    otherwise run their finalizers on whichever thread allocates next, possibly the training thread."""
    yield
    gc.collect()


CONFIG = dict(dataset="synthetic:3,8,8,4", train_size=64, val_size=32, batch_size=32, epochs=1, device="cpu",
              lr=0.05, probe_interval=0.0)


def make_doc(init: str = "default", **training) -> Document:
    project = new_project(tiny_graph(init), name="tiny", training={**CONFIG, **training})
    return Document.from_project(project)


@pytest.fixture
def panel(qtbot, tmp_path):
    doc = make_doc()
    p = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(p)
    p.resize(1400, 700)
    p.show()
    p.settings.wait_for_data()
    yield p
    p.shutdown()
    doc.dispose()


def train(qtbot, panel: TrainingPanel, **kw) -> object:
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        assert panel.start(**kw)
    panel.worker.wait()
    return blocker.args[0]


def test_a_run_fills_plots_feature_maps_filters_and_runs(qtbot, panel, tmp_path):
    panel.doc.set_selection(["conv", "relu"])
    assert panel.maps.nodes == ["conv", "relu"]
    assert panel.settings.data is not None and panel.settings.data.num_classes == 4
    summary = train(qtbot, panel)
    assert summary.status == "completed"
    assert panel.plots.step_loss.n == 2 and panel.plots.epoch_loss.n == 1 and panel.plots.val_acc.n == 1
    x, y = panel.plots.c_step.getOriginalDataset()
    assert len(x) == 2 and np.allclose(x, [0.5, 1.0]) and np.all(np.isfinite(y))
    assert panel.maps.renders >= 1
    assert panel.maps.sections["conv"].mosaic.count == 4  # 4 channels of the probe sample
    assert len(panel.maps.sections["conv"].spark["mean"].values) >= 1
    assert "conv" in panel.filters.weights
    assert panel.progress_text.text().startswith("Finished")
    assert len(panel.runs.records) == 1
    record = next(iter(panel.runs.records.values()))
    assert record.status == "completed" and len(record.metrics) == 1 and record.has_checkpoint
    assert panel.doc.project.training["dataset"] == "synthetic:3,8,8,4"  # the settings are saved with the project
    assert not panel.running and panel.b_start.isEnabled()


def test_a_nan_run_shows_its_message_in_the_window(qtbot, tmp_path):
    doc = make_doc(init="normal(1e30)")
    panel = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.show()
    panel.settings.wait_for_data()
    summary = train(qtbot, panel)
    assert summary.status == "failed"
    assert not panel.banner.isHidden()
    assert "became" in panel.problem_text and "learning rate" in panel.problem_text
    assert "Traceback" not in panel.problem_text
    assert panel.progress_text.text().startswith("Failed")
    panel.shutdown()
    doc.dispose()


def test_data_that_does_not_fit_offers_one_undoable_fix(qtbot, panel):
    doc = panel.doc
    doc.push(commands.SetParamCommand(doc, "input", "shape", [3, 16, 16]))
    doc.push(commands.SetParamCommand(doc, "fc", "out_features", 10))
    depth = doc.undo_stack.count()
    assert not panel.settings.banner.isHidden()
    assert "4 classes" in panel.settings.banner_text.text()
    assert not panel.start()  # refused before any thread starts
    assert "doesn't fit" in panel.problem_text or "fit" in panel.problem_text
    panel.settings.fix_button.click()
    assert doc.graph.nodes["input"].params["shape"] == [3, 8, 8]
    assert doc.graph.nodes["fc"].params["out_features"] == 4
    assert panel.settings.banner.isHidden()
    assert doc.undo_stack.count() == depth + 1  # one click, one undo step
    doc.undo_stack.undo()
    assert doc.graph.nodes["input"].params["shape"] == [3, 16, 16]
    assert doc.graph.nodes["fc"].params["out_features"] == 10


def test_memory_estimate_follows_the_batch_size(qtbot, panel):
    before = panel.settings.memory.text()
    panel.settings.batch.setValue(512)
    after = panel.settings.memory.text()
    assert before != after and "at batch 512" in after
    est = panel.doc.analysis.memory(512, "sgd")
    from core.units import human_bytes

    assert human_bytes(est.total) in after


def test_editing_the_canvas_during_a_run_does_not_touch_it(qtbot, panel):
    panel.settings.set_config(TrainConfig(**{**CONFIG, "train_size": 32 * 40, "epochs": 2}))
    panel.settings.wait_for_data()
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        assert panel.start()
        qtbot.waitUntil(lambda: panel.plots.step_loss.n > 0, timeout=30_000)
        panel.doc.push(commands.SetParamCommand(panel.doc, "conv", "out_channels", 8))
        assert panel.changed_chip.isVisible()
        assert "conv" in panel.changed_chip.toolTip()
    assert blocker.args[0].status == "completed"
    from core.training.runs import RunFolder

    saved = RunFolder(panel.run_dir).read_json("graph.json")
    conv = next(n for n in saved["graph"]["nodes"] if n["id"] == "conv")
    assert conv["params"]["out_channels"] == 4  # the run trained the snapshot
    assert panel.changed_chip.isVisible()
    panel.doc.undo_stack.undo()
    assert not panel.changed_chip.isVisible()


def test_closing_the_window_during_a_run_asks_stops_and_keeps_the_checkpoint(qtbot, tmp_path):
    from gui.main_window import MainWindow

    doc = make_doc(train_size=32 * 60, epochs=50)
    window = MainWindow(doc, restore_layout=False)
    qtbot.addWidget(window)
    dock = window.training
    dock.set_runs_root(tmp_path / "runs")
    panel = dock.panel
    window.show()
    panel.settings.wait_for_data()
    asked: list[bool] = []
    answer = {"stop": False}

    def ask() -> bool:
        asked.append(True)
        return answer["stop"]

    panel.ask_stop = ask
    assert panel.start()
    qtbot.waitUntil(lambda: (panel.run_dir / "checkpoints" / "last.pt").is_file(), timeout=60_000)
    assert not window.close()  # "no": the window stays, training goes on
    assert asked and panel.running and window.isVisible()
    answer["stop"] = True
    assert window.close()
    assert len(asked) == 2 and not panel.running
    assert panel.last_summary is not None and panel.last_summary.status == "stopped"
    from core.training.runs import load_checkpoint

    ckpt = load_checkpoint(panel.run_dir)
    assert ckpt["epoch"] >= 1 and "conv.weight" in ckpt["model"]
    assert window.training_menu.title() == "&Train"


def test_the_dock_is_built_when_shown_and_follows_the_windows_document(qtbot, tmp_path):
    from gui.main_window import MainWindow

    window = MainWindow(make_doc(), restore_layout=False)
    qtbot.addWidget(window)
    window.show()
    dock = window.training
    assert dock.built is None  # behind the Problems tab: nothing built, nothing loading
    dock.set_runs_root(tmp_path / "runs")
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: dock.built is not None, timeout=10_000)
    assert dock.panel.doc is window.doc and dock.panel.runs_root == tmp_path / "runs"
    other = make_doc()
    window.set_document(other)
    assert dock.panel.doc is other
    with qtbot.waitSignal(dock.panel.run_finished, timeout=60_000) as blocker:
        assert dock.start(epochs=1)  # what main.py FILE --train does
    assert blocker.args[0].status == "completed"


def test_runs_compare_resume_and_load_weights(qtbot, panel):
    first = train(qtbot, panel)
    panel.settings.lr.setValue(0.02)
    panel.doc.push(commands.SetParamCommand(panel.doc, "conv", "out_channels", 6))
    second = train(qtbot, panel)
    assert first.status == second.status == "completed"
    panel.runs.refresh()
    assert len(panel.runs.records) == 2
    runs = sorted(panel.runs.records.values(), key=lambda r: (r.started, r.name))
    diff = panel.runs.compare(runs[0], runs[1])
    assert diff.changed["conv"] == ("out_channels 4 → 6",)
    html = panel.runs.details.toHtml()
    assert "lr" in html and "0.05" in html and "0.02" in html
    panel.runs.b_highlight.click()
    assert panel.doc.selection == ["conv"]
    panel.runs.set_ticked([str(r.path) for r in runs])
    assert len(panel.plots.overlay_items) == 4  # val loss and val accuracy of each run

    broken = runs[0].path / "checkpoints" / "last.pt"
    saved = broken.read_bytes()
    broken.write_bytes(b"not a checkpoint")
    assert not panel.load_weights(runs[0].path)  # one line naming the file, nothing loaded
    problem = panel.problem_text
    assert "Cannot load the weights: " in problem and "\n" not in problem
    assert f"{runs[0].path.name}/checkpoints/last.pt is not a NetCanvas checkpoint" in problem  # long paths elided
    assert panel.loaded_weights is None
    broken.write_bytes(saved)
    assert panel.load_weights(runs[1].path)
    assert panel.loaded_weights is not None
    panel.tabs.setCurrentWidget(panel.predict)
    panel.predict.set_samples(*panel.settings.data.preview(4, "val"))
    panel.predict.pick_sample(1)
    panel.predict.flush()  # computed on its worker thread
    assert len(panel.predict.predictions) == 4  # top-5 capped at the 4 classes
    assert abs(sum(p.probability for p in panel.predict.predictions) - 1) < 1e-4
    assert panel.predict.cam is not None and panel.predict.cam.heatmap.shape == (8, 8)
    assert panel.predict.maps.count == 6

    resumed = train(qtbot, panel, resume_from=runs[0].path, epochs=2)
    assert resumed.status == "completed" and resumed.epochs_done == 2
    assert panel.plots.epoch_loss.n == 2  # the run's history, then the new epoch


def test_predictions_from_a_dropped_image_file(qtbot, panel, tmp_path):
    from PIL import Image

    train(qtbot, panel)
    panel.tabs.setCurrentWidget(panel.predict)
    path = tmp_path / "x.png"
    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)).save(path)
    assert panel.predict.open_image(path)
    assert panel.predict.tensor.shape == (1, 3, 8, 8)
    panel.predict.flush()
    assert len(panel.predict.predictions) == 4 and panel.predict.cam is not None
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    assert not panel.predict.open_image(bad)
    assert "not a readable image" in panel.problem_text


def test_plots_smooth_log_hover_and_export(qtbot, panel, tmp_path):
    summary = train(qtbot, panel)
    assert summary.status == "completed"
    plots = panel.plots
    plots.set_smoothing(0.0)
    assert np.allclose(plots.smooth_loss.y, plots.step_loss.y)
    plots.set_smoothing(0.5)
    assert not np.allclose(plots.smooth_loss.y[1:], plots.step_loss.y[1:])
    plots.set_log(True)
    assert plots.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
    plots.set_log(False)
    text = plots.loss_plot.readout_at(1.0)
    assert text is not None and "epoch 1.00" in text and "val" in text
    plots.export_csv(tmp_path / "p.csv")
    with open(tmp_path / "p.csv", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["series", "epoch", "value"] and sum(r[0] == "train_loss_step" for r in rows) == 2
    assert plots.export_png(tmp_path / "p.png") and (tmp_path / "p.png").stat().st_size > 1000


def test_series_and_ema_at_scale():
    s = Series(4)
    for i in range(10):
        s.extend(np.arange(i * 100, (i + 1) * 100), np.ones(100))
    assert s.n == 1000 and s.x[-1] == 999
    values = np.random.default_rng(1).random(100_000)
    fast = ema(values, 0.9)
    slow = np.empty(600)
    prev = values[0]
    for i in range(600):
        prev = 0.9 * prev + 0.1 * values[i]
        slow[i] = prev
    assert np.allclose(fast[:600], slow)
    assert np.isfinite(fast).all()
    assert np.allclose(ema(values[:300], 0.9)[-1], ema(values[:300], 0.9, None)[-1])
    first, second = ema(values[:257], 0.8), ema(values[257:400], 0.8, ema(values[:257], 0.8)[-1])
    assert np.allclose(np.concatenate([first, second]), ema(values[:400], 0.8))
    assert torch.tensor(1)  # torch stays importable alongside pyqtgraph
