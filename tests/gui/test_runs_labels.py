"""Runs labelled by what sets them apart, names kept in the run folder, legends beside the data, the
x axis covering every overlaid run, and the probe column's placeholder (issue 9, defects 6–7)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import QRectF

from core.training import ProbeData
from core.training.runs import LABEL_FILE, RunFolder
from gui.theme import DARK, LIGHT
from gui.training.maps import NO_PROBE_YET, WAITING_FOR_PROBE, FeatureMapView
from gui.training.plots import MetricsPlots, StripLegend, legend_above
from gui.training.run_records import MAX_LABEL_PARTS, RunRecord, run_labels

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

GRAPH: dict[str, Any] = {
    "nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
              {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 6, "kernel_size": 5}},
              {"id": "pool1", "type": "MaxPool2d", "params": {"kernel_size": 2}},
              {"id": "output", "type": "Output"}],
    "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "pool1"}, {"from": "pool1", "to": "output"}],
}
CONFIG = {"dataset": "shapes", "lr": 0.05, "batch_size": 128, "epochs": 5, "optimizer": "sgd", "probe_interval": 1.0}


def record(name: str, started: float = 0.0, label: str = "", graph: dict[str, Any] | None = None,
           **config: Any) -> RunRecord:
    return RunRecord(path=Path("/runs") / name, config={**CONFIG, **config}, graph=copy.deepcopy(graph or GRAPH),
                     started=started, custom_label=label)


def with_params(node: str, **params: Any) -> dict[str, Any]:
    graph = copy.deepcopy(GRAPH)
    for n in graph["nodes"]:
        if n["id"] == node:
            n["params"].update(params)
    return graph


def test_runs_are_labelled_by_what_sets_them_apart() -> None:
    runs = [record("a"), record("b", lr=0.02), record("c", graph=with_params("conv1", out_channels=12)),
            record("d", batch_size=64, probe_interval=0.0)]  # how often it was probed is no difference
    labels = run_labels(runs)
    assert labels == {"/runs/a": "lr 0.05 · batch 128 · conv1 6 ch", "/runs/b": "lr 0.02 · batch 128 · conv1 6 ch",
                      "/runs/c": "lr 0.05 · batch 128 · conv1 12 ch", "/runs/d": "lr 0.05 · batch 64 · conv1 6 ch"}


def test_labels_name_parameters_in_effect_nodes_added_and_cap_their_length() -> None:
    # pool1's stride is unset (torch uses its kernel size, 2); the other run sets it to 1.
    added = with_params("pool1", stride=1)
    added["nodes"].insert(2, {"id": "bn1", "type": "BatchNorm2d", "params": {}})
    labels = run_labels([record("a"), record("b", graph=added)])
    assert labels["/runs/a"] == "pool1 s2 · −bn1"
    assert labels["/runs/b"] == "pool1 s1 · +bn1"
    many = run_labels([record("a"), record("b", lr=0.1, batch_size=8, optimizer="adam", seed=3, epochs=9)])
    assert many["/runs/b"] == "adam · lr 0.1 · batch 8 · +2 more"
    assert many["/runs/b"].count(" · ") == MAX_LABEL_PARTS


def test_a_users_name_wins_and_repeated_or_empty_labels_show_the_time() -> None:
    stamp = 1_700_000_000.0
    same = run_labels([record("LeNet-5-20261206-100000", stamp), record("LeNet-5-20261206-101500", stamp + 60)])
    assert set(same.values()) == {"LeNet-5 · 10:00:00", "LeNet-5 · 10:15:00"}  # nothing differs: the time
    runs = [record("a", stamp), record("b", stamp + 60), record("c", stamp + 120, lr=0.02),
            record("d", stamp + 180, label="my best")]
    labels = run_labels(runs)
    assert labels["/runs/d"] == "my best"
    assert labels["/runs/c"] == "lr 0.02"
    assert labels["/runs/a"] != labels["/runs/b"] and labels["/runs/a"].startswith("lr 0.05 · ")
    twins = run_labels([record("x", stamp, label="same"), record("y", stamp + 60, label="same")])
    assert len(set(twins.values())) == 2 and all(v.startswith("same · ") for v in twins.values())


def test_a_run_folder_keeps_its_name_apart_from_the_engines_files(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_json("run.json", {"status": "running"})
    assert folder.read_label() == ""
    folder.write_label("  wide conv1 ")
    assert folder.read_label() == "wide conv1"
    folder.write_json("run.json", {"status": "completed"})  # the engine rewrites run.json as the run goes
    assert folder.read_label() == "wide conv1"
    assert json.loads((folder.path / "run.json").read_text()) == {"status": "completed"}
    folder.write_label("")
    assert not (folder.path / LABEL_FILE).exists() and folder.read_label() == ""
    (folder.path / LABEL_FILE).write_text("not json")
    assert folder.read_label() == ""  # a damaged name file reads as no name, the run still lists


def _overlap(legend: StripLegend, item: pg.PlotItem) -> float:
    a, b = legend.sceneBoundingRect(), item.vb.sceneBoundingRect()
    r = a.intersected(b)
    return 0.0 if r.isEmpty() else r.width() * r.height()


def test_a_strip_legend_wraps_above_the_data_and_gives_the_room_back(qtbot) -> None:
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(260, 220)
    widget.show()
    item = widget.getPlotItem()
    legend = legend_above(item, LIGHT)
    qtbot.waitExposed(widget)
    full = item.vb.height()
    curves = [item.plot([0, 1], [0, 1], name=f"run with a long label {i}") for i in range(4)]
    qtbot.wait(20)
    assert legend.isVisible() and _overlap(legend, item) == 0
    assert legend.sceneBoundingRect().bottom() <= item.vb.sceneBoundingRect().top() + 0.5
    assert QRectF(widget.viewport().rect()).contains(legend.sceneBoundingRect())
    tops = sorted({round(label.pos().y()) for _sample, label in legend.items})
    assert len(tops) >= 2  # the entries wrapped into rows at the plot's width
    assert item.vb.height() < full
    for curve in curves:
        item.removeItem(curve)
    qtbot.wait(20)
    assert not legend.items and not legend.isVisible()
    assert item.vb.height() == pytest.approx(full, abs=1)
    long_name = "<b>not bold</b> · " + "a name far wider than this small plot · " * 3
    item.plot([0, 1], [1, 0], name=long_name)
    qtbot.wait(20)
    _sample, label = legend.items[0]
    assert label.toolTip() == long_name and label.text.endswith("…") and "&lt;b&gt;" in label.text
    assert QRectF(widget.viewport().rect()).contains(legend.sceneBoundingRect())  # elided, not cut off
    item.removeItem(item.listDataItems()[0])
    assert not legend.items
    item.plot([0, 1], [1, 0], name="a")
    legend.setLabelTextColor(DARK.text_dim)
    assert DARK.text_dim.lower() in legend.items[0][1].item.toHtml().lower()


def test_the_x_axis_covers_the_run_and_every_overlaid_run(qtbot) -> None:
    plots = MetricsPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 400)
    plots.show()
    plots.set_epochs(3)
    assert plots.acc_plot.getPlotItem().vb.viewRange()[0][1] == pytest.approx(3, abs=0.2)
    rows = [{"epoch": float(e), "val_loss": 1.0 / e, "val_acc": 0.5} for e in range(1, 13)]
    plots.set_overlays({"lr 0.02": rows})
    for plot in (plots.loss_plot, plots.acc_plot, plots.lr_plot):
        assert plot.getPlotItem().vb.viewRange()[0][1] >= 12
    names = [label.text for _s, label in plots.loss_plot.getPlotItem().legend.items]
    assert names[-1] == "lr 0.02"  # the runs list's label, as given
    plots.set_overlays({})
    assert plots.loss_plot.getPlotItem().vb.viewRange()[0][1] == pytest.approx(3, abs=0.2)
    assert plots.x_extent() == 3


def test_the_probe_column_says_why_it_is_empty_then_shows_the_sample(qtbot) -> None:
    view = FeatureMapView()
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    assert view.waiting.isVisible() and view.waiting.text() == NO_PROBE_YET and not view.sample_view.isVisible()
    view.clear()  # a run starts
    assert view.waiting.text() == WAITING_FOR_PROBE and view.waiting.isVisible()
    width = max(view.waiting.fontMetrics().horizontalAdvance(line) for line in WAITING_FOR_PROBE.splitlines())
    assert view.waiting.minimumSizeHint().width() >= width  # the layout cannot squeeze a line
    images = torch.zeros((2, 3, 8, 8), dtype=torch.uint8)
    view.show_probe(ProbeData(epoch=1, step=1, global_step=1, images=images, labels=(0, 1),
                              probabilities=torch.tensor(np.full((2, 4), 0.25, np.float32))))
    view.render()
    assert view.sample_view.isVisible() and not view.waiting.isVisible()


def test_a_name_that_cannot_be_saved_says_why_and_the_run_keeps_its_label(qtbot, tmp_path: Path) -> None:
    from gui.training.runs import RunsPanel

    folder = RunFolder(tmp_path / "runs" / "LeNet-5-20261206-100000")
    folder.create()
    folder.write_json("config.json", {"training": CONFIG, "dataset": {"name": "shapes"}})
    folder.write_json("graph.json", {"graph": GRAPH})
    (folder.path / LABEL_FILE).mkdir()  # something in the way of the name file
    panel = RunsPanel()
    panel.set_root(tmp_path / "runs")
    qtbot.addWidget(panel)
    panel.show()
    item = panel.item_for(folder.path)
    assert item is not None and item.text(0) == "LeNet-5 · 10:00:00"
    assert not panel.rename(folder.path, "first try")
    assert panel.problem.isVisible() and "cannot save the run's name" in panel.problem.text()
    assert str(folder.path / LABEL_FILE) in panel.problem.text()
    assert panel.item_for(folder.path).text(0) == "LeNet-5 · 10:00:00"
    (folder.path / LABEL_FILE).rmdir()
    assert panel.rename(folder.path, "first try")
    assert not panel.problem.isVisible() and panel.item_for(folder.path).text(0) == "first try"


def test_a_setting_a_run_does_not_name_reads_as_its_default(tmp_path: Path) -> None:
    """A run written before a setting existed (or by hand) trained with its default: read from its folder,
    it is not told apart from a run that names every default, and settings it cannot read are kept."""
    from core.explain import diff_configs
    from core.training.config import TrainConfig

    sparse = {"lr": 0.05, "dataset": "shapes"}
    for name, training in (("old", sparse), ("new", TrainConfig.from_dict(sparse).to_dict()),
                           ("odd", {**sparse, "future_setting": [1, 2]})):
        folder = RunFolder(tmp_path / name)
        folder.create()
        folder.write_json("config.json", {"training": training, "dataset": {"name": "shapes"}})
    old, new, odd = (RunRecord.read(tmp_path / n) for n in ("old", "new", "odd"))
    assert diff_configs(old.config, new.config) == []  # was: schedule, smoothing, clip … "default" against a value
    assert diff_configs(old.config, odd.config) == [("future_setting", None, [1, 2])]
    labels = run_labels([new, old])
    assert labels[str(new.path)] != labels[str(old.path)] and "default" not in " ".join(labels.values())
