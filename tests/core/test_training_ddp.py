"""DistributedDataParallel: a 2-process Gloo run on the CPU (through torchrun, as a user runs it)
matches the single-process run with the same global batch to within float rounding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import ROOT

PROJECT = {
    "format": "netcanvas-project", "version": 1, "name": "tiny-mlp",
    "graph": {
        "nodes": [{"id": "input", "type": "Input", "params": {"shape": [1, 6, 6]}},
                  {"id": "flat", "type": "Flatten"},
                  {"id": "fc1", "type": "Linear", "params": {"out_features": 12}},
                  {"id": "act", "type": "ReLU"},
                  {"id": "fc2", "type": "Linear", "params": {"out_features": 4}},
                  {"id": "output", "type": "Output"}],
        "edges": [{"from": "input", "to": "flat"}, {"from": "flat", "to": "fc1"}, {"from": "fc1", "to": "act"},
                  {"from": "act", "to": "fc2"}, {"from": "fc2", "to": "output"}],
    },
    "training": {"dataset": "synthetic:1,6,6,4", "train_size": 64, "val_size": 16, "epochs": 2, "batch_size": 16,
                 "optimizer": "sgd", "lr": 0.1, "device": "cpu", "hflip": True},
}


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def train_single_and_ddp(project_json: dict, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> tuple[list[dict], list[dict]]:
    """Train ``project_json`` in one process (``tmp_path/single``) and with 2-process Gloo through
    torchrun, as a user runs it (``tmp_path/ddp``); each run's per-epoch JSON lines."""
    project = tmp_path / "project.json"
    project.write_text(json.dumps(project_json))
    assert main(["train", str(project), "--json", "--out", str(tmp_path / "single")]) == 0
    single = _lines(capsys.readouterr().out)

    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "main.py", "train",
         str(project), "--json", "--out", str(tmp_path / "ddp")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    return single, _lines(out.stdout)


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    single, ddp = train_single_and_ddp(PROJECT, tmp_path, capsys)
    assert [m["epoch"] for m in ddp] == [1, 2]  # rank 0 alone prints
    for a, b in zip(single, ddp, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4, abs=1e-5)
        assert b["train_acc"] == pytest.approx(a["train_acc"], abs=1e-6)
    config = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert config["world_size"] == 2
    assert (tmp_path / "ddp" / "checkpoints" / "last.pt").is_file()
