"""The one layout (core/layout.py): what Auto-arrange, the importer, templates and paste all use.

Qt-free: these run without a window. The editor's side (Arrange in a worker thread, one undo
step, wires rerouted) is tested in tests/gui/test_canvas.py and the big-graph journey.
"""

from __future__ import annotations

import ast
from itertools import combinations

from torch import nn

import templates
from core.graph import Graph
from core.importer import import_module
from core.layout import NODE_H, NODE_W, arrange, free_spot, lay_out
from tests.conftest import ROOT


def _overlaps(pos: dict[str, tuple[float, float]]) -> list[tuple[str, str]]:
    return [(a, b) for a, b in combinations(pos, 2)
            if abs(pos[a][0] - pos[b][0]) < NODE_W and abs(pos[a][1] - pos[b][1]) < NODE_H]


def _expanded(name: str) -> Graph:
    g = templates.build_template(name).graph
    for grp in g.groups.values():
        grp.collapsed = False
    return g


def test_every_node_gets_a_place_of_its_own_and_every_wire_points_down() -> None:
    g = _expanded("resnet18")
    pos = arrange(g, wrap=False)
    assert set(pos) == set(g.nodes)
    assert _overlaps(pos) == []
    assert all(pos[e.src][1] < pos[e.dst][1] for e in g.edges)
    assert min(x for x, _ in pos.values()) == 0.0 and min(y for _, y in pos.values()) == 0.0


def test_a_long_chain_wraps_into_columns_unless_told_not_to() -> None:
    g = _expanded("vgg16")  # about forty layers in a row: one column is far too tall to read
    wrapped, straight = arrange(g), arrange(g, wrap=False)
    assert _overlaps(wrapped) == []
    up = [e for e in g.edges if wrapped[e.dst][1] < wrapped[e.src][1]]
    assert len(up) >= 1  # the wire from the foot of one column to the top of the next
    assert len({x for x, _ in wrapped.values()}) > 1
    assert all(straight[e.src][1] < straight[e.dst][1] for e in g.edges)


def test_the_same_graph_always_gets_the_same_layout() -> None:
    assert arrange(_expanded("googlenet")) == arrange(_expanded("googlenet"))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.skip = nn.Conv2d(3, 8, 1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = self.bn(self.conv(x)).relu() + self.skip(x)  # a branch beside the main path
        return self.head(y.mean((2, 3)))


def test_an_import_is_placed_by_the_one_layout() -> None:
    graph = import_module(_Net(), (3, 16, 16))
    placed = {nid: n.pos for nid, n in graph.nodes.items()}
    assert placed == arrange(graph, wrap=False)


def test_lay_out_moves_every_node_to_its_arranged_place() -> None:
    g = _expanded("mobilenet_v2")
    want = arrange(g)
    lay_out(g)
    assert {nid: n.pos for nid, n in g.nodes.items()} == want


def test_a_new_card_steps_right_until_it_overlaps_no_other() -> None:
    g = Graph()
    g.add_node("ReLU", "a", {}, pos=(0.0, 0.0))
    g.add_node("ReLU", "b", {}, pos=(NODE_W + 44.0, 0.0))
    assert free_spot(g, (0.0, 200.0)) == (0.0, 200.0)  # free already
    x, y = free_spot(g, (10.0, 5.0))
    assert y == 5.0 and all(abs(x - px) >= NODE_W + 8 for px in (0.0, NODE_W + 44.0))


def test_the_editors_model_modules_take_the_layout_from_core_not_the_canvas() -> None:
    """document, commands and clipboard place cards without importing the canvas (issue 10)."""
    for name in ("document", "commands", "clipboard"):
        tree = ast.parse((ROOT / "gui" / f"{name}.py").read_text(encoding="utf-8"))
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {m for m in imported if m.startswith("gui.canvas")}, name
        assert "core.layout" in imported, name
