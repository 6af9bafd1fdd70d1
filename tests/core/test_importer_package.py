"""The importer's package structure (issue 10): one-way seams, no private names crossing modules.

The modules are read with :mod:`ast`, not imported, so a function-local import counts as much as
one at the top of a file. What the importer *does* is tested in test_importer.py and
test_importer_torchvision.py; this file keeps the house it lives in from sliding back into one
module split along no seam.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter

import core.importer
from tests.conftest import ROOT

PACKAGE = ROOT / "core" / "importer"


def _trees() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = "core.importer" if path.stem == "__init__" else f"core.importer.{path.stem}"
        out[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def _own_imports(tree: ast.AST) -> list[ast.ImportFrom]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("core.importer")]


def test_no_private_name_crosses_the_importers_modules() -> None:
    crossing = [f"{name}:{node.lineno} takes {alias.name} from {node.module}"
                for name, tree in _trees().items() for node in _own_imports(tree)
                for alias in node.names if alias.name.startswith("_")]
    assert crossing == []


def test_core_is_imported_at_the_top_of_each_module_only() -> None:
    """A function-local import of one of our modules is how a cycle hides; the lazy imports left
    are torch's and torchvision's, which only cost time."""
    hidden = []
    for name, tree in _trees().items():
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                               else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                    hidden += [f"{name}:{node.lineno} imports {t} inside {fn.name}()" for t in targets
                               if t.split(".")[0] in ("core", "templates", "gui")]
    assert hidden == []


def test_the_modules_stack_in_layers_and_the_layout_is_named_once() -> None:
    trees = _trees()
    uses = {name: {node.module for node in _own_imports(tree) if node.module != name}
            for name, tree in trees.items() if name != "core.importer"}
    assert all(deps <= set(trees) for deps in uses.values()), uses
    try:
        order = list(TopologicalSorter({name: deps - {"core.importer"} for name, deps in uses.items()}).static_order())
    except CycleError as exc:
        raise AssertionError(f"the importer's modules import each other: {exc.args[1]}") from None
    assert order.index("core.importer.ops") < order.index("core.importer.converter")  # handlers below the walk
    assert all("core.importer" not in deps for deps in uses.values()), "a part imports the package's exports"
    # One layout for the whole app: the pipeline places the nodes with core.layout, as Auto-arrange does,
    # and the importer keeps no layout of its own.
    pipeline = trees["core.importer.pipeline"]
    assert "core.layout" in {n.module for n in ast.walk(pipeline) if isinstance(n, ast.ImportFrom)}
    assert "core.importer.layout" not in trees


def test_the_package_init_only_exports_the_public_api() -> None:
    tree = _trees()["core.importer"]
    body = tree.body[1:] if isinstance(tree.body[0], ast.Expr) else tree.body  # after the docstring
    kinds = {type(node).__name__ for node in body}
    assert kinds <= {"ImportFrom", "Assign"}, kinds
    assert set(core.importer.__all__) == {
        "BATCH", "ModelImportError", "id_paths", "import_module", "import_torchvision", "import_with_weights",
        "layer_classes", "module_params", "torchvision_input_shape", "torchvision_model",
        "torchvision_names", "user_params"}
    assert all(callable(getattr(core.importer, name)) for name in core.importer.__all__ if name != "BATCH")
    assert not (ROOT / "core" / "importer.py").exists() and not (ROOT / "core" / "importer_ops.py").exists()


def test_each_module_says_what_it_does_and_stays_small() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert ast.get_docstring(ast.parse(text)), f"{path.name} has no module docstring"
        assert text.count("\n") < 800, f"{path.name} has {text.count(chr(10))} lines"

