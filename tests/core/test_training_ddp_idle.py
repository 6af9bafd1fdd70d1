"""DistributedDataParallel with an idle layer (issue 12): a Linear that reaches no Output stays in
the compiled model with its weights but never runs, so it never gets a gradient. A 2-process Gloo
run on the CPU (through torchrun, as a user runs it) trains such a graph to the same losses as
the single-process run, and the idle layer's weights come out unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.core.test_training_ddp import train_single_and_ddp

PROJECT = {
    "format": "netcanvas-project", "version": 1, "name": "tiny-mlp-idle",
    "graph": {
        "nodes": [{"id": "input", "type": "Input", "params": {"shape": [1, 6, 6]}},
                  {"id": "flat", "type": "Flatten"},
                  {"id": "fc1", "type": "Linear", "params": {"out_features": 12}},
                  {"id": "act", "type": "ReLU"},
                  {"id": "fc2", "type": "Linear", "params": {"out_features": 4}},
                  {"id": "aux", "type": "Linear", "params": {"out_features": 3}},
                  {"id": "output", "type": "Output"}],
        "edges": [{"from": "input", "to": "flat"}, {"from": "flat", "to": "fc1"}, {"from": "fc1", "to": "act"},
                  {"from": "act", "to": "fc2"}, {"from": "fc2", "to": "output"}, {"from": "act", "to": "aux"}],
    },
    "training": {"dataset": "synthetic:1,6,6,4", "train_size": 64, "val_size": 16, "epochs": 2, "batch_size": 16,
                 "optimizer": "sgd", "lr": 0.1, "device": "cpu"},
}


def _aux(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    model = state.get("model", state) if isinstance(state, dict) else state
    return {k: v for k, v in model.items() if k.startswith("aux.")}


@pytest.mark.slow
def test_two_process_gloo_trains_a_graph_with_an_idle_layer(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    single, ddp = train_single_and_ddp(PROJECT, tmp_path, capsys)
    assert [m["epoch"] for m in ddp] == [1, 2]
    for a, b in zip(single, ddp, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4, abs=1e-5)
    single_aux, ddp_aux = _aux(tmp_path / "single"), _aux(tmp_path / "ddp")
    assert sorted(ddp_aux) == ["aux.bias", "aux.weight"]
    for k, v in ddp_aux.items():  # never ran, never stepped: both runs keep the seeded initial weights
        assert torch.equal(v, single_aux[k])
