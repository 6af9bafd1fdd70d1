"""ONNX import (issue 12 §2): torch models exported to ONNX come back as graphs whose compiled
module gives onnxruntime's outputs, with the source's parameters; our own export round-trips;
unsupported ops and broken files are refused in one line; ``main.py import x.onnx`` writes a
project and its weights.

Small models go through torch's TorchScript exporter (a tenth of a second each) with constant
folding off, so BatchNormalization stays a node and the parameters compare one to one; the round
trips use our own export (torch's dynamo exporter, which folds BatchNorm into the convolution).
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from core.analysis import analyze
from core.cli import main
from core.compiler import compile_graph
from core.export import export_onnx
from core.importer.errors import ModelImportError
from core.importer.onnx_import import import_onnx, import_onnx_project
from core.project import load_project
from core.sources import load_source


def _ort(path: Path, x: torch.Tensor) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def _export(model: nn.Module, path: Path, shape: tuple[int, ...], opset: int = 17) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}}, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    return path


def _imported(path: Path) -> tuple[Any, nn.Module]:
    graph, state = import_onnx(path)
    model = compile_graph(graph, seed=1)
    model.load_state_dict(state, strict=True)
    return graph, model.eval()


def _same_outputs(model: nn.Module, path: Path, x: torch.Tensor) -> None:
    with torch.no_grad():
        got = model(x)
    got = got if isinstance(got, (tuple, list)) else (got,)
    want = _ort(path, x)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-5)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _stats(m: nn.Module) -> nn.Module:
    """Running statistics that are not the identity, so a BatchNorm imported wrongly shows."""
    g = torch.Generator().manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
    return m


class Classifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)
        self.act = nn.ReLU6()
        self.pool = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.avg = nn.AvgPool2d(2, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avg(self.pool(self.act(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(self.gap(x), 1))


class Mobile(nn.Module):
    """Depthwise convolutions, a squeeze-excitation gate, a residual, split and concat, activations."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8)
        self.se = nn.Conv2d(8, 8, 1)
        self.prelu = nn.PReLU(8)
        self.pw = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardswish(self.bn(self.stem(x)))
        y = F.silu(self.dw(x))
        y = y * F.hardsigmoid(self.se(F.adaptive_avg_pool2d(y, 1)))
        x = self.prelu(x + y)
        a, b = torch.split(x, [4, 4], dim=1)
        x = torch.cat([F.gelu(self.pw(a)), F.leaky_relu(b, 0.2)], dim=1)
        x = F.elu(torch.tanh(x)) + F.mish(F.softplus(x))
        return F.log_softmax(F.adaptive_max_pool2d(x, 1).flatten(1), dim=1)


class Decoder(nn.Module):
    """Upsampling, padding, reordering, a per-position Linear (MatMul + Add) and LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 2, stride=2)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.up(x), scale_factor=2, mode="bilinear", align_corners=False)
        x = F.interpolate(F.pad(x, (1, 1, 2, 0)), size=(12, 10), mode="nearest")
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        x = x.permute(0, 2, 3, 1)  # N×H×W×C for the channels-last layers
        x = self.head(self.norm(x))
        return torch.softmax(x.reshape(x.size(0), -1, 3).transpose(1, 2), dim=1)


class Resampler(nn.Module):
    """Constant and edge padding, the resize modes, and a squeeze the exporter writes as an If."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(F.relu6(self.conv(x)), (1, 2, 0, 1), value=0.25)
        x = F.interpolate(F.pad(x, (1, 1, 1, 1), mode="replicate"), scale_factor=2, mode="nearest")
        x = F.interpolate(x, size=(30, 31), mode="bilinear", align_corners=True)
        x = F.avg_pool2d(F.interpolate(x, scale_factor=0.5, mode="bicubic"), 3, 2, padding=1)
        return torch.sigmoid(x).squeeze(1).unsqueeze(1)


