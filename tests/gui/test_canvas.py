"""The canvas through real widgets: drops, port drags with held buttons, selection, keys,
clipboard between two documents, blocks, auto-arrange, live analysis on the items."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeyEvent
from PySide6.QtWidgets import QApplication

from core.analysis import Severity
from core.graph import Edge
from core.project import load_project, project_to_dict
from gui.canvas import CanvasView
from gui.canvas.blocks import live_label
from gui.canvas.items import NodeItem
from gui.canvas.metrics import CARD_W, NODE_H, NODE_W
from gui.canvas.view import LAYER_MIME
from gui.commands import (
    AddNodeCommand,
    ConnectCommand,
    DisconnectCommand,
    MoveNodesCommand,
    SetGroupCollapsedCommand,
    SetParamCommand,
)
from gui.document import Document
from gui.theme import DARK
from tests.gui.canvas_helpers import DEMO, assert_no_overlaps, body, card_rect, drag, key, make_view, send_mouse


@pytest.fixture
def doc(qapp):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


@pytest.fixture
def view(qtbot, doc):
    return make_view(qtbot, doc)


# -- the scene mirrors the model --------------------------------------------------------------------

def test_scene_shows_every_node_edge_block_and_shape(view, doc):
    sc = view.canvas
    assert set(sc.nodes) == set(doc.graph.nodes)
    assert set(sc.edges) == set(doc.graph.edges)
    assert set(sc.frames) == {"features", "classifier"}
    assert sc.edges[Edge("conv1", "relu1")].label == "6×28×28"
    assert sc.nodes["conv1"].params_text == "5×5 · 6"
    assert sc.nodes["pool2"].shape_text == "16×5×5"
    assert all(n.pos is not None for n in doc.graph.nodes.values())


def test_parameter_edit_updates_labels_of_changed_items_only(view, doc):
    sc = view.canvas
    untouched = sc.nodes["input"].result
    doc.push(SetParamCommand(doc, "conv1", "out_channels", 8))
    assert sc.edges[Edge("conv1", "relu1")].label == "8×28×28"
    assert sc.edges[Edge("pool1", "conv2")].label == "8×14×14"
    assert sc.nodes["conv1"].shape_text == "8×28×28"
    assert sc.nodes["conv2"].shape_text == "16×10×10"  # conv2 adapts its in_channels
    assert sc.nodes["input"].result is untouched
    doc.undo_stack.undo()
    assert sc.edges[Edge("conv1", "relu1")].label == "6×28×28"


def test_errors_warnings_and_unknown_shapes_downstream(view, doc):
    sc = view.canvas
    doc.push(SetParamCommand(doc, "conv2", "in_channels", 3))
    err = sc.nodes["conv2"]
    assert err.diags and err.diags[0][0].value == "error"
    assert "in_channels" in err.toolTip() and "gets 6" in err.toolTip()
    assert sc.edges[Edge("conv2", "relu2")].label == "?"
    assert sc.nodes["relu2"].shape_text == "?" and not sc.nodes["relu2"].diags
    doc.push(AddNodeCommand(doc, "ReLU", "dangling", pos=(900, 0), connect_from="relu4"))
    assert sc.nodes["dangling"].diags[0][0].value == "warning"  # does not reach an Output
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert not sc.nodes["conv2"].diags and "in_channels" not in sc.nodes["conv2"].toolTip()
    assert sc.nodes["conv2"].toolTip().startswith("Conv2d · conv2")  # what the card is stays


# -- gestures -----------------------------------------------------------------------------------

def test_palette_drop_creates_node_at_drop_point(view, doc):
    data = QMimeData()
    data.setData(LAYER_MIME, b"Dropout")
    target = QPointF(700, 300)
    view.centerOn(target)
    local = QPointF(view.mapFromScene(target))
    vp = view.viewport()
    enter = QDragEnterEvent(local.toPoint(), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, enter)
    assert enter.isAccepted()
    drop = QDropEvent(local, Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(vp, drop)
    new = [n for n in doc.graph.nodes.values() if n.type == "Dropout"]
    assert len(new) == 1
    x, y = new[0].pos
    assert abs(x + NODE_W / 2 - 700) <= 4 and abs(y + NODE_H / 2 - 300) <= 4
    assert doc.selection == [new[0].id] and doc.undo_stack.undoText() == "Add Dropout"


def test_drop_of_other_data_is_refused(view, doc):
    data = QMimeData()
    data.setText("hello")
    enter = QDragEnterEvent(QPointF(10, 10).toPoint(), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(view.viewport(), enter)
    assert not enter.isAccepted()


def test_connect_by_dragging_from_output_to_input_port(view, doc):
    doc.push(AddNodeCommand(doc, "Dropout", "x", pos=(600, 500)))
    sc = view.canvas
    drag(view, sc.nodes["relu4"].out_port_pos(0), sc.nodes["x"].in_port_pos(0))
    assert doc.graph.predecessors("x") == ["relu4"]
    assert doc.undo_stack.undoText() == "Connect relu4 → x"
    assert Edge("relu4", "x") in sc.edges
    assert not any(isinstance(it, type(sc.edges[Edge("relu4", "x")])) and it.zValue() == 20 for it in sc.items())


def test_refused_connections_explain_and_change_nothing(view, doc, qtbot):
    sc = view.canvas
    doc.push(AddNodeCommand(doc, "Dropout", "x", pos=(600, 500)))
    doc.push(AddNodeCommand(doc, "Add", "y", pos=(600, 700), connect_from="x"))
    before = project_to_dict(doc.project)
    count = doc.undo_stack.count()
    with qtbot.waitSignal(view.message) as occupied:
        drag(view, sc.nodes["relu1"].out_port_pos(0), sc.nodes["conv2"].in_port_pos(0))
    assert "already has an input from pool1" in occupied.args[0]
    with qtbot.waitSignal(view.message) as cycle:
        drag(view, sc.nodes["y"].out_port_pos(0), body(view, "x"))
    assert "cycle" in cycle.args[0]
    assert project_to_dict(doc.project) == before and doc.undo_stack.count() == count


def test_drag_edge_end_away_disconnects_and_onto_node_reconnects(view, doc):
    sc = view.canvas
    doc.push(AddNodeCommand(doc, "Dropout", "x", pos=(600, 500)))
    end = sc.nodes["fc2"].in_port_pos(0)
    drag(view, end, sc.nodes["x"].in_port_pos(0))
    assert doc.graph.predecessors("x") == ["relu3"] and doc.graph.in_edges("fc2") == []
    assert doc.undo_stack.undoText() == "Reconnect relu3 → x"
    drag(view, sc.nodes["x"].in_port_pos(0), QPointF(1100, 200))
    assert doc.graph.in_edges("x") == []
    assert doc.undo_stack.undoText() == "Disconnect relu3 → x"
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.graph.predecessors("fc2") == ["relu3"]


def test_move_nodes_is_one_undo_step(view, doc):
    start = doc.graph.nodes["conv1"].pos
    a = body(view, "conv1")
    drag(view, a, a + QPointF(101, 45), steps=8)
    x, y = doc.graph.nodes["conv1"].pos
    assert (x - start[0], y - start[1]) == (100.0, 44.0)  # snapped to the 4-unit grid
    assert view.canvas.nodes["conv1"].pos() == QPointF(x, y)
    assert doc.undo_stack.count() == 1 and doc.undo_stack.undoText() == "Move conv1"
    doc.undo_stack.undo()
    assert doc.graph.nodes["conv1"].pos == start


def test_rubber_band_and_ctrl_click_selection(view, doc):
    sc = view.canvas
    r = card_rect(sc.nodes["conv1"]).united(card_rect(sc.nodes["relu1"]))
    drag(view, r.topLeft() + QPointF(-30, -8), QPointF(r.right() + 60, r.bottom() - 10))
    assert doc.selection == ["conv1", "relu1"]
    assert view.canvas.selected_edges() == []  # wires under the band are not picked up
    ctrl = Qt.KeyboardModifier.ControlModifier
    view.centerOn(body(view, "pool1"))
    send_mouse(view, "press", body(view, "pool1"), mods=ctrl)
    send_mouse(view, "release", body(view, "pool1"), buttons=Qt.MouseButton.NoButton, mods=ctrl)
    assert doc.selection == ["conv1", "relu1", "pool1"]
    send_mouse(view, "press", body(view, "relu1"), mods=ctrl)
    send_mouse(view, "release", body(view, "relu1"), buttons=Qt.MouseButton.NoButton, mods=ctrl)
    assert doc.selection == ["conv1", "pool1"]


def test_delete_key_and_undo(view, doc):
    view.select_nodes(["relu2"])
    view.setFocus()
    key(view, Qt.Key.Key_Delete)
    assert "relu2" not in doc.graph.nodes and "relu2" not in view.canvas.nodes
    doc.undo_stack.undo()
    assert doc.graph.predecessors("pool2") == ["relu2"] and "relu2" in view.canvas.nodes


def test_pan_and_zoom(view, doc):
    view.fit_all()
    z = view.zoom()
    view.zoom_by(2.0)
    assert view.zoom() == pytest.approx(2 * z)
    key(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() == pytest.approx(z)
    h = view.verticalScrollBar().value()
    p = QPointF(view.mapToScene(QPoint(600, 500)))
    send_mouse(view, "press", p, buttons=Qt.MouseButton.MiddleButton, button=Qt.MouseButton.MiddleButton)
    send_mouse(view, "move", p + QPointF(0, 50) / view.zoom(), buttons=Qt.MouseButton.MiddleButton)
    send_mouse(view, "release", p, buttons=Qt.MouseButton.NoButton, button=Qt.MouseButton.MiddleButton)
    assert view.verticalScrollBar().value() == h - 50
    assert doc.undo_stack.count() == 0


# -- clipboard ------------------------------------------------------------------------------------

def test_copy_paste_between_two_documents(qtbot, view, doc):
    other = Document.new()
    view2 = make_view(qtbot, other)
    view.select_nodes(["conv1", "relu1", "pool1"])
    assert view.copy()
    assert view2.paste()
    g2 = other.graph
    assert {"conv1", "relu1", "pool1"} <= set(g2.nodes)  # ids were free there: kept
    assert g2.predecessors("relu1") == ["conv1"] and other.selection == ["conv1", "relu1", "pool1"]
    assert view2.paste()  # again: fresh ids now
    assert {"conv2", "relu2", "pool2"} <= set(g2.nodes) and g2.predecessors("relu2") == ["conv2"]
    assert set(view2.canvas.nodes) == set(g2.nodes)
    other.undo_stack.undo()
    assert "conv2" not in g2.nodes
    other.dispose()


def test_duplicate_and_paste_of_garbage(view, doc, qtbot):
    view.select_nodes(["conv1", "relu1"])
    view.setFocus()
    key(view, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert doc.selection == ["conv3", "relu5"]
    assert doc.graph.predecessors("relu5") == ["conv3"] and doc.undo_stack.undoText() == "Duplicate 2 nodes"
    before = project_to_dict(doc.project)
    QGuiApplication.clipboard().setText("this is not a network")
    with qtbot.waitSignal(view.message) as blocker:
        assert not view.paste()
    assert "Cannot paste" in blocker.args[0] and "NetCanvas" in blocker.args[0]
    assert project_to_dict(doc.project) == before


# -- blocks ---------------------------------------------------------------------------------------

def test_group_collapse_and_expand(view, doc):
    sc = view.canvas
    view.select_nodes(["conv2", "relu2"])
    assert view.group_selection("Second conv")
    gid = next(g for g, grp in doc.graph.groups.items() if grp.label == "Second conv")
    assert doc.graph.parent_group(gid) == "features" and gid in sc.frames
    title = sc.frames[gid].title_rect.center()
    view.centerOn(title)
    send_mouse(view, "press", title)
    send_mouse(view, "release", title, buttons=Qt.MouseButton.NoButton)
    assert doc.graph.groups[gid].collapsed and gid in sc.cards
    card = sc.cards[gid]
    assert not sc.nodes["conv2"].isVisible() and not sc.nodes["relu2"].isVisible()
    into = sc.edges[Edge("pool1", "conv2")]
    assert into.isVisible() and into.path.pointAtPercent(1.0) == card.in_port_pos()
    assert not sc.edges[Edge("conv2", "relu2")].isVisible()
    assert card.badges[0] == "2 layers" and card.shape_text == "16×10×10"
    below = doc.graph.nodes["pool2"].pos[1]
    assert below < card.pos().y() + 200  # the layout closed up under the card
    centre = card.mapToScene(QPointF(40, 20))
    view.centerOn(centre)
    send_mouse(view, "double", centre)
    assert not doc.graph.groups[gid].collapsed and sc.nodes["conv2"].isVisible() and gid not in sc.cards
    for _ in range(3):
        doc.undo_stack.undo()
    assert gid not in doc.graph.groups and gid not in sc.frames


def test_template_opens_with_blocks_collapsed_one_level(qtbot, qapp):
    templates = pytest.importorskip("templates")
    doc = Document.from_project(templates.build_template("resnet18"), collapse_blocks=True)
    view = make_view(qtbot, doc)
    sc = view.canvas
    top = [g for g in doc.graph.groups if doc.graph.parent_group(g) is None]
    assert set(sc.cards) == set(top) and not sc.frames
    shown = [n for n, it in sc.nodes.items() if it.isVisible()]
    assert set(shown) == {n for n in doc.graph.nodes if doc.graph.parent_group(n) is None}
    visible_edges = [it for it in sc.edges.values() if it.isVisible()]
    # one wire into each input port: a card's ports are its inner layers' ports (a stage is fed at
    # its first conv and at its shortcut), a layer's is its own
    ports = sum(len(c.inputs) for c in sc.cards.values()) + sum(1 for n in shown if doc.graph.in_edges(n))
    assert len(visible_edges) == ports
    for it in visible_edges:
        end = it.path.pointAtPercent(1.0)
        unit = sc.unit_of(it.edge.dst)
        assert end == (sc.cards[unit].in_port_pos(it.edge.dst, it.edge.port) if unit in sc.cards
                       else sc.nodes[unit].in_port_pos(it.edge.port))
    cards = sorted(sc.cards.values(), key=lambda c: c.pos().y())
    assert len({round(c.pos().x() + c.boundingRect().width()) for c in cards}) == 1  # one aligned column
    assert not doc.is_modified()
    layer2 = next(g for g in top if g == "layer2")
    doc.push(SetGroupCollapsedCommand(doc, layer2, False))
    assert layer2 in sc.frames and any(f in sc.frames for f in doc.graph.groups[layer2].members)
    assert_no_overlaps(sc)
    doc.dispose()


def test_auto_arrange_leaves_no_overlaps_and_undoes(qtbot, view, doc):
    g = doc.graph
    doc.push(MoveNodesCommand(doc, {n: (g.nodes[n].pos, (0.0, 0.0)) for n in g.nodes}))
    doc.push(AddNodeCommand(doc, "Add", "merge", pos=(0, 0), connect_from="relu3"))
    doc.push(ConnectCommand(doc, "relu1", "merge"))
    assert view.auto_arrange()  # returns at once: the layout runs in a worker thread
    qtbot.waitUntil(lambda: not view.arranger.running(), timeout=10000)
    assert doc.undo_stack.undoText() == "Auto-arrange"
    assert_no_overlaps(view.canvas)
    ys = {n: g.nodes[n].pos[1] for n in g.nodes}
    assert all(ys[e.src] < ys[e.dst] for e in g.edges)  # every edge points down
    doc.undo_stack.undo()
    assert all(g.nodes[n].pos == (0.0, 0.0) for n in g.nodes if n != "merge")


def test_nodes_without_positions_are_laid_out_on_load(qtbot, qapp):
    project = load_project(DEMO)
    for n in project.graph.nodes.values():
        n.pos = None
    doc = Document.from_project(project)
    assert not doc.is_modified()
    # keep the view while it is shown: qtbot holds it weakly, and a shown view left to the garbage
    # collector can be freed in the middle of its own paint (a segfault, depending on GC timing)
    view = make_view(qtbot, doc)
    assert_no_overlaps(view.canvas)
    view.close()
    doc.dispose()
    # only some without a place: the others stay where the file put them
    project = load_project(DEMO)
    g = project.graph
    for i, n in enumerate(g.nodes.values()):
        n.pos = None if n.id in ("relu2", "fc3") else (0.0, i * 200.0)
    doc = Document.from_project(project)
    assert g.nodes["conv2"].pos == (0.0, 800.0) and g.nodes["relu2"].pos is not None
    view = make_view(qtbot, doc)
    assert_no_overlaps(view.canvas)
    view.close()
    doc.dispose()


# -- find, theme ------------------------------------------------------------------------------------

def test_find_and_focus_by_id_or_type(view, doc, qtbot):
    assert view.find_and_focus("conv2") and doc.selection == ["conv2"]
    assert view.find_and_focus("linear") and doc.selection == ["fc1"]
    with qtbot.waitSignal(view.message):
        assert not view.find_and_focus("transformer")
    assert doc.selection == ["fc1"]


def test_find_reveals_a_node_inside_a_collapsed_block(view, doc):
    doc.push(SetGroupCollapsedCommand(doc, "classifier", True))
    assert not view.canvas.nodes["fc2"].isVisible()
    assert view.find_and_focus("fc2")
    assert not doc.graph.groups["classifier"].collapsed and view.canvas.nodes["fc2"].isSelected()


def test_dark_theme_restyles_items(view):
    view.set_theme(DARK)
    assert view.canvas.canvas_style.theme is DARK
    assert view.canvas.nodes["conv1"].style is view.canvas.canvas_style
    assert not view.grab().isNull()


def test_dragging_a_collapsed_block_moves_its_members(view, doc):
    doc.push(SetGroupCollapsedCommand(doc, "features", True))
    members = doc.graph.group_nodes("features")
    before = {n: doc.graph.nodes[n].pos for n in members}
    card = view.canvas.cards["features"]
    a = card.mapToScene(QPointF(60, 40))
    drag(view, a, a + QPointF(60, 0))
    assert all(doc.graph.nodes[n].pos == (before[n][0] + 60, before[n][1]) for n in members)
    assert doc.undo_stack.undoText() == f"Move {len(members)} nodes"
    centre = doc.graph.nodes["conv1"].pos[0] + NODE_W / 2
    assert card.pos().x() + card.shape().boundingRect().width() / 2 == pytest.approx(centre)


def test_space_drag_pans_without_editing(view, doc):
    view.setFocus()
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    a = body(view, "conv1")
    view.centerOn(a)
    h = view.horizontalScrollBar().value()
    send_mouse(view, "press", a)
    send_mouse(view, "move", a + QPointF(-40, 0) / view.zoom())
    send_mouse(view, "release", a, buttons=Qt.MouseButton.NoButton)
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyRelease, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier))
    assert view.horizontalScrollBar().value() == h + 40
    assert doc.undo_stack.count() == 0 and not view.space_held


def test_one_parameter_edit_in_a_500_node_graph_updates_only_what_changed(qtbot, qapp, monkeypatch):
    templates = pytest.importorskip("templates")
    doc = Document.from_project(templates.build_template("resnet152"))
    view = make_view(qtbot, doc)
    assert len(doc.graph.nodes) > 500
    updated: list[str] = []
    original = NodeItem.set_result

    def counting(self, result):
        updated.append(self.node_id)
        original(self, result)

    monkeypatch.setattr(NodeItem, "set_result", counting)
    doc.push(SetParamCommand(doc, "fc", "out_features", 10))
    assert sorted(updated) == ["fc", "output"]
    assert view.canvas.edges[doc.graph.in_edges("output")[0]].label == "10"
    doc.dispose()


def test_click_a_connection_and_delete_it(view, doc):
    item = view.canvas.edges[Edge("relu3", "fc2")]
    mid = item.path.pointAtPercent(0.5)
    view.centerOn(mid)
    send_mouse(view, "press", mid)
    send_mouse(view, "release", mid, buttons=Qt.MouseButton.NoButton)
    assert item.isSelected() and view.canvas.selected_edges() == [Edge("relu3", "fc2")]
    view.setFocus()
    key(view, Qt.Key.Key_Delete)
    assert doc.graph.in_edges("fc2") == [] and "relu3" in doc.graph.nodes
    assert doc.undo_stack.undoText() == "Delete connection relu3 → fc2"


def test_rename_follows_on_the_canvas(view, doc):
    from gui.commands import RenameNodeCommand

    doc.push(RenameNodeCommand(doc, "conv1", "stem"))
    sc = view.canvas
    assert "stem" in sc.nodes and "conv1" not in sc.nodes and sc.nodes["stem"].id_text == "stem"
    assert Edge("stem", "relu1") in sc.edges and Edge("input", "stem") in sc.edges
    doc.push(SetParamCommand(doc, "stem", "out_channels", 4))
    assert sc.edges[Edge("stem", "relu1")].label == "4×28×28"
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert "conv1" in sc.nodes and Edge("conv1", "relu1") in sc.edges


def _drop(view: CanvasView, layer_type: bytes, target: QPointF) -> None:
    data = QMimeData()
    data.setData(LAYER_MIME, layer_type)
    view.centerOn(target)
    local = QPointF(view.mapFromScene(target))
    QApplication.sendEvent(view.viewport(), QDragEnterEvent(local.toPoint(), Qt.DropAction.CopyAction, data,
                                                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    QApplication.sendEvent(view.viewport(), QDropEvent(local, Qt.DropAction.CopyAction, data,
                                                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))


def test_dropped_layers_start_from_working_values(view, doc):
    # torch leaves Upsample's size and scale_factor unset (an error until one is set): a drop gets ×2
    _drop(view, b"Upsample", QPointF(900, 300))
    up = next(n for n in doc.graph.nodes.values() if n.type == "Upsample")
    assert up.params == {"scale_factor": 2}
    doc.push(ConnectCommand(doc, "pool2", up.id))
    assert doc.analysis.nodes[up.id].out_shapes == ((16, 10, 10),)
    assert not [d for d in doc.analysis.diagnostics if d.node == up.id and d.severity is Severity.ERROR]
    # added after a node, the choice fits its output: GroupNorm over 6 channels gets 2 groups
    doc.push(AddNodeCommand(doc, "GroupNorm", connect_from="conv1"))
    gn = next(n.id for n in doc.graph.nodes.values() if n.type == "GroupNorm")
    assert doc.graph.nodes[gn].params == {"num_groups": 2}
    assert not [d for d in doc.analysis.diagnostics if d.node == gn and d.severity is Severity.ERROR]
    # explicit params are taken as given
    doc.push(AddNodeCommand(doc, "Upsample", node_id="up_size", params={"size": [8, 8]}))
    assert doc.graph.nodes["up_size"].params == {"size": [8, 8]}


def test_demo_opens_in_readable_columns_one_block_each(view, doc):
    g = doc.graph
    xs = {nid: n.pos[0] for nid, n in g.nodes.items()}
    assert len(set(xs.values())) == 2  # a long chain wraps into two columns instead of one tall one
    for gid in ("features", "classifier"):
        assert len({xs[m] for m in g.groups[gid].members}) == 1  # a block never straddles two columns
    assert xs["input"] == xs["conv1"] and xs["output"] == xs["fc3"] and xs["flatten"] > xs["pool2"]
    assert_no_overlaps(view.canvas)
    view.resize(1040, 720)  # the canvas area of a 1600×1000 window
    view.fit_all()
    assert view.zoom() > 0.6  # every card and edge label readable at once (labels show from 0.45)
    # the wire from the bottom of one column climbs to the top of the next between them
    path = view.canvas.edges[Edge("pool2", "flatten")].path
    mid_x = (g.nodes["pool2"].pos[0] + g.nodes["flatten"].pos[0] + NODE_W) / 2
    assert path.boundingRect().left() < mid_x < path.boundingRect().right()


def test_folded_template_cards_stand_in_one_centred_column(qtbot, qapp):
    from core.sources import load_source

    d = Document.from_project(load_source("template:resnet50"), collapse_blocks=True)
    v = make_view(qtbot, d)
    centres = {round(it.pos().x() + CARD_W / 2) for it in v.canvas.cards.values() if it.isVisible()}
    centres |= {round(d.graph.nodes[n].pos[0] + NODE_W / 2) for n in ("input", "output")}
    assert len(centres) == 1, centres  # input, stem, four stages, head and output share one axis
    stage1 = v.canvas.cards["layer1"]
    assert stage1.label == "Stage 1" and stage1.detail == "3 × Bottleneck, 256 channels"  # not cut off
    assert "layer1" in stage1.toolTip()
    d.dispose()


# -- blocks: ports, live titles, room to expand, viewing without editing ------------------------------

def test_a_collapsed_blocks_ports_connect_its_inner_layers(view, doc):
    sc = view.canvas
    doc.push(SetGroupCollapsedCommand(doc, "classifier", True))
    doc.push(DisconnectCommand(doc, Edge("pool2", "flatten")))
    card = sc.cards["classifier"]
    assert card.inputs == [("flatten", 0)] and card.outputs == [("fc3", 0)]  # flatten waits for an input
    before = {n: doc.graph.nodes[n].pos for n in doc.graph.group_nodes("classifier")}
    drag(view, sc.nodes["pool2"].out_port_pos(0), card.in_port_pos("flatten", 0))
    assert Edge("pool2", "flatten", 0, 0) in doc.graph.in_edges("flatten")
    assert doc.undo_stack.undoText() == "Connect pool2 → flatten"
    wire = sc.edges[Edge("pool2", "flatten", 0, 0)]
    assert wire.isVisible() and wire.path.pointAtPercent(1.0) == card.in_port_pos("flatten", 0)
    # pulling the wire's end off the card's input port disconnects it, as on a layer's own port
    drag(view, card.in_port_pos("flatten", 0), card.in_port_pos("flatten", 0) + QPointF(-260, -40))
    assert not doc.graph.in_edges("flatten") and doc.undo_stack.undoText() == "Disconnect pool2 → flatten"
    assert {n: doc.graph.nodes[n].pos for n in before} == before  # the card never moved


def test_a_wire_dropped_on_a_cards_body_asks_for_a_port(view, doc, qtbot):
    doc.push(SetGroupCollapsedCommand(doc, "features", True))
    card = view.canvas.cards["features"]
    assert card.inputs == [("conv1", 0)] and card.outputs == [("pool2", 0)]
    doc.push(AddNodeCommand(doc, "Input", "extra", {"shape": [1, 32, 32]}, pos=(-400.0, 0.0)))
    with qtbot.waitSignal(view.message) as said:  # its one input is taken: core says by whom
        drag(view, view.canvas.nodes["extra"].out_port_pos(0), card.mapToScene(QPointF(CARD_W / 2, 50)))
    assert "Cannot connect" in said.args[0] and "conv1" in said.args[0]
    assert doc.graph.predecessors("conv1") == ["input"]


@pytest.mark.parametrize(("label", "stride", "channels", "shown"), [
    ("Bottleneck 128 → 512, stride 2", 2, 512, "Bottleneck 128 → 512, stride 2"),
    ("Bottleneck 128 → 512, stride 2", 1, 512, "Bottleneck 128 → 512"),
    ("BasicBlock 128, stride 2", 4, 128, "BasicBlock 128, stride 4"),
    ("Shortcut: 1×1 conv · 512 · s2 + BN", 1, 512, "Shortcut: 1×1 conv · 512 + BN"),
    ("Stem: conv 7×7 · 64 · s2 → BN → ReLU → max-pool · s2", 4, 64,
     "Stem: conv 7×7 · 64 · s2 → BN → ReLU → max-pool · s2"),  # two claims, one per layer: 2 × 2 is right
    ("Stem: conv 7×7 · 64 · s2 → BN → ReLU → max-pool · s2", 2, 64,
     "Stem: conv 7×7 · 64 → BN → ReLU → max-pool, stride 2"),
    ("Stage 2: 4 × Bottleneck, 512 channels", None, 256, "Stage 2: 4 × Bottleneck, 256 channels"),
    ("Bottleneck 128 → 512, stride 2", None, None, "Bottleneck 128 → 512, stride 2"),  # shapes unknown
])
def test_a_block_title_states_what_its_layers_do_now(label, stride, channels, shown):
    assert live_label(label, stride, channels) == shown


def test_expanding_inside_a_column_keeps_blocks_whole(qtbot, qapp):
    """GoogLeNet's stage 4 has its auxiliary head in a lane beside it: when stage 3 above grows,
    all of stage 4 moves down (not only its main lane), and collapsing puts everything back."""
    from core.sources import load_source

    d = Document.from_project(load_source("template:googlenet"), collapse_blocks=True)
    v = make_view(qtbot, d)
    g = d.graph
    start = {n: g.nodes[n].pos for n in g.nodes}
    d.push(SetGroupCollapsedCommand(d, "stage4", False))
    d.push(SetGroupCollapsedCommand(d, "stage3", False))
    frames = v.canvas.frames
    stage3, stage4 = frames["stage3"], frames["stage4"]
    assert stage3.rect.bottom() < stage4.title.rect.top()
    aux = g.nodes["aux1.conv.conv"].pos
    assert aux[1] > stage3.rect.bottom()  # the side lane came along
    assert_no_overlaps(v.canvas)
    d.push(SetGroupCollapsedCommand(d, "stage3", True))
    d.push(SetGroupCollapsedCommand(d, "stage4", True))
    assert {n: g.nodes[n].pos for n in g.nodes} == start
    d.dispose()


def test_revealing_a_hidden_layer_is_no_edit(view, doc):
    doc.push(SetGroupCollapsedCommand(doc, "classifier", True))
    doc.set_clean()
    view.select_nodes(["fc2"])  # the Problems panel's way in
    assert view.canvas.nodes["fc2"].isVisible() and not doc.graph.groups["classifier"].collapsed
    assert not doc.is_modified() and doc.undo_stack.index() == 1
    doc.undo_stack.undo()  # the user's own collapse is still the last edit, and undoes cleanly
    assert not doc.graph.groups["classifier"].collapsed and doc.undo_stack.index() == 0
