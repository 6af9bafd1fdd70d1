"""A mutation fuzzer over project files (issue 11, "Keep the campaign").

Real project files (the demo, the examples, a few templates) are mutated by a seeded generator:
keys deleted, duplicated or added, values swapped for other types, numbers made huge, negative,
fractional or strings like ``"NaN"``, values nested thousands deep, node ids renamed to torch's
own attribute names or to code-injection strings, cycles, a 3,000-input Add. Each case goes
through ``main.py summary`` and ``main.py export -o FILE.py`` in process and must answer with
exit 0, 1 or 2, never a traceback, one line on stderr for exit 2; whatever ``export`` writes must
parse, call nothing it should not (no ``os.system``, ``eval``, ``exec``, ``__import__``), import
nothing but torch and the standard helpers, and build.

``make test`` runs ``DEFAULT_CASES`` cases; ``NETCANVAS_FUZZ_CASES=5000`` runs that many (case
``i`` is seeded with ``i``, so a failing case is replayed by its number alone).
"""

from __future__ import annotations

import ast
import copy
import json
import os
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import templates
from core.cli import main
from core.project import project_to_dict
from tests.conftest import ROOT

DEFAULT_CASES = 300
CASES = int(os.environ.get("NETCANVAS_FUZZ_CASES", DEFAULT_CASES))
TEMPLATES = ("lenet5", "mlp", "resnet18_cifar", "mobilenet_v2")

# Code that must never reach an exported file outside a string literal or a comment. The
# command is harmless should it ever run; the checks below refuse the file before it is run.
INJECTIONS = (
    "x); import os; os.system('true') #",
    "x\nimport os\nos.system('true')",
    "__import__('os').system('true')",
    "a'; eval('1') #",
    'a"""; exec("1") #',
    "self.x = eval('1')",
    "conv1(x)) or __import__('os').system('true') or (x",
    "\\\nimport os",
)
# torch attribute names (issue 11, item 7) and other awkward names.
ODD_IDS = ("forward", "training", "cuda", "eval", "code", "graph", "meta", "half", "apply", "conv.training",
           "conv.weight", "conv.bias", "state_dict", "__init__", "__class__", "self", "x", "torch", "nn",
           "class", "def", "None", "1abc", "", " ", "a b", "a.b.c", "é", "名前", "a-b", "..", ".a", "a.",
           "__dict__", "_modules", "T_destination", "dump_patches", "register_buffer", "to")
ODD_NUMBERS: tuple[Any, ...] = (0, -1, -(2**31), 2**62, 10**12, 2**64 + 1, 10**400, 1e308, -1e308, 1.5, -0.0,
                                1e-308, 3.7, "NaN", "Infinity", "-Infinity", "1e400", "3", True, False, None, [], {},
                                [3], "")
ODD_VALUES: tuple[Any, ...] = ("", "x", None, True, 0, -5, 2.5, [], [1, 2], {}, {"a": 1}, [None], "NaN",
                               "Conv2d", {"id": "x"}, [[]], "😀" * 50)


def _base_files() -> list[tuple[str, dict[str, Any]]]:
    files = [("demo_lenet", json.loads((ROOT / "resources" / "demo_lenet.json").read_text()))]
    for path in sorted((ROOT / "resources" / "examples").glob("*.json")):
        files.append((path.stem, json.loads(path.read_text())))
    for name in TEMPLATES:
        files.append((f"template:{name}", project_to_dict(templates.build_template(name))))
    return files


@pytest.fixture(scope="module")
def bases() -> list[tuple[str, dict[str, Any]]]:
    return _base_files()


# ---------------------------------------------------------------- walking the JSON tree

def _containers(value: Any) -> Iterator[dict[str, Any] | list[Any]]:
    stack = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            yield cur
            stack.extend(cur.values())
        elif isinstance(cur, list):
            yield cur
            stack.extend(cur)


def _slots(value: Any) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    """Every (container, key-or-index) pair: the places a mutation can rewrite."""
    out: list[tuple[dict[str, Any] | list[Any], Any]] = []
    for c in _containers(value):
        keys = list(c) if isinstance(c, dict) else range(len(c))
        out.extend((c, k) for k in keys)
    return out


