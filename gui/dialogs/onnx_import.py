"""File › Open of an ONNX model: the importer's graph lands on the canvas as a new, unsaved project.

The import itself is :func:`core.importer.onnx_import.import_onnx_project` (the same as
``main.py import model.onnx``); it runs on a worker thread (a ResNet takes a second or two to read,
check and convert) while the status bar says what is being imported and the window keeps
answering. The graph is then opened like a template (blocks collapsed, laid out); what went wrong
is one message naming the file. A later open wins over an import still running (another ONNX
file, or another project shown meanwhile); edits made meanwhile are asked about again. The editor
keeps graphs, not weights, so the status bar says where the ONNX file's weights are kept:
``main.py import`` writes them beside the project.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from core.native_libs import open_torch_libraries


def _import_onnx(path: Path) -> Any:
    """The project imported from ``path``, or one line saying why not (runs on the import's worker)."""
    from gui.file_messages import file_problem

    # The importer needs torch: imported here, on the worker, not when this module loads (on the GUI thread
    # that froze the window ~2 s), with its native libraries opened first without the interpreter lock
    # (opened by the import itself, they held it, and so the window, 0.3-0.5 s).
    open_torch_libraries()
    try:
        from core.importer.errors import ModelImportError
        from core.importer.onnx_import import import_onnx_project
    except Exception as exc:  # a broken torch install: still one sentence
        return file_problem(path, f"cannot be imported (the importer did not load: {type(exc).__name__}: {exc})")
    try:
        return import_onnx_project(path)[0]
    except ModelImportError as exc:
        text = str(exc)  # a problem with the file itself already starts with its path
        return text if text.startswith(str(path)) else file_problem(path, text)
    except Exception as exc:  # whatever else fails is still one sentence, and ends the busy state
        return file_problem(path, f"cannot be imported ({type(exc).__name__}: {exc})")


class OnnxOpener(QObject):
    """Imports ONNX files for one window on a worker thread and shows each result on the GUI thread."""

    done = Signal(int, object)  # request number, the Project or the sentence saying why not

    def __init__(self, files: Any) -> None:
        super().__init__(files.w if isinstance(files.w, QObject) else None)
        self.files = files
        self.request = 0
        self.running = 0  # imports whose result has not arrived yet
        self._asked: tuple[Any, int] | None = None  # the document and undo index when the import began
        self.done.connect(self._arrived)

    def start(self, path: Path) -> None:
        from gui.gc_pause import hold_gc

        self.request += 1
        request, window = self.request, self.files.w
        doc = window.doc
        self._asked = (doc, doc.undo_stack.index()) if doc is not None else None
        window.show_status(f"Importing {path.name}…", 0)
        if self.running == 0:
            QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self.running += 1
        hold_gc()  # a collection on the worker would finalize the GUI's dropped Qt wrappers there

        def work() -> None:
            result = _import_onnx(path)
            try:
                self.done.emit(request, (path, result))
            except RuntimeError:  # the window closed meanwhile
                from gui.gc_pause import release_gc

                release_gc()

        threading.Thread(target=work, name="import onnx", daemon=True).start()

    def _arrived(self, request: int, outcome: tuple[Path, Any]) -> None:
        from gui.gc_pause import release_gc

        release_gc()
        self.running -= 1
        if self.running == 0:
            QApplication.restoreOverrideCursor()
        if request != self.request:  # a later import replaced this one
            return
        path, result = outcome
        window = self.files.w
        if isinstance(result, str):
            window.show_status("")
            window.show_error("Cannot import the ONNX model", result)
            return
        doc = window.doc
        if self._asked is not None and doc is not self._asked[0]:  # another project was opened meanwhile
            window.show_status(f"{path.name} was not imported: another project was opened meanwhile")
            return
        edited = doc is not None and (doc, doc.undo_stack.index()) != self._asked
        if edited and not self.files.maybe_save():
            window.show_status(f"Kept your changes; {path.name} was not imported")
            return
        layers = sum(1 for n in result.graph.nodes.values() if n.type not in ("Input", "Output"))
        self.files.open_project(result, status=f"Imported {path.name}: {layers} layers (main.py import also "
                                               f"keeps its weights)")


_OPENERS: weakref.WeakKeyDictionary[Any, OnnxOpener] = weakref.WeakKeyDictionary()


def open_onnx(files: Any, path: Path) -> bool:
    """Start importing ``path`` into ``files``' window (a :class:`gui.files.FileActions`); True: started."""
    opener = _OPENERS.get(files)
    if opener is None:
        opener = _OPENERS[files] = OnnxOpener(files)
    opener.start(Path(path))
    return True


__all__ = ["OnnxOpener", "open_onnx"]
