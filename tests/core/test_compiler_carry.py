"""carry_weights: after an edit, unchanged nodes keep their trained state, changed ones start fresh."""

from __future__ import annotations

import torch
from torch import nn

from core.compiler import carry_weights, compile_graph
from core.graph import Graph
from core.project import load_project
from tests.conftest import ROOT

WITH_STATE = ["conv1", "conv2", "fc1", "fc2", "fc3"]


def lenet() -> Graph:
    return load_project(ROOT / "resources" / "demo_lenet.json").graph


def trained(g: Graph) -> nn.Module:
    """A compiled model whose weights differ from any fresh init (as after training)."""
    m = compile_graph(g, seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    return m


def insert_between(g: Graph, src: str, dst: str, type: str, nid: str, params: dict[str, object]) -> None:
    edge = next(e for e in g.in_edges(dst) if e.src == src)
    g.remove_edge(edge)
    g.add_node(type, nid, params)
    g.add_edge(src, nid)
    g.add_edge(nid, dst, port=edge.port)


def state_of(m: nn.Module, nid: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in m.state_dict().items() if k.startswith(nid + ".")}


def assert_kept(old: nn.Module, new: nn.Module, nids: list[str]) -> None:
    for nid in nids:
        o, n = state_of(old, nid), state_of(new, nid)
        assert o.keys() == n.keys() and all(torch.equal(o[k], n[k]) for k in o), nid


def assert_fresh(old: nn.Module, new: nn.Module, nid: str) -> None:
    o, n = state_of(old, nid), state_of(new, nid)
    assert not any(k in o and o[k].shape == v.shape and torch.equal(o[k], v) for k, v in n.items()), nid


def test_changing_the_head_width_reinitializes_only_the_head() -> None:
    g = lenet()
    old = trained(g)
    g.set_param("fc3", "out_features", 5)
    new = compile_graph(g, seed=1)
    report = carry_weights(old, new)
    assert report.kept == ["conv1", "conv2", "fc1", "fc2"]
    assert report.reinitialized == ["fc3"]
    assert report.removed == []
    assert_kept(old, new, report.kept)
    assert new.fc3.weight.shape == (5, 84)
    assert "re-initialized fc3" in report.summary()


def test_inserting_a_layer_keeps_the_layers_around_it() -> None:
    g = lenet()
    old = trained(g)
    insert_between(g, "relu1", "pool1", "Conv2d", "extra", {"out_channels": 6, "kernel_size": 3, "padding": 1})
    new = compile_graph(g, seed=1)
    report = carry_weights(old, new)
    assert report.reinitialized == ["extra"]
    assert report.kept == WITH_STATE  # conv2's input is still 6×14×14
    assert_kept(old, new, WITH_STATE)


def test_inserting_a_layer_that_changes_channels_reinitializes_the_consumer() -> None:
    g = lenet()
    old = trained(g)
    insert_between(g, "relu1", "pool1", "Conv2d", "extra", {"out_channels": 8, "kernel_size": 1})
    report = carry_weights(old, compile_graph(g, seed=1))
    assert sorted(report.reinitialized) == ["conv2", "extra"]
    assert report.kept == ["conv1", "fc1", "fc2", "fc3"]


def test_changing_a_kernel_keeps_the_layers_after_it_whose_channels_are_unchanged() -> None:
    g = lenet()
    old = trained(g)
    g.set_param("conv1", "kernel_size", 3)
    new = compile_graph(g, seed=1)
    report = carry_weights(old, new, old_graph=lenet(), new_graph=g)
    # conv2 now sees 6×15×15 instead of 6×14×14: the same 6 channels, its filters still apply: kept.
    # fc1 still gets 16·5·5 = 400 features: kept.
    assert report.reinitialized == ["conv1"]
    assert report.kept == ["conv2", "fc1", "fc2", "fc3"]
    assert_fresh(old, new, "conv1")
    assert_kept(old, new, report.kept)


def test_a_new_input_resolution_keeps_every_convolution_and_batchnorm() -> None:
    """Fine-tuning at another image size: pretrained feature extractors stay pretrained."""
    from templates import build_template

    g = build_template("resnet18").graph
    old = compile_graph(g, seed=0)
    small = g.copy()
    small.set_param("input", "shape", [3, 160, 160])
    new = compile_graph(small, seed=1)
    report = carry_weights(old, new, old_graph=g, new_graph=small)
    assert report.reinitialized == []  # global pooling before fc: even the head's input is unchanged
    assert len(report.kept) == 41
    assert_kept(old, new, report.kept)


def test_buffers_frozen_flags_and_removed_nodes() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 4, 4]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 1})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("Conv2d", "head", {"out_channels": 2, "kernel_size": 1})
    g.add_node("Output", "output")
    for a, b in [("input", "conv"), ("conv", "bn"), ("bn", "head"), ("head", "output")]:
        g.add_edge(a, b)
    old = compile_graph(g, seed=0)
    old(torch.randn(8, 3, 4, 4))  # running statistics move away from their initial values
    g.set_frozen("conv", True)
    g.remove_node("head")
    g.add_node("Linear", "fc", {"out_features": 3})
    g.add_node("Flatten", "flat")
    g.add_edge("bn", "flat")
    g.add_edge("flat", "fc")
    g.add_edge("fc", "output")
    new = compile_graph(g, seed=1)
    report = carry_weights(old, new)
    assert report.kept == ["conv", "bn"] and report.reinitialized == ["fc"] and report.removed == ["head"]
    assert torch.equal(new.bn.running_mean, old.bn.running_mean)
    assert int(new.bn.num_batches_tracked) == 1
    assert not new.conv.weight.requires_grad  # the new model's flags win


def test_plain_modules_fall_back_to_tensor_shapes() -> None:
    old = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    new = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 5))
    report = carry_weights(old, new)
    assert report.kept == ["0"] and report.reinitialized == ["1"]
    assert torch.equal(new[0].weight, old[0].weight)
