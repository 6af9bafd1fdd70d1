"""NetCanvas editor (PySide6): observes the core model and edits it through undo commands."""

from __future__ import annotations


def _keep_none_alive() -> None:
    """Work around PySide6 6.12 on CPython 3.11: a ``void`` Qt method returns ``None`` without
    taking a new reference, and ``Signal.emit()`` returns ``True`` the same way, so the reference
    counts of ``None`` and ``True`` drop by one per call (``painter.setPen``, ``item.setPos``,
    every signal emitted …) until CPython aborts ("none_dealloc" / "bool_dealloc"). We detect the
    leak with a probe and, only if present, give ``None``, ``True`` and ``False`` an effectively
    infinite count: what CPython 3.12 does by making them immortal.
    """
    import ctypes
    import sys

    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return  # immortal there
    from PySide6.QtCore import QObject, QPointF, Signal

    class _Probe(QObject):
        fired = Signal()

    point, probe = QPointF(), _Probe()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(8):
        point.setX(1.0)
        probe.fired.emit()
    if sys.getrefcount(None) < none_before or sys.getrefcount(True) < true_before:
        for obj in (None, True, False):
            ctypes.c_ssize_t.from_address(id(obj)).value += 1 << 48


_keep_none_alive()
