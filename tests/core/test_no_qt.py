"""core/ must never import Qt: checked in a fresh interpreter so other tests cannot mask it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CODE = """
import sys, pkgutil, importlib
import core
for m in pkgutil.walk_packages(core.__path__, 'core.'):
    importlib.import_module(m.name)
bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6'))
print(','.join(bad))
"""


def test_core_imports_no_qt() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported Qt modules: {out.stdout.strip()}"