def _number_slots(value: Any) -> list[tuple[dict[str, Any] | list[Any], Any]]:
    return [(c, k) for c, k in _slots(value)
            if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)]


def _nodes(d: dict[str, Any]) -> list[Any]:
    graph = d.get("graph")
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    return nodes if isinstance(nodes, list) else []


def _edges(d: dict[str, Any]) -> list[Any]:
    graph = d.get("graph")
    edges = graph.get("edges") if isinstance(graph, dict) else None
    return edges if isinstance(edges, list) else []


def _rename_everywhere(d: Any, old: str, new: str) -> None:
    """Rename a node id wherever it is referred to (edges, groups, layout) so the file stays coherent."""
    for c in list(_containers(d)):
        if isinstance(c, dict):
            for k in list(c):
                if c[k] == old and isinstance(c[k], str):
                    c[k] = new
            if old in c and new not in c:
                c[new] = c.pop(old)
        else:
            for i, v in enumerate(c):
                if v == old and isinstance(v, str):
                    c[i] = new


# ---------------------------------------------------------------- mutations
# Each takes the project dict (mutated in place) and the case's random source and returns a few
# words on what it did; the one text-level mutation (a key written twice) is _duplicate_key_text.

Mutation = Callable[[dict[str, Any], random.Random], str]


def m_delete_key(d: dict[str, Any], rng: random.Random) -> str:
    dicts = [c for c in _containers(d) if isinstance(c, dict) and c]
    c = rng.choice(dicts)
    key = rng.choice(list(c))
    del c[key]
    return f"deleted {key!r}"


def m_unknown_key(d: dict[str, Any], rng: random.Random) -> str:
    c = rng.choice([c for c in _containers(d) if isinstance(c, dict)])
    key = rng.choice(("x", "__proto__", "extra", "", "id2", "params2", "😀", "type "))
    c[key] = rng.choice(ODD_VALUES + ODD_NUMBERS)
    return f"added unknown key {key!r}"


def m_swap_type(d: dict[str, Any], rng: random.Random) -> str:
    c, k = rng.choice(_slots(d))
    c[k] = rng.choice(ODD_VALUES)
    return f"swapped type at {k!r}"


def _odd_number_for(key: Any, rng: random.Random) -> Any:
    # Huge paddings included: this fuzzer found analysis scanning every stride up to size + 2 ×
    # padding before a merge whose sizes differ (MobileNetV2, padding 10**12, case 2238); the
    # repair now bisects (core/repairs.py _smallest_stride).
    return rng.choice(ODD_NUMBERS)


def m_odd_number(d: dict[str, Any], rng: random.Random) -> str:
    slots = _number_slots(d) or _slots(d)
    c, k = rng.choice(slots)
    c[k] = _odd_number_for(k, rng)
    return f"odd number at {k!r}"


def m_odd_param(d: dict[str, Any], rng: random.Random) -> str:
    nodes = [n for n in _nodes(d) if isinstance(n, dict)]
    node = rng.choice(nodes)
    params = node.setdefault("params", {})
    if not isinstance(params, dict):
        node["params"] = params = {}
    key = rng.choice(("out_channels", "out_features", "kernel_size", "stride", "padding", "dilation", "groups",
                      "p", "dim", "shape", "output_size", "scale_factor", "num_groups", "eps", "bias", "negative_slope",
                      "bogus"))
    params[key] = rng.choice((_odd_number_for(key, rng), *ODD_VALUES, rng.choice(INJECTIONS)))
    return f"param {key} of {node.get('id')!r}"


def m_deep_nesting(d: dict[str, Any], rng: random.Random) -> str:
    # json.dumps itself recurses, so the nesting is written as text after dumping (see make_case)
    depth = rng.choice((100, 1000, 5000))
    c, k = rng.choice(_slots(d))
    c[k] = f"{DEEP_MARK}{depth}"
    return f"nested {depth} deep at {k!r}"


