"""The Fix button of the training form's banners: it says what it changes, in more lines when the form is narrow.

A banner (the data does not fit the network; the pretrained weights want another Input size)
offers its fix as one button, "Fix: set the last Linear's out_features to 27". A push button's
minimum width is its whole label, so a long fix widened the settings form past its scroll area and
cut off every row; this one wraps its label at spaces (never inside ``[3, 224, 224]``) to the width
it is given and keeps the whole text in its tooltip.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QPushButton, QSizePolicy


class FixButton(QPushButton):
    """A banner's Fix button that says what it does, in more lines where the form is narrower than that
    (the whole text also in its tooltip): with its full width as a minimum, a long fix ("set the last
    Linear's out_features to 27") widened the form past its scroll area, cutting off every row."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        # a push button's own policy (Minimum) would keep it at its whole label's width
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.label = text
        self.hint: str | None = None  # what any fix does (the tooltip it was given)

    def set_label(self, text: str) -> None:
        if self.hint is None:
            self.hint = self.toolTip()
        self.label = text
        self.setToolTip(f"{text} — {self.hint}" if text != "Fix" else self.hint)
        self.updateGeometry()
        self._elide()

    def minimumSizeHint(self) -> QSize:  # Qt override
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self.fontMetrics().horizontalAdvance("Fix: …") + 24), hint.height())

    def sizeHint(self) -> QSize:  # Qt override: as wide as the whole label
        hint = super().sizeHint()
        return QSize(self.fontMetrics().horizontalAdvance(self.label) + 24, hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = self.width() - 20 if self.width() > 40 else 10_000
        text = _wrap(self.label, self.fontMetrics(), room)
        if text != self.text():
            self.setText(text)
            self.updateGeometry()  # a line more or less: another height


def _wrap(text: str, metrics: QFontMetrics, room: int) -> str:
    """``text`` in lines of at most ``room`` pixels, broken at spaces but never inside ``[3, 224, 224]``;
    a word wider than the room is shortened with "…"."""
    lines: list[str] = []
    for word in re.findall(r"\[[^\]]*\]\S*|\S+", text):
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and metrics.horizontalAdvance(joined) <= room:
            lines[-1] = joined
        else:
            lines.append(word)
    return "\n".join(metrics.elidedText(line, Qt.TextElideMode.ElideRight, room) for line in lines)


__all__ = ["FixButton"]
