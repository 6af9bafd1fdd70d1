"""The small helper every template builder writes through.

A :class:`Builder` wraps a :class:`core.graph.Graph` and emits nodes, edges and groups only
through the graph's public API (``add_node``, ``add_edge``, ``add_group``), so a template is
exactly what a user could have drawn. It also lays the nodes out as it goes: a node's row is
its longest-path depth from the input (so every edge points down and parallel branches end
level), and never above the last row of a top-level block already closed; its column is the
current *lane* (0 = the main path; Inception branches, shortcuts and auxiliary heads sit in
lanes beside it). So the top-level groups read top to bottom, without sharing rows, as
stem → stages → head when the editor collapses them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core.graph import Graph
from core.project import Project

# Grid pitch in scene units, matching the editor's node cards (196×70, top-left positions) with
# the canvas's gaps between columns (44) and layers (64, where edge labels and group frames go).
# templates/ may not import gui/, so the numbers are repeated here.
COLUMN_WIDTH = 240.0
ROW_HEIGHT = 134.0


@dataclass
class _OpenGroup:
    id: str
    label: str
    members: list[str] = field(default_factory=list)


class Builder:
    """Adds layers in data-flow order; tracks lanes, rows and the open (nested) groups."""

    def __init__(self) -> None:
        self.graph = Graph()
        self._rank: dict[str, int] = {}
        self._lane = 0.0
        self._open: list[_OpenGroup] = []
        # First row free below every closed top-level block: a side branch that runs longer than
        # its block (GoogLeNet's auxiliary head) must not share rows with the next block, or the
        # blocks would overlap when the editor collapses them.
        self._floor = 0

    # -- nodes --------------------------------------------------------------------------------
    def input(self, shape: Sequence[int], node_id: str = "input") -> str:
        """The Input node (per-sample shape, channels first)."""
        return self.add("Input", node_id, {"shape": list(shape)}, inputs=())

    def add(self, type: str, node_id: str, params: Mapping[str, Any] | None = None, *,
            inputs: str | Sequence[str]) -> str:
        """Add one node fed by ``inputs`` (in port order) and return its id."""
        srcs = [inputs] if isinstance(inputs, str) else list(inputs)
        rank = max(1 + max((self._rank[s] for s in srcs), default=-1), self._floor)
        self.graph.add_node(type, node_id, dict(params or {}), pos=(self._lane * COLUMN_WIDTH, rank * ROW_HEIGHT))
        for port, src in enumerate(srcs):
            self.graph.add_edge(src, node_id, port)
        self._rank[node_id] = rank
        if self._open:
            self._open[-1].members.append(node_id)
        return node_id

    def chain(self, x: str, layers: Sequence[tuple[str, str, Mapping[str, Any] | None]]) -> str:
        """Add ``(type, id, params)`` layers one after another from ``x``; return the last id."""
        for type_name, node_id, params in layers:
            x = self.add(type_name, node_id, params, inputs=x)
        return x

    def output(self, x: str, node_id: str = "output") -> str:
        return self.add("Output", node_id, inputs=x)

    def move_to_end(self, node_id: str) -> None:
        """Put ``node_id`` last in the file order, keeping its place, edges and group.

        Outputs are returned in file order, so a side head's Output that belongs inside its
        block (GoogLeNet's auxiliary classifiers) is built there and moved after the main one.
        """
        node, edges, memberships = self.graph.remove_node(node_id)
        self.graph.insert_node(node)
        for edge in edges:
            self.graph.insert_edge(edge)
        for group_id, index in memberships:
            members = list(self.graph.groups[group_id].members)
            members.insert(index, node_id)
            self.graph.set_group(group_id, members=members)

    # -- layout and groups --------------------------------------------------------------------
    @contextmanager
    def lane(self, offset: float) -> Iterator[None]:
        """Place the nodes added inside this block ``offset`` columns right of the current lane."""
        saved = self._lane
        self._lane = saved + offset
        try:
            yield
        finally:
            self._lane = saved

    @contextmanager
    def group(self, group_id: str, label: str) -> Iterator[None]:
        """Collect the nodes (and inner groups) added inside this block into one group.

        Inner groups close first, so they exist when their parent lists them as members.
        """
        self._open.append(_OpenGroup(group_id, label))
        try:
            yield
        finally:
            done = self._open.pop()
        if done.members:
            self.graph.add_group(done.id, done.label, done.members)
            if self._open:
                self._open[-1].members.append(done.id)
        if not self._open:
            self._floor = 1 + max(self._rank.values(), default=-1)

    # -- result -------------------------------------------------------------------------------
    def project(self, name: str, training: Mapping[str, Any]) -> Project:
        return Project(self.graph, name=name, training=dict(training))


def conv_params(out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                bias: bool = True, groups: int = 1) -> dict[str, Any]:
    """Conv2d params as a user would set them: only what differs from torch's defaults."""
    p: dict[str, Any] = {"out_channels": out_channels, "kernel_size": kernel_size}
    if stride != 1:
        p["stride"] = stride
    if padding:
        p["padding"] = padding
    if groups != 1:
        p["groups"] = groups
    if not bias:
        p["bias"] = False
    return p


__all__ = ["COLUMN_WIDTH", "ROW_HEIGHT", "Builder", "conv_params"]
