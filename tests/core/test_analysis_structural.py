"""Analysis after structural edits (issue 11; DESIGN.md §10): the id-clash screen finds exactly what
checking every id against every layer finds, and an analyzer that lives through node and edge edits
gives exactly the Analysis a fresh full pass gives."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analysis import Analyzer, analyze
from core.diagnostics import Diagnostic, Severity
from core.graph import Edge, Graph, GraphError
from core.module_names import clash_fix, id_clash, id_clashes, layer_names
from tests.core.test_analysis_incremental import fresh, resnet_like

# Segments that clash everywhere (training), at the top only (code), under a layer (weight,
# kernel_size of a Conv2d), never (conv, a digit).
SEGMENTS = ["training", "code", "weight", "kernel_size", "out_features", "conv", "fc", "x", "0", "1"]
TYPES = ["Conv2d", "Linear", "ReLU", "Identity", "Add"]


def every_id_checked(graph: Graph) -> list[Diagnostic]:
    """The plain algorithm the screen must agree with: every id against the layer names of all nodes."""
    layers = layer_names(graph)
    taken = set(graph.nodes) | set(graph.groups)
    out = []
    for nid in graph.nodes:
        problem = id_clash(nid, layers)
        if problem is not None:
            fix = clash_fix(nid, layers, taken)
            taken.add(fix.value)
            out.append(Diagnostic(Severity.ERROR, nid, f"{nid}: {problem} — rename it, e.g. to {fix.value}", fix))
    return out


@st.composite
def clashing_graphs(draw: st.DrawFn) -> Graph:
    g = Graph()
    for _ in range(draw(st.integers(1, 14))):
        first = draw(st.sampled_from([s for s in SEGMENTS if not s.isdigit()]))
        rest = draw(st.lists(st.sampled_from(SEGMENTS), max_size=3))
        nid = ".".join([first, *rest])
        if nid in g.nodes:
            continue
        params: dict[str, Any] = draw(st.sampled_from([{}, {"out_features": 4}, {"kernel_size": 3}]))
        g.add_node(draw(st.sampled_from(TYPES)), nid, params)
    if draw(st.booleans()):
        g.add_group("training_", "a block named like a fix")
    return g


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clashing_graphs())
def test_the_id_clash_screen_finds_what_checking_every_id_finds(g: Graph) -> None:
    assert id_clashes(g) == every_id_checked(g)


def test_the_clash_screen_looks_only_at_the_ids_it_is_given() -> None:
    g = Graph()
    g.add_node("Conv2d", "conv", {"out_channels": 4})
    g.add_node("ReLU", "conv.weight")
    g.add_node("ReLU", "training")
    assert [d.node for d in id_clashes(g)] == ["conv.weight", "training"]
    assert [d.node for d in id_clashes(g, among=["training", "gone"])] == ["training"]
    g.add_node("ReLU", "training_")  # the fix's first choice is taken now: it numbers the name
    assert [d.fix.value for d in id_clashes(g, among=["training"])] == ["training_2"]  # type: ignore[union-attr]


# -- an analyzer that follows structural edits ------------------------------------------------------

NEW_TYPES: list[tuple[str, dict[str, Any]]] = [
    ("ReLU", {}), ("Conv2d", {"out_channels": 8, "padding": 1}), ("Conv2d", {"out_channels": 16, "kernel_size": 1}),
    ("BatchNorm2d", {}), ("Add", {}), ("Concat", {}), ("Flatten", {}), ("Linear", {"out_features": 10}),
    ("AdaptiveAvgPool2d", {"output_size": 1}), ("Output", {}), ("Identity", {}), ("Input", {"shape": [3, 16, 16]}),
    ("Conv2d", {"out_channels": 8, "padding": 1, "bias": True}),
]


@st.composite
def structural_scripts(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["add", "add", "remove", "cut", "cut", "join", "join", "param", "rename",
                                     "batch", "loop", "undo"]))
        steps.append((kind, draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000)),
                      draw(st.integers(0, len(NEW_TYPES) - 1))))
    return steps


def apply_structural(g: Graph, step: tuple[Any, ...], serial: int) -> None:
    """One edit from a drawn step; the integers pick nodes and edges modulo what exists now."""
    kind, a, b, t = step
    ids = list(g.nodes)
    edges = g.edges
    if kind == "add":
        typ, params = NEW_TYPES[t]
        nid = f"n{serial}" if a % 3 else f"layer0.conv1.x{serial}"  # sometimes inside a layer's path
        g.add_node(typ, nid, params)
        if ids and b % 2:
            src = ids[a % len(ids)]
            try:
                g.add_edge(src, nid)
            except GraphError:  # a port the model refuses: the node stays unconnected
                pass
    elif kind == "remove" and ids:
        g.remove_node(ids[a % len(ids)])
    elif kind == "cut" and edges:
        g.remove_edge(edges[a % len(edges)])
    elif kind == "join" and len(ids) > 1:
        try:
            g.add_edge(ids[a % len(ids)], ids[b % len(ids)])
        except GraphError:  # a cycle or a taken port: refused, nothing changed
            pass
    elif kind == "loop" and len(ids) > 1:  # any edge on a free port, a cycle included (as a file may hold)
        src, dst = ids[a % len(ids)], ids[b % len(ids)]
        if src != dst:  # Graph.remove_node fails on a node with an edge to itself (a graph.py matter)
            g.insert_edge(Edge(src, dst, g.free_port(dst)))
    elif kind == "undo" and ids:  # delete a node and undo it before the next run: back at its place
        index = g.node_index(ids[a % len(ids)])
        node, removed, _groups = g.remove_node(ids[a % len(ids)])
        g.insert_node(node, index)
        for e in removed:
            g.insert_edge(e)
    elif kind == "param" and ids:
        nid = ids[a % len(ids)]
        if g.nodes[nid].type == "Conv2d":
            g.set_param(nid, "out_channels", [8, 16, 4][b % 3])
    elif kind == "rename" and ids:
        g.rename_node(ids[a % len(ids)], f"renamed{serial}")
    elif kind == "batch" and edges:  # insert a node on a wire, as a drop on an edge does, before one run
        e = edges[a % len(edges)]
        g.remove_edge(e)
        nid = f"on_wire{serial}"
        g.add_node("ReLU", nid)
        g.add_edge(e.src, nid, 0, e.from_port)
        g.insert_edge(Edge(nid, e.dst, e.port, 0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structural_scripts())
def test_structural_edits_leave_the_analysis_a_full_pass_gives(steps: list[tuple[Any, ...]]) -> None:
    g = resnet_like()
    inc = Analyzer(g)
    inc.run()
    inc.run()  # a second run: from now on it follows structural edits
    for serial, step in enumerate(steps):
        apply_structural(g, step, serial)
        got = inc.run()
        # with a cycle, a fresh pass on the same graph: which cycle networkx names first depends on
        # the order its edges were added, which Graph.copy does not keep
        assert got == (fresh(g) if not g.has_cycle() else analyze(g)), step


def test_adding_and_removing_a_node_recomputes_only_that_node() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    a.run()
    g.add_node("ReLU", "loose")
    result = a.run()
    assert a.recomputed == 1 and result == fresh(g)
    assert [d.node for d in result.errors] == ["loose"] and "loose has no input" in result.errors[0].message
    g.add_edge("layer1.relu2", "loose")  # now it has an input, but reaches no Output: a warning
    result = a.run()
    assert a.recomputed == 1 and result == fresh(g) and not result.errors
    assert [d.node for d in result.diagnostics if d.severity is Severity.WARNING] == ["loose"]
    g.remove_node("loose")
    assert a.run() == fresh(g) and a.recomputed == 0 and a.run().ok


def test_cutting_a_wire_recomputes_what_follows_it_and_who_still_reaches_the_output() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    a.run()
    edge = next(e for e in g.in_edges("fc"))
    g.remove_edge(edge)  # dropout and the layers before it reach no Output now
    result = a.run()
    assert a.recomputed == 2 and result == fresh(g)  # fc (no input) and output (unknown after it)
    assert any("does not reach an Output" in d.message or "no input" in d.message for d in result.diagnostics)
    g.insert_edge(edge)
    assert a.run() == fresh(g) and a.run().ok and a.recomputed == 0  # second run: nothing new
    g.remove_edge(next(e for e in g.in_edges("se") if e.src == "se_gate"))  # the gate's branch hangs loose
    assert a.run() == fresh(g)
    assert {d.node for d in a.run().diagnostics} >= {"se"}


def test_a_rename_or_a_cycle_makes_a_full_pass() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    a.run()
    g.rename_node("dropout", "drop")
    assert a.run() == fresh(g) and a.recomputed == len(g)
    g.insert_edge(Edge("layer1.relu2", "layer0.add", 2))  # a cycle (as a file may hold): a third input from after
    assert a.run() == fresh(g) and a.recomputed < len(g)  # the nodes on and after the cycle are not computed
    g.remove_edge(next(e for e in g.in_edges("layer0.add") if e.src == "layer1.relu2"))
    assert a.run() == fresh(g) and a.recomputed == len(g)


def test_a_one_off_analysis_leaves_no_subscriber_on_the_graph_and_a_collected_one_takes_its_own() -> None:
    import gc

    g = resnet_like()
    before = len(g.node_added)
    for _ in range(3):
        analyze(g)
    assert len(g.node_added) == before
    a = Analyzer(g)
    a.run()
    a.run()
    assert len(g.node_added) == before + 1
    del a
    gc.collect()
    assert len(g.node_added) == before and len(g.edge_removed) == before


def test_a_following_analyzer_leaves_no_cycle_through_the_graph() -> None:
    """Freed by reference counting, not left to the cyclic collector: in the editor the graph's events
    reach Qt objects, which the collector may free in the middle of a paint."""
    import gc
    import weakref

    g = resnet_like()
    a = Analyzer(g)
    a.run()
    a.run()
    g.add_node("ReLU", "loose")
    a.run()
    graph_ref, analyzer_ref = weakref.ref(g), weakref.ref(a)
    gc.disable()
    try:
        del a, g
        assert graph_ref() is None and analyzer_ref() is None
    finally:
        gc.enable()


def test_undoing_a_delete_puts_the_node_back_in_its_place_in_the_order() -> None:
    g = resnet_like()
    a = Analyzer(g)
    a.run()
    a.run()
    index = g.node_index("layer0.relu1")
    node, edges, _groups = g.remove_node("layer0.relu1")
    assert a.run() == fresh(g) and "layer0.relu1" not in a.run().order
    g.insert_node(node, index)  # what the undo command does: the same node, at its place in the file
    for e in edges:
        g.insert_edge(e)
    result = a.run()
    assert result == fresh(g) and result.ok
    assert list(result.order) == g.topo_order() == list(g.nodes)
