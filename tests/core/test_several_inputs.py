"""Several Input nodes (issue 12: Siamese networks, an image with side data): analysis, the
compiled model (``forward(left, right)``, in file order), the exported .py (flat and with block
classes) and ONNX, and the summary take them; training refuses such a graph in one sentence."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest
import torch

from core.analysis import Severity, analyze
from core.cli import main
from core.compiler import compile_graph, input_names
from core.export import export_onnx, python_source
from core.graph import Graph
from core.project import new_project, save_project


def siamese() -> Graph:
    """Two equal towers (one block class when exported), concatenated, pooled, classified."""
    g = Graph()
    g.add_node("Input", "left", {"shape": [3, 8, 8]})
    g.add_node("Input", "right", {"shape": [3, 8, 8]})
    for t in ("tower_a", "tower_b"):
        g.add_node("Conv2d", f"{t}.conv", {"out_channels": 4, "padding": 1})
        g.add_node("BatchNorm2d", f"{t}.bn")
        g.add_node("ReLU", f"{t}.act")
        g.add_edge(f"{t}.conv", f"{t}.bn")
        g.add_edge(f"{t}.bn", f"{t}.act")
    g.add_edge("left", "tower_a.conv")
    g.add_edge("right", "tower_b.conv")
    for nid, typ, params in [("cat", "Concat", {}), ("pool", "AdaptiveAvgPool2d", {"output_size": 1}),
                             ("flat", "Flatten", {}), ("fc", "Linear", {"out_features": 2}), ("output", "Output", {})]:
        g.add_node(typ, nid, params)
    g.add_edge("tower_a.act", "cat", port=0)
    g.add_edge("tower_b.act", "cat", port=1)
    for a, b in [("cat", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "output")]:
        g.add_edge(a, b)
    return g


def image_and_side_data() -> Graph:
    """Inputs of different shapes whose file order (side, then image) is not the order the
    forward reaches them in: the arguments follow the file."""
    g = Graph()
    g.add_node("Input", "side", {"shape": [5]})
    g.add_node("Input", "image", {"shape": [1, 6, 6]})
    for nid, typ, params in [("conv", "Conv2d", {"out_channels": 2}), ("flat", "Flatten", {}),
                             ("img_fc", "Linear", {"out_features": 3}), ("side_fc", "Linear", {"out_features": 3}),
                             ("add", "Add", {}), ("output", "Output", {})]:
        g.add_node(typ, nid, params)
    for a, b in [("image", "conv"), ("conv", "flat"), ("flat", "img_fc"), ("side", "side_fc")]:
        g.add_edge(a, b)
    g.add_edge("img_fc", "add", port=0)
    g.add_edge("side_fc", "add", port=1)
    g.add_edge("add", "output")
    return g


def reference(model: torch.nn.Module, side: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``image_and_side_data`` by hand, with the compiled model's own layers."""
    img = model.img_fc(torch.flatten(model.conv(image), 1))
    return img + model.side_fc(side)


def load_class(path: Path, cls: str) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model: torch.nn.Module = getattr(mod, cls)()
    return model


def test_analysis_takes_several_inputs_in_file_order() -> None:
    a = analyze(image_and_side_data())
    assert a.ok
    # the head's note compares the field with the Input it sees (image), not with the first (side)
    assert [(d.node, d.severity) for d in a.diagnostics] == [("flat", Severity.INFO)]
    assert "is 3×3, smaller than the 6×6 input" in a.diagnostics[0].message
    assert a.input_shapes == ((5,), (1, 6, 6)) and a.input_shape == (5,)
    d = a.to_dict()
    assert d["input_shape"] == [5] and d["input_shapes"] == [[5], [1, 6, 6]]
    assert a.total_params == (2 * 9 + 2) + (2 * 16 * 3 + 3) + (5 * 3 + 3)
    assert "input_shapes" not in analyze(one_input()).to_dict()  # one Input: the summary's form is unchanged


def one_input() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4]})
    g.add_node("Output", "output")
    g.add_edge("input", "output")
    return g


def test_the_compiled_forward_takes_the_inputs_in_file_order() -> None:
    g = image_and_side_data()
    gm = compile_graph(g, seed=0)
    assert list(inspect.signature(gm.forward).parameters) == ["side", "image"]
    side, image = torch.randn(3, 5), torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(gm(side, image), reference(gm, side, image))
    torch.testing.assert_close(gm(image=image, side=side), reference(gm, side, image))


def test_argument_names_are_python_names_that_shadow_nothing() -> None:
    assert input_names(["input"]) == {"input": "x"}
    assert input_names(["b.img", "a", "self", "torch", "len", "class"]) == {
        "a": "a", "b.img": "b_img", "class": "class_", "len": "len_", "self": "self_", "torch": "torch_"}
    assert input_names(["a_b", "a.b"]) == {"a.b": "a_b", "a_b": "a_b_"}  # sorted ids: a.b first


@pytest.mark.parametrize("blocks", [True, False])
def test_exported_python_takes_the_inputs_and_loads_the_state_dict(tmp_path: Path, blocks: bool) -> None:
    g = siamese()
    gm = compile_graph(g, seed=0).eval()
    src = python_source(g, "Siamese", blocks=blocks)
    assert ("self.tower_b = TowerA()" in src) == blocks  # the two towers: one block class
    assert "def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:" in src
    assert "Inputs, in this order: left N×3×8×8, right N×3×8×8." in src
    path = tmp_path / "siamese.py"
    path.write_text(src)
    model = load_class(path, "Siamese").eval()
    model.load_state_dict(gm.state_dict(), strict=True)
    left, right = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(model(left, right), gm(left, right))
    assert not torch.allclose(gm(left, right), gm(right, left))  # the order matters, and is kept


def test_exported_python_follows_file_order_over_forward_order(tmp_path: Path) -> None:
    g = image_and_side_data()
    gm = compile_graph(g, seed=0)
    path = tmp_path / "net.py"
    path.write_text(python_source(g, "Net"))
    model = load_class(path, "Net")
    assert list(inspect.signature(model.forward).parameters) == ["side", "image"]
    model.load_state_dict(gm.state_dict(), strict=True)
    side, image = torch.randn(3, 5), torch.randn(3, 1, 6, 6)
    torch.testing.assert_close(model(side, image), gm(side, image))


def test_onnx_export_has_one_input_per_input_node(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    g = image_and_side_data()
    gm = compile_graph(g, seed=0).eval()
    path = export_onnx(g, tmp_path / "net.onnx", model=gm)
    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["side", "image"]
    side, image = torch.randn(4, 5), torch.randn(4, 1, 6, 6)  # another batch size than the traced one
    (out,) = session.run(None, {"side": side.numpy(), "image": image.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), gm(side, image), rtol=1e-5, atol=1e-5)


def test_summary_lists_every_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_project(new_project(image_and_side_data(), name="side"), tmp_path / "side.json")
    assert main(["summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Input shapes:          5, 1×6×6" in out


def test_training_refuses_several_inputs_in_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = save_project(new_project(siamese(), name="siamese"), tmp_path / "siamese.json")
    code = main(["train", str(path), "--dataset", "synthetic:3,8,8,2", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and err.count("\n") == 1
    assert "Training takes a network with one Input, and this one has 2 (left, right)" in err