class Sequence1d(nn.Module):
    """C×L: 1-D layers, slicing and indexing by constants, a product of two tensors, − and /, sum and max."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.bn = nn.BatchNorm1d(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool1d(F.max_pool1d(torch.relu(self.bn(self.conv(x))), 2), 2, count_include_pad=False, padding=1)
        a, b = x[:, :2], x[:, 2:5:2]
        attention = torch.softmax(x.transpose(1, 2) @ x, dim=-1)
        y = (a - b) / (torch.sigmoid(b) + torch.sigmoid(a))
        return torch.cat([y.sum(dim=2), x.amax(dim=2), attention[:, 0]], dim=1)


class Volume(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool3d(F.max_pool3d(torch.relu(self.bn(self.conv(x))), 2), 1).flatten(1)


@pytest.mark.parametrize(("make", "shape", "opset"), [
    (Classifier, (3, 16, 16), 17), (Classifier, (3, 16, 16), 11), (Mobile, (3, 16, 16), 17),
    (Mobile, (3, 16, 16), 13), (Decoder, (4, 3, 3), 17), (Resampler, (3, 12, 12), 11), (Resampler, (3, 12, 12), 20),
    (Sequence1d, (4, 16), 11), (Volume, (2, 8, 8, 8), 17),
], ids=["classifier", "classifier-opset11", "mobile", "mobile-opset13", "decoder", "resampler-opset11",
        "resampler-opset20", "sequence-1d", "volume-3d"])
def test_exported_models_give_onnxruntimes_outputs_with_the_sources_parameters(
        tmp_path: Path, make: type[nn.Module], shape: tuple[int, ...], opset: int) -> None:
    torch.manual_seed(0)
    source = _stats(make()).eval()
    path = _export(source, tmp_path / "m.onnx", shape, opset)
    _, model = _imported(path)
    x = torch.randn(3, *shape)  # exported with a batch of 1, run with 3
    _same_outputs(model, path, x)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), source(x).numpy(), rtol=1e-4, atol=1e-5)
    assert _params(model) == _params(source)
    # the weights keep their names wherever the source's are valid ids
    keys = set(source.state_dict())
    assert keys <= set(model.state_dict()) | {k for k in keys if k.startswith("prelu.")}


def test_node_types_and_settings_are_read_back(tmp_path: Path) -> None:
    graph, _ = _imported(_export(_stats(Classifier()), tmp_path / "c.onnx", (3, 16, 16)))
    nodes = graph.nodes
    assert [n.type for n in nodes.values()] == ["Input", "Conv2d", "BatchNorm2d", "ReLU6", "MaxPool2d", "AvgPool2d",
                                                "AdaptiveAvgPool2d", "Flatten", "Linear", "Output"]
    assert nodes["bn"].params == {"eps": 0.001, "momentum": 0.01}
    assert nodes["pool"].params["ceil_mode"] is True
    assert nodes["avg"].params["count_include_pad"] is False
    assert nodes["fc"].params == {"out_features": 5}
    assert all(n.pos is not None for n in nodes.values())  # laid out


def test_lenet_round_trips_through_our_export(tmp_path: Path) -> None:
    graph = load_source("template:lenet5").graph
    source = compile_graph(graph, seed=3).eval()
    path = export_onnx(graph, tmp_path / "lenet.onnx", model=source)
    back, model = _imported(path)
    assert [(n.id, n.type, n.params) for n in back.nodes.values()] == \
        [(n.id, n.type, n.params) for n in graph.nodes.values()]
    assert [(e.src, e.dst) for e in back.edges] == [(e.src, e.dst) for e in graph.edges]
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in source.state_dict().items()}
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), source(x).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # torch's dynamo exporter takes several seconds for a ResNet
def test_resnet18_round_trips_to_the_same_layers_and_weights(tmp_path: Path) -> None:
    graph = load_source("template:resnet18_cifar").graph
    source = _stats(compile_graph(graph, seed=0)).eval()
    path = export_onnx(graph, tmp_path / "r18.onnx", model=source)
    back, model = _imported(path)
    # our export keeps every BatchNorm (torch's optimiser would fold it into the conv before it) and
    # no zero conv bias is added: the same layer types, and every layer with weights keeps its id
    assert Counter(n.type for n in back.nodes.values()) == Counter(n.type for n in graph.nodes.values())
    weighted = {nid for nid, n in graph.nodes.items() if n.type in ("Conv2d", "BatchNorm2d", "Linear")}
    assert weighted <= set(back.nodes)
    assert {nid: back.nodes[nid].params for nid in weighted} == {nid: graph.nodes[nid].params for nid in weighted}
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in source.parameters())
    # one block per module path, as the torch importer makes them: layer1 holds layer1.0 and layer1.1
    assert back.groups["layer1"].members == ["layer1.0", "layer1.1"]
    assert {"layer1.0.conv1", "layer1.0.conv2"} <= set(back.groups["layer1.0"].members)
    x = torch.randn(2, 3, 32, 32)
    _same_outputs(model, path, x)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), source(x).numpy(), rtol=1e-4, atol=1e-4)


class TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv(x))
        return h, self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def test_open_sizes_need_an_input_shape_and_every_output_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TwoHeads().eval(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False,
                          input_names=["x"], output_names=["features", "logits"],
                          dynamic_axes={"x": {0: "n", 2: "height", 3: "width"}})
    with pytest.raises(ModelImportError, match=r"input 'x' has no fixed size at axis 2 \('height'\); give the sizes"):
        import_onnx(path)
    graph, state = import_onnx(path, input_shape=(3, 20, 24))
    assert graph.nodes["input"].params["shape"] == [3, 20, 24]
    assert [nid for nid, n in graph.nodes.items() if n.type == "Output"] == ["features", "logits"]
    model = compile_graph(graph)
    model.load_state_dict(state, strict=True)
    _same_outputs(model.eval(), path, torch.randn(2, 3, 20, 24))


class Constants(nn.Module):
    """Tensors used directly: a normalisation baked in, a layer scale, a positional embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gamma = nn.Parameter(torch.rand(4, 1, 1))
        self.pos = nn.Parameter(torch.rand(1, 4, 8, 8))
        self.register_buffer("mean", torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2.0 - (self.conv((x - self.mean) / 0.25) * self.gamma + self.pos)


def test_constant_operands_become_parameter_nodes(tmp_path: Path) -> None:
    source = Constants().eval()
    path = _export(source, tmp_path / "k.onnx", (3, 8, 8))
    graph, model = _imported(path)
    _same_outputs(model, path, torch.randn(2, 3, 8, 8))
    params = {nid: n.params["shape"] for nid, n in graph.nodes.items() if n.type == "Parameter"}
    assert params["gamma"] == [4, 1, 1] and params["pos"] == [4, 8, 8]
    assert sorted(params.values()) == [[3, 1, 1], [4, 1, 1], [4, 8, 8]]
    # the scalars are Scale nodes, as the torch importer makes them: / 0.25 is × 4, 2 − y is y × −1 + 2
    scales = sorted((n.params.get("factor", 1.0), n.params.get("offset", 0.0))
                    for n in graph.nodes.values() if n.type == "Scale")
    assert scales == [(-1.0, 2.0), (4.0, 0.0)]
    assert _params(model) == _params(source) + 3  # the mean buffer is a tensor too


def _tiny(op: str, name: str, **attrs: Any) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4, 4])
    relu = helper.make_node("Relu", ["x"], ["r"], name="first")
    node = helper.make_node(op, ["r", "r"], ["y"], name=name, **attrs)
    return helper.make_model(helper.make_graph([relu, node], "tiny", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17)])


