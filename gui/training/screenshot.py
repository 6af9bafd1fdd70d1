"""``main.py FILE --train --screenshot OUT``: train in the editor window, then save a picture of it."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, Qt, QTimer

from gui.training.panel_dock import training_dock_height

if TYPE_CHECKING:
    from gui.main_window import MainWindow


def screenshot_after_training(window: MainWindow, epochs: int | None, out_path: str | Path,
                              timeout_s: float = 3600.0) -> int:
    """Train in ``window`` with the project's settings, then save a PNG of the window.

    Shows the training dock with the curves and feature maps, waits for the run to end (all of
    ``epochs``, default the project's), lets the last repaint land and saves ``out_path``.
    Returns the exit status: 0 when the run completed and the picture was saved, 1 when the run
    failed (the picture, showing the message, is still saved), 2 when it could not be saved.
    """
    from PySide6.QtWidgets import QApplication

    dock = window.training
    dock.show()
    dock.raise_()
    panel = dock.panel
    window.resizeDocks([dock], [training_dock_height(window)], Qt.Orientation.Vertical)
    for _ in range(4):
        QApplication.processEvents()
    if window.view is not None:
        window.view.fit_all()
    panel.settings.wait_for_data()
    loop = QEventLoop()
    panel.run_finished.connect(lambda _s: loop.quit())
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    if not panel.start(epochs=epochs):
        print(f"netcanvas: training could not start: {_plain(panel.problem_text)}", file=sys.stderr)
        status = 1
    else:
        loop.exec()
        panel.shutdown()
        summary = panel.last_summary
        status = 0 if summary is not None and summary.status in ("completed", "early_stopped") else 1
        if status:
            print(f"netcanvas: training ended: {summary.message if summary else 'timed out'}", file=sys.stderr)
    panel.maps.render()
    for _ in range(6):
        QApplication.processEvents()
    out = Path(out_path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = window.grab().save(str(out), "PNG")
    except OSError:
        saved = False
    if not saved:
        print(f"netcanvas: cannot save {out}", file=sys.stderr)
        return 2
    print(f"saved {out}")
    return status


def _plain(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html).strip()


__all__ = ["screenshot_after_training"]
