"""Importer on small hand-written modules: every functional op it maps, ids, groups, refusals.

Each model is imported, compiled, loaded with the source's weights and run next to the source
(eval mode): the outputs must be equal, and so must the state_dict keys. Refusals must name the
operation and the module path. torchvision's own models are in test_importer_torchvision.py.
"""

from __future__ import annotations

import operator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph
from core.graph import id_problem
from core.importer import ModelImportError, import_module, import_with_weights


def roundtrip(module: nn.Module, shape: tuple[int, ...]) -> tuple[Any, nn.Module, torch.Tensor]:
    """Import with weights, compile, load strictly; return (graph, compiled, max |difference|)."""
    torch.manual_seed(0)
    module.eval()
    graph, state = import_with_weights(module, shape)
    compiled = compile_graph(graph)
    compiled.load_state_dict(state, strict=True)
    compiled.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        want, got = module(x), compiled(x)
    wants = want if isinstance(want, tuple) else (want,)
    gots = got if isinstance(got, tuple) else (got,)
    assert len(wants) == len(gots)
    diff = max((a - b).abs().max() for a, b in zip(wants, gots, strict=True))
    return graph, compiled, diff


def types(graph: Any) -> dict[str, str]:
    return {nid: n.type for nid, n in graph.nodes.items()}


