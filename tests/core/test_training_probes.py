"""Probes: feature maps and statistics of chosen nodes, hooks attached only during the probe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import core.training.engine as engine
from core.training import Callbacks, TrainConfig, Trainer
from core.training.data import synthetic_source
from core.training.probes import Prober


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 40, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(40, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_capture_downsamples_detaches_and_removes_hooks() -> None:
    model = Net().train()
    prober = Prober(max_channels=16, max_size=32)
    prober.set_nodes(["relu", "fc", "missing"])
    x = torch.randn(2, 3, 70, 50)
    images = torch.zeros(2, 3, 70, 50, dtype=torch.uint8)
    data = prober.capture(model, x, images, (0, 1), epoch=1, step=3, global_step=3)
    assert model.training and _hooks(model) == 0
    assert data.activations["relu"].shape == (2, 16, 32, 32)  # 40 channels capped, 70×50 pooled down
    assert data.channels["relu"] == 40
    assert data.activations["fc"].shape == (2, 4)
    assert "missing" not in data.activations
    assert not data.activations["relu"].requires_grad and data.activations["relu"].device.type == "cpu"
    stats = data.stats["relu"]
    assert 0.2 < stats.zero_fraction < 0.8 and stats.std > 0
    assert stats.grad_norm is None  # ReLU has no parameters
    assert data.probabilities.shape == (2, 4)
    assert torch.allclose(data.probabilities.sum(1), torch.ones(2))


def test_grad_norm_and_fx_function_nodes() -> None:
    model = Net()
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    traced = torch.fx.symbolic_trace(model)
    prober = Prober()
    prober.set_nodes(["conv", "flatten"])  # "flatten" is a call_method node in the traced graph
    data = prober.capture(traced, torch.randn(1, 3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8), (0,), 1, 1, 1)
    assert data.activations["flatten"].shape == (1, 40)
    expected = torch.stack([p.grad.norm() for p in traced.get_submodule("conv").parameters()]).norm()
    assert data.stats["conv"].grad_norm is not None
    assert abs(data.stats["conv"].grad_norm - float(expected)) < 1e-5


def test_engine_emits_probes_only_when_nodes_are_chosen() -> None:
    data = synthetic_source((3, 8, 8), 4, train=64, val=16)
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", probe_interval=0.0, probe_samples=2)
    probes: list = []
    old = engine.REPORT_INTERVAL_S
    engine.REPORT_INTERVAL_S = 0.0
    try:
        model = Net()
        Trainer(model, data, cfg, Callbacks(probe=probes.append)).run()
        assert probes == []
        trainer = Trainer(model, data, cfg, Callbacks(probe=probes.append))
        trainer.set_probes(["conv"])
        trainer.run()
    finally:
        engine.REPORT_INTERVAL_S = old
    assert len(probes) == 8  # one per reported step with a zero interval
    assert probes[0].activations["conv"].shape == (2, 32, 8, 8)
    assert probes[0].images.shape == (2, 3, 8, 8) and len(probes[0].labels) == 2
    assert _hooks(model) == 0


def test_probes_slower_than_the_steps_take_at_most_a_tenth_of_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that takes longer than the interval (a big model's maps on a slow CPU) waits nine
    of its own durations before the next, instead of running after every step."""
    import time

    from core.training.probes import Prober

    capture = Prober.capture

    def slow_capture(self: Prober, *args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return capture(self, *args, **kwargs)

    monkeypatch.setattr(Prober, "capture", slow_capture)
    monkeypatch.setattr(engine, "REPORT_INTERVAL_S", 0.0)
    data = synthetic_source((3, 8, 8), 4, train=64, val=16)
    cfg = TrainConfig(epochs=1, batch_size=8, device="cpu", probe_interval=0.001, probe_samples=2)
    probes: list = []
    trainer = Trainer(Net(), data, cfg, Callbacks(probe=probes.append))
    trainer.set_probes(["conv"])
    trainer.run()
    # 8 steps of a few ms: the first probe (0.2 s) holds the next back for 1.8 s, past the epoch's end
    assert len(probes) == 1
