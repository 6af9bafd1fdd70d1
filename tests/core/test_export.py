"""Python export: exported files run where NetCanvas is not importable and match the compiled model.

All exported files of this module run in ONE subprocess (``python -I -S``: no PYTHONPATH, no
site hooks, so not even the editable install of NetCanvas is importable; only torch's
site-packages folder is added), to keep the suite fast on two cores.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from core.analysis import analyze
from core.compiler import compile_graph, plan_graph
from core.export import ExportError, class_name, constructor, doc_text, python_source, safe_name
from core.graph import Graph
from core.layers import all_specs, get_spec
from core.project import load_project
from tests.conftest import ROOT
from tests.core.test_compiler import chain_graph, residual_graph

GOLDEN = ROOT / "tests" / "golden"

DRIVER = r'''
import importlib.util, json, sys
sys.path.append(sys.argv[1])  # torch's site-packages only
assert importlib.util.find_spec("core") is None, "NetCanvas must not be importable here"
assert importlib.util.find_spec("templates") is None
import torch
for case in json.load(open("manifest.json")):
    spec = importlib.util.spec_from_file_location(case["name"], case["file"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = getattr(mod, case["class"])()
    model.load_state_dict(torch.load(case["state"]), strict=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.load(case["input"]))
    grads = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    torch.save({"out": out, "trainable": grads}, case["out"])
    print("ran", case["name"])
'''


def nested_graph() -> Graph:
    """Nested ids, a container with a gap (features.0, features.2), a layer with a child, two outputs."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 6, 6]})
    g.add_node("Output", "aux")
    g.add_node("Conv2d", "features.0", {"out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False})
    g.add_node("BatchNorm2d", "features.0.bn")
    g.add_node("ReLU", "features.2")
    g.add_node("Conv2d", "layer1.0.conv1", {"out_channels": 4, "kernel_size": 3, "padding": 1}, frozen=True)
    g.add_node("Add", "layer1.0.add")
    g.add_node("AdaptiveAvgPool2d", "pool", {"output_size": 1})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "head.fc", {"out_features": 3})
    g.add_node("Output", "logits")
    for a, b in [("input", "features.0"), ("features.0", "features.0.bn"), ("features.0.bn", "features.2"),
                 ("features.2", "layer1.0.conv1"), ("layer1.0.conv1", "layer1.0.add"), ("layer1.0.add", "pool"),
                 ("pool", "flat"), ("flat", "head.fc"), ("head.fc", "logits"), ("layer1.0.add", "aux")]:
        g.add_edge(a, b)
    g.add_edge("features.2", "layer1.0.add", port=1)
    return g


def chunk_graph() -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4, 5, 5]})
    g.add_node("Chunk", "split", {"chunks": 2})
    g.add_node("Conv2d", "branch.conv", {"out_channels": 2, "kernel_size": 1})
    g.add_node("Concat", "cat")
    g.add_node("Permute", "to_last", {"dims": [2, 3, 1]})
    g.add_node("LayerNorm", "norm", {"normalized_shape": [4]})
    g.add_node("Output", "output")
    g.add_edge("input", "split")
    g.add_edge("split", "branch.conv", from_port=1)
    g.add_edge("split", "cat", port=0)
    g.add_edge("branch.conv", "cat", port=1)
    g.add_edge("cat", "to_last")
    g.add_edge("to_last", "norm")
    g.add_edge("norm", "output")
    return g


