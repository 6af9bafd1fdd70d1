"""Analysis never raises: random graphs of every registered type (and unknown ones), odd
parameter values, cycles, self-loops and dangling ports all become diagnostics. Every fix it
offers applies through core.fixes without error and undoes exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analysis import Analyzer, analyze
from core.fixes import FixError, apply_fix
from core.graph import Edge, Graph
from core.layers import all_specs, get_spec
from core.project import graph_to_dict

TYPES = [*sorted(s.type for s in all_specs()), "Conv2D", "Zzyzx"]
ODD_VALUES = st.one_of(
    st.integers(-3, 9), st.sampled_from([0, 10**12, -(10**12), 2**63]), st.floats(allow_nan=True),
    st.booleans(), st.none(), st.text(max_size=4), st.lists(st.integers(-2, 6), max_size=4),
    st.lists(st.lists(st.integers(0, 3), max_size=2), max_size=2), st.dictionaries(st.text(max_size=2),
                                                                                  st.integers(), max_size=2))


@st.composite
def wild_graphs(draw: st.DrawFn) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": draw(st.lists(st.integers(1, 12), min_size=1, max_size=4))})
    n = draw(st.integers(1, 9))
    ids = ["input"]
    for i in range(n):
        typ = draw(st.sampled_from(TYPES))
        spec = get_spec(typ)
        names = [p.name for p in spec.params] if spec is not None else []
        params: dict[str, Any] = {}
        for _ in range(draw(st.integers(0, 3))):
            name = draw(st.sampled_from([*names, "bogus"]))
            params[name] = draw(ODD_VALUES)
        g.add_node(typ, f"n{i}", params)
        ids.append(f"n{i}")
    for _ in range(draw(st.integers(0, 2 * n + 2))):
        src, dst = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
        g.insert_edge(Edge(src, dst, g.free_port(dst), draw(st.sampled_from([0, 0, 0, 1, 2]))))
    return g


@pytest.mark.slow  # a few hundred random graphs: ~5 s
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wild_graphs(), st.data())
def test_analysis_never_raises_and_fixes_apply(g: Graph, data: st.DataObject) -> None:
    a = analyze(g)
    assert set(a.nodes) == set(g.nodes) and sorted(a.order) == sorted(g.nodes)
    json.dumps(a.to_dict("fuzz"))  # the summary --json object is always serializable
    for d in a.diagnostics:
        assert d.message and (d.node is None or d.node in g.nodes)
    for r in a.nodes.values():
        assert (r.out_shapes is None) == (r.params is None)
    a.memory(8, "adam")
    # an incremental analyzer follows random parameter edits exactly
    inc = Analyzer(g)
    inc.run()
    for _ in range(data.draw(st.integers(0, 3))):
        nid = data.draw(st.sampled_from(sorted(g.nodes)))
        spec = get_spec(g.nodes[nid].type)
        name = data.draw(st.sampled_from([p.name for p in spec.params] if spec and spec.params else ["bogus"]))
        g.set_param(nid, name, data.draw(ODD_VALUES))
        assert inc.run() == analyze(g)
    # every offered fix applies (or says why not) and undoes exactly
    fixes = [d.fix for d in inc.run().diagnostics if d.fix is not None]
    for fix in fixes[:3]:
        before = json.dumps(graph_to_dict(g))
        try:
            applied = apply_fix(g, fix)
        except FixError:
            assert json.dumps(graph_to_dict(g)) == before
            continue
        json.dumps(analyze(g).to_dict())
        applied.undo(g)
        assert json.dumps(graph_to_dict(g)) == before, (fix, applied.steps)
