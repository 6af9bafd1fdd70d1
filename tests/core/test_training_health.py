"""Health checks: NaN loss and (simulated) CUDA out-of-memory end the run with plain messages and
leave the process able to train again; divergence, starving data and skipped files are warnings."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from core.training import Callbacks, TrainConfig, Trainer
from core.training.data import synthetic_source
from core.training.health import divergence_warning, oom_message, starvation_warning, suggest_batch_size


def _cfg(**kw: object) -> TrainConfig:
    base = {"epochs": 1, "batch_size": 16, "lr": 0.05, "device": "cpu"}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _data():
    return synthetic_source((1, 4, 4), 3, train=48, val=16)


class NaNAfter(nn.Module):
    """Works for the shape check, then returns NaN from the given training step on."""

    def __init__(self, bad_from: int = 2) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)
        self.calls = 0
        self.bad_from = bad_from

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        if self.training:
            self.calls += 1
            if self.calls >= self.bad_from:
                return out * float("nan")
        return out


class OOMOnForward(nn.Module):
    """Raises CUDA's out-of-memory error on every training forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.fc(x.flatten(1))


class _Estimate:
    """Stands in for core.analysis.Analysis: 1 GiB per sample, 10 MiB of weights."""

    input_shape = None
    output_shapes = ()

    def memory(self, batch: int, optimizer: str) -> object:
        return type("M", (), {"total": (10 << 20) + batch * (1 << 30)})()


def _run(model: nn.Module, config: TrainConfig, **kw: object) -> tuple[object, dict[str, list]]:
    events: dict[str, list] = {"failed": [], "warning": [], "finished": []}
    cb = Callbacks(failed=events["failed"].append, warning=events["warning"].append,
                   finished=events["finished"].append)
    summary = Trainer(model, _data(), config, cb, **kw).run()  # type: ignore[arg-type]
    return summary, events


def test_nan_loss_stops_with_advice_and_process_stays_usable() -> None:
    summary, ev = _run(NaNAfter(bad_from=2), _cfg(lr=0.5))
    assert summary.status == "failed"  # type: ignore[attr-defined]
    msg = ev["failed"][0]
    assert "loss became NaN at epoch 1, step 2" in msg
    assert "lower the learning rate (now 0.5; try 0.05)" in msg and "normalization" in msg
    assert "Traceback" not in msg and ev["finished"][0] is summary
    again, ev2 = _run(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), _cfg())
    assert again.status == "completed" and not ev2["failed"]  # type: ignore[attr-defined]


def test_simulated_oom_message_suggests_a_batch_that_fits(tmp_path: Path) -> None:
    summary, ev = _run(OOMOnForward(), _cfg(batch_size=16), analysis=_Estimate(), run_dir=tmp_path / "r")
    assert summary.status == "failed"  # type: ignore[attr-defined]
    msg = ev["failed"][0]
    assert msg.startswith("Training stopped: out of memory on CPU at batch size 16")
    total = __import__("core.training.health", fromlist=["x"]).device_memory(torch.device("cpu"))
    fits = suggest_batch_size(16, lambda b: (10 << 20) + b * (1 << 30), total)
    assert fits < 16 and f"batch size {fits} should fit" in msg
    assert "The memory has been freed" in msg
    assert (tmp_path / "r" / "run.json").is_file()
    again, _ = _run(nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), _cfg())
    assert again.status == "completed"  # type: ignore[attr-defined]


def test_oom_advice_numbers() -> None:
    gib = 1 << 30
    estimate = lambda b: b * gib // 4  # noqa: E731 - 256 MiB per sample
    assert suggest_batch_size(256, estimate, 16 * gib) == 32  # 32 × 0.25 = 8 GiB ≤ 0.85 × 16
    assert suggest_batch_size(256, None, None) == 128
    assert suggest_batch_size(3, estimate, 16 * gib) == 2
    msg = oom_message(256, torch.device("cpu"), "CPU", estimate, "off")
    assert "batch size 256" in msg and "64.0 GiB at batch size 256" in msg


def test_warnings_text() -> None:
    assert divergence_warning(3, 7.0, 2.0) is not None and "too high" in divergence_warning(3, 7.0, 2.0)  # type: ignore[operator]
    assert divergence_warning(3, 5.0, 2.0) is None
    assert starvation_warning(2, 0.1, True, None) is None
    assert "workers (now 1)" in starvation_warning(2, 0.6, False, 1)  # type: ignore[operator]


def test_divergence_is_reported_during_a_run() -> None:
    class Grows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 3)
            self.scale = nn.Parameter(torch.ones(()), requires_grad=False)
            self.epoch_calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training:
                self.epoch_calls += 1
            return self.fc(x.flatten(1)) * (1 + self.epoch_calls) ** 2

    _, ev = _run(Grows(), _cfg(epochs=3, lr=1e-6))
    assert any("diverging" in w for w in ev["warning"])