def extra_modules_graph() -> Graph:
    """Layer types whose modules come from core/ (their source is copied into the file)."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [4, 3, 3]})
    g.add_node("LayerNorm2d", "norm")
    g.add_node("LayerScale", "scale", {"init_value": 0.5})
    g.add_node("StochasticDepth", "drop", {"p": 0.2})
    g.add_node("Output", "output")
    for a, b in [("input", "norm"), ("norm", "scale"), ("scale", "drop"), ("drop", "output")]:
        g.add_edge(a, b)
    return g


def single_layer_graph(type_name: str) -> Graph | None:
    """Input → one layer with default params → Output, for the first input shape that works.

    When analysis proposes a parameter fix for the layer (GroupNorm's groups, Reshape's
    shape …), the fix is applied once: every declaration gets a run through real torch.
    """
    spec = next(s for s in all_specs() if s.type == type_name)
    for shape in ([3, 8, 8], [4, 6], [8], [2, 4, 6, 6]):
        g = Graph()
        g.add_node("Input", "input", {"shape": shape})
        g.add_node(type_name, "layer")
        if type_name == "MaxUnpool2d":  # its input 1 is where a MaxPool2d found each maximum
            g.add_node("MaxPool2d", "pool", {"return_indices": True})
            g.add_edge("input", "pool")
            g.add_edge("pool", "layer", port=0)
            g.add_edge("pool", "layer", port=1, from_port=1)
        for port in range(max(spec.min_inputs, 1) if spec.max_inputs != 0 and type_name != "MaxUnpool2d" else 0):
            g.add_edge("input", "layer", port=port)  # a source (Parameter): none
        g.add_node("Output", "output")
        g.add_edge("layer", "output")
        for _ in range(2):
            errors = analyze(g).errors
            if not errors:
                return g
            fix = errors[0].fix
            if fix is None or fix.action != "set_param" or fix.node != "layer":
                break
            g.set_param("layer", fix.param, fix.value)
    return None


def _template_graph(name: str) -> Graph:
    from templates import build_template

    return build_template(name).graph


LAYER_TYPES = [s.type for s in all_specs() if s.type not in ("Input", "Output")]

CASES: dict[str, Callable[[], Graph]] = {
    "chain": chain_graph,
    "residual": lambda: residual_graph(3),
    "nested": nested_graph,
    "chunk": chunk_graph,
    "extra_modules": extra_modules_graph,
    "lenet": lambda: load_project(ROOT / "resources" / "demo_lenet.json").graph,
    # Block classes (BasicBlock, Shortcut) run where NetCanvas is not importable too.
    "resnet18_cifar": lambda: _template_graph("resnet18_cifar"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any, list[str], str]]:
    """name → (compiled model's output, exported file's output, its trainable params, source)."""
    tmp = tmp_path_factory.mktemp("exported")
    graphs = {name: make() for name, make in CASES.items()}
    for t in LAYER_TYPES:
        g = single_layer_graph(t)
        if g is not None:
            graphs[f"type_{t}"] = g
    manifest = []
    expected: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for i, (name, g) in enumerate(graphs.items()):
        model = compile_graph(g, seed=i)
        with torch.no_grad():  # BatchNorm statistics that are not the initial ones
            for key, buf in model.state_dict().items():
                if key.endswith(("running_mean", "running_var")):
                    buf.uniform_(0.5, 1.5)
        model.eval()
        shape = analyze(g).input_shape
        assert shape is not None
        ids = any(getattr(get_spec(g.node(n).type), "int_inputs", False) for n in g.nodes)
        x = torch.randint(0, 2, (2, *shape)) if ids else torch.randn(2, *shape)  # Embedding: token ids
        with torch.no_grad():
            expected[name] = model(x)
        src = python_source(g, f"Test {name}")
        sources[name] = src
        (tmp / f"{name}.py").write_text(src)
        torch.save(model.state_dict(), tmp / f"{name}.pt")
        torch.save(x, tmp / f"{name}_in.pt")
        manifest.append({"name": name, "file": f"{name}.py", "class": class_name(f"Test {name}"),
                         "state": f"{name}.pt", "input": f"{name}_in.pt", "out": f"{name}_out.pt"})
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    (tmp / "driver.py").write_text(DRIVER)
    site = str(Path(torch.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-I", "-S", "driver.py", site], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {}
    for name in graphs:
        got = torch.load(tmp / f"{name}_out.pt")
        results[name] = (expected[name], got["out"], got["trainable"], sources[name])
    return results


def _close(a: Any, b: Any) -> None:
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
        return
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(CASES))
def test_exported_file_matches_compiled_model(exported: dict[str, Any], name: str) -> None:
    want, got, _trainable, source = exported[name]
    _close(want, got)
    tree = ast.parse(source)
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}  # type: ignore[misc]
    assert imports <= {"torch", "torch.nn.functional"}


@pytest.mark.parametrize("type_name", LAYER_TYPES)
def test_every_layer_type_exports(exported: dict[str, Any], type_name: str) -> None:
    if f"type_{type_name}" not in exported:
        pytest.fail(f"{type_name}: no input shape of the conformance set gives a valid single-layer graph")
    want, got, _trainable, _source = exported[f"type_{type_name}"]
    _close(want, got)


def test_block_classes_in_the_exported_file(exported: dict[str, Any]) -> None:
    source = exported["resnet18_cifar"][3]
    assert "class BasicBlock(nn.Module):" in source and "class Shortcut(nn.Sequential):" in source
    assert "BasicBlock(64, 128, stride=2, downsample=Shortcut(64, 128))," in source


def test_frozen_layers_stay_frozen_in_the_file(exported: dict[str, Any]) -> None:
    _want, _got, trainable, source = exported["nested"]
    assert "layer1.0.conv1.weight" not in trainable and "head.fc.weight" in trainable
    assert "self.layer1[0].conv1.requires_grad_(False)" in source


def test_readable_constructors_and_forward(exported: dict[str, Any]) -> None:
    source = exported["nested"][3]
    assert 'self.features.add_module("0", nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False))' in source
    assert 'self.features.get_submodule("0").bn = nn.BatchNorm2d(4)' in source
    assert "self.layer1 = nn.ModuleList([" in source
    assert "self.head.fc = nn.Linear(4, 3)" in source
    assert "layer1_0 = layer1_0 + x" in source  # a merge within its block keeps the block's name
    assert "return layer1_0, head" in source  # outputs in file order: aux first
    lenet = exported["lenet"][3]
    assert "class TestLenet(nn.Module):" in lenet
    assert "Parameters: 62,006 (62,006 trainable)." in lenet
    assert "Input: N×3×32×32" in lenet
    assert "self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)" in lenet
    assert "    x = self.conv1(x)\n        x = self.relu1(x)\n" in lenet  # a chain reuses its variable
    assert "x = self.fc1(x)" in lenet


@pytest.mark.parametrize(("name", "make"), [("lenet", CASES["lenet"]), ("nested", nested_graph),
                                            ("chunk", chunk_graph)])
def test_golden_source(name: str, make: Callable[[], Graph]) -> None:
    """The exporter's text, compared with tests/golden; refresh on purpose with NETCANVAS_UPDATE_GOLDEN=1."""
    source = python_source(make(), {"lenet": "LeNet-5 on Shapes"}.get(name, f"Golden {name}"))
    golden = GOLDEN / f"export_{name}.py"
    if os.environ.get("NETCANVAS_UPDATE_GOLDEN"):
        golden.write_text(source)
    assert source == golden.read_text()


