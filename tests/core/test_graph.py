"""The graph model: typed errors, ids, events, undo data, renames, copies, and our own O(V + E)
order/cycle/reachability code checked against networkx on random graphs."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.graph import (
    CycleError,
    DuplicateIdError,
    Edge,
    Graph,
    GraphError,
    InvalidIdError,
    PortError,
    UnknownNodeError,
    check_id,
    id_problem,
)
from core.project import graph_to_dict


def small() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 4})
    g.add_node("ReLU", "relu")
    g.add_node("Add", "add")
    g.add_node("Output", "out")
    for s, d in [("input", "conv"), ("conv", "relu"), ("relu", "add"), ("conv", "add"), ("add", "out")]:
        g.add_edge(s, d)
    g.add_group("block", "Block", ["conv", "relu"])
    return g


# -- ids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    "x; import os", "a'b", 'a"b', "a\nb", "a b", "conv\u0430", "\u0441onv", "conv\u0661", "ｃｏｎｖ",
    "con\u200bv", "class", "layer.import", "None", "1abc", "0.conv", "a..b", ".a", "a.", "", "a-b", "a/b",
    "__import__('os')", "x" * 201, 3, ["a"],
])
def test_invalid_ids_are_refused_with_a_reason(bad: Any) -> None:
    assert id_problem(bad) is not None
    with pytest.raises(InvalidIdError, match="invalid id"):
        check_id(bad)
    g = Graph()
    with pytest.raises(InvalidIdError):
        g.add_node("ReLU", bad)
    g.add_node("ReLU", "ok")
    with pytest.raises(InvalidIdError):
        g.rename_node("ok", bad)
    with pytest.raises(InvalidIdError):
        g.add_group(bad, "label")
    assert list(g.nodes) == ["ok"] and not g.groups


@pytest.mark.parametrize("good", ["conv1", "layer1.0.conv1", "_x", "A_b9", "features.10", "self_", "match", "type"])
def test_valid_ids(good: str) -> None:
    assert id_problem(good) is None and check_id(good) == good


def test_keyword_and_lookalike_messages_say_why() -> None:
    assert id_problem(None) == "must be a string, got NoneType"  # (add_node(id=None) picks a fresh id)
    assert "keyword" in str(id_problem("layer.class"))
    assert "letters, digits and underscores" in str(id_problem("conv\u0430"))
    assert "must start with a name" in str(id_problem("0.conv"))


# -- typed errors -------------------------------------------------------------------------------

def test_typed_errors() -> None:
    g = small()
    with pytest.raises(CycleError, match="would make a cycle"):
        g.add_edge("add", "conv")
    with pytest.raises(CycleError, match="to itself"):
        g.add_edge("relu", "relu")
    with pytest.raises(PortError, match="relu already has an input from conv — disconnect it first"):
        g.add_edge("input", "relu")
    with pytest.raises(PortError, match="takes no inputs"):
        g.add_edge("relu", "input")
    with pytest.raises(PortError, match="has no outputs"):
        g.add_edge("out", "add", 2)
    with pytest.raises(PortError, match="port 1 does not exist"):
        g.add_edge("input", "out", 1)
    with pytest.raises(PortError, match=">= 0"):
        g.add_edge("input", "add", -1)
    with pytest.raises(DuplicateIdError):
        g.add_node("ReLU", "relu")
    with pytest.raises(DuplicateIdError):
        g.add_node("ReLU", "block")
    with pytest.raises(DuplicateIdError):
        g.add_group("conv", "x")
    with pytest.raises(UnknownNodeError) as exc:
        g.set_param("nope", "p", 1)
    assert str(exc.value) == "no node with id 'nope'"
    with pytest.raises(GraphError):
        g.remove_edge(Edge("input", "relu", 0))
    assert issubclass(CycleError, GraphError) and issubclass(UnknownNodeError, KeyError)


def test_failed_edits_change_nothing_and_emit_nothing() -> None:
    g = small()
    before = graph_to_dict(g)
    seen: list[Any] = []
    for ev in (g.node_added, g.edge_added, g.changed, g.node_changed):
        ev.sub(lambda *a, _n=ev.name: seen.append(_n))
    for attempt in (lambda: g.add_edge("add", "conv"), lambda: g.add_edge("input", "relu"),
                    lambda: g.add_node("ReLU", "x y")):
        with pytest.raises(GraphError):
            attempt()
    assert graph_to_dict(g) == before and not seen and g.has_cycle() is False


# -- events -------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, g: Graph) -> None:
        self.calls: list[tuple[Any, ...]] = []
        for ev in (g.node_added, g.node_removed, g.node_changed, g.node_renamed, g.node_moved, g.edge_added,
                   g.edge_removed, g.groups_changed, g.changed):
            ev.sub(lambda *args, _n=ev.name: self.calls.append((_n, *args)))

    def take(self) -> list[tuple[Any, ...]]:
        out, self.calls = self.calls, []
        return out


def test_events_are_emitted_once_per_edit_with_their_arguments() -> None:
    g = small()
    rec = Recorder(g)
    node = g.add_node("Sigmoid", "sig")
    assert rec.take() == [("node_added", node), ("changed",)]
    e = g.add_edge("relu", "sig")
    assert rec.take() == [("edge_added", e), ("changed",)] and e == Edge("relu", "sig", 0, 0)
    g.set_param("conv", "kernel_size", 5)
    assert rec.take() == [("node_changed", "conv"), ("changed",)]
    g.set_param("conv", "kernel_size", 5)  # unchanged: no event
    g.set_params("conv", {"out_channels": 4, "kernel_size": 5})
    assert rec.take() == []
    g.set_param("conv", "kernel_size", None)
    g.set_frozen("conv", True)
    g.set_init("conv", "zeros")
    assert rec.take() == [("node_changed", "conv"), ("changed",)] * 3
    g.set_position("conv", (1, 2))
    assert rec.take() == [("node_moved", "conv", (1.0, 2.0))]
    g.remove_edge(e)
    assert rec.take() == [("edge_removed", e), ("changed",)]
    g.rename_node("sig", "gate")
    assert rec.take() == [("node_renamed", "sig", "gate"), ("changed",)]
    removed, edges, _groups = g.remove_node("relu")
    assert rec.take() == [("edge_removed", edges[0]), ("edge_removed", edges[1]), ("node_removed", removed),
                          ("groups_changed",), ("changed",)]
    g.add_group("g2", "G", ["conv"])
    assert rec.take() == [("groups_changed",)]


# -- undo data, rename, copy --------------------------------------------------------------------

def test_remove_node_returns_what_undo_needs() -> None:
    g = small()
    before = graph_to_dict(g)
    order_before = list(g.nodes)
    node, edges, memberships = g.remove_node("relu")
    assert node.id == "relu" and memberships == [("block", 1)]
    assert edges == [Edge("conv", "relu", 0, 0), Edge("relu", "add", 0, 0)]
    assert "relu" not in g.nodes and g.in_edges("add") == [Edge("conv", "add", 1, 0)]
    g.insert_node(node)
    for e in edges:
        g.insert_edge(e)
    for gid, index in memberships:
        g.groups[gid].members.insert(index, node.id)
    after = graph_to_dict(g)

    def canon(d: dict[str, Any]) -> tuple[Any, ...]:
        return (sorted(map(repr, d["nodes"])), sorted(map(repr, d["edges"])), d["groups"])

    assert canon(after) == canon(before) and set(g.nodes) == set(order_before)


def test_rename_keeps_edges_groups_order_and_params() -> None:
    g = small()
    g.set_param("conv", "padding", 1)
    g.rename_node("conv", "stem.conv")
    assert list(g.nodes) == ["input", "stem.conv", "relu", "add", "out"]
    assert g.in_edges("relu") == [Edge("stem.conv", "relu", 0, 0)]
    assert g.in_edges("add") == [Edge("relu", "add", 0, 0), Edge("stem.conv", "add", 1, 0)]
    assert g.predecessors("stem.conv") == ["input"] and g.groups["block"].members == ["stem.conv", "relu"]
    assert g.nodes["stem.conv"].params == {"out_channels": 4, "padding": 1}
    assert g.topo_order() == ["input", "stem.conv", "relu", "add", "out"]
    with pytest.raises(DuplicateIdError):
        g.rename_node("relu", "add")


def test_copy_is_independent() -> None:
    g = small()
    g.set_param("conv", "kernel_size", [3, 5])
    seen: list[Any] = []
    g.changed.sub(lambda: seen.append(1))
    c = g.copy()
    c.nodes["conv"].params["kernel_size"][0] = 7
    c.set_param("relu", "inplace", True)
    c.remove_edge(c.in_edges("out")[0])
    c.groups["block"].members.append("add")
    c.add_node("ReLU", "extra")
    assert g.nodes["conv"].params["kernel_size"] == [3, 5] and g.nodes["relu"].params == {}
    assert len(g.in_edges("out")) == 1 and g.groups["block"].members == ["conv", "relu"] and "extra" not in g
    assert not seen and len(c.changed) == 0
    assert graph_to_dict(small().copy()) == graph_to_dict(small())


def test_params_changed_since_is_per_reader() -> None:
    g = small()
    v = g.param_version
    g.set_param("conv", "padding", 1)
    g.set_frozen("relu", True)
    assert g.params_changed_since(v) == {"conv", "relu"}
    assert g.params_changed_since(g.param_version) == set()
    assert g.params_changed_since(v) == {"conv", "relu"}  # reading does not consume


def test_fresh_ids() -> None:
    g = small()
    assert g.fresh_id("Conv2d") == "conv2d1"
    g.add_node("Conv2d")
    assert "conv2d1" in g and g.fresh_id("Conv2d") == "conv2d2"
    assert g.fresh_id("3d thing!") == "n3d_thing_1"
    assert g.fresh_id("class") == "class_1"


# -- order, cycles, reachability vs networkx ----------------------------------------------------

@st.composite
def random_graphs(draw: st.DrawFn) -> Graph:
    g = Graph()
    n = draw(st.integers(1, 14))
    names = draw(st.permutations([f"n{i}" for i in range(n)]))  # file order unrelated to edges
    for nid in names:
        g.add_node("Add", nid)
    for _ in range(draw(st.integers(0, 2 * n))):
        src, dst = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        g.insert_edge(Edge(src, dst, g.free_port(dst)))  # unchecked: cycles and self-loops too
    return g


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_order_cycles_and_reachability_match_networkx(g: Graph) -> None:
    nxg = g.nx_graph()
    order, blocked = g.kahn()
    assert g.has_cycle() == (not nx.is_directed_acyclic_graph(nxg))
    index = {n: i for i, n in enumerate(g.nodes)}
    if not blocked:
        assert order == list(nx.lexicographical_topological_sort(nxg, key=index.__getitem__))
        assert g.topo_order() == order
    else:
        with pytest.raises(CycleError, match="the graph has a cycle: "):
            g.topo_order()
        on_cycle = {n for c in nx.strongly_connected_components(nxg) if len(c) > 1 or nxg.has_edge(*[*c] * 2)
                    for n in c}
        expected = set(on_cycle).union(*(nx.descendants(nxg, n) for n in on_cycle))
        assert set(blocked) == expected and blocked == [n for n in g.nodes if n in expected]
        assert set(g.find_cycle()) <= on_cycle
    for nid in g.nodes:
        assert g.ancestors(nid) == nx.ancestors(nxg, nid) | ({nid} if nid in g.ancestors(nid) else set())
        assert g.descendants(nid) - {nid} == nx.descendants(nxg, nid) - {nid}
    outs = list(g.nodes)[:2]
    assert g.upstream(outs) == set(outs).union(*(nx.ancestors(nxg, o) for o in outs))


def test_order_is_cached_until_the_structure_changes() -> None:
    g = small()
    first = g.kahn()
    g.set_param("conv", "padding", 1)
    assert g.kahn() is first
    g.add_node("ReLU", "late")
    assert g.kahn() is not first and g.topo_order()[-1] == "late"


def test_insert_node_at_its_old_file_position() -> None:
    g = small()
    index = g.node_index("relu")
    node, edges, _ = g.remove_node("relu")
    g.insert_node(node, index)
    for e in edges:
        g.insert_edge(e)
    assert list(g.nodes) == ["input", "conv", "relu", "add", "out"] and index == 2
    assert g.topo_order() == ["input", "conv", "relu", "add", "out"]
    with pytest.raises(DuplicateIdError):
        g.insert_node(node, 0)


def test_removing_a_node_wired_to_itself_in_a_file_removes_the_wire_once():
    import json

    from core.project import loads_project

    data = {"format": "netcanvas-project", "version": 1, "graph": {
        "nodes": [{"id": "i", "type": "Input", "params": {"shape": [4]}}, {"id": "r", "type": "ReLU"}],
        "edges": [{"from": "i", "to": "r"}, {"from": "r", "to": "r", "port": 1}]}}
    g = loads_project(json.dumps(data)).graph
    _, edges, _ = g.remove_node("r")
    assert list(g.nodes) == ["i"] and g.edges == [] and len(edges) == 2
