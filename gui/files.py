"""Where the editor keeps things between runs: settings, recent files, crash-recovery autosaves.

- :func:`settings` is the one ``QSettings`` (organisation from ``NETCANVAS_SETTINGS_ORG`` when set,
  so tests never touch the user's settings).
- :class:`RecentFiles` is the File ▸ Recent list.
- :class:`Recovery` writes the open project to a recovery file (``recovery-<pid>.json`` in the
  application data folder) while it has unsaved changes, removes it whenever the document is
  clean again, and at the next start finds the files a crashed session left behind. A
  ``QLockFile`` per session tells a crashed session (stale lock) from a running one.
- :class:`FileActions` is the window's File menu: open (with the unsaved-changes prompt), save,
  export, templates, torchvision import, recent files, rename, autosave and the restore offer. A
  big project file is read and analysed on a worker thread while the status bar says so and the
  window keeps answering; its canvas is then drawn in slices (:mod:`gui.canvas.build_job`) with a
  progress bar, the previous document shown and editable until the new one is complete; Cancel,
  another open or closing the window stops it.
- :func:`file_problem`, :func:`drop_refusal` and :func:`when_text` word what the user reads: a
  problem with a file names its path once, a refused drop says what to do instead, an autosave
  time reads "today 11:42".
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QLockFile, QObject, QSettings, QStandardPaths, Qt, Signal
from PySide6.QtGui import QUndoCommand

from core.project import (
    Project,
    ProjectError,
    atomic_write_text,
    load_project,
    project_from_dict,
    project_to_dict,
)
from gui.file_messages import file_problem

APP_NAME = "NetCanvas"
RECENT_MAX = 10
RECOVERY_FORMAT = "netcanvas-recovery"
PROJECT_SUFFIXES = (".json",)
OPENABLE_SUFFIXES = (*PROJECT_SUFFIXES, ".onnx")  # what File › Open and a drop open (.onnx: imported)
MAX_NAME = 120  # a project name is a title, not a paragraph
_RECOVERY_RE = re.compile(r"recovery-(\d+)\.json")


def settings_org() -> str:
    return os.environ.get("NETCANVAS_SETTINGS_ORG") or APP_NAME


def settings() -> QSettings:
    """The editor's settings store (window layout, theme, recent files)."""
    return QSettings(settings_org(), APP_NAME)


def data_dir() -> Path:
    """The application data folder: ``NETCANVAS_DATA_DIR`` if set, else the platform's
    AppDataLocation for our organisation/application names (independent of how the
    QApplication happens to be named, so tests and the app agree)."""
    override = os.environ.get("NETCANVAS_DATA_DIR")
    if override:
        return Path(override)
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base) / settings_org() / APP_NAME


def _as_list(value: Any) -> list[str]:
    # QSettings returns a lone string for a one-item list in some backends, None for none.
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


class RecentFiles:
    """The most recently opened or saved project paths, newest first."""

    KEY = "recent_files"

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or settings()

    def paths(self) -> list[Path]:
        return [Path(p) for p in _as_list(self.store.value(self.KEY))]

    def add(self, path: Path) -> None:
        p = str(Path(path).resolve())
        items = [p] + [q for q in _as_list(self.store.value(self.KEY)) if q != p]
        self.store.setValue(self.KEY, items[:RECENT_MAX])

    def remove(self, path: Path) -> None:
        p = str(Path(path).resolve())
        self.store.setValue(self.KEY, [q for q in _as_list(self.store.value(self.KEY)) if q != p])

    def clear(self) -> None:
        self.store.setValue(self.KEY, [])