def test_an_unsupported_op_is_refused_naming_its_type_and_node(tmp_path: Path) -> None:
    path = tmp_path / "einsum.onnx"
    onnx.save(_tiny("Einsum", "mix/attention", equation="bij,bkj->bik"), path)
    with pytest.raises(ModelImportError) as err:
        import_onnx(path)
    text = str(err.value)
    assert "\n" not in text
    assert "node 'mix/attention' (Einsum)" in text and "no layer type" in text


def test_same_padding_and_a_gemm_without_transpose_match_onnxruntime(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [6, 3, 3, 3], rng.standard_normal(162).astype(np.float32))
    g = helper.make_tensor("g", TensorProto.FLOAT, [54, 7], rng.standard_normal(378).astype(np.float32))
    c = helper.make_tensor("c", TensorProto.FLOAT, [7], rng.standard_normal(7).astype(np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2]),
             helper.make_node("Flatten", ["h"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "g", "c"], ["y"], name="fc", alpha=0.5, beta=2.0)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 7])
    path = tmp_path / "same.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "same", [x], [y], [w, g, c]),
                                opset_imports=[helper.make_opsetid("", 13)]), path)
    graph, model = _imported(path)
    assert [n.type for n in graph.nodes.values()] == ["Input", "ZeroPad2d", "Conv2d", "Flatten", "Linear", "Output"]
    _same_outputs(model, path, torch.randn(2, 3, 6, 6))


