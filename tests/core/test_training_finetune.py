"""Fine-tuning in the engine and the session: parameter groups by learning-rate multiplier, frozen
BatchNorm kept in eval mode, pretrained weights loaded before the first batch (frozen tensors in the
checkpoint equal the loaded ones), and the run's evaluation written at its end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from core.compiler import compile_graph
from core.finetune import freeze, replace_head, set_lr_mults
from core.graph import Graph
from core.project import Project
from core.training import Callbacks, ConfigError, TrainConfig, TrainingSession
from core.training.optim import LRSchedule, build_optimizer, frozen_batchnorms, param_groups
from core.training.runs import load_checkpoint
from templates import build_template


def small_net() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 6, "kernel_size": 3, "padding": 1})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("ReLU", "relu")
    g.add_node("Conv2d", "conv2", {"out_channels": 6, "kernel_size": 3, "padding": 1})
    g.add_node("BatchNorm2d", "bn2")
    g.add_node("AdaptiveAvgPool2d", "pool", {"output_size": 1})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 4})
    g.add_node("Output", "output")
    names = list(g.nodes)
    for src, dst in itertools.pairwise(names):
        g.add_edge(src, dst)
    g.add_group("stem", "Stem", ["conv", "bn", "relu"])
    return g


def config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"dataset": "synthetic:3,8,8,4", "train_size": 64, "val_size": 16, "epochs": 1,
                            "batch_size": 16, "device": "cpu", "lr": 0.1}
    base.update(kw)
    return TrainConfig(**base)


def test_param_groups_follow_lr_mult_and_leave_frozen_out() -> None:
    g = small_net()
    set_lr_mults(g, {"fc": 10, "stem": 0.5})
    freeze(g, ["conv2"])
    model = compile_graph(g, seed=0)
    groups = param_groups(model, g)
    named = {id(p): n for n, p in model.named_parameters()}
    by_mult = {grp["lr_mult"]: sorted(named[id(p)] for p in grp["params"]) for grp in groups}
    assert by_mult == {1.0: ["bn2.bias", "bn2.weight"], 0.5: ["bn.bias", "bn.weight", "conv.bias", "conv.weight"],
                       10.0: ["fc.bias", "fc.weight"]}
    cfg = TrainConfig(lr=0.1, schedule="cosine", epochs=4)
    opt = build_optimizer(model, cfg, g)
    assert sorted(grp["lr"] for grp in opt.param_groups) == pytest.approx([0.05, 0.1, 1.0])
    sched = LRSchedule(opt, cfg, steps_per_epoch=10)
    base = sched.set_step(3, 0)  # mid-run: the cosine has decayed, the ratios stay
    assert base < 0.1
    assert sorted(grp["lr"] / base for grp in opt.param_groups) == pytest.approx([0.5, 1.0, 10.0])
    # without a graph (a plain nn.Module): one group at the base rate
    assert [grp["lr_mult"] for grp in param_groups(model)] == [1.0]


def test_frozen_batchnorms_are_those_of_frozen_nodes() -> None:
    g = small_net()
    freeze(g, ["stem"])
    model = compile_graph(g, seed=0)
    assert list(frozen_batchnorms(model, g)) == [model.get_submodule("bn")]
    assert list(frozen_batchnorms(model, small_net())) == []


def _train(g: Graph, tmp_path: Path, name: str, **kw: Any) -> tuple[Any, TrainingSession, dict[str, list[Any]]]:
    events: dict[str, list[Any]] = {"weights": [], "warning": [], "finished": []}
    session_kw = {k: kw.pop(k) for k in ("weights_spec", "weights_arch", "evaluate") if k in kw}
    session = TrainingSession(Project(graph=g, name=name), config(**kw),
                              Callbacks(**{k: v.append for k, v in events.items()}),
                              run_dir=tmp_path / name, **session_kw)
    summary = session.run()
    return summary, session, events


def test_frozen_parts_and_their_batchnorm_statistics_do_not_change(tmp_path: Path) -> None:
    g = small_net()
    freeze(g, ["stem"])
    initial = compile_graph(g.copy(), seed=0).state_dict()
    summary, _, _ = _train(g, tmp_path, "frozen", evaluate=False)
    assert summary.status == "completed", summary.message
    trained = load_checkpoint(tmp_path / "frozen")["model"]
    for key in ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                "bn.num_batches_tracked"):
        assert torch.equal(trained[key], initial[key]), key
    for key in ("conv2.weight", "bn2.running_mean", "fc.weight"):
        assert not torch.equal(trained[key], initial[key]), key

    # with the option off, a frozen BatchNorm's running statistics follow the data (its weights stay)
    summary, _, _ = _train(g, tmp_path, "drift", evaluate=False, frozen_bn_eval=False)
    assert summary.status == "completed", summary.message
    drifted = load_checkpoint(tmp_path / "drift")["model"]
    assert torch.equal(drifted["bn.weight"], initial["bn.weight"])
    assert not torch.equal(drifted["bn.running_mean"], initial["bn.running_mean"])


def test_frozen_bn_eval_is_a_declared_setting_saved_only_when_off() -> None:
    from core.training.options import FROZEN_BN_EVAL, all_params

    assert FROZEN_BN_EVAL in all_params() and TrainConfig().frozen_bn_eval is True
    assert "frozen_bn_eval" not in TrainConfig().to_dict(only_changed=True)
    assert TrainConfig.from_dict({"frozen_bn_eval": False}).to_dict(only_changed=True) == {"frozen_bn_eval": False}
    with pytest.raises(ConfigError, match=r"training\.frozen_bn_eval: must be true or false"):
        TrainConfig.from_dict({"frozen_bn_eval": "yes"})


def test_pretrained_resnet_with_new_head_and_frozen_layer1(tmp_path: Path) -> None:
    """The fine-tuning recipe end to end on a ResNet-18 (CIFAR stem, 32×32): weights from a file, a
    new 4-class head, layer1 frozen: after an epoch the checkpoint's layer1 tensors (weights and
    BatchNorm statistics) are exactly the file's, the head was reinitialized, the rest trained."""
    source = build_template("resnet18_cifar")
    pretrained = compile_graph(source.graph, seed=123).state_dict()
    weights_file = tmp_path / "pretrained.pt"
    torch.save(pretrained, weights_file)

    g = source.graph
    replace_head(g, 4)
    freeze(g, ["layer1"])
    summary, session, events = _train(g, tmp_path, "ft", dataset="synthetic:3,32,32,4", train_size=32, val_size=8,
                                      batch_size=16, lr=0.01, weights_spec=str(weights_file))
    assert summary.status == "completed", summary.message
    report = session.weights_report
    assert events["weights"] == [report]
    assert sorted(report.reinitialized) == ["fc.bias", "fc.weight"] and not report.missing
    assert report.to_dict()["kept"] == len(pretrained) - 2

    trained = load_checkpoint(tmp_path / "ft")["model"]
    layer1 = [k for k in trained if k.startswith("layer1.")]
    assert any(k.endswith("running_mean") for k in layer1) and len(layer1) > 20
    for key in layer1:
        assert torch.equal(trained[key], pretrained[key]), key
    assert not torch.equal(trained["layer2.0.conv1.weight"], pretrained["layer2.0.conv1.weight"])
    assert trained["fc.weight"].shape == (4, 512)

    run = tmp_path / "ft"
    config_json = json.loads((run / "config.json").read_text())
    assert config_json["weights"] == report.to_dict()
    graph_json = json.loads((run / "graph.json").read_text())
    assert graph_json["weights"]["source"] == report.source and len(graph_json["weights"]["sha256"]) == 64
    frozen = {n["id"] for n in graph_json["graph"]["nodes"] if n.get("frozen")}
    assert "layer1.0.conv1" in frozen and "layer2.0.conv1" not in frozen
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert len(evaluation["confusion"]) == 4 and events["warning"] == []


