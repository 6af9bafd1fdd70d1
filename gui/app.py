"""Start the editor: ``python main.py [PROJECT] [--screenshot OUT.png] [--size 1600x1000]``.

Without PROJECT the default demo (``resources/demo_lenet.json``) opens, never an empty window;
a PROJECT that cannot be opened opens the demo too, and a message says why.
PROJECT is anything ``core.sources.load_source`` accepts: a project file, ``template:resnet50``
or ``torchvision:resnet18`` (templates and imports open with their blocks collapsed).

``--screenshot`` opens the window, lets it lay out and paint, saves a PNG of the whole window
and exits 0 (or prints the problem on stderr and exits 2). It needs no display: without
``QT_QPA_PLATFORM`` it renders offscreen. ``--theme``, ``--select``, ``--expand`` and ``--panel``
set up the picture (the README's screenshots are made this way).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from gui.document import Document
    from gui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo_lenet.json"
PANELS = ("problems", "summary", "code")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 1600x1000, got {text!r}") from None
    if not (320 <= w <= 8000 and 240 <= h <= 8000):
        raise argparse.ArgumentTypeError(f"size {w}x{h} is out of range (320x240 to 8000x8000)")
    return w, h


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="main.py", description="NetCanvas: draw neural networks, see every shape.")
    p.add_argument("project", nargs="?", help="project file, template:NAME or torchvision:NAME (default: the demo)")
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window to a PNG and exit")
    p.add_argument("--size", type=_size, default=(1600, 1000), metavar="WxH", help="window size (default 1600x1000)")
    p.add_argument("--theme", choices=("light", "dark"), help="theme for this run (not saved)")
    p.add_argument("--select", metavar="NODE", help="select NODE (the inspector shows it)")
    p.add_argument("--expand", action="store_true", help="expand every block")
    p.add_argument("--panel", choices=PANELS, help="bottom panel to show")
    p.add_argument("--train", action="store_true",
                   help="train in the window with the project's settings (with --screenshot: save when it ends)")
    p.add_argument("--epochs", type=int, metavar="N", help="with --train: epochs to train (default: the project's)")
    return p


def _load(source: str) -> Any:
    """The project for ``source``; raises ProjectError/SourceError with a readable message."""
    from core.sources import load_source

    return load_source(source)


def run_gui(argv: list[str]) -> int:
    """Open the editor (or take a screenshot); returns the process exit status."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage line
        return int(exc.code or 0)
    if args.screenshot and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY") \
            and sys.platform.startswith("linux"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from gui.files import APP_NAME, settings_org
    from gui.panels.icons import app_icon

    QCoreApplication.setOrganizationName(settings_org())
    QCoreApplication.setApplicationName(APP_NAME)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    assert isinstance(app, QApplication)
    app.setWindowIcon(app_icon())
    app.setApplicationDisplayName(APP_NAME)
    from gui.clipboard import release_clipboard

    app.aboutToQuit.connect(release_clipboard)

    source = args.project or str(DEMO)
    project, error = open_source(source)
    if args.screenshot:
        if error:
            print(f"netcanvas: {error}", file=sys.stderr)
            return 2
        return _screenshot(app, project, source, args)
    window = start_editor(project, source, args, error)  # held: a window nobody references is deleted
    from gui.training.preload import preload_when_idle

    preload_when_idle(window)  # torch imported and warmed up while the editor is idle (see preload_when_idle)
    status = int(app.exec())
    del window
    return status


def open_source(source: str) -> tuple[Any, str | None]:
    """``(project, None)``, or ``(None, message)`` naming the source once when it cannot be loaded."""
    from gui.files import file_problem

    try:
        return _load(source), None
    except Exception as exc:  # ProjectError / SourceError / an importer failure: one line, no traceback
        return None, file_problem(source, exc)


def _document(project: Any, source: str, args: argparse.Namespace) -> Document:
    from gui.document import Document

    collapse = source.startswith(("template:", "torchvision:")) and not args.expand
    doc = Document.from_project(project, collapse_blocks=collapse)
    if args.expand:
        for gid, group in list(doc.graph.groups.items()):
            if group.collapsed:
                doc.graph.set_group(gid, collapsed=False)
    return doc


