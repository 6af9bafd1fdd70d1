"""Hostile project files against the Python exporter (issue 11): every answer a sentence, every file builds.

Each case goes through ``main.py export`` (the CLI entry point, in process) and, where a file is
written, loads it as a module and compares it with the compiled model of the same graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import fx, nn

from core.analysis import analyze
from core.cli import main
from core.compiler import compile_graph
from core.diagnostics import Severity
from core.export import ExportError, _check_builds
from core.fixes import apply_fix
from core.graph import Graph
from core.layers.spec import FixAction
from core.module_names import GRAPH_MODULE_NAMES, TORCH_MODULE_NAMES
from core.project import Project, save_project


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _export(tmp_path: Path, graph: Graph, name: str = "Hostile") -> tuple[int, Path]:
    src = save_project(Project(graph, name), tmp_path / "hostile.json")
    out = tmp_path / "hostile.py"
    return main(["export", str(src), "-o", str(out)]), out


def _matches(out: Path, graph: Graph, cls: str, shape: tuple[int, ...]) -> None:
    model = compile_graph(graph, seed=0).eval()
    exported = getattr(_load(out), cls)().eval()
    exported.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.equal(exported(x), model(x))  # the same sums in the same order: bit-exact


# -- 1. merges of thousands of inputs ------------------------------------------------------------

def test_an_add_of_3000_inputs_exports_a_file_that_builds_and_matches(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    g = Graph()
    g.add_node("Input", "inp", {"shape": [4]})
    g.add_node("Linear", "a", {"out_features": 4})
    g.add_node("ReLU", "b")
    g.add_edge("inp", "a")
    g.add_edge("a", "b")
    g.add_node("Add", "add")
    for i in range(3000):
        g.add_edge(("inp", "a", "b")[i % 3], "add")
    g.add_node("Output", "out")
    g.add_edge("add", "out")
    code, out = _export(tmp_path, g)
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert "x = self.a(x)" not in text  # x is read again by the later lines of the sum
    assert max(len(line) for line in text.splitlines()) < 400  # a chain per line, not one 3,000-term line
    _matches(out, g, "Hostile", (4,))


def test_a_long_add_inside_a_repeated_block_exports(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    g = Graph()
    g.add_node("Input", "inp", {"shape": [3]})
    prev = "inp"
    for b in ("b1", "b2"):
        g.add_node("Linear", f"{b}.fc", {"out_features": 3})
        g.add_node("ReLU", f"{b}.relu")
        g.add_node("Add", f"{b}.add")
        g.add_edge(prev, f"{b}.fc")
        g.add_edge(f"{b}.fc", f"{b}.relu")
        for i in range(100):
            g.add_edge((f"{b}.fc", f"{b}.relu")[i % 2], f"{b}.add")
        g.add_group(b, "Sum block", [f"{b}.fc", f"{b}.relu", f"{b}.add"])
        prev = f"{b}.add"
    g.add_node("Output", "out")
    g.add_edge(prev, "out")
    code, out = _export(tmp_path, g)
    assert code == 0, capsys.readouterr().err
    assert "class SumBlock(nn.Module):" in out.read_text()
    _matches(out, g, "Hostile", (3,))


def test_a_small_merge_still_reads_as_one_sum(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    g = Graph()
    g.add_node("Input", "inp", {"shape": [4]})
    g.add_node("ReLU", "r")
    g.add_node("Add", "add")
    g.add_edge("inp", "r")
    g.add_edge("inp", "add")
    g.add_edge("r", "add")
    g.add_node("Output", "out")
    g.add_edge("add", "out")
    code, out = _export(tmp_path, g)
    assert code == 0, capsys.readouterr().err
    assert "        add = x + r\n" in out.read_text()
    _matches(out, g, "Hostile", (4,))


# -- 2. sizes torch cannot build -----------------------------------------------------------------

def _chain(shape: list[int], *layers: tuple[str, dict[str, object]]) -> Graph:
    g = Graph()
    g.add_node("Input", "inp", {"shape": shape})
    prev = "inp"
    for i, (typ, params) in enumerate(layers):
        g.add_node(typ, f"l{i}", params)
        g.add_edge(prev, f"l{i}")
        prev = f"l{i}"
    g.add_node("Output", "out")
    g.add_edge(prev, "out")
    return g


def test_a_linear_of_2_62_features_is_one_sentence_naming_the_node(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = _export(tmp_path, _chain([4], ("Linear", {"out_features": 2**62})))
    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert "l0: torch cannot build this Linear with these sizes" in line
    assert not out.exists()


def test_a_pool_to_10_12_then_a_linear_is_refused_in_one_sentence(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    g = _chain([3, 8, 8], ("AdaptiveAvgPool2d", {"output_size": [10**12, 10**12]}), ("Flatten", {}),
               ("Linear", {"out_features": 2}))
    code, out = _export(tmp_path, g)
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "l2: torch cannot build this Linear" in line, line
    assert not out.exists()


def test_a_pool_to_10_12_alone_writes_a_file_that_builds(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # Nothing to allocate: torch builds the layer, so the file is written (running it is another matter).
    code, out = _export(tmp_path, _chain([3, 8, 8], ("AdaptiveAvgPool2d", {"output_size": [10**12, 10**12]})))
    assert code == 0, capsys.readouterr().err
    model = _load(out).Hostile()
    assert model.l0.output_size == (10**12, 10**12)


# -- 7. ids that clash with torch's own names -----------------------------------------------------

CLASHING = ["forward", "training", "cuda", "eval", "code", "graph", "meta", "half", "apply", "conv.training",
            "conv.weight", "conv.bias"]


def _named(nid: str) -> Graph:
    g = Graph()
    g.add_node("Input", "inp", {"shape": [3, 6, 6]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3})
    g.add_edge("inp", "conv")
    g.add_node("ReLU" if nid.startswith("conv.") else "BatchNorm2d", nid)
    g.add_edge("conv", nid)
    g.add_node("Output", "out")
    g.add_edge(nid, "out")
    return g


@pytest.mark.parametrize("nid", CLASHING)
def test_a_clashing_id_is_an_error_on_its_node_with_a_rename_fix(nid: str, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    g = _named(nid)
    errors = [d for d in analyze(g).diagnostics if d.severity is Severity.ERROR]
    assert [d.node for d in errors] == [nid]
    assert errors[0].message.startswith(f"{nid}: ") and f"rename it, e.g. to {nid}_" in errors[0].message
    fix = errors[0].fix
    assert fix is not None and fix.action is FixAction.RENAME and fix.label == f"rename {nid} to {nid}_"

    code, out = _export(tmp_path, g)  # refused like any network with errors: they are listed, nothing written
    err = capsys.readouterr().err
    listed = [ln.strip() for ln in err.splitlines()]
    assert code == 1 and "Traceback" not in err and f"- {errors[0].message}" in listed, err
    assert not out.exists()

    applied = apply_fix(g, fix)
    assert f"{nid}_" in g.nodes and nid not in g.nodes and g.predecessors("out") == [f"{nid}_"]
    assert not [d for d in analyze(g).diagnostics if d.severity is Severity.ERROR]
    code, out = _export(tmp_path, g)
    assert code == 0, capsys.readouterr().err
    _matches(out, g, "Hostile", (3, 6, 6))
    applied.undo(g)
    assert nid in g.nodes and f"{nid}_" not in g.nodes


def test_the_rename_fix_skips_a_taken_id() -> None:
    g = _named("training")
    g.add_node("ReLU", "training_")
    fix = next(d.fix for d in analyze(g).diagnostics if d.node == "training")
    assert fix is not None and fix.value == "training_2"


def test_ordinary_ids_are_not_flagged() -> None:
    # code/graph/meta are the compiled model's own (an fx.GraphModule), not a plain container's
    for nid in ["conv.relu", "layer1.0.conv1", "trainer", "forward_", "weight", "bias", "head.code", "head.meta"]:
        assert not [d for d in analyze(_named(nid)).diagnostics
                    if d.severity is Severity.ERROR], nid


def test_the_names_follow_the_installed_torch() -> None:
    graph_module = fx.GraphModule(nn.Module(), fx.Graph())
    assert set(dir(nn.Module())) <= TORCH_MODULE_NAMES
    assert set(dir(graph_module)) <= TORCH_MODULE_NAMES | GRAPH_MODULE_NAMES


def test_a_file_that_would_not_build_is_refused_before_writing() -> None:
    source = "import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n    def __init__(self) -> None:\n" \
             "        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n" \
             "        self.conv.weight = nn.ReLU()\n"
    with pytest.raises(ExportError, match=r"^the exported file would not build \(TypeError: cannot assign"):
        _check_builds(source, "Net")


def test_onnx_of_a_pool_to_10_12_is_one_sentence_without_torch_logs(tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxscript")
    g = _chain([3, 8, 8], ("AdaptiveAvgPool2d", {"output_size": [10**12, 10**12]}))
    src = save_project(Project(g, "Hostile"), tmp_path / "hostile.json")
    out = tmp_path / "hostile.onnx"
    assert main(["export", str(src), "-o", str(out)]) == 2
    line = _one_line(capfd.readouterr().err)  # torch's exporter logged its own traceback here before
    assert line == (f"error: {out}: torch could not export the network to ONNX: RuntimeError: numel: integer "
                    f"multiplication overflow")
    assert not out.exists() and list(tmp_path.iterdir()) == [src]