def m_odd_id(d: dict[str, Any], rng: random.Random) -> str:
    nodes = [n for n in _nodes(d) if isinstance(n, dict) and isinstance(n.get("id"), str)]
    node = rng.choice(nodes)
    old = node["id"]
    new = rng.choice(ODD_IDS + INJECTIONS)
    _rename_everywhere(d, old, new)
    return f"renamed {old!r} to {new!r}"


def m_injection_anywhere(d: dict[str, Any], rng: random.Random) -> str:
    strings = [(c, k) for c, k in _slots(d) if isinstance(c[k], str)]
    c, k = rng.choice(strings)
    c[k] = rng.choice(INJECTIONS)
    return f"injection at {k!r}"


def m_cycle(d: dict[str, Any], rng: random.Random) -> str:
    ids = [n["id"] for n in _nodes(d) if isinstance(n, dict) and isinstance(n.get("id"), str)]
    i, j = sorted(rng.sample(range(len(ids)), 2))
    _edges(d).append({"from": ids[j], "to": ids[i]})
    return f"cycle {ids[j]} → {ids[i]}"


def m_duplicate_node(d: dict[str, Any], rng: random.Random) -> str:
    nodes = _nodes(d)
    node = rng.choice(nodes)
    nodes.append(copy.deepcopy(node))
    return "duplicated a node"


def m_dangling_edge(d: dict[str, Any], rng: random.Random) -> str:
    ids = [n.get("id") for n in _nodes(d) if isinstance(n, dict)]
    _edges(d).append(rng.choice(({"from": rng.choice(ids), "to": "nowhere"}, {"from": "nowhere", "to": rng.choice(ids)},
                                 {"from": rng.choice(ids)}, {"to": 3, "from": None}, [1, 2], "edge")))
    return "odd edge"


def m_big_merge(d: dict[str, Any], rng: random.Random) -> str:
    """A 3,000-input Add (issue 11, item 1) fed from the Input through Identity layers."""
    nodes, edges = _nodes(d), _edges(d)
    inputs = [n["id"] for n in nodes if isinstance(n, dict) and n.get("type") == "Input"]
    source = inputs[0] if inputs else "input"
    nodes.append({"id": "fz_add", "type": rng.choice(("Add", "Multiply", "Concat"))})
    for i in range(3000):
        nodes.append({"id": f"fz_id{i}", "type": "Identity"})
        edges.append({"from": source, "to": f"fz_id{i}"})
        edges.append({"from": f"fz_id{i}", "to": "fz_add"})
    nodes.append({"id": "fz_out", "type": "Output"})
    edges.append({"from": "fz_add", "to": "fz_out"})
    return "3,000-input merge"


def m_node_type(d: dict[str, Any], rng: random.Random) -> str:
    from core.layers import type_names

    node = rng.choice([n for n in _nodes(d) if isinstance(n, dict)])
    node["type"] = rng.choice((*type_names(), "conv2d", "Nonexistent", "", 3, None, "Conv2d "))
    return f"type of {node.get('id')!r} to {node['type']!r}"


DEEP_MARK = "fuzz-deep-nesting:"


def _deep_text(match: re.Match[str]) -> str:
    depth = int(match.group(1))
    opens = "".join("[" if i % 3 else '{"a": ' for i in range(depth))
    closes = "".join("]" if i % 3 else "}" for i in reversed(range(depth)))
    return opens + "1" + closes


def m_injection_in_names(d: dict[str, Any], rng: random.Random) -> str:
    """Code in the names export writes into the file: the project's name (the class name), group
    ids and labels (helper classes, comments), node ids (attributes)."""
    where = rng.choice(("name", "group", "id"))
    code = rng.choice(INJECTIONS)
    groups = d.get("graph", {}).get("groups") if isinstance(d.get("graph"), dict) else None
    if where == "group" and isinstance(groups, list) and groups and isinstance(groups[0], dict):
        group = rng.choice(groups)
        group[rng.choice(("id", "label"))] = code
    elif where == "id":
        return m_odd_id(d, rng)
    else:
        d["name"] = code
    return f"injection in a {where}"


