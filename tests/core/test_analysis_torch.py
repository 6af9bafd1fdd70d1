"""Analysis against torch on random small DAGs (hypothesis).

Chains with branches of Conv2d (stride, padding, dilation, groups, asymmetric kernels, a given
in_channels), ConvTranspose2d, pools (ceil_mode, padding), ReLU, Add, Concat, Flatten and Linear
heads. The test builds every node itself from its declaration (``spec.build(resolved params +
inferred args)`` or ``spec.function``) and runs the DAG in topological order: wherever ``analyze``
says a node is fine, torch gives the same output shape and parameter count; wherever it reports
an error at a node, torch refuses that node: it raises, returns an empty tensor (a collapsed
transposed conv), or could only take the input as one unbatched sample (a 2-D layer on C×L).
Add is excepted where torch would broadcast: our Add deliberately requires identical shapes
(core/layers/merge.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analysis import Analysis, NodeResult, analyze
from core.compiler import compile_graph
from core.graph import Graph, Node
from core.layers import get_spec

SMALL = st.integers(1, 4)
PAIR = st.one_of(SMALL, st.lists(SMALL, min_size=2, max_size=2))


def _opt(name: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``{name: value}`` or ``{}`` (the parameter left to its default / inferred)."""
    return st.one_of(st.just({}), strategy.map(lambda v: {name: v}))


def _params(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*(_opt(k, v) for k, v in fields.items())).map(
        lambda parts: {k: v for part in parts for k, v in part.items()})


LAYERS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "Conv2d": st.tuples(st.integers(1, 6), _params(
        kernel_size=PAIR, stride=st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=2, max_size=2)),
        padding=st.one_of(st.integers(0, 3), st.lists(st.integers(0, 2), min_size=2, max_size=2)),
        dilation=st.integers(1, 2), groups=st.sampled_from([1, 2, 3]), bias=st.booleans(),
        in_channels=st.integers(1, 6))).map(lambda t: {"out_channels": t[0], **t[1]}),
    "ConvTranspose2d": st.tuples(st.integers(1, 6), _params(
        kernel_size=PAIR, stride=st.integers(1, 3), padding=st.integers(0, 2), output_padding=st.integers(0, 2),
        dilation=st.integers(1, 2), groups=st.sampled_from([1, 2]), bias=st.booleans())).map(
        lambda t: {"out_channels": t[0], **t[1]}),
    "MaxPool2d": _params(kernel_size=PAIR, stride=st.integers(1, 3), padding=st.integers(0, 2),
                         dilation=st.integers(1, 2), ceil_mode=st.booleans()),
    "AvgPool2d": _params(kernel_size=PAIR, stride=st.integers(1, 3), padding=st.integers(0, 2),
                         ceil_mode=st.booleans(), count_include_pad=st.booleans()),
    "AdaptiveAvgPool2d": _params(output_size=st.integers(1, 3)),
    "ReLU": st.just({}),
    "Flatten": st.just({}),
    "Linear": st.tuples(st.integers(1, 6), _params(in_features=st.integers(1, 40), bias=st.booleans())).map(
        lambda t: {"out_features": t[0], **t[1]}),
}
MERGES = ("Add", "Concat")
# 2-D layers take N×C×H×W; torch also runs them on a 3-D tensor as one unbatched C×H×W sample, which
# for our per-sample shapes would mean reading the batch axis as channels: that counts as a refusal.
BATCHED_RANK = {"Conv2d": 4, "ConvTranspose2d": 4, "MaxPool2d": 4, "AvgPool2d": 4, "AdaptiveAvgPool2d": 4}


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [draw(st.integers(1, 6)), draw(st.integers(1, 14)),
                                            draw(st.integers(1, 14))]})
    ids = ["input"]
    for i in range(draw(st.integers(1, 7))):
        nid = f"n{i}"
        kind = draw(st.sampled_from([*LAYERS, *MERGES]))
        if kind in MERGES:
            a, b = draw(st.sampled_from(ids)), draw(st.sampled_from(ids[-2:]))
            g.add_node(kind, nid)
            g.add_edge(a, nid)
            g.add_edge(b, nid)
        else:
            g.add_node(kind, nid, draw(LAYERS[kind]))
            g.add_edge(draw(st.sampled_from(ids[-3:])), nid)  # mostly chains, sometimes a branch
        ids.append(nid)
    g.add_node("Output", "output")
    g.add_edge(ids[-1], "output")
    return g


