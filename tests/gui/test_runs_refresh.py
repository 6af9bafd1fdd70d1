"""The runs list keeps the rows of runs still in the folder when it is read again (at every run's start
and end): only what changed in a row is set, a new run's row goes on top, a deleted run's row goes, and
a row edited in place (a rename that failed) shows the run's label again (issue 11: rebuilt with ~150
runs, the list held the window 50-75 ms at each run end during a soak)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.training.runs import RunFolder
from gui.training.runs import RunsPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

GRAPH = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
                   {"id": "output", "type": "Output"}],
         "edges": [{"from": "input", "to": "output"}]}


def _run(root: Path, name: str, lr: float, started: float, status: str = "completed", epochs: int = 2) -> Path:
    folder = RunFolder(root / name)
    folder.create()
    folder.write_json("config.json", {"training": {"dataset": "shapes", "lr": lr, "epochs": 2},
                                      "dataset": {"name": "shapes"}})
    folder.write_json("graph.json", {"graph": GRAPH})
    folder.write_metrics([{"epoch": e, "val_acc": 0.25 * e} for e in range(1, epochs + 1)])
    folder.write_json("run.json", {"status": status, "epochs_done": epochs})
    os.utime(root / name / "config.json", (started, started))
    return root / name


def _rows(panel: RunsPanel) -> list[tuple[str, ...]]:
    return [tuple(panel.tree.topLevelItem(i).text(c) for c in range(3)) for i in range(panel.tree.topLevelItemCount())]


def _two_runs(qtbot, tmp_path: Path) -> tuple[RunsPanel, Path]:  # type: ignore[no-untyped-def]
    """A list on two runs: a, completed, and b, newer, written as running by a process that is gone."""
    now = time.time()
    _run(tmp_path, "a", 0.01, now - 300)
    b = _run(tmp_path, "b", 0.02, now - 200, status="running", epochs=1)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(tmp_path)
    return panel, b


def test_a_refresh_keeps_the_rows_and_sets_what_changed(qtbot, tmp_path: Path) -> None:
    panel, b = _two_runs(qtbot, tmp_path)
    first = [panel.tree.topLevelItem(i) for i in range(2)]
    labels = [r[0] for r in _rows(panel)]
    # newest first; a "running" run without its process reads as interrupted
    assert [r[1:] for r in _rows(panel)] == [("interrupted", "1/2"), ("completed", "2/2")]
    first[0].setSelected(True)
    first[1].setCheckState(0, first[1].checkState(0).Checked)

    RunFolder(b).write_metrics([{"epoch": 1, "val_acc": 0.3}, {"epoch": 2, "val_acc": 0.6}])  # b ends
    RunFolder(b).write_json("run.json", {"status": "completed", "epochs_done": 2})
    _run(tmp_path, "c", 0.03, time.time() - 100, status="running", epochs=0)  # and c starts
    panel.refresh()
    rows = [panel.tree.topLevelItem(i) for i in range(3)]
    assert rows[1:] == first  # the same rows, in place, with their selection and tick
    assert rows[1].isSelected() and panel.ticked() == [str(tmp_path / "a")]
    assert [r[1:] for r in _rows(panel)] == [("interrupted", "0/2"), ("completed", "2/2"), ("completed", "2/2")]
    assert [r[0] for r in _rows(panel)][1:] == labels  # lr tells them apart, as before
    assert panel.tree.topLevelItem(0).foreground(1).color() != rows[1].foreground(1).color()  # no colour / completed

    import shutil

    shutil.rmtree(tmp_path / "a")  # a run folder deleted outside the app
    panel.refresh()
    assert [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())] == rows[:2]
    assert panel.ticked() == []


def test_a_failed_rename_shows_the_runs_label_again(qtbot, tmp_path: Path, monkeypatch) -> None:
    now = time.time()
    _run(tmp_path, "a", 0.01, now - 300)
    _run(tmp_path, "b", 0.02, now - 200)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.set_root(tmp_path)
    item = panel.tree.topLevelItem(0)
    label = item.text(0)
    panel.tree.blockSignals(True)
    item.setText(0, "my best run")  # what the user typed in the row
    panel.tree.blockSignals(False)

    def refuse(self, text: str) -> None:
        from core.training.runs import RunFolderError

        raise RunFolderError("the folder is read-only")

    monkeypatch.setattr(RunFolder, "write_label", refuse)
    assert not panel.rename(item.data(0, 0x0100 + 1), "my best run")
    assert panel.tree.topLevelItem(0).text(0) == label and "read-only" in panel.problem.text()


def test_an_epoch_end_updates_its_row_as_a_refresh_would(qtbot, tmp_path: Path) -> None:
    panel, b = _two_runs(qtbot, tmp_path)
    row = panel.tree.topLevelItem(0)
    RunFolder(b).write_metrics([{"epoch": 1, "val_acc": 0.3}, {"epoch": 2, "val_acc": 0.6}])
    RunFolder(b).write_json("run.json", {"status": "completed", "epochs_done": 2})
    panel.update_run(b)  # the dock's call after each epoch of the running run
    after = _rows(panel)
    assert panel.tree.topLevelItem(0) is row and after[0][1:] == ("completed", "2/2")
    colour = row.foreground(1).color()
    panel.refresh()
    assert _rows(panel) == after and row.foreground(1).color() == colour  # nothing left for a refresh to set


def test_a_folder_of_many_unread_runs_fills_the_list_over_several_turns(qtbot, tmp_path: Path, monkeypatch) -> None:
    """Read at once, 170 runs held the window 0.25 s with a run training beside it (issue 11): the list
    reads a slice of the folders per event-loop turn (here 8, the least a turn reads) and says so; a
    run ticked meanwhile stays ticked, and Refresh reads them all again while their rows stay."""
    import gui.training.runs as runs_module

    monkeypatch.setattr(runs_module, "READ_SLICE_S", 0.0)
    now = time.time()
    for i in range(20):
        _run(tmp_path, f"r{i:02d}", 0.01, now - 1000 + i)
    panel = RunsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    panel.set_root(tmp_path)
    assert panel.tree.topLevelItemCount() == 8 and panel.where.text() == "Reading 12 more runs…"
    panel.tree.topLevelItem(0).setCheckState(0, panel.tree.topLevelItem(0).checkState(0).Checked)
    ticked = panel.ticked()
    qtbot.waitUntil(lambda: panel.tree.topLevelItemCount() == 20 and panel.reading == 0, timeout=5_000)
    names = [Path(panel.tree.topLevelItem(i).data(0, runs_module._PATH_ROLE)).name for i in range(20)]
    assert names == [f"r{i:02d}" for i in reversed(range(20))]  # newest first, as if read at once
    assert "Reading" not in panel.where.text() and panel.where.toolTip() == f"Runs are kept in {tmp_path}"
    assert panel.ticked() == ticked and len(panel.records) == 20

    rows = [panel.tree.topLevelItem(i) for i in range(20)]
    panel.b_refresh.click()  # every folder read again, a slice a turn: the rows stay meanwhile
    assert panel.reading == 12 and [panel.tree.topLevelItem(i) for i in range(20)] == rows
    qtbot.waitUntil(lambda: panel.reading == 0, timeout=5_000)
    assert [panel.tree.topLevelItem(i) for i in range(20)] == rows and panel.ticked() == ticked
