"""File › Export Generator…: a GAN canvas's generator alone, as a standalone .py or as ONNX.

A GAN project draws its generator and its discriminator on one canvas; what makes images after
training is the generator alone. :func:`core.gan_graph.network_project` takes it out, as
``main.py export --network generator`` does (node ids unchanged, so a run checkpoint's
``"generator"`` weights load into the module), and the ordinary exporters write it (:func:`core.export.python_source`,
:func:`core.export.export_onnx`). The menu offers the action only while the canvas holds a GAN
(:func:`sync_action`); asked anyway, it says why in one sentence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from core.project import atomic_write_text
from gui.file_messages import file_problem

if TYPE_CHECKING:
    from gui.document import Document
    from gui.main_window import MainWindow

FILTERS = "Python files (*.py);;ONNX models (*.onnx)"


def sync_action(window: MainWindow, action: QAction) -> None:
    """Show ``action`` while the window's canvas holds a GAN's two networks (the File menu asks on opening)."""
    from core.gan_graph import is_gan_graph

    action.setVisible(window.doc is not None and is_gan_graph(window.doc.graph))


def export_generator(window: MainWindow, target: Path | None = None) -> bool:
    """Write the canvas's generator alone to ``target`` (asked for when ``None``): a standalone
    PyTorch module for ``.py``, an ONNX model for ``.onnx``. False, with the reason shown, when the
    canvas holds no GAN, has errors, or the file cannot be written."""
    from core.gan_graph import GanGraphError, network_project

    doc = window.doc
    if doc is None:
        return False
    try:
        project = network_project(doc.project, "generator")  # as ``main.py export --network generator``
    except GanGraphError as exc:
        window.show_error("Cannot export the generator", str(exc))
        return False
    if not doc.analysis.ok:
        errors = "\n".join(f"• {d.message}" for d in doc.analysis.errors[:8])
        window.show_error("Cannot export", f"The graph has errors; fix them first:\n{errors}")
        return False
    if target is None:
        target = _ask_target(window, doc)
        if target is None:
            return False
    generator, name = project.graph, project.name or "Generator"
    if target.suffix.lower() == ".onnx":
        def job() -> Path:
            from core import export

            return export.export_onnx(generator, target)

        ok = window.run_busy(f"Exporting {target.name}…", job, target)
    else:
        try:
            from core import export

            atomic_write_text(target, export.python_source(generator, name))
            ok = True
        except (OSError, ValueError, ImportError) as exc:
            window.show_error("Export failed", file_problem(target, exc))
            ok = False
    if ok:
        window.show_status(f"Exported the generator to {target.name}")
    return ok


def _ask_target(window: MainWindow, doc: Document) -> Path | None:
    """The file the user picks (``<project>-generator.py`` suggested beside the project); the chosen
    filter's suffix when the name has none."""
    from PySide6.QtWidgets import QFileDialog

    if doc.path is not None:
        folder, stem = doc.path.parent, doc.path.stem
    else:
        folder, stem = Path.home(), re.sub(r"[^A-Za-z0-9_.-]+", "_", doc.project.name or "").strip("._") or "gan"
    path, chosen = QFileDialog.getSaveFileName(window, "Export the generator", str(folder / f"{stem}-generator.py"),
                                               FILTERS)
    if not path:
        return None
    target = Path(path)
    return target if target.suffix else target.with_suffix(".onnx" if "onnx" in chosen else ".py")


__all__ = ["export_generator", "sync_action"]