class Block(nn.Module):
    """A residual block with functional relu, an SE gate and a channel shuffle."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.fc1 = nn.Conv2d(c, 2, 1)
        self.fc2 = nn.Conv2d(2, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)), inplace=True)
        gate = F.hardsigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(out, 1)))))
        out = out * gate
        b, c, h, w = out.size()
        out = out.view(b, 2, c // 2, h, w)
        out = torch.transpose(out, 1, 2).contiguous().view(b, -1, h, w)
        return out + x


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1 = nn.Sequential(Block(8), Block(8))
        self.head = nn.Linear(8 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.stem(x), 2)
        x = self.layer1(x)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([F.avg_pool2d(a, 3, stride=1, padding=1), b.sigmoid()], 1)
        x = x.mean((2, 3), keepdim=True)
        x = x.view(x.size(0), -1)
        x = torch.cat([x, x], dim=1)
        x = F.dropout(x, 0.2, training=self.training)
        return self.head(x)


def test_functional_ops_become_layer_types_and_outputs_match() -> None:
    graph, _, diff = roundtrip(Net(), (3, 16, 16))
    assert diff == 0
    t = types(graph)
    assert t["input"] == "Input" and t["output"] == "Output"
    assert t["stem"] == "Conv2d" and t["head"] == "Linear"
    assert t["layer1.0.relu"] == "ReLU" and graph.nodes["layer1.0.relu"].params == {"inplace": True}
    assert t["layer1.0.hardsigmoid"] == "Hardsigmoid"
    assert t["layer1.0.adaptive_avg_pool2d"] == "AdaptiveAvgPool2d"
    assert t["layer1.0.mul"] == "Multiply" and t["layer1.0.add"] == "Add"
    assert t["layer1.0.channel_shuffle"] == "ChannelShuffle"
    # torch requires groups, so it is written out even though it equals our default
    assert graph.nodes["layer1.0.channel_shuffle"].params == {"groups": 2}
    assert t["max_pool2d"] == "MaxPool2d" and graph.nodes["max_pool2d"].params == {"kernel_size": 2}
    assert t["avg_pool2d"] == "AvgPool2d"
    assert graph.nodes["avg_pool2d"].params == {"kernel_size": 3, "stride": 1, "padding": 1}
    assert t["chunk"] == "Chunk" and t["sigmoid"] == "Sigmoid"
    assert t["mean"] == "Mean" and graph.nodes["mean"].params == {"keepdim": True}  # dim [2, 3] is the default
    assert t["flatten"] == "Flatten" and t["dropout"] == "Dropout"
    assert graph.nodes["dropout"].params == {"p": 0.2}
    # the two chunk outputs are wired by from_port
    assert {(e.dst, e.from_port) for e in graph.out_edges("chunk")} == {("avg_pool2d", 0), ("sigmoid", 1)}
    assert sorted(t.values()).count("Concat") == 2
    # no view/transpose/contiguous/size nodes survive
    assert not {"Reshape", "Transpose"} & set(t.values())
    for nid in graph.nodes:
        assert id_problem(nid) is None


def test_node_ids_keep_module_paths_and_weights_load_strictly() -> None:
    net = Net()
    graph, compiled, _ = roundtrip(net, (3, 16, 16))
    assert set(compiled.state_dict()) == set(net.state_dict())
    for path, m in net.named_modules():
        if not list(m.children()) and path:
            assert path in graph.nodes


def test_groups_follow_the_module_hierarchy() -> None:
    graph = import_module(Net(), (3, 16, 16))
    assert graph.groups["layer1"].label == "Sequential"
    assert graph.groups["layer1"].members == ["layer1.0", "layer1.1"]
    assert graph.groups["layer1.0"].label == "Block"
    assert "layer1.0.conv" in graph.groups["layer1.0"].members
    assert "layer1.0.add" in graph.groups["layer1.0"].members  # functional ops join their module's group
    assert graph.parent_group("stem") is None and graph.parent_group("input") is None


def test_layout_is_top_to_bottom() -> None:
    graph = import_module(Net(), (3, 16, 16))
    pos = {nid: n.pos for nid, n in graph.nodes.items()}
    assert all(p is not None for p in pos.values())
    for e in graph.edges:
        assert pos[e.src][1] < pos[e.dst][1]  # type: ignore[index]


def test_analysis_agrees_with_torch_for_every_node() -> None:
    net = Net().eval()
    graph = import_module(net, (3, 16, 16))
    result = analyze(graph)
    assert result.ok and result.total_params == sum(p.numel() for p in net.parameters())
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, p=p: seen.__setitem__(p, tuple(o.shape[1:])))
             for p, m in net.named_modules() if p and not list(m.children())]
    with torch.no_grad():
        net(torch.randn(2, 3, 16, 16))
    for h in hooks:
        h.remove()
    assert seen
    for path, shape in seen.items():
        assert result.nodes[path].out_shapes == (shape,), path


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.relu = nn.ReLU()
        self.add = nn.Identity()  # a real module named like a functional op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv(x))
        return self.add(self.relu(y) + x)


def test_parameter_free_module_called_twice_gets_two_nodes_and_ids_never_clash() -> None:
    graph, _, diff = roundtrip(Shared(), (3, 4, 4))
    assert diff == 0
    t = types(graph)
    assert t["relu"] == "ReLU" and t["relu_1"] == "ReLU"
    assert t["add"] == "Identity"  # the module keeps its path; the functional add took another id
    assert sorted(t.values()).count("Add") == 1
    assert next(nid for nid, ty in t.items() if ty == "Add") not in ("add", "relu", "conv")


class SharedWeights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


def test_weight_sharing_is_refused() -> None:
    with pytest.raises(ModelImportError, match=r"module 'conv' \(Conv2d\) is called 2 times, sharing its weights"):
        import_module(SharedWeights(), (3, 4, 4))


class Dynamic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 3, 1), Gate())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            return x
        return -x


def test_untraceable_module_gives_a_clear_message() -> None:
    with pytest.raises(ModelImportError) as info:
        import_module(Dynamic(), (3, 4, 4))
    message = str(info.value)
    assert "torch.fx cannot trace Dynamic in module 'body.1' (Gate)" in message
    assert "depends on tensor values" in message
    assert info.value.path == "body.1"
    assert "Traceback" not in message


class Einsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Conv2d(3, 3, 1), Mixer())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class Mixer(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bchw,bchw->bchw", x, x)


class Indexing(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, [0, 2]] + 1  # a list of positions: no Slice or Select does that


class Unknown(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.spare = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


@pytest.mark.parametrize(("module", "shape", "pattern"), [
    (Einsum(), (3, 4, 4), r"cannot import the function torch.einsum in module 'inner.1' \(Mixer\): "
                          r"NetCanvas has no layer type for it"),
    (Indexing(), (3, 4, 4), r"cannot import indexing a tensor as x\[:, \[0, 2\]\] in Indexing.forward: only "
                            r"constant ints and slices"),
    (Unknown(), (3, 4), r"cannot import module 'rnn' \(GRU\) with batch_first=False in module 'rnn' \(GRU\): .*"
                        r"construct it with batch_first=True"),
    (Unused(), (4,), r"Unused.forward never uses spare.weight, spare.bias: importing would drop these weights"),
], ids=["einsum", "indexing", "gru", "unused"])
def test_refusals_name_the_operation_and_the_module(module: nn.Module, shape: tuple[int, ...], pattern: str) -> None:
    with pytest.raises(ModelImportError, match=pattern):
        import_module(module, shape)


def test_wrong_input_shape_is_reported_not_raised_from_torch() -> None:
    with pytest.raises(ModelImportError, match=r"Net does not run on a 5×16×16 input: .* check the input shape"):
        import_module(Net(), (5, 16, 16))
    with pytest.raises(ModelImportError, match="input shape must be positive sizes"):
        import_module(Net(), (3, 0, 16))


def test_source_module_is_left_as_it_was() -> None:
    net = Net()
    net.layer1.eval()  # mixed modes must come back exactly
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = {p: m.training for p, m in net.named_modules()}
    import_module(net, (3, 16, 16))
    assert {p: m.training for p, m in net.named_modules()} == modes
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics untouched


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 4)
        self.aux = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.body(x))
        return h, self.aux(h)


def test_tuple_outputs_become_several_outputs() -> None:
    graph, _, diff = roundtrip(TwoHeads(), (6,))
    assert diff == 0
    assert [nid for nid, n in graph.nodes.items() if n.type == "Output"] == ["output", "output_1"]


class Channels(nn.Module):
    """ConvNeXt-style parts: channels-last Linear between Permutes, stochastic depth, LayerNorm2d."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.block = nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1, groups=4), torchvision.ops.Permute([0, 2, 3, 1]), nn.LayerNorm(4),
            nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4), torchvision.ops.Permute([0, 3, 1, 2]))
        self.stochastic_depth = torchvision.ops.StochasticDepth(0.1, "row")
        from torchvision.models.convnext import LayerNorm2d

        self.norm = LayerNorm2d(4, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stochastic_depth(self.block(x))
        y += x
        y = y.permute(0, 2, 3, 1).reshape(x.size(0), -1, 4).transpose(1, 2)
        return self.norm(y.reshape(x.size(0), 4, 5, 5))


def test_convnext_style_parts_keep_their_state_dict_keys() -> None:
    graph, compiled, diff = roundtrip(Channels(), (4, 5, 5))
    assert diff < 1e-6
    t = types(graph)
    assert t["block.1"] == "Permute" and graph.nodes["block.1"].params == {"dims": [2, 3, 1]}
    assert graph.nodes["block.6"].params == {"dims": [3, 1, 2]}
    assert t["stochastic_depth"] == "StochasticDepth"
    assert graph.nodes["stochastic_depth"].params == {"p": 0.1, "mode": "row"}
    assert t["norm"] == "LayerNorm2d" and graph.nodes["norm"].params == {"eps": 1e-6}
    assert graph.nodes["block.2"].params == {}  # LayerNorm's normalized_shape follows the input
    assert {"Reshape", "Transpose"} <= set(t.values())
    assert set(compiled.state_dict()) == set(Channels().state_dict())


class Residual(nn.Module):
    """A layer scale owned by a block, like torchvision's CNBlock: the node takes the block's path."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(Scaled(), Scaled())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.layer_scale = nn.Parameter(torch.full((3, 1, 1), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.conv(x)


def test_layer_scale_node_takes_its_owner_path() -> None:
    net = Residual()
    graph, compiled, diff = roundtrip(net, (3, 4, 4))
    assert diff == 0
    assert graph.nodes["blocks.0"].type == "LayerScale"
    assert graph.nodes["blocks.0"].params == {"init_value": 0.5}
    # the block's group cannot share the node's id, so it takes a close one
    group = graph.parent_group("blocks.0")
    assert group is not None and graph.groups[group].label == "Scaled"
    assert "blocks.0.conv" in graph.groups[group].members
    assert set(compiled.state_dict()) == set(net.state_dict())


class Dashed(nn.Module):
    """Module names that are not identifiers (RegNet's ``block1-0``)."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential()
        self.trunk.add_module("block1-0", nn.Conv2d(3, 4, 1))
        self.trunk.add_module("block1_0", nn.Conv2d(4, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


def test_invalid_module_names_become_valid_ids_and_weights_follow() -> None:
    graph, compiled, diff = roundtrip(Dashed(), (3, 4, 4))
    assert diff == 0
    assert graph.nodes["trunk.block1_0"].type == "Conv2d"  # the valid name keeps its id
    renamed = [nid for nid in graph.nodes if nid.startswith("trunk.") and nid != "trunk.block1_0"]
    assert len(renamed) == 1 and id_problem(renamed[0]) is None
    assert f"{renamed[0]}.weight" in compiled.state_dict()


class Sections(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = torch.split(x, [1, 2, 3], dim=1)
        d, e = x.split(3, 1)
        return operator.add(torch.cat([c, b, a], 1), torch.cat([e, d], 1)).permute(0, 2, 1)


def test_split_and_permute() -> None:
    graph, _, diff = roundtrip(Sections(), (6, 5))
    assert diff == 0
    splits = {nid: n.params for nid, n in graph.nodes.items() if n.type == "Split"}
    assert sorted(map(str, splits.values())) == ["{'sections': [1, 2, 3]}", "{'sections': [3, 3]}"]
    assert next(n.params for n in graph.nodes.values() if n.type == "Permute") == {"dims": [2, 1]}


def test_convnext_per_position_linear_is_not_flagged() -> None:
    """ConvNeXt's MLP is a Linear over H×W×C: no "insert Flatten" warning, and a local receptive field."""
    from core.analysis import analyze
    from core.importer import import_torchvision

    project = import_torchvision("convnext_tiny")
    result = analyze(project.graph)
    assert result.ok
    assert not [d for d in result.diagnostics if d.severity.value == "warning"]
    mlp = result.nodes["features.1.0.block.3"]
    assert mlp.type == "Linear" and mlp.rf is not None and mlp.rf.size is not None
