"""Journey e (part): the dark theme, as it looks, at both screen sizes, and after a restart.

The assertions read pixels of the rendered window (the canvas and the docks really are dark, text
really contrasts with its background) and the widgets' own geometry (toolbar and status-bar texts
are whole)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QSize
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QToolButton

from gui.theme import DARK
from tests.journeys.conftest import SIZES, assert_not_clipped, open_window, settle, trigger


def luminance(c: QColor) -> float:
    """Relative luminance (WCAG), 0 black … 1 white."""
    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def pixel_at(window, widget, at: QPoint | None = None) -> QColor:
    image: QImage = window.grab().toImage()
    local = widget.rect().center() if at is None else at
    p = widget.mapTo(window, local)
    return image.pixelColor(p)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s.width()}x{s.height()}")
def test_dark_theme_is_dark_readable_and_remembered(qtbot, isolated, size: QSize) -> None:
    window = open_window(qtbot, size, restore_layout=False)
    trigger(window, "View", "Dark theme")
    settle(50)
    assert window.theme is DARK and window.theme_actions["dark"].isChecked()
    # The canvas background and the docks are dark; their text stands out (WCAG AA: 4.5:1).
    empty = window.view.viewport().rect().topLeft() + QPoint(6, 6)
    assert luminance(pixel_at(window, window.view.viewport(), empty)) < 0.1
    assert luminance(pixel_at(window, window.inspector, QPoint(4, window.inspector.height() - 4))) < 0.1
    assert contrast(QColor(DARK.text), QColor(DARK.panel)) >= 4.5
    assert contrast(QColor(DARK.node_text), QColor(DARK.node_fill)) >= 4.5
    # Toolbar buttons and the status bar read whole.
    for button in window.toolbar.findChildren(QToolButton):
        if button.isVisible() and button.text():
            assert_not_clipped(button)
    assert_not_clipped(window.totals_label)
    assert_not_clipped(window.problems_label)
    window.close()

    again = open_window(qtbot, size)
    assert again.theme is DARK and again.theme_actions["dark"].isChecked()
    assert luminance(pixel_at(again, again.view.viewport(), QPoint(6, 6))) < 0.1
    trigger(again, "View", "Light theme")
    settle(50)
    assert luminance(pixel_at(again, again.view.viewport(), QPoint(6, 6))) > 0.5
