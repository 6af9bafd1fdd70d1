"""Editing through undo commands (Orange's test_schemeedit pattern): do, undo, undo, redo,
asserting the model each time; chains of every command kind restore the exact project file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.graph import Edge
from core.layers.spec import Fix
from core.project import load_project, project_to_dict
from gui.clipboard import selection_json
from gui.commands import (
    AddNodeCommand,
    ApplyFixCommand,
    AutoArrangeCommand,
    ConnectCommand,
    DisconnectCommand,
    GroupCommand,
    MoveNodesCommand,
    PasteCommand,
    ReconnectCommand,
    RemoveItemsCommand,
    RenameGroupCommand,
    RenameNodeCommand,
    SetFrozenCommand,
    SetGroupCollapsedCommand,
    SetInitCommand,
    SetParamCommand,
    UngroupCommand,
    try_push,
)
from gui.document import Document

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


@pytest.fixture
def doc(qapp):
    d = Document.from_project(load_project(DEMO))
    yield d
    d.dispose()


def snap(doc: Document) -> str:
    return json.dumps(project_to_dict(doc.project), sort_keys=False)


def shape(doc: Document, node_id: str):
    return doc.analysis.nodes[node_id].output_shape


def test_demo_opens_laid_out_and_clean(doc):
    assert all(n.pos is not None for n in doc.graph.nodes.values())
    assert not doc.is_modified()
    assert doc.analysis.ok
    assert shape(doc, "fc3") == (10,)


def test_add_connect_set_remove_then_undo_undo_redo(doc):
    g = doc.graph
    stack = doc.undo_stack
    doc.push(AddNodeCommand(doc, "Dropout", "drop1", pos=(0, 0)))
    assert "drop1" in g.nodes and stack.undoText() == "Add Dropout"
    doc.push(DisconnectCommand(doc, Edge("fc1", "relu3")))
    doc.push(ConnectCommand(doc, "fc1", "drop1"))
    doc.push(ConnectCommand(doc, "drop1", "relu3"))
    assert g.predecessors("relu3") == ["drop1"] and stack.undoText() == "Connect drop1 → relu3"
    assert doc.analysis.ok and shape(doc, "drop1") == (120,)
    doc.push(SetParamCommand(doc, "fc1", "out_features", 64))
    assert shape(doc, "drop1") == (64,) and stack.undoText() == "Set fc1.out_features = 64"
    doc.push(RemoveItemsCommand(doc, ["drop1"]))
    assert "drop1" not in g.nodes and g.in_edges("relu3") == []
    assert not doc.analysis.ok  # relu3 lost its input

    stack.undo()  # the removal
    assert "drop1" in g.nodes and g.predecessors("relu3") == ["drop1"] and g.predecessors("drop1") == ["fc1"]
    stack.undo()  # the parameter
    assert "out_features" in g.nodes["fc1"].params and g.nodes["fc1"].params["out_features"] == 120
    assert shape(doc, "drop1") == (120,)
    stack.redo()
    assert g.nodes["fc1"].params["out_features"] == 64 and shape(doc, "drop1") == (64,)
    assert doc.is_modified()


def test_every_command_kind_undoes_and_redoes_to_the_exact_file(doc):
    g = doc.graph
    states = [snap(doc)]

    def do(cmd):
        assert doc.push(cmd), cmd.text()
        states.append(snap(doc))

    do(AddNodeCommand(doc, "BatchNorm2d", pos=(400, 100)))
    bn = next(n for n in g.nodes if n.startswith("bn"))
    do(ReconnectCommand(doc, Edge("conv1", "relu1"), bn))
    do(ConnectCommand(doc, bn, "relu1"))
    do(AddNodeCommand(doc, "ReLU", "spare", connect_from="relu1"))
    do(RemoveItemsCommand(doc, [], [Edge("relu1", "spare")]))
    do(SetParamCommand(doc, "conv1", "kernel_size", 3))
    do(SetParamCommand(doc, "conv1", "padding", 1))
    do(SetFrozenCommand(doc, "conv2", True))
    do(SetInitCommand(doc, "fc1", "kaiming_normal"))
    do(RenameNodeCommand(doc, "fc1", "hidden"))
    do(MoveNodesCommand(doc, {"hidden": (g.nodes["hidden"].pos, (900.0, 900.0))}))
    do(GroupCommand(doc, ["conv1", "relu1"], "Stem"))
    stem = next(gid for gid, grp in g.groups.items() if grp.label == "Stem")
    assert g.parent_group(stem) == "features"  # nested inside the common block
    do(RenameGroupCommand(doc, stem, "Stem block"))
    do(SetGroupCollapsedCommand(doc, "features", True))
    do(SetGroupCollapsedCommand(doc, "features", False))
    do(UngroupCommand(doc, "classifier"))
    do(AutoArrangeCommand(doc))
    do(PasteCommand(doc, selection_json(g, ["relu2", "pool2"]), offset=(40, 40)))
    do(RemoveItemsCommand(doc, ["conv2", "hidden", "relu4"]))
    do(ApplyFixCommand(doc, Fix("set padding to 2", "set_param", "conv1", "padding", 2)))
    do(DisconnectCommand(doc, g.in_edges("output")[0]))

    n = len(states) - 1
    assert doc.undo_stack.count() == n
    for i in range(n, 0, -1):
        doc.undo_stack.undo()
        assert snap(doc) == states[i - 1], f"undo of step {i} ({doc.undo_stack.command(i - 1).text()})"
    assert not doc.is_modified()
    for i in range(1, n + 1):
        doc.undo_stack.redo()
        assert snap(doc) == states[i], f"redo of step {i}"


def test_reconnect_moves_the_input_end(doc):
    g = doc.graph
    doc.push(AddNodeCommand(doc, "Dropout", "drop", pos=(500, 500)))
    doc.push(ReconnectCommand(doc, Edge("relu3", "fc2"), "drop"))
    assert g.in_edges("fc2") == [] and g.predecessors("drop") == ["relu3"]
    assert doc.undo_stack.undoText() == "Reconnect relu3 → drop"
    doc.undo_stack.undo()
    assert g.predecessors("fc2") == ["relu3"] and g.in_edges("drop") == []


def test_refused_edits_change_nothing(doc):
    doc.push(AddNodeCommand(doc, "Add", "merge", connect_from="fc3"))
    doc.push(AddNodeCommand(doc, "Dropout", "after", connect_from="merge"))
    before = snap(doc)
    msgs = [
        try_push(doc, lambda: ConnectCommand(doc, "relu1", "conv2")),  # conv2 already fed by pool1
        try_push(doc, lambda: ConnectCommand(doc, "after", "merge")),  # cycle
        try_push(doc, lambda: ConnectCommand(doc, "output", "fc1")),  # Output has no outputs
        try_push(doc, lambda: RenameNodeCommand(doc, "conv1", "2bad")),
        try_push(doc, lambda: RenameNodeCommand(doc, "conv1", "conv2")),
        try_push(doc, lambda: RenameNodeCommand(doc, "conv1", "class")),
        try_push(doc, lambda: PasteCommand(doc, "certainly not json {")),
        try_push(doc, lambda: PasteCommand(doc, json.dumps({"format": "other"}))),
        try_push(doc, lambda: PasteCommand(doc, "")),
        try_push(doc, lambda: SetParamCommand(doc, "conv1", "kernel_size", -3)),
        try_push(doc, lambda: SetParamCommand(doc, "conv1", "no_such", 1)),
        try_push(doc, lambda: SetInitCommand(doc, "conv1", "magic")),
        try_push(doc, lambda: AddNodeCommand(doc, "Conv2x")),
        try_push(doc, lambda: ReconnectCommand(doc, Edge("relu3", "fc2"), "output")),
        try_push(doc, lambda: ConnectCommand(doc, "nope", "fc1")),
    ]
    assert all(isinstance(m, str) and m for m in msgs), msgs
    assert "already has an input from pool1" in msgs[0]
    assert "cycle" in msgs[1]
    assert "NetCanvas" in msgs[6] or "JSON" in msgs[6]
    assert "Conv2d" in msgs[12]  # did you mean
    assert "no node" in msgs[14]
    assert snap(doc) == before
    assert doc.undo_stack.count() == 2


def test_noop_edits_are_not_pushed(doc):
    assert not doc.push(SetParamCommand(doc, "conv1", "kernel_size", 5))
    assert not doc.push(RenameNodeCommand(doc, "conv1", "conv1"))
    assert not doc.push(MoveNodesCommand(doc, {"conv1": (doc.graph.nodes["conv1"].pos,) * 2}))
    assert doc.undo_stack.count() == 0


def test_moves_merge_within_one_drag_only(doc):
    g = doc.graph
    p0 = g.nodes["conv1"].pos
    key = object()
    for k in range(1, 6):
        doc.push(MoveNodesCommand(doc, {"conv1": (p0, (p0[0] + k, p0[1]))}, merge_key=key))
    assert doc.undo_stack.count() == 1 and g.nodes["conv1"].pos == (p0[0] + 5, p0[1])
    doc.push(MoveNodesCommand(doc, {"conv1": (g.nodes["conv1"].pos, (0.0, 0.0))}, merge_key=object()))
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert g.nodes["conv1"].pos == p0


def test_one_analysis_per_command(doc, qtbot):
    seen = []
    doc.analysis_updated.connect(seen.append)
    doc.push(PasteCommand(doc, selection_json(doc.graph, list(doc.graph.nodes)), offset=(0, 600)))
    assert len(seen) == 1 and len(doc.graph) == 28
    doc.undo_stack.undo()
    assert len(seen) == 2 and len(doc.graph) == 14


def test_paste_gives_fresh_ids_and_keeps_blocks(doc):
    g = doc.graph
    text = selection_json(g, ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"])
    cmd = PasteCommand(doc, text, offset=(300, 0))
    doc.push(cmd)
    new = cmd.new_ids
    assert len(new) == 6 and not set(new) & {"conv1", "relu1", "pool1", "conv2", "relu2", "pool2"}
    assert new[0] == "conv3" and g.predecessors(new[1]) == [new[0]]
    pasted_groups = [grp for gid, grp in g.groups.items() if gid not in ("features", "classifier")]
    assert len(pasted_groups) == 1 and pasted_groups[0].label == "Feature extractor"
    assert sorted(pasted_groups[0].members) == sorted(new)


def test_collapse_moves_what_is_below_and_expand_restores(doc):
    # the demo opens in two columns (features | classifier → output): only the block's column moves
    g = doc.graph
    y_out, pool2 = g.nodes["output"].pos[1], g.nodes["pool2"].pos
    doc.push(SetGroupCollapsedCommand(doc, "classifier", True))
    assert g.groups["classifier"].collapsed and g.nodes["output"].pos[1] < y_out
    assert g.nodes["pool2"].pos == pool2
    doc.push(SetGroupCollapsedCommand(doc, "classifier", False))
    assert g.nodes["output"].pos[1] == pytest.approx(y_out) and g.nodes["pool2"].pos == pool2


def test_apply_insert_fix_and_undo(doc):
    g = doc.graph
    before = snap(doc)
    fix = Fix("insert BatchNorm2d", "insert_before", "relu1", layer_type="BatchNorm2d")
    doc.push(ApplyFixCommand(doc, fix))
    bn = g.predecessors("relu1")[0]
    assert g.nodes[bn].type == "BatchNorm2d" and g.predecessors(bn) == ["conv1"]
    assert doc.analysis.ok and doc.analysis.nodes[bn].params == 12
    doc.undo_stack.undo()
    assert snap(doc) == before


def test_modified_and_selection_signals(doc, qtbot):
    with qtbot.waitSignal(doc.modified_changed) as blocker:
        doc.push(SetParamCommand(doc, "conv1", "out_channels", 8))
    assert blocker.args == [True]
    with qtbot.waitSignal(doc.modified_changed) as blocker:
        doc.set_clean()
    assert blocker.args == [False]
    with qtbot.waitSignal(doc.selection_changed) as blocker:
        doc.set_selection(["conv1", "ghost", "relu1"])
    assert blocker.args == [["conv1", "relu1"]]
    doc.push(RenameNodeCommand(doc, "conv1", "stem"))
    assert doc.selection == ["stem", "relu1"]


def test_new_document_is_a_valid_network(qapp):
    d = Document.new()
    assert d.analysis.ok and d.analysis.output_shapes == ((3, 32, 32),)
    assert not d.is_modified()


def test_fixes_from_diagnostics_apply_and_undo(qapp):
    data = json.loads(DEMO.read_text())
    data["graph"]["nodes"][4]["type"] = "Conv2x"  # conv2 misspelt
    data["graph"]["nodes"] = [n for n in data["graph"]["nodes"] if n["id"] != "output"]
    data["graph"]["edges"] = [e for e in data["graph"]["edges"] if e["to"] != "output"]
    from core.project import project_from_dict

    d = Document.from_project(project_from_dict(data))
    fixes = {f.action: f for f in (x.fix for x in d.analysis.diagnostics) if f is not None}
    assert {"replace_type", "add_output"} <= set(fixes)
    before = project_to_dict(d.project)
    d.push(ApplyFixCommand(d, fixes["replace_type"]))
    assert d.graph.nodes["conv2"].type == "Conv2d" and d.undo_stack.undoText().startswith("Fix: ")
    d.push(ApplyFixCommand(d, fixes["add_output"]))
    assert d.analysis.ok
    d.undo_stack.undo()
    d.undo_stack.undo()
    assert project_to_dict(d.project) == before
    stale = fixes["replace_type"]
    d.push(RemoveItemsCommand(d, ["conv2"]))
    assert "conv2" in (try_push(d, lambda: ApplyFixCommand(d, stale)) or "")
    d.dispose()


def test_a_node_added_after_another_lands_in_a_free_spot(doc):
    g = doc.graph
    doc.push(AddNodeCommand(doc, "ReLU", "extra", connect_from="conv1"))
    x, y = g.nodes["extra"].pos
    from gui.canvas.metrics import LAYER_GAP, NODE_H

    # relu1 sits right below conv1: the new node goes beside it
    assert y == g.nodes["conv1"].pos[1] + NODE_H + LAYER_GAP and x > g.nodes["relu1"].pos[0]
    assert g.predecessors("extra") == ["conv1"]


def _visible_rects(g):
    from core.layout import card_rect, node_rect, parent_map, visible_unit

    parent = parent_map(g)
    units = {visible_unit(g, parent, n) for n in g.nodes}
    return [card_rect(g, u) if u in g.groups else node_rect(g.nodes[u].pos) for u in units]


def _overlaps(rects):
    return [(a, b) for i, a in enumerate(rects) for b in rects[i + 1:]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]


@pytest.mark.parametrize("seed", range(12))
def test_arrange_then_expand_leaves_no_overlaps(qapp, seed):
    import random

    from core.graph import Graph
    from core.project import Project

    rnd = random.Random(seed)
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    ids = ["input"]
    for i in range(rnd.randint(5, 40)):
        kind = rnd.choice(["ReLU", "Add", "Conv2d"])
        g.add_node(kind, f"n{i}")
        for src in rnd.sample(ids, min(len(ids), 2 if kind == "Add" else 1)):
            g.add_edge(src, f"n{i}")
        ids.append(f"n{i}")
    k = 1
    while k < len(ids) - 3:
        if rnd.random() < 0.3:
            size = rnd.randint(2, 6)
            g.add_group(f"g{k}", f"Block {k}", ids[k:k + size])
            k += size
        else:
            k += 1
    d = Document.from_project(Project(g))
    for gid in list(g.groups):
        if rnd.random() < 0.5:
            d.push(SetGroupCollapsedCommand(d, gid, True))
    d.push(AutoArrangeCommand(d))
    assert not _overlaps(_visible_rects(g))
    for gid in list(g.groups):
        if g.groups[gid].collapsed:
            d.push(SetGroupCollapsedCommand(d, gid, False))
    assert not _overlaps(_visible_rects(g))
    d.dispose()


def test_a_released_document_drops_its_undo_history_while_its_commands_are_alive(qapp):
    # Left to a garbage collection of the document's cycles, Qt's stack deleted a command PySide had freed
    # already (a segfault in ~QUndoStack, met when a weights-size fix's document was collected late).
    d = Document.from_project(load_project(DEMO))
    d.undo_stack.beginMacro("Fit the network")
    d.push(SetParamCommand(d, "fc3", "out_features", 4))
    d.undo_stack.endMacro()
    d.push(SetParamCommand(d, "conv1", "out_channels", 8))
    assert d.undo_stack.count() == 2
    d.dispose()
    assert d.undo_stack.count() == 0
    assert d.graph.nodes["conv1"].params["out_channels"] == 8  # the model keeps its state; only the history goes
