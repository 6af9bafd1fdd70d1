"""Test-wide setup: headless Qt before any Qt import, and a quick hypothesis profile."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NETCANVAS_SETTINGS_ORG", "NetCanvasTests")  # keep tests out of the user's QSettings

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, settings  # noqa: E402

# What main.py does before it hands over: register template:NAME in core.sources, for the tests that
# call core.sources or core.cli directly.
import templates  # noqa: E402,F401


def _private_qsettings() -> None:
    """Keep this run's QSettings (window layout, theme, recent files) in a folder of its own, so two
    test runs at once (or a run beside the app) never read each other's saved layout."""
    import atexit
    import shutil
    import tempfile

    from PySide6.QtCore import QSettings

    folder = tempfile.mkdtemp(prefix="netcanvas-test-settings-")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    atexit.register(shutil.rmtree, folder, True)


_private_qsettings()

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def restore_light_theme() -> None:
    """The light theme again after a test, applied only where the application is not in it already:
    setting a style sheet re-polishes every live widget even when its text is the same (seconds per
    test once several windows have been made), and most tests never left the light theme."""
    from PySide6.QtWidgets import QApplication

    from gui.theme import LIGHT, apply_theme, current_theme, make_palette, stylesheet

    app = QApplication.instance()
    if (current_theme() is LIGHT and isinstance(app, QApplication) and app.styleSheet() == stylesheet(LIGHT)
            and app.palette() == make_palette(LIGHT)):
        return
    apply_theme(LIGHT)
