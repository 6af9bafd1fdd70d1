"""Guard against the PySide6 build that leaks references to None and True (6.12.0 on CPython 3.11).

With that build every void Qt call and every ``Signal.emit()`` drops a reference to ``None`` or
``True`` until CPython aborts; pyproject.toml pins a clean version and this test keeps it honest.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QPointF, Signal


class _Probe(QObject):
    fired = Signal()


def test_void_calls_and_emits_keep_reference_counts() -> None:
    point, probe = QPointF(), _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        point.setX(1.0)
        probe.fired.emit()
    assert sys.getrefcount(None) >= none_before - 5
    assert sys.getrefcount(True) >= true_before - 5
