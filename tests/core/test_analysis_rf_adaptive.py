"""Receptive field of adaptive pooling whose output size does not divide its input (issue 12):
torch's windows start at ⌊i·n/o⌋ and end at ⌈(i+1)·n/o⌉, so the field's stride is n/o and its
size the widest window. Checked against a gradient measurement through the compiled model: the
input pixels whose gradient is non-zero are exactly the ones an output position sees."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
import torch

from core.analysis import ReceptiveField, analyze
from core.compiler import compile_graph
from core.graph import Graph
from core.project import loads_project


def project(nodes: list[dict[str, Any]], shape: list[int]) -> Graph:
    """A sequential project file: Input(shape) → nodes → Output, loaded through core.project."""
    full = [{"id": "input", "type": "Input", "params": {"shape": shape}}, *nodes, {"id": "output", "type": "Output"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in itertools.pairwise(full)]
    doc = {"format": "netcanvas-project", "version": 1, "name": "rf",
           "graph": {"nodes": full, "edges": edges}}
    return loads_project(json.dumps(doc)).graph


def measured_windows(g: Graph, shape: list[int]) -> list[tuple[int, int]]:
    """Per output row i (at the middle column): the first and last input row whose gradient is not zero.

    Weights are made positive and the input positive, so no ReLU is off and no gradient cancels:
    a pixel has a non-zero gradient exactly when it is inside the output position's field.
    """
    model = compile_graph(g, seed=0).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.01)
    x = torch.rand(1, *shape, dtype=torch.float64) + 0.5
    x.requires_grad_(True)
    out = model(x)
    rows, cols = out.shape[-2], out.shape[-1]
    windows = []
    for i in range(rows):
        (grad,) = torch.autograd.grad(out[0, 0, i, cols // 2], x, retain_graph=True)
        hit = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten().tolist()
        windows.append((hit[0], hit[-1]))
    return windows


def predicted_window(rf: ReceptiveField, i: int) -> tuple[int, int]:
    """The field's window of output row i, rounded outward: [⌊i·jump − pad⌋, ⌈i·jump − pad + size⌉ − 1]."""
    start = i * rf.stride[0] - rf.padding[0]
    assert rf.size is not None
    return math.floor(start), math.ceil(start + rf.size[0]) - 1


@pytest.mark.parametrize(("n", "o"), [(9, 6), (5, 3), (10, 3), (7, 7), (12, 4), (2, 3), (7, 5)])
def test_adaptive_pool_field_is_the_widest_window_with_stride_n_over_o(n: int, o: int) -> None:
    g = project([{"id": "pool", "type": "AdaptiveAvgPool2d", "params": {"output_size": [o, o]}}], [1, n, n])
    a = analyze(g)
    assert a.ok
    rf = a.nodes["pool"].rf
    assert rf is not None and rf.size is not None
    windows = measured_windows(g, [1, n, n])
    widths = [b - a_ + 1 for a_, b in windows]
    assert rf.size == (max(widths),) * 2
    assert rf.stride == (n / o,) * 2 and rf.padding == (0, 0)
    for i, (lo, hi) in enumerate(windows):  # torch's window i starts where the field says, and fits in it
        plo, phi = predicted_window(rf, i)
        assert plo == lo and hi <= phi


def test_adaptive_pool_reports_integers_when_the_output_divides_the_input() -> None:
    g = project([{"id": "pool", "type": "AdaptiveMaxPool2d", "params": {"output_size": 4}}], [1, 12, 8])
    assert analyze(g).nodes["pool"].to_dict()["receptive_field"] == {"size": [3, 2], "stride": [3, 2],
                                                                     "padding": [0, 0]}


def alexnet_320() -> tuple[Graph, list[int]]:
    """AlexNet's features and avgpool at 320 px (few channels: the field does not depend on them);
    its max pools are average pools here, which have the same windows but a gradient on every tap."""
    spec: list[tuple[str, dict[str, Any]]] = [
        ("Conv2d", {"out_channels": 2, "kernel_size": 11, "stride": 4, "padding": 2}), ("ReLU", {}),
        ("AvgPool2d", {"kernel_size": 3, "stride": 2}),
        ("Conv2d", {"out_channels": 2, "kernel_size": 5, "padding": 2}), ("ReLU", {}),
        ("AvgPool2d", {"kernel_size": 3, "stride": 2}),
        ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("Conv2d", {"out_channels": 2, "kernel_size": 3, "padding": 1}), ("ReLU", {}),
        ("AvgPool2d", {"kernel_size": 3, "stride": 2}),
        ("AdaptiveAvgPool2d", {"output_size": 6}),
    ]
    nodes = [{"id": f"features.{i}", "type": t, "params": p} for i, (t, p) in enumerate(spec)]
    nodes[-1]["id"] = "avgpool"
    return project(nodes, [1, 320, 320]), [1, 320, 320]


def test_alexnet_at_320_px_matches_a_gradient_measurement() -> None:
    g, shape = alexnet_320()
    a = analyze(g)
    assert a.ok and a.nodes["features.12"].output_shape == (2, 9, 9) and a.nodes["avgpool"].output_shape == (2, 6, 6)
    before = a.nodes["features.12"].rf
    rf = a.nodes["avgpool"].rf
    assert before == ReceptiveField((195, 195), (32, 32), (66, 66))
    # 9 → 6: every window is 2 wide, one step is 1.5 positions of 32 px: 195 + 32 = 227, stride 48
    assert rf == ReceptiveField((227, 227), (48, 48), (66, 66))
    windows = measured_windows(g, shape)
    # the windows are not evenly spaced: row i's starts at ⌊1.5·i⌋·32 − 66, up to one step of the
    # pooling's input (32 px) before i·48 − 66, and none is wider than the field
    step = before.stride[0]
    for i, (lo, hi) in enumerate(windows):
        start = i * rf.stride[0] - rf.padding[0]
        assert start - step < lo <= start or lo == 0, (i, lo, start)
        assert hi - lo + 1 <= rf.size[0]  # type: ignore[index]
    # the size is exact, not merely large enough: an inner position uses all of it
    inner = [hi - lo + 1 for lo, hi in windows[1:-1]]
    assert max(inner) == rf.size[0]  # type: ignore[index]
