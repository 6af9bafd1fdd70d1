"""``main.py import FILE.py``: the network a Python file defines (an exported ``lm.py`` too), as a project."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.analysis import analyze
from core.cli import main
from core.project import load_project


def test_an_exported_language_model_imports_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from templates import build_template

    lm, target = tmp_path / "lm.py", tmp_path / "lm.json"
    assert main(["export", "template:rnn-lm", "-o", str(lm)]) == 0
    capsys.readouterr()
    assert main(["import", str(lm), "-o", str(target), "--input-shape", "35"]) == 0
    line = capsys.readouterr().out.strip()
    want = analyze(build_template("rnn-lm").graph)
    assert f"input 35, {want.total_params:,} parameters" in line and "\n" not in line
    got = load_project(target).graph
    assert sorted(n.type for n in got.nodes.values()) == ["Embedding", "GRU", "Input", "Linear", "Output"]
    assert analyze(got).total_params == want.total_params


@pytest.mark.parametrize(("source", "extra", "says"), [
    ("lm.py", [], "lm.py: give the per-sample input shape with --input-shape"),
    ("lm.py", ["--input-shape", "35", "--class", "Nope"], "lm.py defines no nn.Module class 'Nope' (it defines: Net)"),
    ("broken.py", ["--input-shape", "35"], "broken.py: running it fails: ZeroDivisionError: division by zero"),
    ("template:rnn-lm", ["--class", "Net"], "--class applies to FILE.py sources only"),
])
def test_python_source_refusals_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     source: str, extra: list[str], says: str) -> None:
    (tmp_path / "lm.py").write_text("from torch import nn\n\n\nclass Net(nn.Module):\n    pass\n")
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    path = source if ":" in source else str(tmp_path / source)
    assert main(["import", path, "-o", str(tmp_path / "out.json"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()
