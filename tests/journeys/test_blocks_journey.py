"""Journey: ResNet-50's blocks as a user works with them on the canvas.

Opened from the templates, ResNet-50 reads stem → four stages → head. Double-clicking Stage 2
expands it in place and its neighbours make room (no card over another, no frame over a
neighbour's title); collapsing it puts everything back. A block's title follows its layers: after
both strides of Stage 2's first bottleneck are set to 1 it no longer says "stride 2". A collapsed
block is wired from its ports, which are its boundary layers' ports, without the card moving.
Ctrl+F into a collapsed block shows the layer without an undo step or a modified mark. Hovering a
card tells what it is.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QHelpEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolTip

from core.graph import Edge
from gui.canvas.metrics import CARD_H, CARD_W, NODE_H, NODE_W
from gui.commands import AddNodeCommand, SetParamCommand
from gui.main_window import MainWindow
from tests.journeys.conftest import open_window, settle

pytest.importorskip("templates")


@pytest.fixture
def resnet(qtbot, isolated) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    """A window showing ResNet-50 as File › Open Template opens it (blocks collapsed one level)."""
    window = open_window(qtbot)
    assert window.files.open_template_named("resnet50")
    settle()
    assert set(window.scene.cards) == {"stem", "layer1", "layer2", "layer3", "layer4", "head"}
    assert not window.isWindowModified()
    yield window


def on_screen(window: MainWindow, scene_pt: QPointF) -> QPoint:
    """``scene_pt`` in the canvas viewport's pixels, scrolled into view first."""
    view = window.view
    view.centerOn(scene_pt)
    settle(0)
    pt = view.mapFromScene(scene_pt)
    assert view.viewport().rect().contains(pt), "the point is not on the screen"
    return pt


def item_rects(window: MainWindow) -> dict[str, QRectF]:
    """What the user sees as cards: visible layer cards and collapsed block cards."""
    sc = window.scene
    rects = {nid: it.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H)) for nid, it in sc.nodes.items() if it.isVisible()}
    rects.update({gid: c.mapRectToScene(QRectF(0, 0, CARD_W, CARD_H)) for gid, c in sc.cards.items()})
    return rects


def assert_nothing_overlaps(window: MainWindow) -> None:
    """No card over another, no block frame over a card outside it, no frame over the title of a
    block it does not contain, no two block titles over each other."""
    sc = window.scene
    g = window.doc.graph
    rects = item_rects(window)
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not rects[a].intersects(rects[b]), f"{a} overlaps {b}"

    def inside(gid: str, item: str) -> bool:
        return item in g.group_nodes(gid) or item in _subgroups(g, gid)

    for gid, frame in sc.frames.items():
        for name, r in rects.items():
            assert inside(gid, name) or not frame.rect.intersects(r), f"the frame of {gid} covers {name}"
        for other, f2 in sc.frames.items():
            if other == gid:
                continue
            assert inside(gid, other) or not frame.rect.intersects(f2.title.rect), \
                f"the frame of {gid} covers the title of {other}"
            assert not frame.title.rect.intersects(f2.title.rect), f"the titles of {gid} and {other} overlap"


def _subgroups(g, gid: str) -> set[str]:  # type: ignore[no-untyped-def]
    out: set[str] = set()
    todo = [gid]
    while todo:
        for m in g.groups[todo.pop()].members:
            if m in g.groups and m not in out:
                out.add(m)
                todo.append(m)
    return out


def test_expanding_a_stage_moves_its_neighbours_and_collapsing_puts_them_back(resnet):
    window, sc, g = resnet, resnet.scene, resnet.doc.graph
    start = {n: g.nodes[n].pos for n in g.nodes}
    assert_nothing_overlaps(window)
    card = sc.cards["layer2"]
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_screen(window, card.mapToScene(QPointF(CARD_W / 2, CARD_H / 2))))
    settle()
    assert "layer2" in sc.frames and "layer2" not in sc.cards
    assert sc.frames["layer2"].title.label.startswith("Stage 2")
    assert_nothing_overlaps(window)
    # Stage 3 now stands below Stage 2's frame with its title clear of it
    assert sc.cards["layer3"].pos().y() > sc.frames["layer2"].rect.bottom()
    assert sc.cards["layer1"].mapRectToScene(QRectF(0, 0, CARD_W, CARD_H)).bottom() \
        < sc.frames["layer2"].title.rect.top()
    # collapse with the chevron on the frame's title: the column closes up as it was
    title = sc.frames["layer2"].title.rect
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     on_screen(window, QPointF(title.left() + 12, title.center().y())))
    settle()
    assert "layer2" in sc.cards and not sc.frames
    assert {n: g.nodes[n].pos for n in g.nodes} == start
    assert window.isWindowModified()  # expanding and collapsing by hand are edits (undoable)
    assert window.doc.undo_stack.undoText().startswith("Collapse Stage 2")


