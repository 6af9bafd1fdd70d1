"""NetCanvas editor (PySide6): observes the core model and edits it through undo commands."""

from __future__ import annotations


def _keep_none_alive() -> None:
    """Work around PySide6 6.12 on CPython 3.11: every call of a ``void`` Qt method returns
    ``None`` without taking a new reference, so ``None``'s reference count drops by one per call
    (``painter.setPen``, ``item.setPos`` …) until CPython aborts with "none_dealloc: deallocating
    None". We detect the leak with a probe and, only if present, give ``None`` an effectively
    infinite count: the same thing CPython 3.12 does by making ``None`` immortal.
    """
    import ctypes
    import sys

    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return  # None is immortal there
    from PySide6.QtCore import QPointF

    probe = QPointF()
    before = sys.getrefcount(None)
    for _ in range(8):
        probe.setX(1.0)
    if sys.getrefcount(None) < before:
        ctypes.c_ssize_t.from_address(id(None)).value += 1 << 48


_keep_none_alive()
