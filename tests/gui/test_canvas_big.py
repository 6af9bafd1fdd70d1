"""The canvas on big graphs through real widgets: Arrange off the GUI thread, the zoom floor, the
minimap, wires routed in slices, dragging big selections (split from test_canvas.py)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt

from core.project import load_project
from gui.canvas.metrics import NODE_H, NODE_W
from gui.commands import AddNodeCommand, MoveNodesCommand
from gui.document import Document
from tests.gui.canvas_helpers import DEMO, assert_no_overlaps, body, make_view, send_mouse


@pytest.fixture
def doc(qapp):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


@pytest.fixture
def view(qtbot, doc):
    return make_view(qtbot, doc)


# -- big graphs: arrange off the GUI thread, the zoom floor, the minimap ------------------------------

def test_arrange_lays_out_an_edit_made_while_it_computed(qtbot, view, doc):
    """Ctrl+L returns at once; an edit made before the layout lands is kept and laid out too."""
    from core.layout import arrange

    g = doc.graph
    said: list[str] = []
    view.message.connect(said.append)
    doc.push(MoveNodesCommand(doc, {n: (g.nodes[n].pos, (0.0, 0.0)) for n in g.nodes}))
    assert view.auto_arrange() and view.arranger.running()
    assert not view.auto_arrange()  # a second Ctrl+L while it runs only says so
    assert said[-1].startswith("Still arranging")
    # the user goes on editing: results land from the event loop, so this edit comes first
    doc.push(AddNodeCommand(doc, "ReLU", "late", pos=(0, 0), connect_from="relu3"))
    qtbot.waitUntil(lambda: not view.arranger.running(), timeout=10000)
    assert said[0] == f"Arranging {len(g.nodes) - 1} nodes…"
    assert said[-1] == f"Arranged {len(g.nodes)} nodes (Ctrl+Z undoes it)"
    assert doc.undo_stack.undoText() == "Auto-arrange"
    assert_no_overlaps(view.canvas)
    # the layout of the edited graph, "late" included: the stale one never landed
    assert {n: g.nodes[n].pos for n in g.nodes} == arrange(g)
    doc.undo_stack.undo()  # one step takes the layout back; the edit made meanwhile stays
    assert "late" in g.nodes and g.nodes["late"].pos == (0.0, 0.0)
    assert all(g.nodes[n].pos == (0.0, 0.0) for n in g.nodes)


def test_arrange_job_stops_when_cancelled_and_reports_progress(doc):
    from gui.canvas.arrange_job import ArrangeJob

    job = ArrangeJob(doc.graph)
    job.start()
    assert job.wait(10)
    assert job.done == 1.0 and job.error is None
    assert set(job.result) == set(doc.graph.nodes)
    stopped = ArrangeJob(doc.graph)
    stopped.cancel()  # an edit came in: the worker stops at its next progress report
    stopped.start()
    assert stopped.wait(10)
    assert stopped.result is None and stopped.error is None and stopped.done == 0.0


@pytest.fixture
def tall(qtbot, qapp):
    """ResNet-152 with every block expanded: 517 layers in one column 68,000 units tall."""
    import templates

    d = Document.from_project(templates.build_template("resnet152"))
    assert not any(grp.collapsed for grp in d.graph.groups.values())
    v = make_view(qtbot, d)
    yield v
    d.dispose()


def test_fit_on_a_very_tall_graph_stops_at_the_zoom_floor_and_shows_its_top(tall):
    from gui.canvas.view import ZOOM_FLOOR

    tall.fit_all()
    content = tall.canvas.content_rect()
    seen = tall.mapToScene(tall.viewport().rect()).boundingRect()
    assert tall.zoom() == pytest.approx(ZOOM_FLOOR)
    assert seen.top() <= content.top() < seen.top() + 100  # the graph's first card at the top
    assert seen.left() <= content.left() and content.right() <= seen.right()  # all of its width
    tall.zoom_by(0.2)  # the wheel or Ctrl+- cannot go further out either
    assert tall.zoom() == pytest.approx(ZOOM_FLOOR)


def test_cards_at_the_zoom_floor_are_blocks_of_their_colour(tall):
    tall.fit_all()
    image = tall.viewport().grab().toImage()
    shown = 0
    for item in tall.canvas.nodes.values():
        centre = tall.mapFromScene(item.sceneBoundingRect().center())
        if image.rect().contains(centre) and not item.diags:
            assert image.pixelColor(centre).name() == item.colour.name(), item.node_id
            shown += 1
    assert shown > 50


def test_minimap_shows_for_a_big_graph_only_and_moves_the_view(qtbot, view, tall):
    view.fit_all()
    assert not view.minimap.isVisible()  # LeNet fits: no map over the canvas
    tall.fit_all()
    mm = tall.minimap
    qtbot.waitUntil(mm.isVisible, timeout=2000)
    frame = tall.viewport().geometry()
    assert frame.contains(mm.geometry())  # in the canvas's corner, over the cards
    inside = mm.viewport_rect()
    assert not inside.isEmpty() and QRectF(mm.rect()).contains(inside)
    target = QPoint(mm.width() // 2, mm.height() - 20)  # near the bottom of the graph
    from PySide6.QtTest import QTest

    QTest.mouseClick(mm, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target)
    centre = tall.mapToScene(tall.viewport().rect().center())
    expected = mm.scene_at(QPointF(target))
    assert abs(centre.y() - expected.y()) < 20 and centre.y() > tall.canvas.content_rect().center().y()
    assert mm.viewport_rect().center().y() == pytest.approx(target.y(), abs=3)  # the rectangle followed


def test_minimap_can_be_turned_off_and_stays_off(qtbot, tall):
    from gui.canvas.minimap import minimap_wanted

    tall.fit_all()
    qtbot.waitUntil(tall.minimap.isVisible, timeout=2000)
    try:
        tall.minimap.set_wanted(False)
        assert not tall.minimap.isVisible() and not minimap_wanted()
        again = make_view(qtbot, tall.doc)  # the next canvas (another document) remembers it
        again.fit_all()
        assert not again.minimap.wanted and not again.minimap.isVisible()
    finally:
        tall.minimap.set_wanted(True)
    assert tall.minimap.isVisible()


def test_minimap_follows_edits(qtbot, tall):
    tall.fit_all()
    mm = tall.minimap
    qtbot.waitUntil(mm.isVisible, timeout=2000)
    right_edge = mm.scene_at(QPointF(mm.width(), 0)).x()
    g = tall.doc.graph
    far = right_edge + 3000
    tall.doc.push(MoveNodesCommand(tall.doc, {"fc": (g.nodes["fc"].pos, (far, g.nodes["fc"].pos[1]))}))
    # the map redraws once the edit settles and now reaches the moved card
    qtbot.waitUntil(lambda: mm.scene_at(QPointF(mm.width(), 0)).x() > far, timeout=2000)


def test_arrange_says_when_there_is_nothing_to_do(qtbot, view, doc):
    said: list[str] = []
    view.message.connect(said.append)
    assert view.auto_arrange()
    qtbot.waitUntil(lambda: not view.arranger.running(), timeout=10000)
    steps = doc.undo_stack.count()
    assert view.auto_arrange()  # again: the layout is what the canvas already shows
    qtbot.waitUntil(lambda: not view.arranger.running(), timeout=10000)
    assert said[-1] == "The graph is already arranged" and doc.undo_stack.count() == steps
    empty = Document.new()
    blank = make_view(qtbot, empty)
    for nid in list(empty.graph.nodes):
        empty.graph.remove_node(nid)
    blank.message.connect(said.append)
    assert not blank.auto_arrange() and said[-1] == "Nothing to arrange: the canvas is empty"
    empty.dispose()


def test_wires_follow_a_big_layout_in_slices(qtbot, tall):
    """After Arrange on 517 layers the wires are routed a slice per event-loop turn, and all of
    them end on their ports once the window settles."""
    from gui.commands import AutoArrangeCommand

    sc = tall.canvas
    tall.doc.push(AutoArrangeCommand(tall.doc))
    qtbot.wait(100)  # the deferred reroute has started
    qtbot.waitUntil(lambda: not sc._slice_timer.isActive(), timeout=10000)
    for it in sc.edges.values():
        if it.isVisible():
            assert it.path.pointAtPercent(1.0) == sc.nodes[it.edge.dst].in_port_pos(it.edge.port)
            assert it.path.pointAtPercent(0.0) == sc.nodes[it.edge.src].out_port_pos(it.edge.from_port)


def test_a_big_arrange_hands_back_the_window_before_every_wire_is_routed(qtbot, tall):
    """Arrange on 517 layers lands as one step, and the window handles its next event while wires
    are still being routed: the moved cards' wires and block frames are hidden meanwhile, never
    drawn to where the cards were. Then every wire shows and ends on its ports and every frame
    shows around its layers; Undo puts every layer back exactly and all of it follows again."""
    from PySide6.QtCore import QSizeF, QTimer

    sc, doc, g = tall.canvas, tall.doc, tall.doc.graph
    before = {n: g.nodes[n].pos for n in g.nodes}
    assert sc.frames  # its blocks are expanded: frames around their layers

    def on_ports(it) -> bool:
        e = it.edge
        return (it.path.pointAtPercent(0.0) == sc.port_scene_pos(e.src, "out", e.from_port)
                and it.path.pointAtPercent(1.0) == sc.port_scene_pos(e.dst, "in", e.port))

    def wires() -> list:
        return [it for it in sc.edges.values() if it.isVisible()]

    def around(gid: str) -> bool:  # the frame encloses every layer of its block
        f = sc.frames[gid]
        return all(f.rect.contains(QRectF(sc.nodes[n].pos(), QSizeF(NODE_W, NODE_H))) for n in g.group_nodes(gid))

    def settled() -> bool:
        return (all(it.opacity() == 1.0 and on_ports(it) for it in wires())
                and all(f.opacity() == 1.0 and around(gid) for gid, f in sc.frames.items()))

    hidden_then: list[int] = []
    stale_then: list[int] = []

    def look() -> None:  # the first thing the window does after the step lands
        hidden_then.append(sum(it.opacity() == 0.0 for it in wires()))
        stale_then.append(sum(it.opacity() > 0.0 and not on_ports(it) for it in wires())
                          + sum(f.opacity() > 0.0 and not around(gid) for gid, f in sc.frames.items()))

    doc.undo_stack.indexChanged.connect(lambda _i: QTimer.singleShot(0, look))
    assert tall.auto_arrange()
    qtbot.waitUntil(lambda: bool(hidden_then), timeout=10000)
    assert doc.undo_stack.undoText() == "Auto-arrange"
    assert hidden_then[0] > 0 and stale_then[0] == 0
    qtbot.waitUntil(lambda: not sc.rerouting(), timeout=10000)
    assert settled()
    arranged = {n: g.nodes[n].pos for n in g.nodes}
    assert arranged != before

    doc.undo_stack.undo()
    assert {n: g.nodes[n].pos for n in g.nodes} == before
    qtbot.waitUntil(lambda: len(hidden_then) == 2, timeout=10000)
    assert hidden_then[1] > 0 and stale_then[1] == 0
    qtbot.waitUntil(lambda: not sc.rerouting(), timeout=10000)
    assert settled()
    doc.undo_stack.redo()
    assert {n: g.nodes[n].pos for n in g.nodes} == arranged
    qtbot.waitUntil(lambda: not sc.rerouting(), timeout=10000)
    assert settled()


def test_dragging_a_big_selection_keeps_its_wires_and_frames_drawn(qtbot, tall):
    """Dragging all 517 layers: at every step of the mouse each wire is drawn and ends on its ports
    and each frame surrounds its layers (hidden until a later slice, they would flicker)."""
    from PySide6.QtCore import QSizeF

    sc, g = tall.canvas, tall.doc.graph
    sc.select_ids(list(g.nodes))
    grip = next(n for n in g.nodes if sc.nodes[n].isVisible())
    a = body(tall, grip)
    tall.centerOn(a)
    before = {n: g.nodes[n].pos for n in g.nodes}

    def drawn_right() -> bool:
        wires = [it for it in sc.edges.values() if it.isVisible()]
        ports = all(it.opacity() == 1.0
                    and it.path.pointAtPercent(0.0) == sc.port_scene_pos(it.edge.src, "out", it.edge.from_port)
                    and it.path.pointAtPercent(1.0) == sc.port_scene_pos(it.edge.dst, "in", it.edge.port)
                    for it in wires)
        frames = all(f.opacity() == 1.0 and all(
            f.rect.contains(QRectF(sc.nodes[n].pos(), QSizeF(NODE_W, NODE_H))) for n in g.group_nodes(gid))
            for gid, f in sc.frames.items())
        return ports and frames

    send_mouse(tall, "press", a)
    for step in (1, 2, 3):
        send_mouse(tall, "move", a + QPointF(40 * step, 24 * step))
        assert drawn_right(), f"after step {step} of the drag"
    send_mouse(tall, "release", a + QPointF(120, 72), buttons=Qt.MouseButton.NoButton)
    assert all(g.nodes[n].pos != before[n] for n in g.nodes)  # every layer came along
    assert tall.doc.undo_stack.count() == 1  # one step for the whole drag
    assert drawn_right()