def run_node(node: Node, result: NodeResult | None, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, int, int]:
    """Build and run one node as the compiler would; returns (output, parameter count, buffer count)."""
    spec = get_spec(node.type)
    assert spec is not None
    if spec.type in ("Input", "Output"):
        return inputs[0], 0, 0
    if spec.function is not None:
        return spec.function(*inputs, **node.params), 0, 0
    assert spec.build is not None
    params = spec.resolve(node.params)
    if result is not None:
        params.update({k: v for k, v in result.args.items() if params.get(k) is None})
    else:  # torch gets what the input implies where the user left the argument to inference
        c, n = inputs[0].shape[1], inputs[0].shape[-1]
        for name, value in (("in_channels", c), ("in_features", n), ("num_features", c)):
            if name in params and params[name] is None:
                params[name] = int(value)
    module = spec.build(params).eval()
    out = module(*inputs)
    return (out, sum(p.numel() for p in module.parameters()), sum(b.numel() for b in module.buffers()))


def check_against_torch(g: Graph, a: Analysis) -> int:
    """Run the DAG; returns how many nodes analysis called fine (and torch agreed on)."""
    errors = {d.node for d in a.errors}
    values: dict[str, torch.Tensor] = {}
    agreed = 0
    shape = g.nodes["input"].params["shape"]
    values["input"] = torch.randn(2, *shape)
    for nid in a.order:
        if nid == "input":
            continue
        node, result = g.nodes[nid], a.nodes[nid]
        ins = [values.get(e.src) for e in g.in_edges(nid)]
        if any(x is None for x in ins):
            assert not result.known and nid not in errors, f"{nid} is downstream of an error"
            continue
        tensors: list[torch.Tensor] = [x for x in ins if x is not None]
        if nid in errors:
            msg = "; ".join(d.message for d in a.diagnostics_for(nid))
            shapes = [tuple(t.shape) for t in tensors]
            if node.type == "Add" and len(set(shapes)) > 1:
                continue  # analysis refuses unequal shapes on purpose; torch might broadcast them
            if node.type in BATCHED_RANK and tensors[0].dim() != BATCHED_RANK[node.type]:
                continue  # torch would read the batch axis as channels (an "unbatched" sample): no batched use
            try:
                out, _, _ = run_node(node, None, tensors)
            except Exception:  # any refusal by torch (ValueError, RuntimeError …) is what we expect
                continue
            if out.numel() == 0:
                continue  # torch returns an empty map for a collapsed transposed conv: refused in effect
            raise AssertionError(f"torch accepted {nid} ({node.type} {node.params}) on {shapes}: {msg}")
        assert result.known, f"{nid}: no error reported but the shape is unknown"
        out, n_params, n_buffers = run_node(node, result, tensors)
        assert tuple(out.shape[1:]) == result.output_shape, (nid, node.type, node.params, [t.shape for t in tensors])
        assert (n_params, n_buffers) == (result.params, result.buffers), (nid, node.type, node.params)
        assert result.trainable == result.params
        values[nid] = out
        agreed += 1
    return agreed


@pytest.mark.slow  # a few hundred random graphs: ~5 s
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
@torch.no_grad()
def test_random_dags_agree_with_torch(g: Graph) -> None:
    a = analyze(g)
    check_against_torch(g, a)
    # every layer's weights count, also those that reach no Output: the compiled model keeps them (idle)
    assert a.total_params == sum(r.params or 0 for r in a.nodes.values() if r.known)
    if a.ok:
        compiled = compile_graph(g, device="meta")
        assert a.total_params == sum(p.numel() for p in compiled.parameters())
        assert a.buffers == sum(b.numel() for b in compiled.buffers())


def test_the_generator_reaches_both_agreement_and_refusal() -> None:
    """Guard against a generator that only ever produces broken (or only fine) graphs."""
    oks = errs = 0

    @settings(max_examples=80, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(dags())
    @torch.no_grad()
    def probe(g: Graph) -> None:
        nonlocal oks, errs
        a = analyze(g)
        check_against_torch(g, a)
        if a.ok:
            oks += 1
        else:
            errs += 1

    probe()
    assert oks >= 10 and errs >= 10, (oks, errs)
