"""``main.py import SOURCE -o FILE.json``: writes a loadable project, one summary line, exit 2 on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.analysis import analyze
from core.cli import main
from core.project import load_project


def test_import_writes_a_project_and_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "squeeze.json"
    assert main(["import", "torchvision:squeezenet1_1", "-o", str(target), "--input-shape", "3,64,64"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    lines = out.out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("squeezenet1_1: 68 nodes, 10 groups, input 3×64×64, 1,235,496 parameters (1.24 M)")
    assert lines[0].endswith(str(target))
    project = load_project(target)
    assert project.name == "squeezenet1_1"
    assert project.graph.nodes["features.0"].type == "Conv2d"
    assert project.graph.groups["features.3"].label == "Fire"
    assert all(n.pos is not None for n in project.graph.nodes.values())  # the layout is saved
    assert analyze(project.graph).total_params == 1_235_496


@pytest.mark.parametrize(("argv", "message"), [
    (["torchvision:resnt18"],
     "torchvision:resnt18: torchvision has no classification or segmentation model 'resnt18' — did you mean"),
    (["torchvision:swin_t", "--input-shape", "3,200,200"],
     "torchvision:swin_t: cannot import Swin's patch merging of a 25×25×192 map in module 'features.4'"),
    (["torchvision:resnet18", "--input-shape", "3,x"], "--input-shape '3,x': give positive sizes"),
    (["template:nope", "--input-shape", "3,8,8"], "--input-shape applies to torchvision:NAME and .onnx sources only"),
], ids=["unknown", "refused-op", "bad-shape", "shape-for-template"])
def test_refusals_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                       message: str) -> None:
    target = tmp_path / "out.json"
    assert main(["import", argv[0], "-o", str(target), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not target.exists()


def test_output_must_be_a_json_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "torchvision:resnet18", "-o", str(tmp_path / "r.py")]) == 2
    assert "the project file name must end in .json" in capsys.readouterr().err
