"""``make run`` without a usable display says so in one line (gui.display), not with Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gui.display import display_problem

ROOT = Path(__file__).resolve().parents[2]


def test_no_display_is_one_sentence_with_the_way_out() -> None:
    problem = display_problem({}, "linux")
    assert problem is not None and "DISPLAY" in problem and "xvfb-run" in problem and "offscreen" in problem


def test_a_chosen_plugin_or_another_system_is_left_to_qt() -> None:
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({}, "win32") is None
    assert display_problem({}, "darwin") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None


def test_main_without_a_display_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, str(ROOT / "main.py")], env=env, capture_output=True, text=True,
                          timeout=120)
    if sys.platform.startswith("linux"):
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("netcanvas: no display"), done.stderr
        assert "Traceback" not in done.stderr
