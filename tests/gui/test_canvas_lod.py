"""Level of detail while zooming (issue 11: a zoomed-out repaint of a 1,000-node graph spent most of its
time antialiasing the block frames' rounded corners): below ``LOD_TEXT``, where cards are plain tiles,
a block's frame is drawn without antialiasing; from ``LOD_TEXT`` on, with it, as before. The picture
of the frame is the same but for its corners' edge pixels."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage, QPainter, QTransform
from PySide6.QtWidgets import QStyleOptionGraphicsItem

from core.project import new_project
from gui.canvas.items import LOD_TEXT
from gui.document import Document
from tests.gui.canvas_helpers import make_view


@pytest.fixture
def grouped(qtbot):  # type: ignore[no-untyped-def]
    project = new_project(name="grouped")
    g = project.graph
    g.add_node("Input", "input", {"shape": [8]})
    g.add_node("Linear", "fc1", {"out_features": 8})
    g.add_node("ReLU", "act")
    g.add_node("Output", "output")
    for src, dst in (("input", "fc1"), ("fc1", "act"), ("act", "output")):
        g.add_edge(src, dst)
    for i, nid in enumerate(("input", "fc1", "act", "output")):
        g.set_position(nid, (0.0, i * 120.0))
    g.add_group("block", "Block", ["fc1", "act"])
    g.set_group("block", collapsed=False)
    doc = Document.from_project(project)
    view = make_view(qtbot, doc)
    yield view
    doc.dispose()


def paint_frame(view, scale: float) -> tuple[bool, QImage]:  # type: ignore[no-untyped-def]
    """Paint the block's frame alone at ``scale``: whether it drew antialiased, and the picture."""
    frame = view.canvas.frames["block"]
    rect = frame.boundingRect()
    image = QImage(int(rect.width() * scale) + 4, int(rect.height() * scale) + 4, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)  # what the view starts every item with
    painter.setTransform(QTransform.fromScale(scale, scale).translate(-rect.left() + 1, -rect.top() + 1))
    frame.paint(painter, QStyleOptionGraphicsItem(), None)
    smooth = painter.testRenderHint(QPainter.RenderHint.Antialiasing)
    painter.end()
    return smooth, image


def test_a_block_frame_drops_antialiasing_where_cards_are_tiles(grouped):
    far, far_image = paint_frame(grouped, LOD_TEXT * 0.9)
    near, _ = paint_frame(grouped, LOD_TEXT * 1.1)
    assert not far and near
    # zoomed out, the frame is still there: its fill, and its border darker than the fill on every side
    x, y = far_image.width() // 2, far_image.height() // 2
    fill = far_image.pixelColor(x, y)
    assert fill != QColor("white")
    column = [far_image.pixelColor(x, j).lightness() for j in range(far_image.height())]
    row = [far_image.pixelColor(i, y).lightness() for i in range(far_image.width())]
    for line in (column[:y], column[y:], row[:x], row[x:]):
        assert min(line) < fill.lightness()


def test_the_view_zooms_across_the_threshold_and_paints(qtbot, grouped):
    grouped.zoom_by(LOD_TEXT * 0.8 / grouped.zoom())
    far = grouped.viewport().grab().toImage()
    grouped.zoom_by(LOD_TEXT * 1.5 / grouped.zoom())
    near = grouped.viewport().grab().toImage()
    assert not far.isNull() and not near.isNull()
    assert grouped.zoom() == pytest.approx(LOD_TEXT * 1.5)
