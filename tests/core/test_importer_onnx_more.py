"""ONNX import, continued: LayerNorm exported below opset 17 (the ReduceMean, Sub, Pow, ReduceMean,
Add, Sqrt, Div, Mul, Add chain torch writes there) comes back as one LayerNorm node, with the
source's parameters and onnxruntime's outputs; a chain read elsewhere, or constants that are no
LayerNorm weights, stay the ops they are.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.compiler import compile_graph
from core.importer.errors import ModelImportError
from core.importer.onnx_import import import_onnx


def _export(model: nn.Module, path: Path, shape: tuple[int, ...], opset: int) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, *shape),), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}}, do_constant_folding=False)
    return path


def _ort(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


class Tokens(nn.Module):
    """Linear → LayerNorm → GELU over the last axis of a sequence."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.norm = norm
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.fc(x)))


@pytest.mark.parametrize("opset", [11, 13, 14])
@pytest.mark.parametrize("norm", [nn.LayerNorm(8), nn.LayerNorm(8, eps=1e-6, bias=False), nn.LayerNorm([5, 8]),
                                  nn.LayerNorm(8, elementwise_affine=False)],
                         ids=["affine", "no-bias", "two-axes", "plain"])
def test_decomposed_layer_norm_folds_back(tmp_path: Path, opset: int, norm: nn.LayerNorm) -> None:
    torch.manual_seed(0)
    source = Tokens(norm)
    if norm.weight is not None:
        nn.init.uniform_(norm.weight, 0.5, 1.5)
    if norm.bias is not None:
        nn.init.uniform_(norm.bias, -0.5, 0.5)
    path = _export(source, tmp_path / "m.onnx", (5, 8), opset)
    graph, state = import_onnx(path)
    types = [n.type for n in graph.nodes.values()]
    assert types.count("LayerNorm") == 1
    assert not {"Mean", "Subtract", "Divide", "Multiply", "Parameter"} & set(types)
    (node,) = [n for n in graph.nodes.values() if n.type == "LayerNorm"]
    assert node.params["normalized_shape"] == list(norm.normalized_shape)
    assert node.params.get("eps", 1e-5) == norm.eps
    model = compile_graph(graph)
    model.load_state_dict(state, strict=True)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in source.parameters())
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        got = model(x)
        want = source(x)
    np.testing.assert_allclose(got.numpy(), _ort(path, x), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


class MeanUsedTwice(nn.Module):
    """The chain's first mean is also read elsewhere: nothing may be folded away."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        d = x - mean
        y = d / torch.sqrt((d * d).mean(-1, keepdim=True) + 1e-5)
        return y * mean


def test_a_chain_read_elsewhere_is_not_folded(tmp_path: Path) -> None:
    path = _export(MeanUsedTwice(), tmp_path / "m.onnx", (4, 6), 14)
    with pytest.raises(ModelImportError, match=r"node '/Sqrt' \(Sqrt\): NetCanvas has no layer type"):
        import_onnx(path)


class ScaledAfter(nn.Module):
    """A plain LayerNorm, then a scale per position (4×1), which is no LayerNorm weight (8)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(8, elementwise_affine=False)
        self.gain = nn.Parameter(torch.rand(4, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gain


def test_a_constant_of_another_shape_stays_a_multiply(tmp_path: Path) -> None:
    path = _export(ScaledAfter(), tmp_path / "m.onnx", (4, 8), 13)
    graph, state = import_onnx(path)
    types = sorted(n.type for n in graph.nodes.values())
    assert types == ["Input", "LayerNorm", "Multiply", "Output", "Parameter"]
    model = compile_graph(graph).eval()
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), _ort(path, x), rtol=1e-4, atol=1e-5)


class ScalarGain(nn.Module):
    """A learned scalar (ReZero's α) next to literal numbers: the one stays a Parameter, the others are Scales."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.alpha = nn.Parameter(torch.tensor([0.3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv(x) * self.alpha + 1.5) / 4.0


def test_a_learned_scalar_stays_a_parameter_and_literals_become_scales(tmp_path: Path) -> None:
    source = ScalarGain()
    path = _export(source, tmp_path / "m.onnx", (3, 6, 6), 17)
    graph, state = import_onnx(path)
    types = sorted(n.type for n in graph.nodes.values())
    assert types == ["Conv2d", "Input", "Multiply", "Output", "Parameter", "Scale", "Scale"]
    model = compile_graph(graph).eval()
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in source.parameters())
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).numpy(), _ort(path, x), rtol=1e-5, atol=1e-6)
