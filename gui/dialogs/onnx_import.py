"""File › Open of an ONNX model: the importer's graph lands on the canvas as a new, unsaved project.

The import itself is :func:`core.importer.onnx_import.import_onnx_project` (the same as
``main.py import model.onnx``); this module only shows it: a busy cursor while the file is read,
the graph opened like a template (blocks collapsed, laid out), and what went wrong in one message
naming the file. The editor keeps graphs, not weights, so the status bar says where the ONNX
file's weights can be kept: ``main.py import`` writes them beside the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.importer.errors import ModelImportError
from core.importer.onnx_import import import_onnx_project


def open_onnx(files: Any, path: Path) -> bool:
    """Import ``path`` and show it in ``files``' window (a :class:`gui.files.FileActions`); False if refused."""
    from gui.files import file_problem

    window = files.w
    window.show_status(f"Importing {path.name}…", 0)
    QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
    try:
        project, _weights = import_onnx_project(path)
    except ModelImportError as exc:
        window.show_status("")
        text = str(exc)  # a problem with the file itself already starts with its path
        message = text if text.startswith(str(path)) else file_problem(path, text)
        window.show_error("Cannot import the ONNX model", message)
        return False
    finally:
        QApplication.restoreOverrideCursor()
    layers = sum(1 for n in project.graph.nodes.values() if n.type not in ("Input", "Output"))
    files.open_project(project, status=f"Imported {path.name}: {layers} layers (main.py import also keeps "
                                       f"its weights)")
    return True


__all__ = ["open_onnx"]
