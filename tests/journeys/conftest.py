"""Journey fixtures: the real ``MainWindow`` at a user's screen size, and checks of what a user sees.

Journey tests walk a user's story end to end through menus, QActions, shortcuts and mouse
gestures, and assert what is on the screen: the canvas's share of the window, which panels are
visible and how big, texts that fit their widgets, plot ranges, the title's modified mark.
They run offscreen in ``make test``; ``tests/journeys/xvfb.sh`` runs them in a real X server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QMessageBox, QWidget

from core.project import load_project
from gui.document import Document
from gui.files import settings
from gui.main_window import MainWindow
from tests.conftest import restore_light_theme

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo_lenet.json"
SIZES = [QSize(1600, 1000), QSize(1280, 720)]

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _empty_clipboard(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Leave the clipboard empty (a clipboard owning our QMimeData crashes Qt's offscreen teardown)."""
    yield
    qapp.clipboard().clear()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fresh settings and a private data folder (recovery files, runs) for each journey."""
    monkeypatch.setenv("NETCANVAS_DATA_DIR", str(tmp_path / "data"))
    s = settings()
    s.clear()
    s.sync()
    yield tmp_path
    s.clear()
    s.sync()
    restore_light_theme()


def open_window(qtbot, size: QSize = SIZES[0], doc: Document | None = None, *,  # type: ignore[no-untyped-def]
                restore_layout: bool = True, **kwargs) -> MainWindow:
    """A shown main window as a user gets it (saved layout restored), with modal prompts answered.

    ``window.errors`` collects what would have been a message box; ``window.answers`` is the
    reply to the unsaved-changes prompt (Discard unless a test says otherwise).
    """
    window = MainWindow(doc or Document.from_project(load_project(DEMO)), restore_layout=restore_layout, **kwargs)
    window.errors = []  # type: ignore[attr-defined]
    window.show_error = lambda title, text: window.errors.append((title, text))  # type: ignore[method-assign]
    window.answers = [QMessageBox.StandardButton.Discard]  # type: ignore[attr-defined]
    window.ask_unsaved = lambda: window.answers[0]  # type: ignore[method-assign, attr-defined]
    qtbot.addWidget(window)
    window.resize(size)
    window.show()
    qtbot.waitExposed(window)
    settle()
    return window


def settle(ms: int = 30) -> None:
    """Let queued events (layouts, single-shot timers) run, as they would between a user's clicks."""
    from PySide6.QtTest import QTest

    QApplication.processEvents()
    QTest.qWait(ms)
    QApplication.processEvents()


def canvas_share(window: MainWindow) -> tuple[float, float]:
    """The canvas viewport's width and height as fractions of the window's."""
    vp = window.view.viewport()
    return vp.width() / window.width(), vp.height() / window.height()


def visible_text(widget: QWidget) -> str:
    """The text a label or button shows (mnemonic ampersands removed)."""
    text = widget.text() if isinstance(widget, QLabel | QAbstractButton) else ""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def assert_not_clipped(widget: QWidget, text: str | None = None) -> None:
    """The widget's text fits its width (what a user reads is the whole text, not "set in featu")."""
    shown = visible_text(widget) if text is None else text
    need = max((widget.fontMetrics().horizontalAdvance(line) for line in shown.splitlines() or [""]), default=0)
    assert widget.isVisible(), f"{type(widget).__name__} “{shown}” is not visible"
    assert need <= widget.width(), f"“{shown}” needs {need} px but {type(widget).__name__} is {widget.width()} px"


def trigger(window: MainWindow, menu_title: str, action_text: str) -> None:
    """Trigger a menu action by the texts a user reads (``"File"``, ``"New"``)."""
    for menu_action in window.menuBar().actions():
        if menu_action.text().replace("&", "") == menu_title:
            menu = menu_action.menu()
            for action in menu.actions():
                if action.text().replace("&", "").rstrip("…").strip() == action_text.rstrip("…").strip():
                    assert action.isEnabled(), f"{menu_title} › {action_text} is disabled"
                    action.trigger()
                    settle()
                    return
            raise AssertionError(f"no “{action_text}” in the {menu_title} menu: "
                                 f"{[a.text() for a in menu.actions()]}")
    raise AssertionError(f"no “{menu_title}” menu")


Trigger = Callable[[MainWindow, str, str], None]