# -- untrusted text never becomes code ----------------------------------------------------------

def test_safe_name() -> None:
    assert safe_name("layer1_0_conv1") == "layer1_0_conv1"
    for bad in ["x; import os", "a b", "class", "", "соnv1", "a\nb", "a'b", '"""', "1x"]:
        with pytest.raises(ExportError):
            safe_name(bad)


def test_class_name_and_docstring_text_are_sanitised() -> None:
    assert class_name("LeNet-5 on Shapes") == "LeNet5OnShapes"
    assert class_name('"""\nimport os\n"""') == "ImportOs"
    assert class_name("5 layers") == "Net5Layers"
    assert class_name("!!!") == "Net"
    assert class_name("None") == "NoneModel"
    assert class_name("Réseau") == "RSeau"
    text = doc_text('My "net"""\nimport os\\x \u2028end')
    assert '"' not in text and "\n" not in text and "\\" not in text and "\u2028" not in text


def test_hostile_project_name_and_group_label_never_reach_code() -> None:
    g = chain_graph()
    label = '"""; import os; os.system("echo pwned") #'
    g.add_group("blk", label, ["conv", "bn"])
    source = python_source(g, 'Evil """\nimport os\nos.system("x")\n"""')
    tree = ast.parse(source)
    assert label not in source
    # The name survives only as inert docstring text, without the quotes that would end it.
    assert source.count('"""') == 4  # the module and class docstrings
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"torch"}
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not any("system" in c or "exec" in c or "eval" in c for c in calls)


def test_exporter_revalidates_ids() -> None:
    g = chain_graph()
    plan = plan_graph(g)
    bad = dict(plan.nodes)
    bad["fc"] = dataclasses.replace(bad["fc"], id="fc; import os")
    with pytest.raises(ExportError, match="invalid node id"):
        python_source(g, "x", plan=dataclasses.replace(plan, nodes=bad))


def test_constructor_omits_defaults_and_checks_itself() -> None:
    plan = plan_graph(chain_graph())
    assert constructor(plan.nodes["conv"]) == "nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)"
    assert constructor(plan.nodes["bn"]) == "nn.BatchNorm2d(4)"
    assert constructor(plan.nodes["fc"]) == "nn.Linear(256, 5)"
    assert constructor(plan.nodes["flat"]) == "nn.Flatten()"


@pytest.mark.parametrize("bad_id", ["x; import os", 'conv"1', "conv'1", "conv\n1", "con\u0455", "соnv1",
                                    "a.__class__.b; x", "conv1)", "import", "a b"])
@pytest.mark.parametrize("where", ["node", "group"])
def test_injection_ids_are_rejected_at_load(bad_id: str, where: str) -> None:
    from core.project import ProjectError, project_from_dict

    doc = json.loads((ROOT / "resources" / "demo_lenet.json").read_text())
    if where == "node":
        doc["graph"]["nodes"][1]["id"] = bad_id
    else:
        doc["graph"]["groups"][0]["id"] = bad_id
    with pytest.raises(ProjectError) as info:
        project_from_dict(doc)
    assert info.value.where.endswith(".id")


def template_names() -> list[str]:
    from templates import template_names as names

    return names()


@pytest.mark.parametrize("name", template_names())
def test_every_template_exports_the_compiled_structure(name: str) -> None:
    """The exported class, built on the meta device, has the compiled model's state_dict keys and shapes."""
    from templates import build_template

    project = build_template(name)
    source = python_source(project.graph, project.name)
    namespace: dict[str, Any] = {}
    with torch.device("meta"):
        exec(compile(source, f"<{name}>", "exec"), namespace)  # our own generated code
        exported_model = namespace[class_name(project.name)]()
        compiled = compile_graph(project.graph, device="meta")
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in (exported_model, compiled)]
    assert shapes[0] == shapes[1]
