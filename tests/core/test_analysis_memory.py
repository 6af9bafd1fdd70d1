"""Analysis.memory() against what torch really allocates for a tiny model, where the estimate is
exact: parameters, gradients and the optimizer's per-element state (SGD momentum, Adam)."""

from __future__ import annotations

import pytest
import torch

from core.analysis import analyze
from core.graph import Graph
from core.layers import get_spec

LAYERS = [("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3}), ("BatchNorm2d", "bn", {}), ("ReLU", "relu", {}),
          ("Flatten", "flatten", {}), ("Linear", "fc1", {"out_features": 12}), ("Linear", "fc2", {"out_features": 3})]


def tiny(frozen: str | None = None) -> tuple[Graph, torch.nn.Sequential]:
    """The same network as a Graph and, built node by node from the declarations, as torch modules."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [2, 6, 6]})
    prev = "input"
    for typ, nid, params in LAYERS:
        g.add_node(typ, nid, params, frozen=nid == frozen)
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("Output", "output")
    g.add_edge(prev, "output")
    a = analyze(g)
    modules = []
    for typ, nid, params in LAYERS:
        spec = get_spec(typ)
        assert spec is not None and spec.build is not None
        resolved = spec.resolve(params)
        resolved.update({k: v for k, v in a.nodes[nid].args.items() if resolved.get(k) is None})
        m = spec.build(resolved)
        if nid == frozen:
            m.requires_grad_(False)
        modules.append(m)
    return g, torch.nn.Sequential(*modules)


def nbytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("frozen", [None, "fc1"])
@pytest.mark.parametrize(("optimizer", "make"), [
    ("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("sgd_nomomentum", lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-3)),
    ("adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-3)),
])
def test_memory_matches_torch(frozen: str | None, optimizer: str, make: object) -> None:
    g, model = tiny(frozen)
    est = analyze(g).memory(batch_size=5, optimizer=optimizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make(trainable)  # type: ignore[operator]
    model(torch.randn(5, 2, 6, 6)).square().mean().backward()
    opt.step()
    assert est.params == nbytes(list(model.parameters()))
    assert est.grads == nbytes([p.grad for p in model.parameters() if p.grad is not None])
    # per-element state only: Adam's per-tensor ``step`` counters are scalars (not estimated)
    state = [t for s in opt.state.values() for k, t in s.items() if k != "step" and torch.is_tensor(t)]
    assert est.optimizer_state == nbytes(state)
    float_buffers = [b for b in model.buffers() if b.is_floating_point()]
    assert est.buffers == nbytes(float_buffers) + 4  # + BatchNorm's step counter, counted as one float
    assert est.activations == 5 * analyze(g).activation_bytes
    assert est.total == est.params + est.grads + est.optimizer_state + est.activations + est.buffers
