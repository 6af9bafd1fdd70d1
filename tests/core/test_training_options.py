"""Every training option is declared once (core.training.options) and read from there by the config
validation, the CLI's argparse and ``-h``, the optimizer/schedule/loss builders and the memory
estimate: each declaration is complete, and a new optimizer shows up everywhere with no other edit."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from core.analysis import analyze
from core.cli import build_parser, main
from core.cli.train import overrides
from core.graph import Graph
from core.training.config import ConfigError, TrainConfig
from core.training.optim import LRSchedule, build_loss, build_optimizer
from core.training.options import (
    AMP_MODES,
    DATASETS,
    LOSSES,
    LR,
    OPTIMIZERS,
    SCHEDULES,
    WEIGHT_DECAY,
    OptimizerOption,
    all_params,
    memory_choices,
    memory_key,
    state_tensors,
)

REGISTRIES: dict[str, Any] = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES, "amp": AMP_MODES,
              "dataset": DATASETS}
FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_every_option_has_a_name_label_and_doc(kind: str) -> None:
    registry = REGISTRIES[kind]
    assert registry
    for name, option in registry.items():
        assert option.name == name and name == name.strip() and name
        assert option.label.strip(), f"{kind} {name}: no label"
        assert len(option.doc) > 8 and not option.doc.endswith("."), f"{kind} {name}: doc {option.doc!r}"
        for param in getattr(option, "params", ()):
            assert param in all_params(), f"{kind} {name} reads {param.key}, which is not declared"


def test_every_setting_is_a_config_field_with_a_range_its_default_satisfies() -> None:
    default = TrainConfig()
    for p in all_params():
        assert p.key in FIELDS, p.key
        assert p.label.strip() and p.doc.strip(), p.key
        value = getattr(default, p.key)
        assert p.problem(value) is None, f"{p.key}: the default {value!r} is outside its own range"
        if p.kind in (int, float):
            assert p.valid.minimum is not None, f"{p.key}: no lower bound"
            assert p.problem(p.valid.minimum - 1) is not None
            if p.form is not None:  # the form's spin box never offers a value validation refuses
                lo, hi = p.form
                # as the spin box holds them: rounded to its decimals
                lo, hi = (round(lo, p.decimals), round(hi, p.decimals)) if p.kind is float else (lo, hi)
                assert lo <= hi and p.valid.contains(lo) and p.valid.contains(hi), p.key
                assert p.kind is int or p.decimals > 0, p.key
        if p.flag is not None:
            assert p.flag.startswith("--"), p.key


def test_validation_messages_name_the_key_and_the_range() -> None:
    cases: dict[str, tuple[Any, str]] = {"lr": (0, "training.lr: must be a positive number, got 0"),
             "momentum": (-1, "training.momentum: must be a number ≥ 0, got -1"),
             "label_smoothing": (1.0, "training.label_smoothing: must be below 1, got 1.0"),
             "epochs": (0, "training.epochs: must be a positive integer, got 0"),
             "step_size": (1.5, "training.step_size: must be an integer ≥ 0, got 1.5"),
             "betas": ((0.9, 1.0), "training.betas: must be two numbers in [0, 1), got (0.9, 1.0)")}
    for key, (value, message) in cases.items():
        with pytest.raises(ConfigError) as err:
            TrainConfig.from_dict({key: value})
        assert str(err.value) == message
    with pytest.raises(ConfigError, match="use one of sgd, adam, adamw, rmsprop, adagrad"):
        TrainConfig(optimizer="lamb")
    assert TrainConfig(schedule="One-Cycle").schedule == "onecycle"  # a declared alias
    assert TrainConfig.from_dict({"schedule": "reduce_on_plateau", "amp": True}).to_dict(only_changed=True) == {
        "schedule": "plateau", "amp": "auto"}


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("momentum", [0.9, 0.0])
def test_declared_state_tensors_are_what_torch_allocates(name: str, momentum: float) -> None:
    model = _model()
    opt = build_optimizer(model, TrainConfig(optimizer=name, momentum=momentum, lr=0.01))
    model(torch.randn(5, 4)).square().mean().backward()
    opt.step()
    per_param = {sum(1 for k, t in opt.state[p].items() if k != "step" and torch.is_tensor(t)
                     and t.shape == p.shape) for p in model.parameters()}
    assert per_param == {state_tensors(memory_key(name, momentum))}


def test_every_schedule_and_loss_runs() -> None:
    model = _model()
    for schedule in SCHEDULES:
        cfg = TrainConfig(schedule=schedule, epochs=4, warmup_epochs=1)
        sched = LRSchedule(build_optimizer(model, cfg), cfg, steps_per_epoch=10)
        lrs = [sched.set_step(epoch, step) for epoch in range(1, 5) for step in range(10)]
        assert all(0 < lr <= cfg.lr for lr in lrs), schedule
        assert lrs[0] < lrs[9], f"{schedule}: no warm-up"
    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    for loss in LOSSES:
        total, _single = build_loss(TrainConfig(loss=loss), 3)
        value = total(logits, labels)
        assert value.ndim == 0 and torch.isfinite(value) and value > 0, loss


def _tiny_graph() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4]})
    g.add_node("Linear", "fc", {"out_features": 3})
    g.add_node("Output", "output")
    g.add_edge("input", "fc")
    g.add_edge("fc", "output")
    return g


def _lion(params: list, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.5, weight_decay=cfg.weight_decay)


LION = OptimizerOption("lion", "Lion", "sign of an interpolated momentum (a test's optimizer)",
                       (LR, WEIGHT_DECAY), 1, _lion)


def test_a_new_optimizer_is_one_declaration(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(OPTIMIZERS, "lion", LION)
    # config validation
    assert TrainConfig(optimizer="Lion").optimizer == "lion"
    # argparse: a choice, with its doc in -h, and an override
    args = build_parser().parse_args(["train", "template:lenet5", "--optimizer", "lion", "--lr", "0.2"])
    assert overrides(args) == {"optimizer": "lion", "lr": 0.2}
    assert main(["train", "-h"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "{sgd,adam,adamw,rmsprop,adagrad,lion}" in help_text
    assert "lion: sign of an interpolated momentum (a test's optimizer)" in help_text
    # the builder
    opt = build_optimizer(_model(), TrainConfig(optimizer="lion", lr=0.3))
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.5
    # the memory estimate: its state tensors, under its label
    assert ("lion", "Lion") in memory_choices()
    est = analyze(_tiny_graph()).memory(8, "lion")
    assert est.optimizer_state == est.grads == 15 * 4


def test_sgd_without_momentum_has_its_own_memory_key() -> None:
    assert memory_key("sgd", 0.0) == "sgd_nomomentum" and memory_key("sgd", 0.9) == "sgd"
    assert memory_key("adam", 0.0) == "adam"
    keys = [key for key, _label in memory_choices()]
    assert keys[:2] == ["sgd", "sgd_nomomentum"] and set(OPTIMIZERS) <= set(keys)
    assert state_tensors("nonesuch") is None
