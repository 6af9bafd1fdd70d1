"""The training engine on tiny models: learning, events, run folder, resume, stop/pause, settings."""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

from core.training import Callbacks, TrainConfig, Trainer, seed_everything
from core.training.config import ConfigError
from core.training.data import synthetic_source
from core.training.events import BatchProgress, EpochMetrics
from core.training.runs import load_checkpoint


def tiny_model(classes: int = 4, channels: int = 1, side: int = 6, hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU(),
                         nn.Dropout(0.1), nn.Linear(hidden, classes))


def tiny_data(train: int = 96, val: int = 32, classes: int = 4, seed: int = 0):
    return synthetic_source((1, 6, 6), classes, train=train, val=val, seed=seed)


def cfg(**kw: object) -> TrainConfig:
    base = {"dataset": "synthetic:1,6,6,4", "epochs": 2, "batch_size": 16, "lr": 0.05, "device": "cpu"}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def run(config: TrainConfig, model: nn.Module | None = None, data=None, **kw):
    seed_everything(config.seed)
    events: dict[str, list] = {k: [] for k in ("run_started", "batch", "epoch_end", "checkpoint_saved", "warning",
                                               "finished", "failed", "paused")}
    callbacks = Callbacks(**{k: v.append for k, v in events.items()})
    trainer = Trainer(model if model is not None else tiny_model(), data if data is not None else tiny_data(),
                      config, callbacks, **kw)
    summary = trainer.run()
    return summary, events, trainer


def test_loss_decreases_and_events() -> None:
    summary, ev, _ = run(cfg(epochs=4, optimizer="adam", lr=0.01))
    assert summary.status == "completed" and summary.epochs_done == 4
    losses = [m.train_loss for m in ev["epoch_end"]]
    assert losses[-1] < losses[0] * 0.7
    assert ev["epoch_end"][-1].val_acc > 0.5
    assert len(ev["run_started"]) == 1 and ev["run_started"][0].steps_per_epoch == 6
    assert ev["finished"] == [summary] and not ev["failed"]
    # batch events carry every step's loss exactly once
    steps = [p.first_step + i for p in ev["batch"] for i in range(len(p.losses))]
    assert steps == list(range(1, 4 * 6 + 1))
    assert all(isinstance(p, BatchProgress) and p.images_per_s > 0 for p in ev["batch"])


def test_metrics_confusion_and_top5() -> None:
    data = synthetic_source((1, 6, 6), 7, train=70, val=21)
    _, ev, _ = run(cfg(epochs=1), model=tiny_model(classes=7), data=data)
    m: EpochMetrics = ev["epoch_end"][0]
    assert len(m.confusion) == 7 and sum(map(sum, m.confusion)) == 21
    assert sum(m.confusion[i][i] for i in range(7)) == round(m.val_acc * 21)
    assert m.val_top5 is not None and m.val_top5 >= m.val_acc
    line = m.json_line()
    assert set(line) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "seconds",
                         "val_top5"}
    assert 0 <= line["train_acc"] <= 1