@pytest.mark.parametrize(("content", "message"), [
    (b"", "holds no graph"),
    (b"\x08\x07\x12\x05hello\xff\xff", "is not a readable ONNX model"),
    (None, "is not a readable ONNX model"),  # the LeNet export cut in half
], ids=["empty", "garbage", "truncated"])
def test_a_broken_file_is_one_line_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "broken.onnx"
    if content is None:
        whole = _export(Classifier(), tmp_path / "whole.onnx", (3, 16, 16)).read_bytes()
        content = whole[: len(whole) // 2]
    path.write_bytes(content)
    with pytest.raises(ModelImportError) as err:
        import_onnx(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value) and "\n" not in str(err.value)


def test_cli_writes_the_project_and_its_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _stats(Classifier()).eval()
    onnx_path = _export(source, tmp_path / "net.onnx", (3, 16, 16))
    target = tmp_path / "net.json"
    assert main(["import", str(onnx_path), "-o", str(target)]) == 0
    out = capsys.readouterr()
    assert out.err == "" and len(out.out.strip().splitlines()) == 1
    assert out.out.strip().endswith(f"→ {target} + weights {tmp_path / 'net.pt'}")
    project = load_project(target)
    model = compile_graph(project.graph)
    model.load_state_dict(torch.load(tmp_path / "net.pt", weights_only=True), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(model.eval()(x).numpy(), source(x).numpy(), rtol=1e-4, atol=1e-5)


def test_cli_refuses_a_broken_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model at all")
    assert main(["import", str(bad), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "not a readable ONNX model" in err
    assert not (tmp_path / "x.json").exists()


def test_every_command_takes_an_onnx_file_as_its_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    onnx_path = _export(_stats(Classifier()).eval(), tmp_path / "net.onnx", (3, 16, 16))
    assert main(["summary", str(onnx_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    want = analyze(import_onnx_project(onnx_path)[0].graph)
    assert summary["total_params"] == want.total_params and summary["input_shape"] == [3, 16, 16]
    assert main(["export", str(onnx_path), "-o", str(tmp_path / "net.py")]) == 0
    assert "class " in (tmp_path / "net.py").read_text(encoding="utf-8")
    capsys.readouterr()
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(onnx_path.read_bytes()[:300])
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {bad}: not a readable ONNX model (truncated or another format?): it does not parse"


class Clipped(nn.Module):
    """A clip to bounds other than ReLU6's, as a module and as a function."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.clip = nn.Hardtanh(-0.5, 2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(self.clip(self.conv(x)) * 3.0, -1.0, 1.5)


def test_a_clip_to_any_bounds_is_a_hardtanh_from_onnx_and_from_torch(tmp_path: Path) -> None:
    from core.importer import import_with_weights

    source = Clipped().eval()
    path = _export(source, tmp_path / "clip.onnx", (3, 8, 8))
    graph, model = _imported(path)
    clips = [(n.params.get("min_val", -1.0), n.params.get("max_val", 1.0))  # torch's defaults are left out
             for n in graph.nodes.values() if n.type == "Hardtanh"]
    assert clips == [(-0.5, 2.0), (-1.0, 1.5)]
    x = torch.randn(2, 3, 8, 8) * 2
    _same_outputs(model, path, x)
    imported, state = import_with_weights(source, (3, 8, 8))  # the torch importer: module and F.hardtanh
    assert [n.type for n in imported.nodes.values()].count("Hardtanh") == 2
    compiled = compile_graph(imported)
    compiled.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled.eval()(x), source(x))
