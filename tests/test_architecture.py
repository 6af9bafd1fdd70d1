"""Every import arrow points down: ``main.py → gui → templates → core`` (DESIGN.md, issue 10).

The modules are read with :mod:`ast`, not imported, so an import inside a function counts as
much as one at the top of a file (a lazy import still ties the two modules together), while one
under ``if TYPE_CHECKING:`` does not (it never runs). ``importlib.import_module("a.b")`` with a
literal name counts too, and ``import_module(f"pkg.{name}")`` as an import of every module of
``pkg`` (the command line loads its subcommands so).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

PACKAGES = ("core", "templates", "gui")
# Which top-level part may import which: each only what stands below it. The CLI (core/cli) is a
# second front-end that lives in core, so it is held to core's rule.
ALLOWED = {
    "main": {"main", "gui", "templates", "core"},
    "gui": {"gui", "templates", "core"},
    "templates": {"templates", "core"},
    "core": {"core"},
}
# Cycles that another step of the same move removes, with the step; delete the entry when it lands
# (nothing else may join this list).
KNOWN_CYCLES: dict[frozenset[str], str] = {}  # none left; an entry needs its reason and the issue that removes it


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    files = [ROOT / "main.py"]
    for package in PACKAGES:
        files += sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return {_module_name(p): p for p in files}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Dotted names ``module`` imports (``from a import b`` gives ``a.b``), with their line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module" \
                and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value, node.lineno
            elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
                  and str(arg.values[0].value).endswith(".")):
                yield f"{arg.values[0].value}*", node.lineno  # f"pkg.{name}": any module of pkg


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` lands in (the longest known prefix), or None for others'."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, dict[str, int]]:
    """``{module: {imported module: first line}}`` over main.py, core, templates and gui."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for name, line in _imported_names(module, path):
            if name.endswith(".*"):
                prefix = name[:-1]
                targets = [m for m in modules if m.startswith(prefix) and "." not in m[len(prefix):]]
            else:
                targets = [t for t in [_resolve(name, modules)] if t is not None]
            for target in targets:
                if target != module:
                    edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _where(graph: dict[str, dict[str, int]], src: str, dst: str) -> str:
    return f"{_modules()[src].relative_to(ROOT)}:{graph[src][dst]} imports {dst}"


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: top-level, function-local, relative and importlib imports are edges;
    ``TYPE_CHECKING`` imports are not."""
    module = tmp_path / "mod.py"
    module.write_text(
        "import importlib\nfrom typing import TYPE_CHECKING\nimport core.graph\nfrom . import sibling\n"
        "if TYPE_CHECKING:\n    from gui.document import Document\nelse:\n    from gui import theme\n"
        "def f(name):\n    from templates.registry import add_template\n"
        "    importlib.import_module('core.compiler')\n    importlib.import_module(f'core.cli.{name}')\n",
        encoding="utf-8")
    names = {name for name, _line in _imported_names("gui.panels.mod", module)}
    assert names == {"importlib", "typing.TYPE_CHECKING", "core.graph", "gui.panels.sibling", "gui.theme",
                     "templates.registry.add_template", "core.compiler", "core.cli.*"}
    graph = import_graph()
    assert "core.project" in graph["core.sources"]
    assert "core.cli.summary" in graph["core.cli"] and "templates.vgg" in graph["templates"]
    assert len(graph) > 80


def test_every_arrow_points_down() -> None:
    graph = import_graph()
    upward = [_where(graph, src, dst) for src, edges in graph.items() for dst in edges
              if _top(dst) not in ALLOWED[_top(src)]]
    assert upward == [], "imports that point up (main.py → gui → templates → core):\n" + "\n".join(upward)


def test_no_two_modules_import_each_other() -> None:
    graph = import_graph()
    pairs = sorted({tuple(sorted((a, b))) for a, edges in graph.items() for b in edges if a in graph.get(b, {})})
    found = [f"{_where(graph, a, b)}, and {_where(graph, b, a)}" for a, b in pairs
             if frozenset((a, b)) not in KNOWN_CYCLES]
    assert found == [], "modules that import each other:\n" + "\n".join(found)


def test_no_import_cycles_at_all() -> None:
    """Not even through a third module: every group of modules that reach each other, as one."""
    digraph = nx.DiGraph([(a, b) for a, edges in import_graph().items() for b in edges])
    cycles = {frozenset(c) for c in nx.strongly_connected_components(digraph) if len(c) > 1}
    found = [" → ".join(sorted(c)) for c in cycles - set(KNOWN_CYCLES)]
    assert found == [], "modules that import each other, directly or through others:\n" + "\n".join(sorted(found))


def test_the_editor_does_not_borrow_from_the_command_line() -> None:
    """The CLI (core/cli) is a front-end beside the GUI: what both need (number formatting, loading
    a SOURCE) lives in core proper, and nothing but main.py reaches into the CLI."""
    graph = import_graph()
    borrowed = [_where(graph, src, dst) for src, edges in graph.items() for dst in edges
                if (dst == "core.cli" or dst.startswith("core.cli.")) and src != "main"
                and not (src == "core.cli" or src.startswith("core.cli."))]
    assert borrowed == [], "modules that borrow from the command line:\n" + "\n".join(borrowed)
