"""compile_graph: fx structure, outputs equal to hand-written modules, init/frozen, errors, seeds."""

from __future__ import annotations

import copy
import io
import math
import operator

import pytest
import torch
from torch import fx, nn

from core.compiler import CompileError, compile_graph, idle_layers, var_name
from core.graph import Graph
from core.project import load_project
from tests.conftest import ROOT


def chain_graph() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("ReLU", "relu")
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 5})
    g.add_node("Output", "output")
    for a, b in [("input", "conv"), ("conv", "bn"), ("bn", "relu"), ("relu", "flat"), ("flat", "fc"),
                 ("fc", "output")]:
        g.add_edge(a, b)
    return g


class Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))


def residual_graph(inputs: int = 2) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4, 6, 6]})
    g.add_node("Add", "add")
    for i in range(inputs - 1):
        g.add_node("Conv2d", f"block.conv{i}", {"out_channels": 4, "kernel_size": 3, "padding": 1})
        g.add_edge("input", f"block.conv{i}")
        g.add_edge(f"block.conv{i}", "add", port=i + 1)
    g.add_edge("input", "add", port=0)
    g.add_node("Output", "output")
    g.add_edge("add", "output")
    return g


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_chain_matches_hand_written_module() -> None:
    gm = compile_graph(chain_graph(), seed=0)
    assert isinstance(gm, fx.GraphModule)
    ops = [(n.op, n.target) for n in gm.graph.nodes]
    assert ops == [("placeholder", "x"), ("call_module", "conv"), ("call_module", "bn"), ("call_module", "relu"),
                   ("call_module", "flat"), ("call_module", "fc"), ("output", "output")]
    assert list(gm.state_dict()) == ["conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                                     "bn.num_batches_tracked", "fc.weight", "fc.bias"]
    ref = Chain()
    ref.load_state_dict(gm.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    assert_same(gm(x), ref(x))  # training mode: batch statistics
    gm.eval()
    ref.eval()
    assert_same(gm(x), ref(x))
    assert "def forward(self, x)" in gm.code and "self.conv(x)" in gm.code


def test_residual_add_chains_operators() -> None:
    gm = compile_graph(residual_graph(3), seed=1)
    adds = [n for n in gm.graph.nodes if n.op == "call_function"]
    assert [n.target for n in adds] == [operator.add, operator.add]
    assert " + " in gm.code  # fx writes operator.add as a plain sum: readable code
    x = torch.randn(2, 4, 6, 6)
    block = gm.get_submodule("block")
    expected = x + block.conv0(x) + block.conv1(x)
    assert_same(gm(x), expected)
    assert set(gm.state_dict()) == {"block.conv0.weight", "block.conv0.bias", "block.conv1.weight",
                                    "block.conv1.bias"}


def test_concat_and_multiply() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [2, 5, 5]})
    g.add_node("Conv2d", "a", {"out_channels": 3, "kernel_size": 1})
    g.add_node("Conv2d", "b", {"out_channels": 4, "kernel_size": 1})
    g.add_node("Concat", "cat")
    g.add_node("Sigmoid", "gate")
    g.add_node("Multiply", "mul")
    g.add_node("Output", "output")
    g.add_edge("input", "a")
    g.add_edge("input", "b")
    g.add_edge("b", "cat", port=0)
    g.add_edge("a", "cat", port=1)
    g.add_edge("cat", "gate")
    g.add_edge("cat", "mul", port=0)
    g.add_edge("gate", "mul", port=1)
    g.add_edge("mul", "output")
    gm = compile_graph(g, seed=2)
    cat = next(n for n in gm.graph.nodes if n.target is torch.cat)
    assert cat.kwargs == {"dim": 1}
    x = torch.randn(3, 2, 5, 5)
    c = torch.cat([gm.b(x), gm.a(x)], dim=1)  # port order, not insertion order
    assert_same(gm(x), c * torch.sigmoid(c))


def test_several_outputs_return_a_tuple_in_file_order() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [6]})
    g.add_node("Output", "aux")  # first in the file, though computed last
    g.add_node("Linear", "fc1", {"out_features": 4})
    g.add_node("Linear", "fc2", {"out_features": 3})
    g.add_node("Output", "main")
    g.add_edge("input", "fc1")
    g.add_edge("fc1", "main")
    g.add_edge("fc1", "fc2")
    g.add_edge("fc2", "aux")
    gm = compile_graph(g, seed=0)
    x = torch.randn(2, 6)
    out = gm(x)
    assert isinstance(out, tuple) and len(out) == 2
    assert_same(out[0], gm.fc2(gm.fc1(x)))
    assert_same(out[1], gm.fc1(x))


