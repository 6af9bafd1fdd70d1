"""``main.py import SOURCE -o FILE.json`` for models with several inputs: ``--input-shape`` is repeated,
once per input in the model's order (DESIGN.md §7). An ONNX file with two data inputs becomes a
project with one Input node per input, named after it, whose compiled module gives onnxruntime's
outputs with the weights written beside it; a wrong number of shapes is refused in one line that
names the inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.analysis import analyze
from core.cli import main
from core.compiler import compile_graph
from core.project import load_project


class Siamese(nn.Module):
    """One conv tower applied to each input, pooled, subtracted: the two inputs of a Siamese net."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(3, 4, 3, padding=1)
        self.right = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = self.pool(self.left(a)) - self.pool(self.right(b))
        return self.fc(diff.flatten(1))


def _export(path: Path, *, open_sizes: bool) -> Path:
    torch.manual_seed(0)
    axes = {0: "batch", 2: "h", 3: "w"} if open_sizes else {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Siamese().eval(), (torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 6, 6)), str(path),
                          dynamo=False, opset_version=17, input_names=["anchor", "other"],
                          dynamic_axes={"anchor": axes, "other": axes}, do_constant_folding=False)
    return path


def _ort(path: Path, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"anchor": a.numpy(), "other": b.numpy()})[0]


def test_repeated_input_shapes_import_a_two_input_onnx_file(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = _export(tmp_path / "siamese.onnx", open_sizes=True)
    target = tmp_path / "siamese.json"
    argv = ["import", str(path), "-o", str(target), "--input-shape", "3,10,12", "--input-shape", "3,7,7"]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.err == ""
    (line,) = out.out.strip().splitlines()
    assert line.startswith("siamese: ") and "inputs 3×10×12 and 3×7×7" in line
    project = load_project(target)
    inputs = {nid: n.params["shape"] for nid, n in project.graph.nodes.items() if n.type == "Input"}
    assert inputs == {"anchor": [3, 10, 12], "other": [3, 7, 7]}
    result = analyze(project.graph)
    assert result.ok and result.input_shapes == ((3, 10, 12), (3, 7, 7))
    model = compile_graph(project.graph)
    model.load_state_dict(torch.load(target.with_suffix(".pt")), strict=True)
    model.eval()
    a, b = torch.randn(2, 3, 10, 12), torch.randn(2, 3, 7, 7)
    with torch.no_grad():
        got = model(a, b)
    np.testing.assert_allclose(got.numpy(), _ort(path, a, b), rtol=1e-4, atol=1e-5)


def test_fixed_sizes_need_no_input_shape(tmp_path: Path) -> None:
    path = _export(tmp_path / "fixed.onnx", open_sizes=False)
    target = tmp_path / "fixed.json"
    assert main(["import", str(path), "-o", str(target)]) == 0
    graph = load_project(target).graph
    assert [n.params["shape"] for n in graph.nodes.values() if n.type == "Input"] == [[3, 8, 8], [3, 6, 6]]


@pytest.mark.parametrize(("shapes", "message"), [
    (["3,10,12"], "the model has 2 data inputs ('anchor', 'other'), but 1 --input-shape was given: give one per "
                  "input, in that order"),
    (["3,10,12", "3,7,7", "3,7,7"], "but 3 --input-shape were given"),
    (["3,10,12", "7,7"], "--input-shape 7,7 does not fit input 'other', which has 3 axes besides the batch"),
], ids=["too-few", "too-many", "wrong-rank"])
def test_a_wrong_number_of_shapes_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        shapes: list[str], message: str) -> None:
    path = _export(tmp_path / "siamese.onnx", open_sizes=True)
    target = tmp_path / "out.json"
    argv = ["import", str(path), "-o", str(target)]
    for shape in shapes:
        argv += ["--input-shape", shape]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and str(path) in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not target.exists()


def test_a_one_input_source_refuses_several_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.json"
    argv = ["import", "torchvision:squeezenet1_1", "-o", str(target), "--input-shape", "3,64,64",
            "--input-shape", "3,64,64"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "torchvision:squeezenet1_1 has one input, but --input-shape was given 2 times" in err
    assert err.count("\n") == 1
    assert not target.exists()


def test_a_two_input_graph_round_trips_through_our_export(tmp_path: Path) -> None:
    from core.export import export_onnx
    from core.importer import import_module
    from core.importer.onnx_import import import_onnx

    graph = import_module(Siamese(), [(3, 8, 8), (3, 6, 6)])
    source = compile_graph(graph, seed=2).eval()
    path = export_onnx(graph, tmp_path / "siamese.onnx", model=source)
    back, state = import_onnx(path)
    assert [(nid, n.params["shape"]) for nid, n in back.nodes.items() if n.type == "Input"] == \
        [(nid, n.params["shape"]) for nid, n in graph.nodes.items() if n.type == "Input"]
    model = compile_graph(back)
    model.load_state_dict(state, strict=True)
    model.eval()
    a, b = torch.randn(3, 3, 8, 8), torch.randn(3, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(a, b), source(a, b), rtol=1e-5, atol=1e-6)
