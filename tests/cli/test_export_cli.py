"""``main.py export``: formats by extension, exit codes 0/1/2 and one-line messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main
from core.project import graph_to_dict, load_project
from tests.conftest import ROOT

DEMO = str(ROOT / "resources" / "demo_lenet.json")


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_python_export_through_the_real_entry_point(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "lenet.py"
    proc = subprocess.run([sys.executable, "main.py", "export", DEMO, "-o", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    assert "class LeNet5OnShapes(nn.Module):" in out.read_text()


def test_json_export_writes_the_project(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "copy.json"
    assert main(["export", DEMO, "-o", str(out)]) == 0
    assert graph_to_dict(load_project(out).graph) == graph_to_dict(load_project(DEMO).graph)
    assert json.loads(out.read_text())["name"] == "LeNet-5 on Shapes"


def test_template_source_exports(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r18.py"
    assert main(["export", "template:resnet18", "-o", str(out)]) == 0
    text = out.read_text()
    assert "class BasicBlock(nn.Module):" in text  # one class per repeated block (core/export_blocks.py)
    assert "BasicBlock(64, 128, stride=2, downsample=Shortcut(64, 128))," in text
    assert "Parameters: 11,689,512" in text


@pytest.mark.parametrize("name", ["model.txt", "model", "model.pth"])
def test_unknown_extension_is_a_usage_error(tmp_path, capsys, name) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", DEMO, "-o", str(tmp_path / name)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "unknown export format" in line and ".py, .onnx, .json" in line
    assert list(tmp_path.iterdir()) == []


def test_unreadable_source_and_missing_folder(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", str(tmp_path / "none.json"), "-o", str(tmp_path / "a.py")]) == 2
    assert "no such file" in _one_line_error(capsys.readouterr().err)
    assert main(["export", DEMO, "-o", str(tmp_path / "no" / "a.py")]) == 2
    assert "does not exist" in _one_line_error(capsys.readouterr().err)
    assert main(["export", "template:nope", "-o", str(tmp_path / "a.py")]) == 2
    assert "no template named 'nope'" in _one_line_error(capsys.readouterr().err)


def test_missing_output_option_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", DEMO]) == 2
    assert "-o" in capsys.readouterr().err


def test_graph_with_errors_exits_1_and_writes_no_code(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((ROOT / "resources" / "demo_lenet.json").read_text())
    for node in doc["graph"]["nodes"]:
        if node["id"] == "fc1":
            node["params"]["in_features"] = 256  # the flattened input has 400
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert main(["export", str(bad), "-o", str(tmp_path / "bad.py")]) == 1
    err = capsys.readouterr().err
    assert "cannot compile the network: 1 error" in err and "fc1: expects 256 input features" in err
    assert not (tmp_path / "bad.py").exists()
    # The project file itself can still be written: a half-built network is worth saving.
    assert main(["export", str(bad), "-o", str(tmp_path / "copy.json")]) == 0


def test_missing_onnx_packages_exit_2(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert main(["export", DEMO, "-o", str(tmp_path / "m.onnx")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "ONNX export needs the onnx and onnxscript packages" in line
    assert list(tmp_path.iterdir()) == []
