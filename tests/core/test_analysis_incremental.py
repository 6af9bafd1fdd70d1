"""Incremental analysis: after any sequence of edits, ``Analyzer.run()`` gives exactly the Analysis
a fresh full pass gives, and an edit that changes no shape recomputes one node."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.analysis as analysis_module
from core.analysis import Analysis, Analyzer, analyze
from core.graph import Edge, Graph


def resnet_like() -> Graph:
    """Stem, two residual blocks (one with a projection shortcut), an SE-style gate, a head."""
    g = Graph()

    def add(typ: str, nid: str, params: dict[str, Any] | None = None, *srcs: str) -> None:
        g.add_node(typ, nid, params or {})
        for s in srcs:
            g.add_edge(s, nid)

    add("Input", "input", {"shape": [3, 16, 16]})
    add("Conv2d", "stem", {"out_channels": 8, "padding": 1, "bias": False}, "input")
    add("BatchNorm2d", "stem_bn", {}, "stem")
    add("ReLU", "stem_relu", {}, "stem_bn")
    prev = "stem_relu"
    for b, (ch, stride) in enumerate([(8, 1), (16, 2)]):
        p = f"layer{b}"
        add("Conv2d", f"{p}.conv1", {"out_channels": ch, "padding": 1, "stride": stride}, prev)
        add("BatchNorm2d", f"{p}.bn1", {}, f"{p}.conv1")
        add("ReLU", f"{p}.relu1", {}, f"{p}.bn1")
        add("Conv2d", f"{p}.conv2", {"out_channels": ch, "padding": 1}, f"{p}.relu1")
        add("BatchNorm2d", f"{p}.bn2", {}, f"{p}.conv2")
        short = prev
        if stride != 1:
            add("Conv2d", f"{p}.down", {"out_channels": ch, "kernel_size": 1, "stride": stride}, prev)
            short = f"{p}.down"
        add("Add", f"{p}.add", {}, f"{p}.bn2", short)
        add("ReLU", f"{p}.relu2", {}, f"{p}.add")
        prev = f"{p}.relu2"
    add("AdaptiveAvgPool2d", "se_pool", {"output_size": 1}, prev)
    add("Sigmoid", "se_gate", {}, "se_pool")
    add("Multiply", "se", {}, prev, "se_gate")
    add("AdaptiveAvgPool2d", "pool", {"output_size": 1}, "se")
    add("Flatten", "flatten", {}, "pool")
    add("Dropout", "dropout", {"p": 0.5}, "flatten")
    add("Linear", "fc", {"out_features": 10}, "dropout")
    add("Output", "output", {}, "fc")
    return g


VALUES: dict[str, dict[str, list[Any]]] = {
    "Input": {"shape": [[3, 16, 16], [3, 8, 8], [1, 16, 16], [3, 2, 2], [3, 17, 15], [16]]},
    "Conv2d": {"out_channels": [8, 16, 4], "kernel_size": [1, 3, 5, [3, 1]], "padding": [0, 1, 2, None],
               "stride": [1, 2, None], "bias": [True, False], "groups": [1, 2, 3], "dilation": [1, 2],
               "in_channels": [None, 8, 16]},
    "BatchNorm2d": {"num_features": [None, 8, 16], "eps": [1e-5, 1e-3], "affine": [True, False]},
    "Dropout": {"p": [0.1, 0.5, 2.0]},
    "Linear": {"out_features": [10, 5], "in_features": [None, 16, 8, 400], "bias": [True, False]},
    "AdaptiveAvgPool2d": {"output_size": [1, 2]},
    "Concat": {}, "Add": {}, "ReLU": {}, "Sigmoid": {}, "Multiply": {}, "Flatten": {}, "Output": {},
}


@st.composite
def edit_scripts(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    g = resnet_like()
    ids = list(g.nodes)
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 12))):
        nid = draw(st.sampled_from(ids))
        kind = draw(st.sampled_from(["param", "param", "param", "frozen", "edge"]))
        table = VALUES[g.nodes[nid].type]
        if kind == "param" and table:
            name = draw(st.sampled_from(sorted(table)))
            steps.append(("param", nid, name, draw(st.sampled_from(table[name]))))
        elif kind == "frozen":
            steps.append(("frozen", nid, draw(st.booleans())))
        else:
            steps.append(("edge", nid))
    return steps


def apply(g: Graph, step: tuple[Any, ...]) -> None:
    if step[0] == "param":
        g.set_param(step[1], step[2], step[3])
    elif step[0] == "frozen":
        g.set_frozen(step[1], step[2])
    else:  # toggle the node's first input edge (a structural edit: full pass)
        edges = g.in_edges(step[1])
        if edges:
            g.remove_edge(edges[0])
        elif step[1] != "input":
            g.insert_edge(Edge("input", step[1], 0))


def fresh(g: Graph) -> Analysis:
    """A full analysis with nothing cached: a copied graph (no node caches) and empty memos."""
    analysis_module._resolve_memo.clear()
    analysis_module._infer_memo.clear()
    return analyze(g.copy())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edit_scripts())
def test_incremental_equals_full_after_random_edits(steps: list[tuple[Any, ...]]) -> None:
    g = resnet_like()
    inc = Analyzer(g)
    inc.run()
    lagging = Analyzer(g)  # a second analyzer that runs only every other edit
    lagging.run()
    for i, step in enumerate(steps):
        apply(g, step)
        got = inc.run()
        assert got == fresh(g), step
        if i % 2:
            assert lagging.run() == got
    assert lagging.run() == inc.run()


def test_an_edit_that_changes_no_shape_recomputes_one_node() -> None:
    g = resnet_like()
    a = Analyzer(g)
    assert a.run().ok and a.recomputed == len(g)
    for node, name, value in [("layer1.conv2", "bias", False), ("dropout", "p", 0.2), ("stem_bn", "eps", 1e-3),
                              ("fc", "bias", False)]:
        g.set_param(node, name, value)
        result = a.run()
        assert a.recomputed == 1, (node, name)
        assert result == analyze(g)
    g.set_frozen("fc", True)
    assert a.run().trainable_params == a.run().total_params - 160 and a.recomputed == 0  # second run: no work
    a.run()
    before = a.run()
    assert a.run() is before  # nothing changed: the same snapshot


def test_a_shape_change_propagates_only_while_shapes_change() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    g.set_param("fc", "out_features", 5)  # the head's last layer: fc and output change, nothing else
    a.run()
    assert a.recomputed == 2
    g.set_param("layer1.conv2", "out_channels", 12)  # bn2 follows, the Add then fails: unknown after it
    result = a.run()
    assert a.recomputed == 12 and not result.ok  # conv2, bn2, add and the 9 nodes that become unknown
    assert [d.node for d in result.errors] == ["layer1.add"]
    g.set_param("layer1.conv2", "out_channels", 16)
    assert a.run() == analyze(g) and a.run().ok
    g.set_param("stem", "padding", 2)  # 18×18 from here on: everything downstream changes
    a.run()
    assert a.recomputed > 20


def test_a_change_of_input_size_reaches_the_head_note_behind_an_adaptive_pool() -> None:
    g = Graph()
    for typ, nid, params in [("Input", "input", {"shape": [3, 32, 32]}),
                             ("AdaptiveAvgPool2d", "ap", {"output_size": 4}),
                             ("Conv2d", "c", {"out_channels": 4, "kernel_size": 1}), ("Flatten", "f", {}),
                             ("Output", "o", {})]:
        g.add_node(typ, nid, params)
    for s, d in [("input", "ap"), ("ap", "c"), ("c", "f"), ("f", "o")]:
        g.add_edge(s, d)
    a = Analyzer(g)
    note = [d.message for d in a.run().diagnostics]
    g.set_param("input", "shape", [3, 64, 64])  # the pool's output stays 3×4×4, the note must follow
    assert a.run() == analyze(g) and [d.message for d in a.run().diagnostics] != note


def test_a_fix_that_reads_an_upstream_conv_follows_its_edits() -> None:
    g = Graph()
    for typ, nid, params in [("Input", "input", {"shape": [3, 32, 32]}),
                             ("Conv2d", "a", {"out_channels": 3, "padding": 1}),
                             ("Conv2d", "b", {"out_channels": 3}), ("Add", "add", {}), ("Output", "o", {})]:
        g.add_node(typ, nid, params)
    for s, d in [("input", "a"), ("input", "b"), ("a", "add"), ("b", "add"), ("add", "o")]:
        g.add_edge(s, d)
    a = Analyzer(g)
    assert a.run().errors[0].fix.label == "padding=1 keeps 32×32"  # type: ignore[union-attr]
    g.set_params("b", {"out_channels": 3, "kernel_size": 5, "padding": 1})  # still 30×30: same shape
    assert a.run().errors[0].fix.label == "padding=2 keeps 32×32"  # type: ignore[union-attr]
    assert a.run() == analyze(g)


def test_analyzer_survives_the_edit_log_being_trimmed() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    for i in range(5000):
        g.set_param("dropout", "p", 0.1 + (i % 7) / 10)
    assert a.run() == analyze(g) and a.recomputed == len(g)  # too far behind: a full pass


def test_cycle_edits_stay_consistent() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    g.insert_edge(Edge("layer0.relu2", "layer0.add", 2))
    g.insert_edge(Edge("layer0.relu2", "layer0.conv1", 1))  # conv1 now also has a second input
    result = a.run()
    assert any("cycle" in d.message for d in result.errors)
    g.set_param("layer0.conv1", "padding", 5)  # on the cycle: stays unknown, no new errors
    assert a.run() == analyze(g) and a.recomputed == 0
