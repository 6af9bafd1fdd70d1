"""core.explain: Grad-CAM where the answer is known, top-k, image loading, receptive-field regions,
kernel tiles and run comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.analysis import ReceptiveField, analyze
from core.compiler import compile_graph
from core.explain import (
    ExplainError,
    colormap,
    conv_weights,
    diff_configs,
    diff_graphs,
    gradcam,
    kernel_grid,
    load_image,
    normalize_channels,
    overlay,
    rf_region,
    rgb_tiles,
    scale_position,
    top_k,
)
from core.graph import Graph


def colour_graph(with_add: bool = False) -> Graph:
    """Input 3×16×16 → conv (2 ch: red, green detectors) → relu → global pool → flatten → fc → Output."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 16, 16]})
    g.add_node("Conv2d", "conv", {"out_channels": 2, "kernel_size": 3, "padding": 1})
    g.add_node("ReLU", "relu")
    g.add_node("AdaptiveAvgPool2d", "pool", {"output_size": 1})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 2})
    g.add_node("Output", "output")
    g.add_edge("input", "conv")
    g.add_edge("conv", "relu")
    if with_add:
        g.add_node("Add", "add")
        g.add_edge("relu", "add")
        g.add_edge("relu", "add")
        g.add_edge("add", "pool")
    else:
        g.add_edge("relu", "pool")
    for a, b in (("pool", "flat"), ("flat", "fc"), ("fc", "output")):
        g.add_edge(a, b)
    return g


def colour_model(with_add: bool = False) -> nn.Module:
    """Class 0's score is the red response, class 1's the green one: each depends on one colour only."""
    model = compile_graph(colour_graph(with_add))
    with torch.no_grad():
        conv = model.get_submodule("conv")
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # channel 0 sees red
        conv.weight[1, 1, 1, 1] = 1.0  # channel 1 sees green
        fc = model.get_submodule("fc")
        fc.weight.copy_(torch.eye(2))
        fc.bias.zero_()
    return model


def quadrant_image() -> torch.Tensor:
    """Red square in the top-left quadrant, green square in the bottom-right one."""
    x = torch.zeros(3, 16, 16)
    x[0, 1:7, 1:7] = 1.0
    x[1, 9:15, 9:15] = 1.0
    return x


def quadrant_means(heat: np.ndarray) -> dict[str, float]:
    return {"tl": float(heat[:8, :8].mean()), "tr": float(heat[:8, 8:].mean()),
            "bl": float(heat[8:, :8].mean()), "br": float(heat[8:, 8:].mean())}


@pytest.mark.parametrize("node", ["conv", "relu"])
def test_gradcam_heat_lies_in_the_quadrant_the_class_depends_on(node: str) -> None:
    model = colour_model()
    x = quadrant_image()
    red = gradcam(model, x, node, class_index=0)
    green = gradcam(model, x, node, class_index=1)
    assert red.heatmap.shape == (16, 16) and red.heatmap.dtype == np.float32
    assert red.heatmap.min() >= 0 and red.heatmap.max() == pytest.approx(1.0)
    q = quadrant_means(red.heatmap)
    assert q["tl"] > 0.3 and q["br"] < 0.01 and q["tr"] < 0.05 and q["bl"] < 0.05
    q = quadrant_means(green.heatmap)
    assert q["br"] > 0.3 and q["tl"] < 0.01
    assert red.map_size == (16, 16) and red.node == node


def test_gradcam_defaults_to_the_predicted_class_and_leaves_the_model_as_it_was() -> None:
    model = colour_model()
    model.train()
    x = quadrant_image()
    x[1] = 0  # only red: class 0 wins
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = gradcam(model, x, "conv")
    assert result.class_index == 0
    assert result.score == pytest.approx(float(x[0].sum()) / 256, rel=1e-5)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_gradcam_at_a_node_without_a_module_uses_the_fx_graph() -> None:
    model = colour_model(with_add=True)
    heat = gradcam(model, quadrant_image(), "add", class_index=1).heatmap
    q = quadrant_means(heat)
    assert q["br"] > 0.3 and q["tl"] < 0.01


def test_gradcam_refuses_what_it_cannot_explain() -> None:
    model = colour_model()
    with pytest.raises(ExplainError, match="no node 'nope'"):
        gradcam(model, quadrant_image(), "nope")
    with pytest.raises(ExplainError, match="not a feature map"):
        gradcam(model, quadrant_image(), "fc")
    with pytest.raises(ExplainError, match="class 7 does not exist"):
        gradcam(model, quadrant_image(), "conv", class_index=7)


def test_top_k_orders_classes_with_probabilities() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 6, bias=False))
    with torch.no_grad():
        model[1].weight.zero_()
        for i in range(6):
            model[1].weight[i, 0] = float(i)
    x = torch.ones(1, 2, 2)
    preds = top_k(model, x, k=5, classes=[f"c{i}" for i in range(6)])
    assert [p.index for p in preds] == [5, 4, 3, 2, 1]
    assert [p.name for p in preds][:2] == ["c5", "c4"]
    logits = torch.arange(6.0)
    assert preds[0].probability == pytest.approx(float(torch.softmax(logits, 0)[5]), rel=1e-5)
    assert top_k(model, x, k=10)[-1].name == "class 0"  # capped at the class count, default names