def test_bad_weights_end_the_run_with_one_line(tmp_path: Path) -> None:
    failed: list[str] = []
    missing = tmp_path / "nothing.pt"
    session = TrainingSession(Project(graph=small_net(), name="w"), config(), Callbacks(failed=failed.append),
                              run_dir=tmp_path / "w", weights_spec=str(missing))
    summary = session.run()
    assert summary.status == "failed" and failed == [summary.message]
    assert "nothing.pt" in summary.message and "\n" not in summary.message
    assert not summary.message.startswith("Cannot start training")


def test_run_end_evaluation_and_its_failure_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    events: dict[str, list[Any]] = {"warning": []}
    session = TrainingSession(Project(graph=small_net(), name="e"), config(),
                              Callbacks(warning=events["warning"].append, finished=lambda s: order.append(
                                  "finished" if (tmp_path / "e" / "evaluation.json").is_file() else "no file")),
                              run_dir=tmp_path / "e")
    assert session.run().status == "completed"
    assert order == ["finished"]  # written before the front-ends hear the run ended
    assert session.evaluation is not None and len(session.evaluation.classes) == 4

    import core.training.evaluate as evaluate

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(evaluate, "evaluate_run", broken)
    warnings: list[str] = []
    session = TrainingSession(Project(graph=small_net(), name="f"), config(), Callbacks(warning=warnings.append),
                              run_dir=tmp_path / "f")
    summary = session.run()
    assert summary.status == "completed"
    assert warnings == ["The run trained, but its evaluation failed: disk on fire"]
    assert not (tmp_path / "f" / "evaluation.json").exists()
