"""The demo project summarises cleanly through the CLI entry point.

Two tests start ``main.py`` in a fresh interpreter, as a user does (its exit codes 0 and 2 as the
process's own); the others call the same ``main.main`` in this process (each new interpreter
re-imports torch: seconds per call), reading what it prints and the code it returns.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import ROOT

Run = Callable[..., subprocess.CompletedProcess[str]]


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture
def _run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``main.main(args)`` from the repository root, as ``python main.py ARGS`` would run it."""
    import main as entry

    monkeypatch.chdir(ROOT)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()  # drop anything printed before this call
        code = entry.main(list(args))
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["main.py", *args], code, out.out, out.err)

    return run


def test_demo_summary_json() -> None:
    out = _process("summary", "resources/demo_lenet.json", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["ok"] is True
    assert data["input_shape"] == [3, 32, 32]
    assert data["output_shapes"] == [[10]]
    # LeNet-5 on 3×32×32: conv 456 + conv 2416 + fc 48120 + 10164 + 850
    assert data["total_params"] == 62006
    assert data["trainable_params"] == 62006
    conv1 = next(n for n in data["nodes"] if n["id"] == "conv1")
    assert conv1["output_shape"] == [6, 28, 28]
    assert conv1["macs"] == 6 * 3 * 25 * 28 * 28
    assert conv1["receptive_field"] == {"size": [5, 5], "stride": [1, 1], "padding": [0, 0]}


def test_missing_file_exit_2_one_line(_run: Run) -> None:
    out = _run("summary", "no/such/file.json")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "no such file" in out.stderr


def test_summary_table_golden(_run: Run) -> None:
    """The human table is compared with a golden file; refresh on purpose with NETCANVAS_UPDATE_GOLDEN=1."""
    import os

    out = _run("summary", "resources/demo_lenet.json")
    assert out.returncode == 0, out.stderr
    golden = ROOT / "tests" / "cli" / "golden" / "summary_demo.txt"
    if os.environ.get("NETCANVAS_UPDATE_GOLDEN"):
        golden.write_text(out.stdout)
    assert out.stdout == golden.read_text()


def test_error_source_exit_1_and_several_sources(tmp_path, _run: Run) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads((ROOT / "resources" / "demo_lenet.json").read_text())
    for node in doc["graph"]["nodes"]:
        if node["id"] == "fc1":
            node["params"]["in_features"] = 256  # wrong: the flattened input has 400
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    out = _run("summary", "resources/demo_lenet.json", str(bad), "--json")
    assert out.returncode == 1
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [d["ok"] for d in lines] == [True, False]
    err = next(d for d in lines[1]["diagnostics"] if d["severity"] == "error")
    assert err["node"] == "fc1"
    assert "400" in err["message"]
    assert err["fix"] == "set in_features to 400"


def test_usage_error_exit_2(_run: Run) -> None:
    out = _run("summary")
    assert out.returncode == 2
    out = _run("summary", "template:no_such_template")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def test_totals_with_an_error_say_they_are_lower_bounds(_run: Run) -> None:
    out = _run("summary", "resources/examples/lenet_mistake.json")
    assert out.returncode == 1
    text = out.stdout
    assert "Total params:          ≥ " in text and "MACs per sample:       ≥ " in text
    assert "Totals are partial (≥)" in text
    clean = _run("summary", "resources/demo_lenet.json").stdout
    assert "≥" not in clean and "partial" not in clean


def test_a_missing_file_is_named_once(tmp_path):
    missing = tmp_path / "missing.json"
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "summary", str(missing)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {missing}: no such file"