def test_multi_output_layer_uses_getitem() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4, 3, 3]})
    g.add_node("Chunk", "split", {"chunks": 2, "dim": 1})
    g.add_node("Conv2d", "conv", {"out_channels": 2, "kernel_size": 1})
    g.add_node("Concat", "cat")
    g.add_node("Output", "output")
    g.add_edge("input", "split")
    g.add_edge("split", "conv", from_port=1)
    g.add_edge("split", "cat", port=0, from_port=0)
    g.add_edge("conv", "cat", port=1)
    g.add_edge("cat", "output")
    gm = compile_graph(g, seed=0)
    getitems = [n for n in gm.graph.nodes if n.target is operator.getitem]
    assert sorted(n.args[1] for n in getitems) == [0, 1]
    x = torch.randn(2, 4, 3, 3)
    a, b = x.chunk(2, 1)
    assert_same(gm(x), torch.cat([a, gm.conv(b)], dim=1))


def test_nested_ids_and_a_module_with_children() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 4, 4]})
    g.add_node("Conv2d", "stem", {"out_channels": 4, "kernel_size": 1})
    g.add_node("BatchNorm2d", "stem.bn")  # a child of the conv module: its own path
    g.add_node("Conv2d", "layer1.0.conv1", {"out_channels": 4, "kernel_size": 3, "padding": 1})
    g.add_node("ReLU", "layer1.0.relu")
    g.add_node("Conv2d", "layer1.1.conv1", {"out_channels": 2, "kernel_size": 1})
    g.add_node("Output", "output")
    for a, b in [("input", "stem"), ("stem", "stem.bn"), ("stem.bn", "layer1.0.conv1"),
                 ("layer1.0.conv1", "layer1.0.relu"), ("layer1.0.relu", "layer1.1.conv1"),
                 ("layer1.1.conv1", "output")]:
        g.add_edge(a, b)
    gm = compile_graph(g, seed=0).eval()
    keys = set(gm.state_dict())
    assert {"stem.weight", "stem.bias", "stem.bn.weight", "stem.bn.running_var", "layer1.0.conv1.weight",
            "layer1.1.conv1.bias"} <= keys
    assert isinstance(gm.get_submodule("stem"), nn.Conv2d)
    x = torch.randn(1, 3, 4, 4)
    m = gm.get_submodule
    expected = m("layer1.1.conv1")(torch.relu(m("layer1.0.conv1")(m("stem.bn")(m("stem")(x)))))
    assert_same(gm(x), expected)
    assert var_name("layer1.0.conv1") == "layer1_0_conv1"
    assert any(n.name == "layer1_0_conv1" for n in gm.graph.nodes)


def test_frozen_and_init() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [64]})
    specs = {"zero": "zeros", "kn": "kaiming_normal", "ku": "kaiming_uniform", "xn": "xavier_normal",
             "xu": "xavier_uniform", "nrm": "normal(0.5)", "plain": "default"}
    prev = "input"
    for nid, init in specs.items():
        g.add_node("Linear", nid, {"out_features": 64}, init=init, frozen=nid == "kn")
        g.add_edge(prev, nid)
        prev = nid
    g.add_node("Output", "output")
    g.add_edge(prev, "output")
    gm = compile_graph(g, seed=0)
    assert torch.count_nonzero(gm.zero.weight) == 0
    assert not gm.kn.weight.requires_grad and not gm.kn.bias.requires_grad
    assert gm.ku.weight.requires_grad
    for nid in ("kn", "ku", "xn", "xu", "nrm", "zero"):
        assert torch.count_nonzero(getattr(gm, nid).bias) == 0, nid  # biases zeroed for non-default inits
    assert torch.count_nonzero(gm.plain.bias) > 0  # torch's default init keeps its uniform bias
    fan = 64
    assert gm.kn.weight.std().item() == pytest.approx(math.sqrt(2 / fan), rel=0.1)
    assert gm.ku.weight.abs().max().item() <= math.sqrt(6 / fan) + 1e-6
    assert gm.xn.weight.std().item() == pytest.approx(math.sqrt(2 / (fan + fan)), rel=0.1)
    assert gm.xu.weight.abs().max().item() <= math.sqrt(6 / (fan + fan)) + 1e-6
    assert gm.nrm.weight.std().item() == pytest.approx(0.5, rel=0.1)
    trainable = {n for n, p in gm.named_parameters() if p.requires_grad}
    assert "kn.weight" not in trainable and "ku.weight" in trainable


def test_kaiming_on_a_one_axis_weight_is_refused() -> None:
    g = chain_graph()
    g.set_init("bn", "kaiming_normal")
    with pytest.raises(CompileError, match="bn: init kaiming_normal needs a weight with at least 2 axes"):
        compile_graph(g)
    g.set_init("bn", "normal(0.1)")
    compile_graph(g)


def test_seed_reproducible_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a = compile_graph(chain_graph(), seed=7).state_dict()
    b = compile_graph(chain_graph(), seed=7).state_dict()
    c = compile_graph(chain_graph(), seed=8).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv.weight"], c["conv.weight"])