def m_plausible_param(d: dict[str, Any], rng: random.Random) -> str:
    """A small in-range change that usually still builds, so export writes files to check."""
    nodes = [n for n in _nodes(d) if isinstance(n, dict) and isinstance(n.get("params"), dict) and n["params"]]
    node = rng.choice(nodes)
    key = rng.choice(list(node["params"]))
    value = node["params"][key]
    if isinstance(value, bool):
        node["params"][key] = not value
    elif isinstance(value, int):
        node["params"][key] = rng.choice((1, 2, 3, value + 1, max(0, value - 1), value * 2))
    elif isinstance(value, float):
        node["params"][key] = rng.choice((0.0, 0.5, value * 2))
    return f"plausible {key} of {node.get('id')!r}"


MUTATIONS: tuple[Mutation, ...] = (
    m_delete_key, m_unknown_key, m_swap_type, m_odd_number, m_odd_number, m_odd_param, m_odd_param,
    m_deep_nesting, m_odd_id, m_odd_id, m_injection_anywhere, m_cycle, m_duplicate_node, m_dangling_edge,
    m_node_type, m_node_type,
)
# Mutations after which the file usually still loads and builds: half the cases use only these,
# so export writes (and the checks read) files with odd names and sizes, not only refusals.
GENTLE: tuple[Mutation, ...] = (m_odd_id, m_injection_in_names, m_injection_in_names, m_plausible_param,
                                m_plausible_param, m_cycle)


def _duplicate_key_text(text: str, rng: random.Random) -> str:
    """A JSON object with the same key twice (json.loads keeps the last one)."""
    key = rng.choice(('"id": ', '"type": ', '"from": ', '"graph": ', '"params": '))
    at = [i for i in range(len(text)) if text.startswith(key, i)]
    if not at:
        return text
    i = rng.choice(at)
    return text[:i] + key + json.dumps(rng.choice(ODD_VALUES + ODD_IDS)) + ", " + text[i:]


