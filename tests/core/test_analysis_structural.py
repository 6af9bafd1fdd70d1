"""Analysis after structural edits (issue 11; DESIGN.md §10): the id-clash screen finds exactly what
checking every id against every layer finds, and an analyzer that lives through node and edge edits
gives exactly the Analysis a fresh full pass gives."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.diagnostics import Diagnostic, Severity
from core.graph import Graph
from core.module_names import clash_fix, id_clash, id_clashes, layer_names

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