def test_a_block_title_follows_its_strides(resnet):
    window, sc, doc = resnet, resnet.scene, resnet.doc
    card = sc.cards["layer2"]
    QTest.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                      on_screen(window, card.mapToScene(QPointF(CARD_W / 2, CARD_H / 2))))
    settle()
    frame = sc.frames["layer2.0"]
    assert "stride 2" in frame.title.label
    assert "· s2" in sc.frames["layer2.0.downsample"].label  # the full title (its tooltip; the pill elides it)
    doc.push(SetParamCommand(doc, "layer2.0.conv2", "stride", 1))
    doc.push(SetParamCommand(doc, "layer2.0.downsample.0", "stride", 1))
    settle()
    assert doc.analysis.nodes["layer2.0.relu_2"].out_shapes == ((512, 56, 56),)
    assert "stride" not in frame.title.label and frame.title.label.startswith("Bottleneck 128 → 512")
    assert "s2" not in sc.frames["layer2.0.downsample"].label
    # collapsed, the block's card says the same, and so does its tooltip
    title = frame.title.rect
    QTest.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     on_screen(window, QPointF(title.left() + 12, title.center().y())))
    settle()
    block = sc.cards["layer2.0"]
    shown = f"{block.label} {block.detail} {block.toolTip()}"
    assert "Bottleneck 128 → 512" in shown and "stride 2" not in shown
    # undo one stride: the block shrinks the image again and its title says so again
    doc.undo_stack.undo()  # the collapse
    doc.undo_stack.undo()  # downsample stride
    doc.undo_stack.undo()  # conv2 stride
    settle()
    assert "stride 2" in sc.frames["layer2.0"].title.label


def test_wiring_from_a_collapsed_blocks_output_port(resnet, qtbot):
    window, sc, doc = resnet, resnet.scene, resnet.doc
    g = doc.graph
    card = sc.cards["layer3"]
    assert card.outputs == [("layer3.5.relu_2", 0)]
    assert card.inputs == [("layer3.0.conv1", 0), ("layer3.0.downsample.0", 0)]
    before = {n: g.nodes[n].pos for n in g.group_nodes("layer3")}
    card_at = card.pos()
    doc.push(AddNodeCommand(doc, "ReLU", "probe", pos=(card_at.x() + CARD_W + 120, card_at.y() + CARD_H + 60)))
    settle()
    probe = sc.nodes["probe"]
    start = on_screen(window, (card.out_port_pos() + probe.in_port_pos(0)) / 2)
    vp = window.view.viewport()
    a = window.view.mapFromScene(card.out_port_pos())
    b = window.view.mapFromScene(probe.in_port_pos(0))
    assert vp.rect().contains(a) and vp.rect().contains(b) and start is not None
    # the port shows as such to the pointer (coming from elsewhere: a hover needs a move onto it)
    QTest.mouseMove(vp, QPoint(2, 2))
    QTest.mouseMove(vp, a)
    settle(0)
    assert card.hover_port == ("out", 0) and "layer3.5.relu_2" in card.toolTip()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for i in range(1, 7):
        QTest.mouseMove(vp, a + (b - a) * i / 6)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    settle()
    assert Edge("layer3.5.relu_2", "probe", 0, 0) in g.in_edges("probe")
    assert doc.undo_stack.undoText() == "Connect layer3.5.relu_2 → probe"
    assert card.pos() == card_at and {n: g.nodes[n].pos for n in before} == before  # the block stayed put
    wire = sc.edges[Edge("layer3.5.relu_2", "probe", 0, 0)]
    assert wire.isVisible() and wire.path.pointAtPercent(0.0) == card.out_port_pos("layer3.5.relu_2", 0)
    assert card.outputs == [("layer3.5.relu_2", 0)]  # the same port now feeds two layers


def test_find_into_a_collapsed_block_is_no_edit(resnet):
    window, sc, doc = resnet, resnet.scene, resnet.doc
    assert not sc.nodes["layer4.1.conv2"].isVisible()
    view = window.view
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    settle()
    assert window.find_field.hasFocus()
    QTest.keyClicks(window.find_field, "layer4.1.conv2")
    QTest.keyClick(window.find_field, Qt.Key.Key_Return)
    settle()
    node = sc.nodes["layer4.1.conv2"]
    assert node.isVisible() and node.isSelected() and "layer4" in sc.frames
    assert view.viewport().rect().contains(view.mapFromScene(node.sceneBoundingRect().center()))
    assert doc.undo_stack.count() == 0 and not doc.undo_stack.canUndo()
    assert not window.isWindowModified() and not doc.is_modified()
    assert_nothing_overlaps(window)
    # the Problems panel's way in (window.focus_node) is the same: no edit either
    window.focus_node("layer3.2.conv1")
    settle()
    assert sc.nodes["layer3.2.conv1"].isVisible() and doc.undo_stack.count() == 0
    assert not window.isWindowModified()


def _tooltip_at(window: MainWindow, scene_pt: QPointF) -> str:
    """Hover ``scene_pt`` and ask for the tooltip, as Qt does after the pointer rests."""
    vp = window.view.viewport()
    pt = on_screen(window, scene_pt)
    QTest.mouseMove(vp, QPoint(2, 2))
    QTest.mouseMove(vp, pt)
    settle(0)
    QApplication.sendEvent(vp, QHelpEvent(QHelpEvent.Type.ToolTip, pt, vp.mapToGlobal(pt)))
    settle(0)
    text = QToolTip.text()
    QToolTip.hideText()
    return text


def test_hovering_cards_tells_what_they_are(resnet):
    window, sc = resnet, resnet.scene
    conv = sc.nodes["conv1"]
    assert not conv.isVisible()
    window.focus_node("conv1")
    settle()
    tip = _tooltip_at(window, conv.mapToScene(QPointF(NODE_W * 0.3, NODE_H / 2)))
    assert tip.startswith("Conv2d · conv1")
    assert "2-D convolution" in tip  # the layer declaration's doc
    assert "Output: 64×112×112" in tip and "Parameters: 9,408" in tip and "MACs: 118,013,952" in tip
    card = sc.cards["layer1"]
    tip = _tooltip_at(window, card.mapToScene(QPointF(CARD_W * 0.3, CARD_H / 2)))
    assert tip.startswith("Stage 1: 3 × Bottleneck, 256 channels (layer1)")
    assert "layers ·" in tip and "params" in tip and "MACs" in tip
    assert "64×56×56 → 256×56×56" in tip
