"""After a few cards move, only the wires passing where a card was or is get another course.

Moving one card used to reroute every wire of the graph (in slices): 0.56 s of slices with 0.2-0.4 s
stalls on a 2,000-node project. A wire the moved card now blocks still takes a lane beside it, and a
every card moved (Arrange) still reroutes every wire.
"""

from __future__ import annotations

import pytest

from core.graph import Graph
from core.project import new_project
from gui.commands import MoveNodesCommand
from gui.document import Document
from tests.gui.canvas_helpers import make_view

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def _doc() -> Document:
    g = Graph()
    g.add_node("Input", "input", {"shape": [8]})
    g.set_position("input", (0.0, 0.0))
    g.add_node("Linear", "far_end", {"out_features": 8})
    g.set_position("far_end", (0.0, 900.0))  # a long wire straight down from input
    g.add_edge("input", "far_end")
    g.add_node("ReLU", "blocker")
    g.set_position("blocker", (600.0, 400.0))  # beside the wire's course, not on it
    previous = "far_end"
    for i in range(30):  # a chain far to the right: its wires never meet the moves below
        nid = f"c{i}"
        g.add_node("ReLU", nid)
        g.set_position(nid, (4000.0, 120.0 * i))
        g.add_edge(previous, nid)
        previous = nid
    g.add_node("Output", "output")
    g.set_position("output", (4000.0, 120.0 * 31))
    g.add_edge(previous, "output")
    return Document.from_project(new_project(g, name="reroute"))


def test_moving_one_card_reroutes_only_the_wires_near_it_and_a_blocked_wire_takes_a_lane(qtbot, monkeypatch):
    doc = _doc()
    view = make_view(qtbot, doc)
    scene = view.canvas
    long_wire = next(it for e, it in scene.edges.items() if e.src == "input")
    assert long_wire.lane is None  # nothing in its way yet

    routed: list[str] = []
    real = scene._route_edge

    def spying(item, lanes=True):  # type: ignore[no-untyped-def]
        routed.append(f"{item.edge.src}->{item.edge.dst}")
        return real(item, lanes)

    monkeypatch.setattr(scene, "_route_edge", spying)
    old = doc.graph.nodes["blocker"].pos
    doc.push(MoveNodesCommand(doc, {"blocker": (old, (0.0, 400.0))}))  # onto the wire's course
    qtbot.waitUntil(lambda: not scene.rerouting() and not scene._reroute_timer.isActive(), timeout=5000)

    assert long_wire.lane is not None  # it now goes round the card
    assert "input->far_end" in routed
    assert not [w for w in routed if w.startswith("c") or w.endswith("output")]  # the far chain was left alone

    routed.clear()
    doc.undo_stack.undo()  # the card goes back: the wire is straight again
    qtbot.waitUntil(lambda: not scene.rerouting() and not scene._reroute_timer.isActive(), timeout=5000)
    assert long_wire.lane is None and "input->far_end" in routed
    doc.dispose()


def test_moving_every_card_reroutes_every_wire(qtbot, monkeypatch):
    doc = _doc()
    view = make_view(qtbot, doc)
    scene = view.canvas
    routed: set[str] = set()
    real = scene._route_edge

    def spying(item, lanes=True):  # type: ignore[no-untyped-def]
        routed.add(f"{item.edge.src}->{item.edge.dst}")
        return real(item, lanes)

    monkeypatch.setattr(scene, "_route_edge", spying)
    moves = {}
    for i, nid in enumerate(doc.graph.nodes):  # every card, by different steps (Arrange-like)
        pos = doc.graph.nodes[nid].pos or (0.0, 0.0)
        moves[nid] = (pos, (pos[0] + 10.0 * (i % 3), pos[1] + 5.0))
    doc.push(MoveNodesCommand(doc, moves))
    qtbot.waitUntil(lambda: not scene.rerouting() and not scene._reroute_timer.isActive(), timeout=5000)
    assert routed == {f"{e.src}->{e.dst}" for e in doc.graph.edges}
    doc.dispose()
