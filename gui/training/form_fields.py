"""The Training settings form's small widget makers: spin boxes for declared settings, combo boxes of
declared options (labels shown, names as data, docs as tooltips) and the warning banners with a Fix
button. Each reads the declarations in :mod:`core.training.options`; none holds state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFrame, QLabel, QSpinBox, QVBoxLayout

from core.training.options import ParamOption
from gui.theme import Theme
from gui.training.fix_button import FixButton


def spin(lo: int, hi: int) -> QSpinBox:
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setGroupSeparatorShown(True)
    s.setKeyboardTracking(True)
    return s


def double(lo: float, hi: float, decimals: int) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setDecimals(decimals)
    s.setRange(lo, hi)
    s.setSingleStep(10 ** -min(decimals, 3))
    return s


def field(param: ParamOption) -> QSpinBox | QDoubleSpinBox:
    """The spin box of a declared setting: its form range and decimals, its doc as tooltip."""
    lo, hi = param.form or (0, 0)
    box: QSpinBox | QDoubleSpinBox = (spin(int(lo), int(hi)) if param.kind is int
                                      else double(lo, hi, param.decimals))
    box.setToolTip(param.doc)
    return box


def combo(registry: Mapping[str, Any]) -> QComboBox:
    """A choice among declared options: their labels, their names as data, their docs as tooltips."""
    c = QComboBox()
    for name, option in registry.items():
        c.addItem(option.label, name)
        c.setItemData(c.count() - 1, option.doc, Qt.ItemDataRole.ToolTipRole)
    return c


def select(combo: QComboBox, value: str) -> bool:
    i = combo.findData(value)
    if i >= 0:
        combo.setCurrentIndex(i)
        return True
    return False


def banner(name: str, t: Theme, tip: str, fix: Callable[[], None]) -> tuple[QFrame, QLabel, FixButton]:
    """A hidden warning frame called ``name``: its text and a Fix button (``tip``) that calls ``fix``."""
    frame = QFrame()
    frame.setObjectName(name)
    frame.setStyleSheet(f"#{name} {{ border: 1px solid {t.warning}; border-radius: 4px; }}")
    text = QLabel("")
    text.setWordWrap(True)
    button = FixButton("Fix")
    button.setToolTip(tip)
    button.clicked.connect(fix)
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(8, 6, 8, 6)
    layout.addWidget(text)
    layout.addWidget(button, 0, Qt.AlignmentFlag.AlignRight)
    frame.hide()
    return frame, text, button


__all__ = ["banner", "combo", "double", "field", "select", "spin"]
