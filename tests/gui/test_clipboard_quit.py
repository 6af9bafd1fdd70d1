"""Quitting with a copied selection on the clipboard: no crash, and the JSON stays pasteable."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv)
from gui.clipboard import MIME, clipboard_text, put_on_clipboard, release_clipboard
app.aboutToQuit.connect(release_clipboard)
put_on_clipboard('{"format": "netcanvas-project"}')
assert app.clipboard().mimeData().hasFormat(MIME)
QTimer.singleShot(0, app.quit)
app.exec()
print(clipboard_text())
"""


def test_quit_with_our_data_on_the_clipboard_exits_cleanly() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == '{"format": "netcanvas-project"}'