def test_run_folder_contents(tmp_path: Path) -> None:
    summary, ev, _ = run(cfg(), run_dir=tmp_path / "run", project={"name": "tiny"})
    folder = tmp_path / "run"
    assert (folder / "config.json").is_file() and (folder / "graph.json").is_file()
    assert (folder / "checkpoints" / "last.pt").is_file() and (folder / "checkpoints" / "best.pt").is_file()
    rows = list(csv.DictReader((folder / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[1]["train_loss"]) == pytest.approx(ev["epoch_end"][1].train_loss)
    ckpt = load_checkpoint(folder)
    assert ckpt["epoch"] == 2 and set(ckpt["rng"]) >= {"torch", "python", "numpy", "data"}
    assert str(folder / "checkpoints" / "last.pt") in ev["checkpoint_saved"]
    assert summary.run_dir == str(folder)


def test_resume_after_stop_matches_uninterrupted(tmp_path: Path) -> None:
    config = cfg(epochs=3, seed=7, crop_padding=1, hflip=True)
    _full, ev_full, _ = run(config, run_dir=tmp_path / "full")

    seed_everything(7)
    trainer_holder: list[Trainer] = []

    def stop_mid_epoch_2(p: BatchProgress) -> None:
        if p.epoch == 2 and p.step >= 2:
            trainer_holder[0].stop()

    model = tiny_model()
    trainer = Trainer(model, tiny_data(), config, Callbacks(batch=stop_mid_epoch_2), run_dir=tmp_path / "part")
    trainer_holder.append(trainer)
    stopped = trainer.run()
    assert stopped.status == "stopped" and stopped.epochs_done == 1

    seed_everything(123)  # a different global state: resume must restore everything it needs
    resumed, ev_res, _ = run(config, model=tiny_model(), run_dir=tmp_path / "part", resume_from=tmp_path / "part")
    assert resumed.status == "completed"
    assert ev_res["run_started"][0].start_epoch == 2
    got = [(m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc) for m in ev_res["epoch_end"]]
    want = [(m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc) for m in ev_full["epoch_end"][1:]]
    assert got == want
    rows = list(csv.DictReader((tmp_path / "part" / "metrics.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]


def test_stop_and_pause_act_within_one_batch() -> None:
    holder: list[Trainer] = []
    seen: list[int] = []
    paused: list[bool] = []

    def on_batch(p: BatchProgress) -> None:
        seen.append(p.global_step)
        if p.global_step == 2:
            holder[0].pause()
            threading.Timer(0.05, holder[0].resume).start()
        if p.global_step == 4:
            holder[0].stop()

    config = cfg(epochs=5, batch_size=8)
    trainer = Trainer(tiny_model(), tiny_data(), config, Callbacks(batch=on_batch, paused=paused.append))
    holder.append(trainer)
    import core.training.engine as engine

    old = engine.REPORT_INTERVAL_S
    engine.REPORT_INTERVAL_S = 0.0  # report every step so the test sees each one
    try:
        summary = trainer.run()
    finally:
        engine.REPORT_INTERVAL_S = old
    assert summary.status == "stopped"
    assert seen[-1] == 4  # not a single batch after the stop
    assert paused == [True, False]


def test_frozen_parameters_stay_and_are_not_optimised() -> None:
    model = tiny_model()
    first = model[1]
    for p in first.parameters():
        p.requires_grad_(False)
    before = first.weight.detach().clone()
    _, _, trainer = run(cfg(epochs=1), model=model)
    assert torch.equal(first.weight, before)
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(first.weight) not in optimised and id(model[4].weight) in optimised


def test_all_frozen_fails_plainly() -> None:
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(False)
    summary, ev, _ = run(cfg(epochs=1), model=model)
    assert summary.status == "failed" and "every layer is frozen" in ev["failed"][0]


@pytest.mark.parametrize("settings", [
    {"optimizer": "sgd", "nesterov": True, "schedule": "cosine", "warmup_epochs": 0.5},
    {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "onecycle", "lr": 0.01},
    {"optimizer": "rmsprop", "lr": 0.001, "schedule": "step", "step_size": 1, "loss": "bce_with_logits"},
    {"optimizer": "adagrad", "schedule": "plateau", "loss": "mse", "grad_clip": 1.0},
    {"optimizer": "adam", "lr": 0.01, "loss": "huber", "label_smoothing": 0.1, "early_stopping": 1},
    {"optimizer": "sgd", "loss": "l1", "amp": "bf16", "channels_last": True},
])
def test_settings_train(settings: dict) -> None:
    summary, ev, _ = run(cfg(**settings))
    assert summary.ok, ev["failed"]
    assert all(m.train_loss == m.train_loss for m in ev["epoch_end"])
    if settings.get("amp"):  # CPU: ignored with a note
        assert any("Mixed precision needs a CUDA GPU" in w for w in ev["warning"])


def test_schedule_shapes() -> None:
    from core.training.optim import LRSchedule

    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    cos = LRSchedule(opt, cfg(schedule="cosine", lr=1.0, epochs=4), steps_per_epoch=10)
    assert cos.set_step(1, 0) == pytest.approx(1.0) and cos.set_step(3, 0) == pytest.approx(0.5)
    warm = LRSchedule(opt, cfg(schedule="constant", lr=1.0, warmup_epochs=2), steps_per_epoch=10)
    assert warm.set_step(1, 0) == pytest.approx(0.05) and warm.set_step(2, 9) == pytest.approx(1.0)
    step = LRSchedule(opt, cfg(schedule="step", lr=1.0, epochs=6, gamma=0.1), steps_per_epoch=10)
    assert step.set_step(3, 0) == pytest.approx(0.1)
    one = LRSchedule(opt, cfg(schedule="onecycle", lr=1.0, epochs=10), steps_per_epoch=10)
    assert one.set_step(1, 0) == pytest.approx(0.04) and one.set_step(4, 0) == pytest.approx(1.0)
    plateau = LRSchedule(opt, cfg(schedule="plateau", lr=1.0, plateau_patience=1, gamma=0.5), steps_per_epoch=10)
    for loss in (1.0, 1.0, 1.0):
        plateau.epoch_end(loss)
    assert plateau.set_step(4, 0) == pytest.approx(0.5)


class TwoHeads(nn.Module):
    """A main and an auxiliary classifier, like GoogLeNet's."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(36, 16), nn.ReLU())
        self.main = nn.Linear(16, 4)
        self.aux = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.main(h), self.aux(h)


def test_auxiliary_outputs_weighted() -> None:
    from core.training.optim import build_loss

    total, single = build_loss(cfg(aux_weights=[0.3]), 4)
    a, b, y = torch.randn(5, 4), torch.randn(5, 4), torch.randint(0, 4, (5,))
    assert total((a, b), y) == pytest.approx(float(single(a, y) + 0.3 * single(b, y)))
    summary, ev, _ = run(cfg(epochs=1), model=TwoHeads())
    assert summary.ok and 0 <= ev["epoch_end"][0].val_acc <= 1


def test_output_width_mismatch_is_plain() -> None:
    summary, ev, _ = run(cfg(epochs=1), model=tiny_model(classes=3))
    assert summary.status == "failed"
    assert "3 values" in ev["failed"][0] and "4 classes" in ev["failed"][0]


def test_input_shape_mismatch_is_plain() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(4))
    summary, ev, _ = run(cfg(epochs=1), model=model)
    assert summary.status == "failed" and "cannot take the dataset's 1×6×6 images" in ev["failed"][0]


def test_config_round_trip_and_errors() -> None:
    c = TrainConfig.from_dict({"epochs": 3, "optimizer": "ADAM", "schedule": "one-cycle", "future_key": 1,
                               "amp": True})
    assert (c.epochs, c.optimizer, c.schedule, c.amp) == (3, "adam", "onecycle", "auto")
    assert c.to_dict(only_changed=True) == {"epochs": 3, "optimizer": "adam", "schedule": "onecycle",
                                            "amp": "auto", "future_key": 1}
    assert c.updated(lr=0.1, epochs=None).lr == 0.1
    for bad, words in [({"optimizer": "lion"}, "training.optimizer"), ({"lr": -1}, "training.lr"),
                       ({"batch_size": 0}, "training.batch_size"), ({"epochs": "5"}, "training.epochs")]:
        with pytest.raises(ConfigError, match=words):
            TrainConfig.from_dict(bad)


def test_resume_with_other_network_fails_plainly(tmp_path: Path) -> None:
    run(cfg(epochs=1), run_dir=tmp_path / "r")
    summary, ev, _ = run(cfg(epochs=2), model=tiny_model(hidden=8), resume_from=tmp_path / "r")
    assert summary.status == "failed" and "do not fit this network" in ev["failed"][0]
    summary, ev, _ = run(cfg(epochs=2), resume_from=tmp_path / "nothing")
    assert summary.status == "failed" and "no checkpoint" in ev["failed"][0]


def test_devices_listed_and_bad_device_plain() -> None:
    from core.training import available_devices

    devices = available_devices()
    assert devices[-1]["device"] == "cpu" and devices[-1]["memory"] > 0
    if not torch.cuda.is_available():
        summary, ev, _ = run(cfg(device="cuda:3"))
        assert summary.status == "failed" and "no CUDA GPU" in ev["failed"][0]

