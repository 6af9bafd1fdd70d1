"""A training run killed with SIGKILL resumes from its last checkpoint and finishes (issue 11).

``main.py train`` runs in a child process on a tiny synthetic dataset with many epochs; once the
first checkpoint exists the test kills it (no chance to clean up: run.json still says running),
then ``main.py train --resume RUN`` continues in process from that checkpoint's epoch to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.cli import main
from core.project import load_project
from core.training.runs import INTERRUPTED, RunFolder, load_checkpoint, run_status
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

TINY = {
    "format": "netcanvas-project", "version": 1, "name": "Tiny",
    "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}},
                        {"id": "flatten", "type": "Flatten"},
                        {"id": "fc", "type": "Linear", "params": {"out_features": 4}},
                        {"id": "output", "type": "Output"}],
              "edges": [{"from": "input", "to": "flatten"}, {"from": "flatten", "to": "fc"},
                        {"from": "fc", "to": "output"}]},
}
OPTIONS = ["--dataset", "synthetic:1,8,8,4", "--train-size", "64", "--val-size", "16", "--batch-size", "16",
           "--device", "cpu", "--workers", "0", "--seed", "3"]
WAIT_S = 120  # for the child's first checkpoint (torch's import is slow on a loaded machine); never reached normally


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "tiny.json"
    source.write_text(json.dumps(TINY))
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "main.py", "train", str(source), *OPTIONS, "--epochs", "100000",
                              "--json", "--quiet", "--out", str(run)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + WAIT_S
    try:
        while not last.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, f"the run ended before it was killed: {child.communicate()[1]}"
        assert last.exists(), "no checkpoint appeared"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()
    assert child.returncode == -signal.SIGKILL

    folder = RunFolder(run)
    assert run_status(folder) == INTERRUPTED  # run.json still says running, but its process is gone
    killed_at = int(load_checkpoint(run)["epoch"])
    assert killed_at >= 1
    total = killed_at + 2

    assert main(["train", "--resume", str(run), "--epochs", str(total), "--json"]) == 0
    captured = capsys.readouterr()
    epochs = [json.loads(line)["epoch"] for line in captured.out.splitlines() if line.strip()]
    assert epochs == [killed_at + 1, total]  # continued after the checkpoint, not from the start
    assert "Traceback" not in captured.err

    # the run folder reads back whole: finished, every epoch once, its graph and checkpoint load
    assert run_status(folder) == "completed"
    assert [int(row["epoch"] or 0) for row in folder.read_metrics()] == list(range(1, total + 1))
    assert int(load_checkpoint(run)["epoch"]) == total
    assert folder.read_json("config.json")["training"]["epochs"] == total
    assert list(load_project(run / "graph.json").graph.nodes) == ["input", "flatten", "fc", "output"]
