"""``main.py import model.py``: the ``nn.Module`` a Python file defines, imported as a project.

The file is run as a module of its own (never as ``__main__``, so an exported file's
``if __name__ == "__main__":`` example does not run), and the network is the class the user
names, or else the last ``nn.Module`` subclass the file defines that builds without arguments —
the network class of a file NetCanvas exported comes after the blocks and layers it uses. Its
input shape is not in the file, so it is given per input. The project holds the structure only,
as for ``torchvision:NAME``: a freshly built model's weights are its random initialisation.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from core.importer.errors import ModelImportError
from core.importer.pipeline import import_module
from core.project import Project


def _run_file(path: Path) -> dict[str, type]:
    """The names the file defines, after running it as module ``netcanvas_import_<stem>``."""
    spec = importlib.util.spec_from_file_location(f"netcanvas_import_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ModelImportError(f"{path}: not a Python file that can be run")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # while it runs: a dataclass or pickle in the file looks itself up there
    try:
        spec.loader.exec_module(module)
    except OSError as exc:
        raise ModelImportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # the user's file: whatever it raises is told in one line
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelImportError(f"{path}: running it fails: {type(exc).__name__}{': ' + line if line else ''}") from None
    finally:
        sys.modules.pop(spec.name, None)
    return {name: value for name, value in vars(module).items()
            if isinstance(value, type) and value.__module__ == module.__name__}


def _builds_bare(cls: type) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def python_model(path: str | Path, class_name: str | None = None) -> nn.Module:
    """The network ``path`` defines (``class_name``, or the last module class that builds without arguments)."""
    path = Path(path)
    classes = {name: cls for name, cls in _run_file(path).items() if issubclass(cls, nn.Module)}
    if class_name is not None:
        if class_name not in classes:
            known = ", ".join(classes) or "none"
            raise ModelImportError(f"{path} defines no nn.Module class {class_name!r} (it defines: {known})")
        chosen = classes[class_name]
    else:
        bare = [cls for cls in classes.values() if _builds_bare(cls)]
        if not bare:
            raise ModelImportError(f"{path} defines no nn.Module class that builds without arguments: name the "
                                   f"network's class (--class NAME) and give it defaults")
        chosen = bare[-1]
    try:
        model = chosen()
    except Exception as exc:
        raise ModelImportError(f"{path}: {chosen.__name__}() fails: {type(exc).__name__}: {exc}") from None
    assert isinstance(model, nn.Module)
    return model.eval()


def import_python(path: str | Path, input_shapes: Sequence[Sequence[int]], class_name: str | None = None) -> Project:
    """The network ``path`` defines as a project, for one per-sample shape per forward input.

    An input read by an ``nn.Embedding`` is imported as token ids (its shape is the sequence
    length, e.g. ``(35,)``); raises :class:`ModelImportError` for anything that cannot be imported.
    """
    model = python_model(path, class_name)
    shapes = [tuple(s) for s in input_shapes]
    graph = import_module(model, shapes if len(shapes) > 1 else shapes[0])
    name = type(model).__name__
    return Project(graph=graph, name=name, extra={"imported_from": f"{Path(path).name}:{name}"})


__all__ = ["import_python", "python_model"]