def test_load_image_resizes_and_normalises(tmp_path) -> None:
    from PIL import Image

    array = np.zeros((40, 60, 3), dtype=np.uint8)
    array[..., 0] = 255
    path = tmp_path / "red.png"
    Image.fromarray(array).save(path)
    img = load_image(path, (3, 32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert img.tensor.shape == (1, 3, 32, 32) and img.display.shape == (3, 32, 32)
    assert img.source_size == (60, 40)
    assert torch.allclose(img.tensor[0, 0], torch.full((32, 32), 2.0))
    assert torch.allclose(img.tensor[0, 1], torch.full((32, 32), -2.0))
    grey = load_image(path, (1, 28, 28))
    assert grey.tensor.shape == (1, 1, 28, 28) and float(grey.tensor.max()) <= 1.0


def test_load_image_errors_are_plain(tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ExplainError, match="not a readable image"):
        load_image(bad, (3, 32, 32))
    with pytest.raises(ExplainError, match="no such file"):
        load_image(tmp_path / "missing.png", (3, 32, 32))
    with pytest.raises(ExplainError, match="1×H×W or 3×H×W"):
        load_image(bad, (784,))


def test_rf_region_follows_the_analysis() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [1, 32, 32]})
    g.add_node("Conv2d", "c1", {"out_channels": 4, "kernel_size": 3, "padding": 1})
    g.add_node("Conv2d", "c2", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1})
    g.add_edge("input", "c1")
    g.add_edge("c1", "c2")
    rf = analyze(g).nodes["c2"].rf
    assert rf.size == (5, 5) and rf.stride == (2, 2) and rf.padding == (2, 2)
    inside = rf_region(rf, (5, 7), (32, 32))
    assert (inside.top, inside.left, inside.bottom, inside.right) == (8, 12, 12, 16)
    assert inside.center == (10.0, 14.0) and inside.height == 5 and inside.width == 5
    corner = rf_region(rf, (0, 0), (32, 32))  # reaches into the padding: clipped
    assert (corner.top, corner.left, corner.bottom, corner.right) == (0, 0, 2, 2)
    assert corner.full == (-2, -2, 2, 2)
    whole = rf_region(ReceptiveField(None, (), ()), (0, 0), (32, 32))
    assert (whole.top, whole.left, whole.bottom, whole.right) == (0, 0, 31, 31)
    assert scale_position((3, 3), (8, 8), (16, 16)) == (6, 6)


def test_kernel_tiles_and_grids() -> None:
    weight = torch.randn(6, 3, 5, 5)
    tiles = rgb_tiles(weight)
    assert tiles.shape == (6, 5, 5, 3)
    for t in tiles:
        assert t.min() == pytest.approx(0.0) and t.max() == pytest.approx(1.0)
    grid = kernel_grid(torch.randn(16, 6, 3, 3), max_out=8)
    assert grid.shape == (8, 6, 3, 3) and float(np.abs(grid).max()) == pytest.approx(1.0)
    assert kernel_grid(torch.randn(4, 2, 3)).shape == (4, 2, 1, 3)
    with pytest.raises(ExplainError, match="kernel_grid"):
        rgb_tiles(torch.randn(4, 16, 3, 3))
    assert list(conv_weights(colour_model())) == ["conv"]


def test_colour_helpers() -> None:
    rgb = colormap(np.array([[0.0, 1.0]]), "gray")
    assert rgb.shape == (1, 2, 3) and rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [255, 255, 255]
    maps = normalize_channels(np.stack([np.arange(4.0).reshape(2, 2), np.full((2, 2), 3.0)]))
    assert maps[0].min() == 0 and maps[0].max() == 1 and not maps[1].any()
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    blended = overlay(image, np.eye(4, dtype=np.float32))
    assert blended.dtype == np.uint8 and blended[0, 0].any() and not blended[0, 1].any()


def test_diff_graphs_and_configs() -> None:
    a = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
                   {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 6}},
                   {"id": "act", "type": "Sigmoid"},
                   {"id": "fc", "type": "Linear", "params": {"out_features": 10}}],
         "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "act"}, {"from": "act", "to": "fc"}]}
    b = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 32, 32]}},
                   {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 16}},
                   {"id": "act", "type": "ReLU"},
                   {"id": "bn", "type": "BatchNorm2d"},
                   {"id": "fc", "type": "Linear", "params": {"out_features": 10}}],
         "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "bn"}, {"from": "bn", "to": "act"},
                   {"from": "act", "to": "fc"}]}
    d = diff_graphs(a, b)
    assert d.added == ("bn",) and d.removed == ()
    assert d.changed["conv1"] == ("out_channels 6 → 16",)
    assert d.changed["act"] == ("type Sigmoid → ReLU", "inputs conv1 → bn")
    assert "fc" not in d.changed and not d.empty
    assert diff_graphs(a, a).empty
    assert diff_configs({"lr": 0.1, "epochs": 5}, {"lr": 0.01, "epochs": 5, "amp": "bf16"}) == [
        ("amp", None, "bf16"), ("lr", 0.1, 0.01)]