class Recovery:
    """This session's autosave file, and the ones crashed sessions left behind."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = Path(directory) if directory is not None else data_dir() / "recovery"
        self.pid = os.getpid()
        self._lock: QLockFile | None = None

    @property
    def path(self) -> Path:
        return self.dir / f"recovery-{self.pid}.json"

    def _lock_path(self, pid: int) -> Path:
        return self.dir / f"session-{pid}.lock"

    def start(self) -> None:
        """Hold this session's lock so other instances don't take our file for a crash's."""
        if self._lock is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = QLockFile(str(self._lock_path(self.pid)))
            self._lock.setStaleLockTime(0)  # a lock is stale only when its process is gone
            self._lock.tryLock(0)

    def write(self, project: Project) -> Path:
        """Autosave ``project`` (atomically) with the path it belongs to."""
        self.start()
        data = {
            "format": RECOVERY_FORMAT,
            "original_path": str(project.path) if project.path is not None else None,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "project": project_to_dict(project),
        }
        atomic_write_text(self.path, json.dumps(data, ensure_ascii=False))
        return self.path

    def clear(self) -> None:
        """Remove this session's recovery file (the document is saved or clean)."""
        self.path.unlink(missing_ok=True)

    def stop(self) -> None:
        """A clean exit: no recovery file, no lock."""
        self.clear()
        if self._lock is not None:
            self._lock.unlock()
            self._lock = None

    def orphans(self) -> list[Path]:
        """Recovery files whose session is gone (crashed), newest first."""
        if not self.dir.is_dir():
            return []
        found: list[Path] = []
        for f in self.dir.iterdir():
            m = _RECOVERY_RE.fullmatch(f.name)
            if not m or int(m.group(1)) == self.pid:
                continue
            lock = QLockFile(str(self._lock_path(int(m.group(1)))))
            lock.setStaleLockTime(0)
            if lock.tryLock(0):  # nobody holds it: that session is over
                lock.unlock()
                found.append(f)
        return sorted(found, key=lambda f: f.stat().st_mtime, reverse=True)

    @staticmethod
    def load(path: Path) -> tuple[Project, Path | None, str]:
        """``(project, original path or None, saved_at)`` from a recovery file; ProjectError if unreadable."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc  # not the path again
            raise ProjectError(f"cannot read the recovery file: {problem}", str(path)) from None
        if not isinstance(data, dict) or data.get("format") != RECOVERY_FORMAT:
            raise ProjectError("not a NetCanvas recovery file", str(path))
        project = project_from_dict(data.get("project"))
        original = data.get("original_path")
        return project, Path(original) if isinstance(original, str) else None, str(data.get("saved_at", ""))

    @staticmethod
    def discard(path: Path) -> None:
        Path(path).unlink(missing_ok=True)


# -- what the user reads about files ---------------------------------------------------------------

def drop_refusal(paths: Sequence[str | None]) -> str | None:
    """Why the dropped items cannot be opened (one status-bar line), or None when one is a project file.

    ``paths`` are local file paths, ``None`` for an item that is not a local file (a web link).
    """
    from PySide6.QtGui import QImageReader

    if not paths:
        return None
    local = [Path(p) for p in paths if p is not None]
    if any(p.suffix.lower() in OPENABLE_SUFFIXES for p in local):
        return None
    opens = "NetCanvas opens project files (.json) and ONNX models"
    if not local:
        return f"{opens} from this computer, not links: save the file, then drop it here"
    first = local[0]
    kind = first.suffix.lower()
    images = {"." + bytes(f).decode("ascii", "replace").lower() for f in QImageReader.supportedImageFormats()}
    if first.is_dir():
        return f"{first.name} is a folder: {opens}; to train on images, pick the folder in the Training panel"
    if kind == ".py":
        return f"{first.name} is Python code: {opens}; to import a model use File › Import torchvision model…"
    if kind in (".pt", ".pth", ".ckpt", ".safetensors"):
        return f"{first.name} holds weights, not a graph: {opens}"
    if kind in images:
        return f"{first.name} is an image: {opens}; to train on images, pick their folder in the Training panel"
    return f"{first.name} is not a project: {opens}; use File › Open… or File › Open Template…"


def when_text(saved_at: str, now: datetime | None = None) -> str:
    """An ISO timestamp in the user's local time and words: "today 11:42", "yesterday 09:05",
    "6 Dec 2026 11:42"; "" for a text that is no timestamp (an older recovery file)."""
    try:
        moment = datetime.fromisoformat(saved_at)
    except (TypeError, ValueError):
        return ""
    if moment.tzinfo is None:  # recovery files are written in UTC
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone()
    today = (now or datetime.now(UTC)).astimezone().date()
    clock = f"{local:%H:%M}"
    if local.date() == today:
        return f"today {clock}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday {clock}"
    return f"{local.day} {local:%b %Y} {clock}"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a project's name, or None."""
    if not name.strip():
        return "a project needs a name"
    if len(name.strip()) > MAX_NAME:
        return f"a project name is at most {MAX_NAME} characters"
    return None


