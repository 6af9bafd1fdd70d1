#!/usr/bin/env bash
# The journey tests in a real X server: Xvfb with a window manager (openbox), Qt's xcb plugin.
# `make test` runs the same tests offscreen; this is for watching them and for what only a real
# window shows (window-manager placement, real focus). Extra arguments go to pytest, e.g.
#   tests/journeys/xvfb.sh -k layout
# Without xvfb-run it skips (Debian/Ubuntu: apt-get install xvfb openbox libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v xvfb-run >/dev/null 2>&1; then
    echo "xvfb-run not found: journey tests in a real X server skipped"
    exit 0
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" bash -c '
    if command -v openbox >/dev/null 2>&1; then openbox >/dev/null 2>&1 & sleep 0.5; fi
    QT_QPA_PLATFORM=xcb .venv/bin/python -m pytest -q -p no:cacheprovider tests/journeys "$@"
' journeys "$@"
