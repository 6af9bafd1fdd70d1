"""Applying a diagnostic's :class:`~core.layers.spec.Fix` to a graph, reversibly.

``apply_fix(graph, fix)`` performs the repair through the public :class:`~core.graph.Graph` API and
returns an :class:`AppliedFix` that lists every step it took, so the GUI's undo command can call
``applied.undo(graph)`` and ``applied.redo(graph)`` (each step is one graph method, and redo
replays the very same nodes and edges, ids included).

Actions (``Fix.action``, a :class:`~core.layers.spec.FixAction`):

- ``set_param``: set ``param`` of ``node`` to ``value`` (``None`` removes it: inferred or default);
- ``insert_before``: insert a new ``layer_type`` node with ``layer_params`` between ``node`` and
  the input at ``port`` (it joins ``node``'s group);
- ``remove_edge``: disconnect the input of ``node`` at ``port``;
- ``replace_type``: give ``node`` the type ``layer_type`` (a misspelt type), keeping its id, edges,
  group and the parameters the new type knows;
- ``add_input``: add an ``Input`` feeding the first layer that has no input;
- ``add_output``: add an ``Output`` after the last layer that feeds nothing;
- ``connect``: connect output ``from_port`` of ``source`` to input ``port`` of ``node`` and of each
  node in ``value`` (a tuple of further ids: every input one deleted block left open);
- ``rename``: give ``node`` the id ``value`` (an id torch already uses for an attribute), keeping
  its edges and groups.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from core.graph import Edge, Graph, GraphError, Node, id_problem
from core.layers.registry import get_spec
from core.layers.spec import Fix, FixAction

# One step: ("set_param", node, name, old value, new value, all old params) | ("add_node", Node[, file index])
# | ("remove_node", Node, file index)
# | ("add_edge", Edge) | ("remove_edge", Edge) | ("join_group" | "leave_group", group_id, index, node_id)
# | ("rename", old id, new id).
# A removed node has no edges or groups left by then (earlier steps detach it), so undo is exact.
Step = tuple[Any, ...]


class FixError(GraphError):
    """A fix that no longer applies (its node was removed or renamed since the analysis)."""


@dataclass
class AppliedFix:
    """What :func:`apply_fix` changed: ``steps`` in order, and the ids of the nodes it created."""

    fix: Fix
    steps: list[Step] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def undo(self, graph: Graph) -> None:
        """Revert every step, last first."""
        for step in reversed(self.steps):
            _undo_step(graph, step)

    def redo(self, graph: Graph) -> None:
        """Replay the steps after :meth:`undo` (same nodes, same ids)."""
        for step in self.steps:
            _do_step(graph, step)


def apply_fix(graph: Graph, fix: Fix) -> AppliedFix:
    """Apply ``fix`` to ``graph``; returns the :class:`AppliedFix` record for undo/redo.

    Raises :class:`FixError` (a :class:`~core.graph.GraphError`) when the fix does not fit the
    graph any more; nothing is changed then.
    """
    applied = AppliedFix(fix)
    action = fix.action
    if action in (FixAction.SET_PARAM, FixAction.INSERT_BEFORE, FixAction.REMOVE_EDGE, FixAction.REPLACE_TYPE,
                  FixAction.CONNECT, FixAction.RENAME):
        if fix.node is None or fix.node not in graph.nodes:
            raise FixError(f"cannot {fix.label}: there is no node {fix.node!r} any more")
    if action == FixAction.SET_PARAM:
        if not fix.param:
            raise FixError(f"cannot {fix.label}: the fix names no parameter")
        old = graph.nodes[str(fix.node)].params  # a known node: checked above
        _run(graph, applied, ("set_param", fix.node, fix.param, old.get(fix.param), fix.value, copy.deepcopy(old)))
    elif action == FixAction.REMOVE_EDGE:
        edge = next((e for e in graph.in_edges(fix.node) if e.port == fix.port), None)  # type: ignore[arg-type]
        if edge is None:
            raise FixError(f"cannot {fix.label}: {fix.node} has no input on port {fix.port}")
        _run(graph, applied, ("remove_edge", edge))
    elif action == FixAction.INSERT_BEFORE:
        _insert_before(graph, applied, fix)
    elif action == FixAction.REPLACE_TYPE:
        _replace_type(graph, applied, fix)
    elif action == FixAction.ADD_INPUT:
        _add_input(graph, applied)
    elif action == FixAction.ADD_OUTPUT:
        _add_output(graph, applied)
    elif action == FixAction.CONNECT:
        if fix.source is None or fix.source not in graph.nodes:
            raise FixError(f"cannot {fix.label}: there is no node {fix.source!r} any more")
        targets = [fix.node, *(fix.value or ())]
        edges = [Edge(fix.source, dst, fix.port, fix.from_port) for dst in targets]  # type: ignore[arg-type]
        for e in edges:  # a taken port or a cycle is refused before anything changes
            graph.check_edge(e.src, e.dst, e.port, e.from_port)
        for e in edges:
            _run(graph, applied, ("add_edge", e))
    elif action == FixAction.RENAME:
        new = fix.value
        if not isinstance(new, str) or new in graph.nodes or new in graph.groups or id_problem(new):
            raise FixError(f"cannot {fix.label}: {new!r} is taken or is not a valid id")
        _run(graph, applied, ("rename", fix.node, new))
    else:
        raise FixError(f"cannot {fix.label}: unknown fix action {action!r}")
    return applied


# -- actions -----------------------------------------------------------------------------------

def _new_node(graph: Graph, layer_type: str, params: dict[str, Any], pos: tuple[float, float] | None) -> Node:
    return Node(graph.fresh_id(layer_type), layer_type, dict(params), pos)


def _between(graph: Graph, a: str | None, b: str) -> tuple[float, float] | None:
    pb = graph.nodes[b].pos
    pa = graph.nodes[a].pos if a is not None else None
    if pa is not None and pb is not None:
        return ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)
    return None if pb is None else (pb[0], pb[1] - 60.0)


def _insert_before(graph: Graph, applied: AppliedFix, fix: Fix) -> None:
    if not fix.layer_type:
        raise FixError(f"cannot {fix.label}: the fix names no layer type")
    dst = fix.node
    assert dst is not None
    edge = next((e for e in graph.in_edges(dst) if e.port == fix.port), None)
    node = _new_node(graph, fix.layer_type, dict(fix.layer_params), _between(graph, edge.src if edge else None, dst))
    if edge is not None:
        _run(graph, applied, ("remove_edge", edge))
    _run(graph, applied, ("add_node", node))
    applied.created.append(node.id)
    if edge is not None:
        _run(graph, applied, ("add_edge", Edge(edge.src, node.id, 0, edge.from_port)))
    _run(graph, applied, ("add_edge", Edge(node.id, dst, fix.port, 0)))
    group = graph.parent_group(dst)
    if group is not None:
        members = graph.groups[group].members
        _run(graph, applied, ("join_group", group, members.index(dst), node.id))


def _replace_type(graph: Graph, applied: AppliedFix, fix: Fix) -> None:
    spec = get_spec(fix.layer_type or "")
    if spec is None:
        raise FixError(f"cannot {fix.label}: {fix.layer_type!r} is not a layer type")
    old = graph.nodes[fix.node]  # type: ignore[index]
    edges = list(dict.fromkeys(graph.in_edges(old.id) + graph.out_edges(old.id)))
    memberships = [(g.id, g.members.index(old.id)) for g in graph.groups.values() if old.id in g.members]
    params = {k: v for k, v in old.params.items() if k in spec.param_names}
    new = Node(old.id, spec.type, params, old.pos, old.frozen, old.init, dict(old.extra), lr_mult=old.lr_mult)
    # Detach first, step by step, so that undo can put every edge and membership back.
    for e in edges:
        _run(graph, applied, ("remove_edge", e))
    for gid, index in memberships:
        _run(graph, applied, ("leave_group", gid, index, old.id))
    index = graph.node_index(old.id)
    _run(graph, applied, ("remove_node", old, index))
    _run(graph, applied, ("add_node", new, index))
    for e in edges:
        _run(graph, applied, ("add_edge", e))
    for gid, index in memberships:
        _run(graph, applied, ("join_group", gid, index, new.id))


def _add_input(graph: Graph, applied: AppliedFix) -> None:
    target = None
    for n in graph.nodes.values():
        spec = get_spec(n.type)
        if spec is not None and spec.min_inputs >= 1 and spec.type != "Output" and not graph.in_edges(n.id):
            target = n.id
            break
    pos = None
    if target is not None and graph.nodes[target].pos is not None:
        x, y = graph.nodes[target].pos  # type: ignore[misc]
        pos = (x, y - 80.0)
    node = _new_node(graph, "Input", {}, pos)
    _run(graph, applied, ("add_node", node))
    applied.created.append(node.id)
    if target is not None:
        _run(graph, applied, ("add_edge", Edge(node.id, target, 0, 0)))


def _add_output(graph: Graph, applied: AppliedFix) -> None:
    order, blocked = graph.kahn()
    source = None
    for nid in reversed(order + blocked):
        n = graph.nodes[nid]
        if n.type not in ("Output",) and not graph.out_edges(nid):
            source = nid
            break
    pos = None
    if source is not None and graph.nodes[source].pos is not None:
        x, y = graph.nodes[source].pos  # type: ignore[misc]
        pos = (x, y + 80.0)
    node = _new_node(graph, "Output", {}, pos)
    _run(graph, applied, ("add_node", node))
    applied.created.append(node.id)
    if source is not None:
        _run(graph, applied, ("add_edge", Edge(source, node.id, 0, 0)))


# -- steps -------------------------------------------------------------------------------------

def _run(graph: Graph, applied: AppliedFix, step: Step) -> None:
    _do_step(graph, step)
    applied.steps.append(step)


def _do_step(graph: Graph, step: Step) -> None:
    kind = step[0]
    if kind == "set_param":
        graph.set_param(step[1], step[2], step[4])
    elif kind == "add_node":
        graph.insert_node(step[1], step[2] if len(step) > 2 else None)
    elif kind == "remove_node":
        graph.remove_node(step[1].id)
    elif kind == "add_edge":
        graph.insert_edge(step[1])
    elif kind == "remove_edge":
        graph.remove_edge(step[1])
    elif kind == "join_group":
        _join(graph, step)
    elif kind == "leave_group":
        _leave(graph, step)
    elif kind == "rename":
        graph.rename_node(step[1], step[2])
    else:  # pragma: no cover - steps are only made in this module
        raise FixError(f"unknown step {kind!r}")


def _undo_step(graph: Graph, step: Step) -> None:
    kind = step[0]
    if kind == "set_param":
        graph.set_params(step[1], step[5])  # all of them: keeps the parameters' order in the file
    elif kind == "add_node":
        graph.remove_node(step[1].id)
    elif kind == "remove_node":
        graph.insert_node(step[1], step[2])
    elif kind == "add_edge":
        graph.remove_edge(step[1])
    elif kind == "remove_edge":
        graph.insert_edge(step[1])
    elif kind == "join_group":
        _leave(graph, step)
    elif kind == "leave_group":
        _join(graph, step)
    elif kind == "rename":
        graph.rename_node(step[2], step[1])
    else:  # pragma: no cover
        raise FixError(f"unknown step {kind!r}")


def _join(graph: Graph, step: Step) -> None:
    members = list(graph.groups[step[1]].members)
    members.insert(step[2], step[3])
    graph.set_group(step[1], members=members)


def _leave(graph: Graph, step: Step) -> None:
    graph.set_group(step[1], members=[m for m in graph.groups[step[1]].members if m != step[3]])


__all__ = ["AppliedFix", "FixError", "apply_fix"]