def _window(project: Any, source: str, args: argparse.Namespace, *, persist: bool) -> MainWindow:
    from gui.main_window import MainWindow

    window = MainWindow(_document(project, source, args), restore_layout=persist, theme=args.theme)
    if not persist or args.size != (1600, 1000):
        window.resize(*args.size)
    if args.panel:
        dock = {"problems": window.problems_dock, "summary": window.summary_dock, "code": window.code_dock}
        dock[args.panel].raise_()
    return window


def _settle(app: QApplication, rounds: int = 6) -> None:
    for _ in range(rounds):
        app.processEvents()


def _show_selected(window: MainWindow, node_id: str) -> None:
    """Select ``node_id``; keep the whole-graph view when it shows the node readably, else centre on it."""
    from gui.canvas.items import LOD_TEXT

    view = window.view
    view.select_nodes([node_id])
    item = view.canvas.nodes.get(node_id)
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    if item is None or not item.isVisible() or view.zoom() < LOD_TEXT * 1.5 \
            or not visible.contains(item.sceneBoundingRect()):
        window.focus_node(node_id)
        # show the titles of the blocks around it too, when they are less than half a view above
        tops = [f.rect.top() - 12 for f in view.canvas.frames.values()
                if f.isVisible() and f.rect.contains(item.sceneBoundingRect())]
        visible = view.mapToScene(view.viewport().rect()).boundingRect()
        if tops and visible.top() > min(tops) > visible.top() - visible.height() / 2:
            view.centerOn(visible.center().x(), visible.center().y() - (visible.top() - min(tops)))


def _screenshot(app: QApplication, project: Any, source: str, args: argparse.Namespace) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    out = Path(args.screenshot)
    window = _window(project, source, args, persist=False)
    window.show()
    _settle(app)
    if args.train:  # train in the window, then save it with the curves and feature maps (gui/training)
        from gui.training import screenshot_after_training

        status = screenshot_after_training(window, args.epochs, out)
        window.code.shutdown()
        window.summary.shutdown()
        return status
    window.view.fit_all()
    if args.select and args.select in window.doc.graph.nodes:
        _show_selected(window, args.select)
    if args.panel == "code":  # let the generated code arrive (it is built in a worker thread)
        loop = QEventLoop()
        window.code.code_ready.connect(loop.quit)
        QTimer.singleShot(15_000, loop.quit)
        if window.code.thread is not None or window.code.stale:
            loop.exec()
        window.code.scroll_to("class ")  # the module docstring is less telling than the class
    _settle(app)
    image = window.grab()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = image.save(str(out), "PNG")
    except OSError as exc:
        saved, reason = False, str(exc)
    else:
        reason = "the image could not be written (is the folder writable?)"
    window.code.shutdown()
    window.summary.shutdown()
    if not saved:
        print(f"netcanvas: cannot save {out}: {reason}", file=sys.stderr)
        return 2
    print(f"saved {out} ({image.width()}×{image.height()})")
    return 0


def start_editor(project: Any, source: str, args: argparse.Namespace, error: str | None = None) -> MainWindow:
    """Show the editor window on ``project``; with ``error`` (``project`` could not be opened) on the
    demo instead, the error shown over it as soon as the event loop runs."""
    from PySide6.QtCore import QTimer

    if error is not None or project is None:  # a user who names a bad file still gets a working editor
        project, source = _load(str(DEMO)), str(DEMO)
    window = _window(project, source, args, persist=True)
    window.show()
    if error:
        QTimer.singleShot(0, lambda: window.show_error("Cannot open the project", error))
    elif not args.project:
        QTimer.singleShot(0, window.files.offer_recovery)
    if args.select and not error:
        QTimer.singleShot(0, lambda: window.focus_node(args.select))
    if args.train and not error:
        QTimer.singleShot(0, lambda: window.training.start(epochs=args.epochs))
    return window


__all__ = ["DEMO", "open_source", "parser", "run_gui", "start_editor"]