class RenameProjectCommand(QUndoCommand):
    """Rename the project (its ``name`` in the file: an edit, so undoable and a reason to save).

    The name is no graph data, so the document has no signal for it: ``on_renamed`` (the window's
    title and panels) runs after redo and undo.
    """

    def __init__(self, doc: Any, name: str, on_renamed: Callable[[], None]) -> None:
        problem = name_problem(name)
        if problem:
            raise ValueError(problem)
        new = name.strip()
        super().__init__(f"Rename project to “{new}”")
        self.doc = doc
        self.old, self.new = doc.project.name, new
        self.noop = self.old == self.new
        self.on_renamed = on_renamed

    def redo(self) -> None:
        self.doc.project.name = self.new
        self.on_renamed()

    def undo(self) -> None:
        self.doc.project.name = self.old
        self.on_renamed()


# -- the window's File menu ------------------------------------------------------------------------

# Project files up to this size open on the GUI thread (a few hundred milliseconds at most); bigger
# ones are read and analysed on a worker thread: a 100,000-node file took 28 s, all of it frozen.
BIG_PROJECT_BYTES = 2 * 1024 * 1024


class _Opened(QObject):
    """Carries a worker thread's opened document (or the sentence saying why not) to the GUI thread."""

    done = Signal(int, object)  # request number, Document or the problem's sentence


