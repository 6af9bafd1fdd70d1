"""The confusion matrix as a painted heat map: rows are the true classes, columns the predicted ones.

Each cell is coloured by its share of the true class (its row), so a rare class's errors show as
clearly as a common one's: the diagonal (correct) in the theme's "ok" colour, the rest in its
"error" colour. Class names stand on both axes (the column names turn upright when they are wider
than a cell, long ones are elided with the full name in the tooltip); counts are written in the
cells when they fit. Hovering a cell says what it holds ("true cat, predicted dog: 7 samples (12% of
cat)"); a click (or Enter after the arrow keys) selects it and emits :attr:`ConfusionView.cell_clicked`.

:meth:`ConfusionView.png_bytes` draws the same picture at a size of its own (for Export PNG), so
what is saved never depends on how large the tab happens to be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QBuffer, QByteArray, QEvent, QIODevice, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from gui.theme import Theme, current_theme

MAX_CELL = 56  # px: a 2-class matrix need not fill a wide tab with two giant squares
MAX_LABEL = 150  # px of a class name before it is elided (the tooltip has it whole)
PAD = 6
PNG_CELL = 48  # px per cell in an exported picture (at most; big matrices get smaller cells)
PNG_MAX_SIDE = 4000  # px: the exported matrix's cells fit in this


@dataclass(frozen=True)
class DrawnLabel:
    """A class name as painted: which axis ("true" rows, "predicted" columns), the text shown, where."""

    axis: str
    index: int
    text: str
    rect: QRect


@dataclass(frozen=True)
class _Layout:
    """Where everything goes for a given size (computed once per paint, and for hit tests)."""

    left: float  # x of the first column
    top: float  # y of the first row
    cell: float
    label_w: float  # width of the row names
    col_label_h: float  # height of the column names
    upright: bool  # column names drawn rotated (they are wider than a cell)
    step: int  # every step-th name is written (cells smaller than a line of text)


def share_colour(theme: Theme, share: float, diagonal: bool) -> QColor:
    """The cell colour for ``share`` (0..1) of its row: from the panel colour to ok (diagonal) or error."""
    base = QColor(theme.panel)
    target = QColor(theme.ok if diagonal else theme.error)
    # The square root lifts small shares (a 3 % confusion is worth seeing) while keeping the order.
    f = math.sqrt(max(0.0, min(1.0, share)))
    return QColor(round(base.red() + (target.red() - base.red()) * f),
                  round(base.green() + (target.green() - base.green()) * f),
                  round(base.blue() + (target.blue() - base.blue()) * f))


def cell_tooltip(classes: Sequence[str], matrix: Sequence[Sequence[int]], row: int, col: int) -> str:
    """What a cell holds, in words: ``true cat, predicted dog: 7 samples (12% of cat)``."""
    count = matrix[row][col]
    total = sum(matrix[row])
    share = f" ({count / total:.0%} of {classes[row]})" if total else ""
    noun = "sample" if count == 1 else "samples"
    verdict = " — correct" if row == col else ""
    return f"true {classes[row]}, predicted {classes[col]}: {count} {noun}{share}{verdict}"


class ConfusionView(QWidget):
    """An N×N confusion matrix (rows = true class) that can be hovered, clicked and exported."""

    cell_clicked = Signal(int, int)  # true class index, predicted class index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes: list[str] = []
        self.matrix: list[list[int]] = []
        self.selected: tuple[int, int] | None = None
        self.drawn_labels: list[DrawnLabel] = []  # what the last paint wrote on the axes (tests read it)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 140)
        self.setAccessibleName("Confusion matrix")

    def set_matrix(self, classes: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
        """Show ``matrix`` (``matrix[true][predicted]``) for ``classes``; an empty one clears the view."""
        self.classes = [str(c) for c in classes]
        self.matrix = [[int(v) for v in row] for row in matrix]
        self.selected = None
        self.updateGeometry()
        self.update()

    def select(self, row: int, col: int) -> None:
        """Mark a cell as the one whose samples are shown (no signal)."""
        n = len(self.classes)
        self.selected = (row, col) if 0 <= row < n and 0 <= col < n else None
        self.update()

    def sizeHint(self) -> QSize:  # Qt override
        n = max(len(self.classes), 1)
        lay = self._layout(QSize(10_000, 10_000), self.font())
        side = int(min(n * MAX_CELL, 520))
        return QSize(int(lay.left + side + PAD), int(lay.top + side + PAD))

    # ------------------------------------------------------------------------------ geometry

    def _layout(self, size: QSize, font: QFont, cell: float | None = None) -> _Layout:
        """Fit the matrix and its names in ``size`` (or use cells of ``cell`` px, for the PNG)."""
        fm = QFontMetrics(font)
        n = max(len(self.classes), 1)
        line = fm.height()
        widest = max([min(fm.horizontalAdvance(c), MAX_LABEL) for c in self.classes] or [0])
        label_w = widest + PAD
        title = line + PAD  # the axis titles ("predicted class" above, "true class" on the left)
        left: float = title + label_w + PAD
        avail_w = max(size.width() - left - PAD, 1)
        flat_h = line + PAD
        # Column names lie flat when they fit in a cell, and stand upright (as tall as the widest) when not.
        flat_cell = cell if cell is not None else min(avail_w / n, (size.height() - title - flat_h - PAD) / n, MAX_CELL)
        if widest + 4 <= flat_cell:
            cell, upright, col_h = flat_cell, False, flat_h
        else:
            upright, col_h = True, widest + PAD
            if cell is None:
                cell = min(avail_w / n, (size.height() - title - col_h - PAD) / n, MAX_CELL)
        cell = max(cell, 1.0)
        step = max(1, math.ceil(line / cell))
        left += max(0.0, (size.width() - left - n * cell - PAD) / 2)  # centred in a wider view
        return _Layout(left=left, top=title + col_h, cell=cell, label_w=label_w, col_label_h=col_h,
                       upright=upright, step=step)

    def cell_rect(self, row: int, col: int) -> QRectF:
        """Where the cell ``(row, col)`` is drawn, in widget coordinates."""
        lay = self._layout(self.size(), self.font())
        return QRectF(lay.left + col * lay.cell, lay.top + row * lay.cell, lay.cell, lay.cell)

    def cell_at(self, pos: QPointF) -> tuple[int, int] | None:
        """The ``(true, predicted)`` cell under ``pos``, or None."""
        n = len(self.classes)
        if not n:
            return None
        lay = self._layout(self.size(), self.font())
        col = math.floor((pos.x() - lay.left) / lay.cell)
        row = math.floor((pos.y() - lay.top) / lay.cell)
        return (row, col) if 0 <= row < n and 0 <= col < n else None

    # ------------------------------------------------------------------------------- painting

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt override
        p = QPainter(self)
        self.drawn_labels = self._paint(p, self.size(), current_theme(), self.font(), self.hasFocus())

    def _paint(self, p: QPainter, size: QSize, t: Theme, font: QFont, focus: bool = False,
               cell: float | None = None) -> list[DrawnLabel]:
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setFont(font)
        n = len(self.classes)
        if not n:
            return []
        fm = QFontMetrics(font)
        lay = self._layout(size, font, cell)
        side = lay.cell * n
        drawn: list[DrawnLabel] = []
        # Axis titles.
        p.setPen(QColor(t.text_dim))
        p.drawText(QRectF(lay.left, 0, side, fm.height()), Qt.AlignmentFlag.AlignCenter, "predicted class")
        p.save()
        p.translate(lay.left - lay.label_w - PAD - fm.height() - PAD, lay.top + side / 2)
        p.rotate(-90)
        p.drawText(QRectF(-side / 2, 0, side, fm.height()), Qt.AlignmentFlag.AlignCenter, "true class")
        p.restore()
        # Cells.
        totals = [sum(row) for row in self.matrix]
        number_font = QFont(font)
        number_font.setPointSizeF(max(font.pointSizeF() * (0.9 if lay.cell < 32 else 1.0), 6.0))
        nfm = QFontMetrics(number_font)
        p.setFont(number_font)
        for r in range(n):
            for c in range(n):
                count = self.matrix[r][c]
                share = count / totals[r] if totals[r] else 0.0
                colour = share_colour(t, share, r == c)
                rect = QRectF(lay.left + c * lay.cell, lay.top + r * lay.cell, lay.cell, lay.cell)
                p.fillRect(rect, colour)
                text = str(count)
                if lay.cell >= nfm.height() and nfm.horizontalAdvance(text) + 4 <= lay.cell and count:
                    p.setPen(QColor("#ffffff") if colour.lightnessF() < 0.55 else QColor("#1a1a1a"))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        # The grid: thin lines between cells while they are big enough to separate.
        if lay.cell >= 8:
            p.setPen(QPen(QColor(t.border), 1))
            for i in range(n + 1):
                x = lay.left + i * lay.cell
                y = lay.top + i * lay.cell
                p.drawLine(QPointF(x, lay.top), QPointF(x, lay.top + side))
                p.drawLine(QPointF(lay.left, y), QPointF(lay.left + side, y))
        if self.selected is not None:
            r, c = self.selected
            p.setPen(QPen(QColor(t.accent), 3 if focus else 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            box = QRectF(lay.left + c * lay.cell, lay.top + r * lay.cell, lay.cell, lay.cell)
            p.drawRect(box.adjusted(1, 1, -1, -1))
        # Class names: rows on the left (right-aligned against the matrix), columns above.
        p.setFont(font)
        p.setPen(QColor(t.text))
        for i in range(0, n, lay.step):
            name = fm.elidedText(self.classes[i], Qt.TextElideMode.ElideRight, MAX_LABEL)
            w = fm.horizontalAdvance(name)
            row_rect = QRect(int(lay.left - PAD - w), int(lay.top + i * lay.cell + (lay.cell - fm.height()) / 2),
                             w, fm.height())
            p.drawText(row_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)
            drawn.append(DrawnLabel("true", i, name, row_rect))
            x_mid = lay.left + i * lay.cell + lay.cell / 2
            if lay.upright:
                # Read bottom-to-top, ending just above its column.
                p.save()
                p.translate(x_mid - fm.height() / 2 + fm.ascent(), lay.top - PAD / 2)
                p.rotate(-90)
                p.drawText(QPointF(0, 0), name)
                p.restore()
                col_rect = QRect(int(x_mid - fm.height() / 2), int(lay.top - PAD / 2 - w), fm.height(), w)
            else:
                col_rect = QRect(int(x_mid - w / 2), int(lay.top - lay.col_label_h + PAD / 2), w, fm.height())
                p.drawText(col_rect, Qt.AlignmentFlag.AlignCenter, name)
            drawn.append(DrawnLabel("predicted", i, name, col_rect))
        return drawn

    def png_bytes(self, theme: Theme | None = None) -> bytes:
        """The matrix as a PNG of its own size (cells up to :data:`PNG_CELL` px), on the theme's panel colour."""
        t = theme or current_theme()
        n = max(len(self.classes), 1)
        cell = float(max(4, min(PNG_CELL, PNG_MAX_SIDE // n)))
        font = QFont(self.font())
        lay = self._layout(QSize(0, 0), font, cell)
        size = QSize(int(lay.left + n * cell + 2 * PAD), int(lay.top + n * cell + 2 * PAD))
        image = QImage(size, QImage.Format.Format_ARGB32)
        image.fill(QColor(t.panel))
        p = QPainter(image)
        self._paint(p, size, t, font, cell=cell)
        p.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")  # type: ignore[call-overload]
        buffer.close()
        return bytes(data.data())

    # ---------------------------------------------------------------------------------- input

    def event(self, event: QEvent) -> bool:  # Qt override: the hover text is the cell's
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            cell = self.cell_at(QPointF(event.pos()))
            if cell is not None:
                QToolTip.showText(event.globalPos(), cell_tooltip(self.classes, self.matrix, *cell), self)
            else:
                label = self._label_at(event.pos())
                if label:
                    QToolTip.showText(event.globalPos(), label, self)
                else:
                    QToolTip.hideText()
                    event.ignore()
            return True
        return super().event(event)

    def _label_at(self, pos: QPoint) -> str:
        """The full class name of the axis label under ``pos`` (elided ones are read here), or ""."""
        return next((self.classes[label.index] for label in self.drawn_labels if label.rect.contains(pos)), "")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # Qt override
        cell = self.cell_at(event.position())
        if event.button() == Qt.MouseButton.LeftButton and cell is not None:
            self.select(*cell)
            self.cell_clicked.emit(*cell)
            return
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # Qt override: arrows move, Enter shows the samples
        n = len(self.classes)
        if not n:
            super().keyPressEvent(event)
            return
        r, c = self.selected or (0, 0)
        moves = {Qt.Key.Key_Up: (-1, 0), Qt.Key.Key_Down: (1, 0), Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1)}
        key = Qt.Key(event.key())
        if key in moves:
            dr, dc = moves[key]
            self.select(min(max(r + dr, 0), n - 1), min(max(c + dc, 0), n - 1))
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space) and self.selected is not None:
            self.cell_clicked.emit(*self.selected)
        else:
            super().keyPressEvent(event)


__all__ = ["ConfusionView", "DrawnLabel", "cell_tooltip", "share_colour"]
