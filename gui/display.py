"""Can a window be shown here? One clear sentence instead of Qt's abort when it cannot.

Qt aborts the process (``qt.qpa.xcb: could not connect to display`` and a core dump) when there is
no display, and when its X11 plugin misses one of the system's xcb libraries. :func:`display_problem`
checks the same conditions first, with nothing but the environment and the dynamic loader, so
``make run`` on a server or a fresh Linux install says what to do.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

# The X11 (xcb) libraries Qt 6's platform plugin loads beyond what a desktop always has, and the
# Debian/Ubuntu packages that provide them.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}
HEADLESS_HINT = ("run it under a virtual display (xvfb-run -a python main.py), or set QT_QPA_PLATFORM=offscreen "
                 "for screenshots (python main.py --screenshot OUT.png)")


def display_problem(environ: dict[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why the editor's window cannot open here, as one line, or ``None`` when it can (as far as we can tell)."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None  # Windows and macOS always have their window system
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa and not qpa.startswith("xcb"):
        return None  # offscreen, wayland, vnc …: the user chose a plugin; Qt reports its own problems
    wayland = bool(env.get("WAYLAND_DISPLAY")) and not qpa
    if not env.get("DISPLAY") and not wayland:
        return f"no display to open the window on (DISPLAY is not set): {HEADLESS_HINT}"
    if wayland:
        return None
    missing = [package for lib, package in XCB_LIBRARIES.items() if ctypes.util.find_library(lib) is None]
    if missing:
        return ("Qt's X11 plugin needs system libraries that are not installed: "
                f"sudo apt-get install {' '.join(missing)} (Debian/Ubuntu package names)")
    return None


__all__ = ["XCB_LIBRARIES", "display_problem"]
