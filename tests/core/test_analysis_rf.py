"""Receptive fields (DESIGN.md §5, Araujo et al., Distill 2019): the paper's published values for
VGG-16 and AlexNet, built as project files, and the rules for stacks, dilation and merges."""

from __future__ import annotations

import itertools
import json
from typing import Any

from core.analysis import GLOBAL_RF, ReceptiveField, Severity, analyze
from core.graph import Graph
from core.project import loads_project

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                              512, 512, 512, "M"]


def project(nodes: list[dict[str, Any]], shape: list[int]) -> Graph:
    """A sequential project file: Input(shape) → nodes → Output, loaded through core.project."""
    full = [{"id": "input", "type": "Input", "params": {"shape": shape}}, *nodes, {"id": "output", "type": "Output"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(full)]
    doc = {"format": "netcanvas-project", "version": 1, "name": "rf",
           "graph": {"nodes": full, "edges": edges}}
    return loads_project(json.dumps(doc)).graph


def vgg16_features() -> Graph:
    nodes: list[dict[str, Any]] = []
    for v in VGG16_CFG:  # torchvision's make_layers: module paths features.0, features.1, …
        i = len(nodes)
        if v == "M":
            nodes.append({"id": f"features.{i}", "type": "MaxPool2d", "params": {"kernel_size": 2, "stride": 2}})
        else:
            nodes.append({"id": f"features.{i}", "type": "Conv2d",
                          "params": {"out_channels": v, "kernel_size": 3, "padding": 1}})
            nodes.append({"id": f"features.{i + 1}", "type": "ReLU"})
    return project(nodes, [3, 224, 224])


def alexnet_features() -> Graph:
    spec: list[tuple[str, dict[str, Any]]] = [
        ("Conv2d", {"out_channels": 64, "kernel_size": 11, "stride": 4, "padding": 2}), ("ReLU", {}),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}),
        ("Conv2d", {"out_channels": 192, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}),
        ("Conv2d", {"out_channels": 384, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("Conv2d", {"out_channels": 256, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("Conv2d", {"out_channels": 256, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("MaxPool2d", {"kernel_size": 3, "stride": 2}),
    ]
    return project([{"id": f"features.{i}", "type": t, "params": p} for i, (t, p) in enumerate(spec)],
                   [3, 224, 224])


def rf_of(g: Graph, node: str) -> ReceptiveField:
    a = analyze(g)
    assert a.ok, [d.message for d in a.errors]
    rf = a.nodes[node].rf
    assert rf is not None
    return rf


def test_vgg16_features_with_pool5() -> None:
    g = vgg16_features()
    a = analyze(g)
    assert a.ok and a.nodes["features.30"].output_shape == (512, 7, 7)
    assert a.nodes["features.30"].rf == ReceptiveField((212, 212), (32, 32), (90, 90))
    assert a.nodes["features.30"].to_dict()["receptive_field"] == {"size": [212, 212], "stride": [32, 32],
                                                                   "padding": [90, 90]}
    assert a.total_params == 14_714_688  # torchvision vgg16().features


def test_alexnet_features() -> None:
    g = alexnet_features()
    a = analyze(g)
    assert a.ok and a.nodes["features.12"].output_shape == (256, 6, 6)
    assert a.nodes["features.12"].rf == ReceptiveField((195, 195), (32, 32), (66, 66))
    assert a.total_params == 2_469_696  # torchvision alexnet().features


def test_three_stacked_3x3_convs_see_7x7() -> None:
    g = project([{"id": f"c{i}", "type": "Conv2d", "params": {"out_channels": 8, "padding": 1}} for i in range(3)],
                [3, 16, 16])
    assert rf_of(g, "c0") == ReceptiveField((3, 3), (1, 1), (1, 1))
    assert rf_of(g, "c2") == ReceptiveField((7, 7), (1, 1), (3, 3))


def test_dilated_conv_spans_its_dilated_kernel() -> None:
    g = project([{"id": "d", "type": "Conv2d", "params": {"out_channels": 8, "dilation": 2, "padding": 2}},
                 {"id": "c", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": [3, 1], "stride": 2}}],
                [3, 16, 16])
    assert rf_of(g, "d") == ReceptiveField((5, 5), (1, 1), (2, 2))
    assert rf_of(g, "c") == ReceptiveField((7, 5), (2, 2), (2, 2))  # asymmetric kernel: per axis


def test_strided_and_pooled_jumps_multiply() -> None:
    g = project([{"id": "c", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 7, "stride": 2,
                                                          "padding": 3}},
                 {"id": "p", "type": "MaxPool2d", "params": {"kernel_size": 3, "stride": 2, "padding": 1}},
                 {"id": "c2", "type": "Conv2d", "params": {"out_channels": 8, "padding": 1}}], [3, 64, 64])
    # ResNet's stem: 7 → 7 + 2·2 = 11 → 11 + 2·4 = 19; padding 3 → 3 + 1·2 = 5 → 5 + 1·4 = 9
    assert rf_of(g, "p") == ReceptiveField((11, 11), (4, 4), (5, 5))
    assert rf_of(g, "c2") == ReceptiveField((19, 19), (4, 4), (9, 9))


def test_global_layers_make_the_field_global() -> None:
    g = project([{"id": "c", "type": "Conv2d", "params": {"out_channels": 8}},
                 {"id": "gap", "type": "AdaptiveAvgPool2d", "params": {"output_size": 1}},
                 {"id": "f", "type": "Flatten"}, {"id": "fc", "type": "Linear", "params": {"out_features": 2}}],
                [3, 8, 8])
    a = analyze(g)
    assert a.nodes["gap"].rf == GLOBAL_RF and a.nodes["fc"].rf == GLOBAL_RF
    assert a.nodes["fc"].to_dict()["receptive_field"] == {"size": None, "stride": None, "padding": None}
    assert [d.node for d in a.diagnostics if d.severity is Severity.INFO] == ["gap"]  # 3×3 < 8×8


def graph(edges: list[tuple[str, str]], nodes: dict[str, tuple[str, dict[str, Any]]], shape: list[int]) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": shape})
    for nid, (typ, params) in nodes.items():
        g.add_node(typ, nid, params)
    for src, dst in edges:
        g.add_edge(src, dst)
    return g


def test_se_multiply_keeps_the_spatial_field() -> None:
    g = graph([("input", "conv"), ("conv", "gap"), ("gap", "fc1"), ("fc1", "gate"), ("conv", "mul"),
               ("gate", "mul"), ("mul", "output")],
              {"conv": ("Conv2d", {"out_channels": 16, "padding": 1}),
               "gap": ("AdaptiveAvgPool2d", {"output_size": 1}),
               "fc1": ("Conv2d", {"out_channels": 16, "kernel_size": 1}), "gate": ("Sigmoid", {}),
               "mul": ("Multiply", {}), "output": ("Output", {})}, [3, 16, 16])
    a = analyze(g)
    assert a.ok and a.nodes["mul"].output_shape == (16, 16, 16)
    assert a.nodes["gate"].rf == GLOBAL_RF
    assert a.nodes["mul"].rf == ReceptiveField((3, 3), (1, 1), (1, 1))


def test_add_takes_the_largest_size_and_padding() -> None:
    g = graph([("input", "c1"), ("c1", "c2"), ("input", "add"), ("c2", "add"), ("add", "output")],
              {"c1": ("Conv2d", {"out_channels": 3, "padding": 1}),
               "c2": ("Conv2d", {"out_channels": 3, "kernel_size": 5, "padding": 2}),
               "add": ("Add", {}), "output": ("Output", {})}, [3, 16, 16])
    a = analyze(g)
    assert a.nodes["add"].rf == ReceptiveField((7, 7), (1, 1), (3, 3))
    assert not a.diagnostics


def test_merge_of_different_jumps_warns_and_keeps_the_largest() -> None:
    g = graph([("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")],
              {"a": ("Conv2d", {"out_channels": 4, "stride": 2, "padding": 1}),
               "b": ("Conv2d", {"out_channels": 4, "kernel_size": 17}),
               "cat": ("Concat", {}), "output": ("Output", {})}, [3, 32, 32])
    a = analyze(g)
    assert a.ok and a.nodes["cat"].output_shape == (8, 16, 16)
    assert a.nodes["cat"].rf == ReceptiveField((17, 17), (2, 2), (1, 1))
    (w,) = [d for d in a.diagnostics if d.severity is Severity.WARNING]
    assert w.node == "cat" and "different effective strides (1×1 and 2×2)" in w.message


def test_merge_of_a_global_and_a_local_input_is_global_except_multiply() -> None:
    nodes: dict[str, tuple[str, dict[str, Any]]] = {
        "c": ("Conv2d", {"out_channels": 4, "padding": 1}), "g": ("AdaptiveAvgPool2d", {"output_size": 1}),
        "up": ("Upsample", {"size": [8, 8]}), "add": ("Add", {}), "output": ("Output", {})}
    g = graph([("input", "c"), ("c", "g"), ("g", "up"), ("c", "add"), ("up", "add"), ("add", "output")],
              nodes, [3, 8, 8])
    a = analyze(g)
    assert a.ok and a.nodes["add"].rf == GLOBAL_RF


def test_transposed_conv_divides_the_jump() -> None:
    g = project([{"id": "down", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 2, "stride": 2}},
                 {"id": "up", "type": "ConvTranspose2d", "params": {"out_channels": 4, "kernel_size": 2, "stride": 2}}],
                [3, 8, 8])
    rf = rf_of(g, "up")
    assert rf.stride == (1, 1) and rf.size == (2, 2)