def test_errors_are_refused_with_every_message() -> None:
    g = chain_graph()
    g.set_param("fc", "in_features", 7)
    g.add_node("Linear", "dangling")  # no input: a second error
    with pytest.raises(CompileError) as info:
        compile_graph(g)
    err = info.value
    text = str(err)
    assert len(err.diagnostics) == 2
    assert text.startswith("cannot compile the network: 2 errors")
    for d in err.diagnostics:
        assert d.message in text
    assert "fc: expects 7 input features" in text and "dangling has no input" in text


def test_names_clashing_with_module_attributes_are_refused() -> None:
    g = chain_graph()
    g.rename_node("fc", "forward")
    with pytest.raises(CompileError, match="torch already uses the name 'forward'"):
        compile_graph(g)
    g.rename_node("forward", "code")  # a GraphModule attribute at the top level
    with pytest.raises(CompileError, match="torch already uses the name 'code'"):
        compile_graph(g)
    g.rename_node("code", "head.code")  # fine below the top: plain containers have no .code
    compile_graph(g)


def test_dead_branches_with_weights_are_kept_idle_and_others_left_out() -> None:
    """A branch that reaches no Output does not run; its layers with weights stay in the model
    (issue 12: a source's state_dict must load strictly), also through deepcopy and pickling."""
    g = chain_graph()
    g.add_node("Linear", "unused", {"out_features": 2})
    g.add_node("ReLU", "unused_act")
    g.add_node("Sigmoid", "unused_gate")
    g.add_edge("flat", "unused")
    g.add_edge("unused", "unused_act")
    g.add_edge("relu", "unused_gate")
    gm = compile_graph(g, seed=0)
    assert idle_layers(gm) == ["unused"]
    assert [k for k in gm.state_dict() if k.startswith("unused")] == ["unused.weight", "unused.bias"]
    called = [n.target for n in gm.graph.nodes if n.op in ("call_module", "call_function")]
    assert "unused" not in called and "unused_act" not in called and torch.sigmoid not in called
    ref = Chain()
    ref.load_state_dict({k: v for k, v in gm.state_dict().items() if not k.startswith("unused")})
    x = torch.randn(2, 3, 8, 8)
    gm.eval()
    ref.eval()
    assert_same(gm(x), ref(x))
    keys = list(gm.state_dict())
    assert list(copy.deepcopy(gm).state_dict()) == keys
    buf = io.BytesIO()
    torch.save(gm, buf)
    buf.seek(0)
    assert list(torch.load(buf, weights_only=False).state_dict()) == keys
    assert idle_layers(compile_graph(chain_graph())) == []


def test_demo_lenet_compiles_with_analysis_totals() -> None:
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    gm = compile_graph(project.graph, seed=0)
    assert sum(p.numel() for p in gm.parameters()) == 62006
    assert gm(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_meta_device_builds_shapes_only() -> None:
    gm = compile_graph(chain_graph(), device="meta")
    assert gm.conv.weight.is_meta


class _Halves(nn.Module):
    """A module returning a tuple: the two channel halves, the second one scaled."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels // 2, 1, 1), 2.0))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x.chunk(2, 1)
        return a, b * self.scale


def test_module_returning_a_tuple(monkeypatch: pytest.MonkeyPatch) -> None:
    """from_port picks one output of a multi-output *module* through operator.getitem."""
    from core.export import ExportError, python_source
    from core.layers import registry
    from core.layers.spec import Category, Inferred, LayerSpec

    def infer(p: object, shapes: list[tuple[int, ...]]) -> Inferred:
        c, *rest = shapes[0]
        return Inferred(out_shapes=((c // 2, *rest), (c // 2, *rest)), args={"channels": c}, params=c // 2)

    spec = LayerSpec(type="TestHalves", category=Category.SHAPE, doc="test only", params=(), infer=infer,
                     build=lambda p: _Halves(p["channels"]), num_outputs=lambda p: 2)
    monkeypatch.setitem(registry._SPECS, spec.type, spec)  # registered for this test only
    g = Graph()
    g.add_node("Input", "input", {"shape": [4, 2, 2]})
    g.add_node("TestHalves", "halves")
    g.add_node("Add", "add")
    g.add_node("Output", "output")
    g.add_edge("input", "halves")
    g.add_edge("halves", "add", port=0, from_port=1)
    g.add_edge("halves", "add", port=1, from_port=0)
    g.add_edge("add", "output")
    gm = compile_graph(g)
    assert sum(1 for n in gm.graph.nodes if n.target is operator.getitem) == 2
    x = torch.randn(3, 4, 2, 2)
    assert_same(gm(x), x[:, 2:] * 2.0 + x[:, :2])
    assert list(gm.state_dict()) == ["halves.scale"]
    with pytest.raises(ExportError, match=r"halves: TestHalves builds tests\.core\.test_compiler\._Halves"):
        python_source(g)
