"""The Runs tab on hostile or abandoned run folders (issue 11, item 18): a foreign metrics.csv with a
word where a number goes, and runs whose process was killed, which show as interrupted (resumable)
instead of running forever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.training.runs import RunFolder, mark_running
from gui.training.runs import RunsPanel

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

CONFIG = {"dataset": "shapes", "lr": 0.05, "epochs": 5}
GRAPH = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
                   {"id": "output", "type": "Output"}], "edges": [{"from": "input", "to": "output"}]}


def _run(root: Path, name: str) -> RunFolder:
    folder = RunFolder(root / name)
    folder.create()
    folder.write_json("config.json", {"training": CONFIG, "dataset": {"name": "shapes"}})
    folder.write_json("graph.json", {"graph": GRAPH})
    folder.write_metrics([{"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_loss": 2.1, "val_acc": 0.25}])
    torch.save({"format": "netcanvas-checkpoint"}, folder.checkpoint_path())
    return folder


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has this pid now (reuse this soon is vanishingly unlikely)


def _panel(qtbot, root: Path) -> RunsPanel:
    panel = RunsPanel()
    panel.set_root(root)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_killed_runs_show_as_interrupted_and_resumable(qtbot, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    no_run_json = _run(root, "a-20261206-100000")  # killed before the engine wrote run.json
    dead_owner = _run(root, "b-20261206-100001")
    dead_owner.write_json("run.json", {"status": "running", "pid": _dead_pid(), "host": socket.gethostname()})
    live = _run(root, "c-20261206-100002")
    mark_running(live)  # this process is writing it
    elsewhere = _run(root, "d-20261206-100003")  # another machine's run in a shared folder: cannot look
    elsewhere.write_json("run.json", {"status": "running", "pid": os.getpid(), "host": "not-" + socket.gethostname()})
    done = _run(root, "e-20261206-100004")
    done.write_json("run.json", {"status": "completed"})
    panel = _panel(qtbot, root)
    status = {f.path.name: panel.item_for(f.path).text(1) for f in (no_run_json, dead_owner, live, elsewhere, done)}
    assert status == {"a-20261206-100000": "interrupted", "b-20261206-100001": "interrupted",
                      "c-20261206-100002": "running", "d-20261206-100003": "running",
                      "e-20261206-100004": "completed"}
    panel.tree.setCurrentItem(panel.item_for(dead_owner.path))
    assert panel.b_resume.isEnabled()


def test_a_foreign_metrics_file_with_words_does_not_break_the_list(qtbot, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    good = _run(root, "a-20261206-100000")
    foreign = _run(root, "b-20261206-100001")
    (foreign.path / "metrics.csv").write_text("epoch,train_loss,val_acc,extra\n1,oops,0.5,1,2\n", encoding="utf-8")
    undecodable = _run(root, "c-20261206-100002")
    (undecodable.path / "metrics.csv").write_bytes(b"epoch,val_acc\n1,\xff\xfe\n")
    panel = _panel(qtbot, root)
    assert panel.item_for(good.path).text(3) == "25.0%"
    assert panel.item_for(foreign.path) is not None and panel.item_for(foreign.path).text(3) == "–"
    assert panel.item_for(undecodable.path) is not None


def test_a_rescan_reads_only_the_runs_whose_files_changed(tmp_path, monkeypatch):
    """The Runs tab rescans at every run's start and end: a folder whose own time is unchanged (every
    file of a run is renamed into place, which changes it) is not read again, one stat each (a run
    still running has its status asked again); a folder whose metrics grew is read again, as is one
    changed too recently to trust a coarse clock; Refresh (``fresh``) reads them all."""
    import gui.training.run_records as records_module

    for i in range(3):
        _run(tmp_path, f"run{i}")
    live = _run(tmp_path, "live")
    mark_running(live)  # this process: alive
    (tmp_path / "notes").mkdir()  # not a run: no config.json
    long_ago = time.time() - 60
    for folder in tmp_path.iterdir():
        os.utime(folder, (long_ago, long_ago))
    first = {r.name: r for r in records_module.scan_runs(tmp_path)}
    assert first["live"].status == "running" and "notes" not in first

    reads: list[str] = []
    real = records_module.RunRecord.read

    def counting(path):  # type: ignore[no-untyped-def]
        reads.append(path.name)
        return real(path)

    asked: list[str] = []
    real_status = records_module.run_status

    def status(folder):  # type: ignore[no-untyped-def]
        asked.append(folder.path.name)
        return real_status(folder)

    monkeypatch.setattr(records_module.RunRecord, "read", staticmethod(counting))
    monkeypatch.setattr(records_module, "run_status", status)
    again = {r.name: r for r in records_module.scan_runs(tmp_path)}
    assert reads == [] and asked == ["live"]
    assert again.keys() == first.keys() and again["run1"].metrics == first["run1"].metrics

    RunFolder(tmp_path / "run1").write_metrics([{"epoch": 1, "val_acc": 0.25}, {"epoch": 2, "val_acc": 0.5}])
    third = {r.name: r for r in records_module.scan_runs(tmp_path)}
    assert reads == ["run1"] and third["run1"].best_val_acc == 0.5
    records_module.scan_runs(tmp_path)
    assert reads == ["run1", "run1"]  # changed in the last 2 s: read again (a coarse clock may hide a change)

    (tmp_path / "run2" / "metrics.csv").write_text("epoch,val_acc\n1,0.75\n", encoding="utf-8")  # edited in place
    os.utime(tmp_path / "run2", (long_ago, long_ago))
    assert {r.name: r for r in records_module.scan_runs(tmp_path)}["run2"].best_val_acc != 0.75  # not seen ...
    fresh = {r.name: r for r in records_module.scan_runs(tmp_path, fresh=True)}
    assert fresh["run2"].best_val_acc == 0.75  # ... until Refresh


def test_odd_config_sections_and_deleted_folders_leave_the_scan_whole(tmp_path) -> None:
    """A config.json whose sections are not objects still lists its run (with what could be read), and a
    run folder deleted since the last scan leaves the list and the scan's cache."""
    import shutil

    import gui.training.run_records as records_module

    odd = _run(tmp_path, "odd")
    odd.write_json("config.json", {"training": ["lr", 0.1], "dataset": "shapes"})
    gone = _run(tmp_path, "gone")
    found = {r.name: r for r in records_module.scan_runs(tmp_path)}
    assert found["odd"].config == {} and found["odd"].dataset == {} and found["odd"].best_val_acc == 0.25
    assert str(gone.path) in records_module._records
    shutil.rmtree(gone.path)
    assert [r.name for r in records_module.scan_runs(tmp_path)] == ["odd"]
    assert str(gone.path) not in records_module._records