def make_case(seed: int, bases: list[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
    """The file text of case ``seed`` and a description of how it was made."""
    rng = random.Random(seed)
    name, base = rng.choice(bases)
    d = copy.deepcopy(base)
    done = [name]
    for step in range(rng.choice((1, 1, 2, 3))):
        mutation = rng.choice(GENTLE if seed % 2 else MUTATIONS)
        if seed % 500 == 1 and step == 0:  # a 3,000-input merge takes seconds: one case in 500
            mutation = m_big_merge
        try:
            done.append(mutation(d, rng))
        except (IndexError, ValueError, KeyError, TypeError, AttributeError):
            done.append(f"{mutation.__name__} found nothing to change")
    text = json.dumps(d, ensure_ascii=rng.random() < 0.5)
    text = re.sub(f'"{DEEP_MARK}(\\d+)"', _deep_text, text)
    if rng.random() < 0.1:
        text = _duplicate_key_text(text, rng)
        done.append("duplicate key")
    return text, "; ".join(done)


# ---------------------------------------------------------------- checks on what export writes

ALLOWED_IMPORTS = {"torch", "math", "typing", "__future__", "collections", "functools", "operator", "itertools"}
FORBIDDEN_CALLS = {"eval", "exec", "__import__", "compile", "open", "system", "popen", "getattr", "setattr",
                   "globals", "locals", "vars", "breakpoint", "input"}


def _called_name(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    if isinstance(f, ast.Attribute):
        return f.attr
    return ""


def check_exported_source(source: str, why: str) -> None:
    tree = ast.parse(source)  # a SyntaxError here fails the case: the file must be valid Python
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            roots = set()
        assert roots <= ALLOWED_IMPORTS, f"{why}: the export imports {roots}"
        if isinstance(node, ast.Call):
            assert _called_name(node) not in FORBIDDEN_CALLS, f"{why}: the export calls {ast.unparse(node)}"
        if isinstance(node, ast.Name):
            assert node.id not in {"os", "sys", "subprocess", "builtins"}, f"{why}: the export names {node.id}"


def check_builds(source: str, why: str) -> None:
    namespace: dict[str, Any] = {"__name__": "netcanvas_fuzz_export"}
    exec(compile(source, "<export>", "exec"), namespace)  # checked above: torch and plain layers only
    models = [v for v in namespace.values()
              if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == "netcanvas_fuzz_export"]
    assert models, f"{why}: the export defines no nn.Module"
    built = 0
    with torch.device("meta"):  # huge sizes build without allocating memory
        for cls in models:
            try:
                cls()
            except TypeError as exc:  # a helper module that takes constructor arguments
                if "required positional argument" not in str(exc):
                    raise
            else:
                built += 1
    assert built, f"{why}: no model in the export builds without arguments"


# ---------------------------------------------------------------- the cases

def _answer(argv: list[str], capsys: pytest.CaptureFixture[str], why: str) -> tuple[int, str]:
    try:
        code = main(argv)
    except BaseException as exc:  # an uncaught exception is a failure whatever it is
        raise AssertionError(f"{why}: main.py {argv[0]} raised {type(exc).__name__}: {exc}") from exc
    captured = capsys.readouterr()
    assert code in (0, 1, 2), f"{why}: main.py {argv[0]} exited {code}: {captured.err}"
    assert "Traceback" not in captured.err and "Traceback" not in captured.out, f"{why}: {captured.err}"
    if code == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, f"{why}: main.py {argv[0]} exit 2 with {len(lines)} lines: {captured.err[:2000]}"
    return code, captured.err


@pytest.mark.parametrize("seed", range(CASES))
def test_mutated_project_file(seed: int, bases: list[tuple[str, dict[str, Any]]], tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    text, why = make_case(seed, bases)
    why = f"case {seed} ({why})"
    path = tmp_path / "case.json"
    path.write_text(text, encoding="utf-8")
    _answer(["summary", str(path)], capsys, why)
    out = tmp_path / "case_export.py"
    code, _ = _answer(["export", str(path), "-o", str(out)], capsys, why)
    if code == 0:
        source = out.read_text(encoding="utf-8")
        check_exported_source(source, why)
        check_builds(source, why)
    else:
        assert not out.exists(), f"{why}: export exited {code} but wrote {out.name}"


def test_the_generator_reaches_every_mutation(bases: list[tuple[str, dict[str, Any]]]) -> None:
    """The cases above are not all the same: every kind of mutation is drawn within the first cases."""
    seen = " ".join(make_case(seed, bases)[1] for seed in range(CASES))
    for word in ("deleted", "unknown key", "injection in a", "plausible", "swapped type", "odd number", "param",
                 "nested", "renamed",
                 "injection", "cycle", "duplicated a node", "odd edge", "3,000-input merge", "type of",
                 "duplicate key"):
        assert word in seen, word


OUTPUT_MID_CHAIN = {
    "format": "netcanvas-project", "version": 1, "name": "g",
    "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 8, 8]}},
                        {"id": "a", "type": "ReLU"}, {"id": "b", "type": "Output"}, {"id": "c", "type": "ReLU"},
                        {"id": "output", "type": "Output"}],
              "edges": [{"from": "input", "to": "a"}, {"from": "a", "to": "b"}, {"from": "b", "to": "c"},
                        {"from": "c", "to": "output"}]},
}


def test_an_output_with_a_layer_after_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(OUTPUT_MID_CHAIN))
    _answer(["export", str(path), "-o", str(tmp_path / "out.py")], capsys, "Output with a layer after it")


def test_a_size_beyond_a_float(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads((ROOT / "resources" / "demo_lenet.json").read_text())
    conv1 = next(n for n in data["graph"]["nodes"] if n["id"] == "conv1")
    conv1["params"]["padding"] = 10**400
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data))
    _answer(["summary", str(path)], capsys, "padding 10**400")


@pytest.mark.parametrize("source", [
    "import torch\nimport os\nos.system('true')\n",
    "import torch\nx = __import__('os')\n",
    "import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return eval('x')\n",
])
def test_the_export_checks_catch_injected_code(source: str) -> None:
    with pytest.raises(AssertionError):
        check_exported_source(source, "planted")