class FileActions:
    """New / Open / Save / Export / Import / Recent / autosave for one :class:`MainWindow`.

    The window provides ``doc``, ``set_document(doc)``, ``show_error(title, text)``,
    ``show_status(text)``, ``ask_unsaved() -> QMessageBox.StandardButton``,
    ``ask_project_name(current) -> str | None`` and ``project_renamed()``.
    """

    PROJECT_FILTER = "NetCanvas projects (*.json);;All files (*)"
    OPEN_FILTER = ("Projects and ONNX models (*.json *.onnx);;NetCanvas projects (*.json);;ONNX models (*.onnx);;"
                   "All files (*)")

    def __init__(self, window: Any, recovery: Recovery | None = None) -> None:
        self.w = window
        self.recent = RecentFiles(window.settings)
        self.recovery = recovery or Recovery()
        self._autosaved_index: int | None = None
        # File › Open of a big file: the file being read on a worker thread, each request's number
        # (a later open wins over one still reading), the document and undo index the unsaved-changes
        # prompt was answered for, and the status bar's busy bar.
        self.opening: Path | None = None
        self._open_request = 0
        self._prompted_for: tuple[Any, int] | None = None
        self._busy_bar: Any = None
        self._cancel_button: Any = None
        self.building: Any = None  # the SceneBuild drawing an opened big file's canvas
        self._built: tuple[Any, Any] | None = None  # its document and scene, dropped if it stops
        self._gc_held = False  # the collector is off from the read until the canvas is drawn
        self._opened = _Opened(window if isinstance(window, QObject) else None)
        self._opened.done.connect(self._project_opened)

    # -- opening ------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document (saved, discarded, or unmodified)."""
        from PySide6.QtWidgets import QMessageBox

        doc = self.w.doc
        if doc is None or not doc.is_modified():
            return True
        answer = self.w.ask_unsaved()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def new(self) -> None:
        from gui.document import Document

        if self.maybe_save():
            self.cancel_open()
            self.w.set_document(Document.new())

    def _start_dir(self) -> str:
        doc = self.w.doc
        if doc is not None and doc.path is not None:
            return str(doc.path.parent)
        recent = self.recent.paths()
        return str(recent[0].parent) if recent else str(Path.home())

    def open_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if not self.maybe_save():
            return
        path, _ = QFileDialog.getOpenFileName(self.w, "Open project", self._start_dir(), self.OPEN_FILTER)
        if path:
            self.open_path(Path(path), ask=False)

    def open_path(self, path: Path, *, ask: bool = True) -> bool:
        """Open a project file; a bad file shows the loader's message and changes nothing.

        A file over :data:`BIG_PROJECT_BYTES` is read and analysed on a worker thread: this returns
        True at once, the status bar says what is being opened (with a busy bar) and the document is
        shown when it arrives (:attr:`opening` is None again then).
        """
        from gui.document import Document

        if ask and not self.maybe_save():
            return False
        path = Path(path)
        if path.suffix.lower() == ".onnx":  # imported as a new project, not loaded (gui/dialogs/onnx_import.py)
            from gui.dialogs.onnx_import import open_onnx

            return open_onnx(self, path)
        self._open_request += 1
        self._end_busy()
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # the loader words what is wrong with it
        if size > BIG_PROJECT_BYTES:
            return self._open_in_background(path, size)
        try:
            project = load_project(path)
        except ProjectError as exc:
            self.w.show_error("Cannot open the project", file_problem(path, exc))
            return False
        self.w.set_document(Document.from_project(project))
        self.recent.add(path)
        self.w.show_status(f"Opened {path.name}")
        return True

    def _open_in_background(self, path: Path, size: int) -> bool:
        from PySide6.QtWidgets import QApplication, QProgressBar, QPushButton

        from gui.document import Document
        from gui.gc_pause import hold_gc

        request = self._open_request
        doc = self.w.doc
        self._prompted_for = (doc, doc.undo_stack.index()) if doc is not None else None
        self.opening = path
        self.w.show_status(f"Opening {path.name} ({size / 1_048_576:.1f} MiB)…", 0)
        bar = self._busy_bar = QProgressBar()
        bar.setRange(0, 0)  # busy: reading and analysing report no fraction
        bar.setMaximumWidth(120)
        bar.setAccessibleName(f"Opening {path.name}")
        self.w.statusBar().addPermanentWidget(bar)
        cancel = self._cancel_button = QPushButton("Cancel")
        cancel.setToolTip(f"Stop opening {path.name}; the project shown now stays open")
        cancel.clicked.connect(self._cancel_clicked)
        self.w.statusBar().addPermanentWidget(cancel)
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        # A collection on the worker would finalize the GUI's dropped Qt wrappers there; and while
        # the canvas is drawn, each full collection over the growing heap held the GUI thread up to
        # a second (20,000 nodes): the collector stays off until the open ends.
        if not self._gc_held:
            hold_gc()
            self._gc_held = True
        gui_thread = QCoreApplication.instance().thread()  # type: ignore[union-attr]

        def work() -> None:
            result: Any
            try:
                opened = Document.from_project(load_project(path))
                opened.moveToThread(gui_thread)  # its signals and undo stack belong to the window
                result = opened
            except ProjectError as exc:
                result = file_problem(path, exc)
            except Exception as exc:  # whatever else fails is still one sentence, and ends the busy state
                result = file_problem(path, f"cannot be opened ({type(exc).__name__}: {exc})")
            try:
                self._opened.done.emit(request, result)
            except RuntimeError:  # the window closed meanwhile
                self._release_gc()

        threading.Thread(target=work, name="open project", daemon=True).start()
        return True

    def cancel_open(self) -> bool:
        """Stop a background open, reading or drawing (another document is shown, the window closes):
        True when one was under way. A worker still reading finishes unheard."""
        if self.opening is None:
            return False
        self._open_request += 1
        self._end_busy()
        return True

    def _cancel_clicked(self) -> None:
        path = self.opening
        if self.cancel_open() and path is not None:
            self.w.show_status(f"Stopped opening {path.name}; {self.w.doc.project.name or 'the project'} "
                               f"is still open")

    def _end_busy(self) -> None:
        """Take the busy bar and cursor of a background open away (a later open replaced it, or it
        ended); a canvas still being drawn is dropped."""
        from PySide6.QtWidgets import QApplication

        self._release_gc()
        if self.building is not None:
            self.building.cancel()
            self.building.deleteLater()
            self.building = None
        if self._built is not None:
            _drop(*self._built)
            self._built = None
        if self._busy_bar is None:
            return
        for widget in (self._busy_bar, self._cancel_button):
            self.w.statusBar().removeWidget(widget)
            widget.deleteLater()
        self._busy_bar = self._cancel_button = None
        self.opening = None
        QApplication.restoreOverrideCursor()
        self.w.show_status("")

    def _release_gc(self, freeze: bool = False) -> None:
        """The collector runs again; ``freeze``: what is alive now (the opened document and its
        canvas) is left out of every later collection, which would scan its million objects each
        time (``gc.freeze``; what it holds is still freed when no longer referenced)."""
        import gc

        from gui.gc_pause import release_gc

        if self._gc_held:
            self._gc_held = False
            if freeze:
                gc.freeze()
            release_gc()

    def _project_opened(self, request: int, result: Any) -> None:
        if request != self._open_request:  # a later open replaced this one
            if not isinstance(result, str):
                result.dispose()
                result.deleteLater()
            return
        path = self.opening
        if isinstance(result, str) or path is None:
            self._end_busy()
            self.w.show_error("Cannot open the project", str(result))
            return
        self._draw(request, path, result)

    def _draw(self, request: int, path: Path, opened: Any) -> None:
        """Draw the opened document's canvas in slices, the progress in the status bar; show it when
        complete (the window shows the previous document meanwhile)."""
        from gui.canvas.build_job import SceneBuild, progress_text, progress_value
        from gui.canvas.scene import CanvasScene

        scene = CanvasScene(opened, build=False)
        self._built = (opened, scene)
        build = self.building = SceneBuild(scene)
        bar = self._busy_bar
        if bar is not None:
            bar.setRange(0, 1000)
            bar.setValue(0)

        def progress(what: str, done: int, total: int) -> None:
            self.w.show_status(progress_text(path.name, what, done, total), 0)
            if self._busy_bar is not None:
                self._busy_bar.setValue(progress_value(what, done, total))

        build.progress.connect(progress)
        build.finished.connect(lambda: self._drawn(request, path))
        progress("cards", 0, len(opened.graph.nodes))
        build.start()

    def _drawn(self, request: int, path: Path) -> None:
        if request != self._open_request or self._built is None:
            return
        result, scene = self._built
        self._built = None  # the window's now (or dropped below): _end_busy must not drop it
        self._release_gc(freeze=True)
        self._end_busy()
        doc = self.w.doc
        edited = doc is not None and (doc, doc.undo_stack.index()) != self._prompted_for
        if edited and not self.maybe_save():  # the document changed while the file was read or drawn
            _drop(result, scene)
            self.w.show_status(f"Kept your changes; {path.name} was not opened")
            return
        self.w.set_document(result, scene=scene)
        self.recent.add(path)
        self.w.show_status(f"Opened {path.name}")

    def open_project(self, project: Project, *, collapse_blocks: bool = True, status: str = "") -> None:
        """Show an unsaved project made here (a template, an import)."""
        from gui.document import Document

        self.cancel_open()
        self.w.set_document(Document.from_project(project, collapse_blocks=collapse_blocks))
        if status:
            self.w.show_status(status)

    def open_template(self) -> None:
        from gui.dialogs.templates import TemplateGallery

        if not self.maybe_save():
            return
        dialog = TemplateGallery(self.w)
        if dialog.exec() and dialog.selected:
            self.open_template_named(dialog.selected)

    def open_template_named(self, name: str) -> bool:
        import templates
        from core.sources import SourceError

        try:
            project = templates.build_template(name)
        except SourceError as exc:
            self.w.show_error("Cannot open the template", str(exc))
            return False
        self.open_project(project, status=f"Opened the {project.name} template (blocks collapsed: "
                                          f"double-click one to expand it)")
        return True

    def import_torchvision(self) -> None:
        from gui.dialogs.torchvision_import import TorchvisionImportDialog

        if not self.maybe_save():
            return
        dialog = TorchvisionImportDialog(self.w)
        if dialog.exec() and dialog.project is not None:
            self.open_project(dialog.project, status=f"Imported {dialog.project.name} from torchvision")

    def populate_recent(self, menu: Any) -> None:
        """Fill File ▸ Recent (called each time the menu is about to show)."""
        menu.clear()
        paths = self.recent.paths()
        for i, p in enumerate(paths):
            action = menu.addAction(f"&{i + 1}  {p.name}" if i < 9 else p.name)
            action.setToolTip(str(p))
            action.setStatusTip(str(p))
            action.triggered.connect(lambda _=False, p=p: self._open_recent(p))
        if not paths:
            menu.addAction("No recent projects").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list").triggered.connect(self.recent.clear)

    def _open_recent(self, path: Path) -> None:
        if not path.exists():
            self.recent.remove(path)
            self.w.show_error("Cannot open the project", file_problem(path, "the file no longer exists"))
            return
        self.open_path(path)

    # -- saving -------------------------------------------------------------------------------
    def save(self) -> bool:
        doc = self.w.doc
        if doc.path is None:
            return self.save_as()
        return self._save_to(doc.path)

    def save_as(self) -> bool:
        from PySide6.QtWidgets import QFileDialog

        doc = self.w.doc
        suggested = str(doc.path) if doc.path else str(Path(self._start_dir()) / f"{_file_stem(doc.project.name)}.json")
        path, _ = QFileDialog.getSaveFileName(self.w, "Save project as", suggested, self.PROJECT_FILTER)
        if not path:
            return False
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(".json")
        old_name = doc.project.name
        if (old_name or "Untitled") == "Untitled" and not name_problem(target.stem):
            doc.project.name = target.stem  # a first save names an untitled project after its file
        if self._save_to(target):
            if doc.project.name != old_name:
                self.w.project_renamed()
            return True
        doc.project.name = old_name
        return False

    def rename_project(self) -> bool:
        """File ▸ Rename Project…: ask for a name; the rename is one undoable edit."""
        doc = self.w.doc
        name = self.w.ask_project_name(doc.project.name)
        if name is None:
            return False
        try:
            command = RenameProjectCommand(doc, name, self.w.project_renamed)
        except ValueError as exc:
            self.w.show_status(f"Cannot rename the project: {exc}")
            return False
        if not doc.push(command):
            return False
        self.w.show_status(f"Renamed the project to “{command.new}”")
        return True

    def _save_to(self, target: Path) -> bool:
        from core.project import save_project

        doc = self.w.doc
        old = doc.path
        try:
            save_project(doc.project, target)
        except OSError as exc:
            doc.project.path = old
            self.w.show_error("Cannot save the project", file_problem(target, exc))
            return False
        doc.project.path = old
        doc.set_path(target)  # emits path_changed (save_project set the attribute silently)
        doc.set_clean()
        self.recent.add(target)
        self.recovery.clear()
        self.w.show_status(f"Saved {target.name}")
        return True

    # -- exporting ----------------------------------------------------------------------------
    def _export_target(self, title: str, suffix: str, filter_: str) -> Path | None:
        from PySide6.QtWidgets import QFileDialog

        doc = self.w.doc
        if not doc.analysis.ok:
            errors = "\n".join(f"• {d.message}" for d in doc.analysis.errors[:8])
            self.w.show_error("Cannot export", f"The graph has errors; fix them first:\n{errors}")
            return None
        base = doc.path.with_suffix(suffix) if doc.path else Path(self._start_dir()) / (
            _file_stem(doc.project.name) + suffix)
        path, _ = QFileDialog.getSaveFileName(self.w, title, str(base), filter_)
        if not path:
            return None
        target = Path(path)
        return target if target.suffix else target.with_suffix(suffix)

    def export_python(self, target: Path | None = None) -> bool:
        """Write the standalone PyTorch module (``core.export.python_source``)."""
        target = target or self._export_target("Export to Python", ".py", "Python files (*.py)")
        if target is None:
            return False
        try:
            from core import export

            source = export.python_source(self.w.doc.graph, self.w.doc.project.name or "Network")
            atomic_write_text(target, source)
        except (OSError, ValueError, ImportError) as exc:
            self.w.show_error("Export failed", file_problem(target, exc))
            return False
        self.w.show_status(f"Exported {target.name}")
        return True

    def export_onnx(self, target: Path | None = None) -> bool:
        """Write ONNX (``core.export.export_onnx``) in a worker thread behind a busy dialog."""
        target = target or self._export_target("Export to ONNX", ".onnx", "ONNX models (*.onnx)")
        if target is None:
            return False
        graph = self.w.doc.graph.copy()

        def job() -> Path:
            from core import export

            return export.export_onnx(graph, target)

        ok = self.w.run_busy(f"Exporting {target.name}…", job, target)
        if ok:
            self.w.show_status(f"Exported {target.name}")
        return ok

    # -- autosave and recovery ---------------------------------------------------------------
    def autosave(self) -> bool:
        """Write the recovery file if the document changed since the last autosave."""
        doc = self.w.doc
        if doc is None or not doc.is_modified():
            return False
        index = doc.undo_stack.index()
        if index == self._autosaved_index and self.recovery.path.exists():
            return False
        try:
            self.recovery.write(doc.project)
        except OSError as exc:
            self.w.show_status(f"Autosave failed: {exc.strerror or exc}")
            return False
        self._autosaved_index = index
        return True

    def modified_changed(self, modified: bool) -> None:
        if not modified:
            self.recovery.clear()
            self._autosaved_index = None

    def offer_recovery(self) -> bool:
        """After a crash: offer the newest recovery file; True when it was restored."""
        from PySide6.QtWidgets import QMessageBox

        from gui.document import Document

        orphans = self.recovery.orphans()
        if not orphans:
            return False
        newest = orphans[0]
        try:
            project, original, saved_at = Recovery.load(newest)
        except ProjectError:
            for f in orphans:
                Recovery.discard(f)
            return False
        where = f"“{original.name}”" if original else f"the unsaved project “{project.name}”"
        when = f" (autosaved {when_text(saved_at)})" if when_text(saved_at) else ""
        answer = self.w.ask_restore(
            f"NetCanvas did not close properly last time.\n\nRestore the unsaved changes to {where}{when}?")
        for f in orphans:
            Recovery.discard(f)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        project.path = original
        doc = Document.from_project(project)
        self.w.set_document(doc)
        doc.undo_stack.resetClean()  # differs from the file on disk: a save is still due
        self.autosave()
        self.w.show_status("Restored the autosaved changes — save to keep them")
        return True


def _drop(doc: Any, scene: Any) -> None:
    """Let go of an opened document and its canvas that will not be shown."""
    doc.dispose()
    scene.deleteLater()
    doc.deleteLater()


def _file_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or "").strip("._")
    return stem or "untitled"


__all__ = ["APP_NAME", "OPENABLE_SUFFIXES", "PROJECT_SUFFIXES",
           "FileActions", "RecentFiles", "Recovery", "RenameProjectCommand", "data_dir",
           "drop_refusal", "file_problem", "name_problem", "settings", "settings_org", "when_text"]
