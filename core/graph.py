"""The network model: layer nodes, edges with ports, nestable groups and positions.

A :class:`Graph` wraps a ``networkx.MultiDiGraph`` (keyed by the destination's input ``port``,
so each input port holds at most one edge) and emits plain :class:`core.events.Event`\\ s after
every change. It is the single source of truth the GUI observes; every edit goes through one
method here, which the GUI's undo commands call.

Edits that would break the model's invariants raise typed errors: :class:`CycleError`,
:class:`PortError`, :class:`UnknownNodeError`, :class:`DuplicateIdError`, :class:`InvalidIdError`.
Semantic problems (shapes, channels) are *not* errors here; analysis reports them as
diagnostics so a half-drawn network can still be edited.
"""

from __future__ import annotations

import copy
import heapq
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from core.events import Event
from core.layers.registry import canonical_type, get_spec
from core.layers.spec import is_identifier_segment

_SEGMENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+", re.ASCII)
# Groups inside groups deeper than this are refused when a file loads: no network needs them, and
# the canvas draws each level as a frame inside the one above.
MAX_GROUP_DEPTH = 64


class GraphError(ValueError):
    """Base class of model errors; ``str()`` is a sentence a user can read."""


class CycleError(GraphError):
    pass


class PortError(GraphError):
    pass


class UnknownNodeError(GraphError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateIdError(GraphError):
    pass


class InvalidIdError(GraphError):
    pass


def id_problem(node_id: Any) -> str | None:
    """Why ``node_id`` is not a valid node/group id, or ``None`` if it is.

    Ids are module paths: ``[A-Za-z_][A-Za-z0-9_]*`` segments joined by ``.``, later segments
    may be digits (``layer1.0.conv1``). ASCII only, no Python keywords: ids become attribute
    names in exported code, so nothing else may pass.
    """
    if not isinstance(node_id, str):
        return f"must be a string, got {type(node_id).__name__}"
    if not node_id:
        return "must not be empty"
    if len(node_id) > 200:
        return "is longer than 200 characters"
    segments = node_id.split(".")
    for i, seg in enumerate(segments):
        if not seg:
            return f"{node_id!r} has an empty segment (two dots, or a dot at an end)"
        if not _SEGMENT_RE.fullmatch(seg):
            return (f"{node_id!r}: segment {seg!r} must be letters, digits and underscores, "
                    f"not starting with a digit (a module path like layer1.0.conv1)")
        if seg.isdigit():
            if i == 0:
                return f"{node_id!r} must start with a name, not a number"
        elif not is_identifier_segment(seg):
            return f"{node_id!r}: segment {seg!r} is a Python keyword"
    return None


def describe_cycle(cycle: list[str], shown: int = 6) -> str:
    """``a → b → c → a`` for a short cycle; a long one names its first ``shown`` nodes, its last,
    and its length (``a → b → … → z → a, 50,000 layers``): a message, not half a megabyte."""
    if not cycle:
        return ""
    if len(cycle) <= shown + 1:
        return " → ".join([*cycle, cycle[0]])
    return " → ".join([*cycle[:shown], "…", cycle[-1], cycle[0]]) + f", {len(cycle):,} layers"


def lr_mult_problem(value: Any) -> str | None:
    """Why ``value`` is not a learning-rate multiplier (a positive finite number), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a positive number, got {value!r}"
    if not math.isfinite(value) or value <= 0:
        return f"must be a positive finite number, got {value!r}"
    return None


def check_lr_mult(value: Any) -> None:
    problem = lr_mult_problem(value)
    if problem:
        raise GraphError(f"learning-rate multiplier {problem}")


def check_id(node_id: Any) -> str:
    problem = id_problem(node_id)
    if problem:
        raise InvalidIdError(f"invalid id: {problem}")
    return node_id


@dataclass
class Node:
    """A layer instance. ``params`` holds only what the user set (torch defaults are implied).

    ``init`` is the weight initialisation name (``default``, ``kaiming_normal`` …, or
    ``normal(0.01)``); ``frozen`` turns ``requires_grad`` off in the compiled model; ``extra``
    keeps unknown keys from the project file so they are written back. ``lr_mult`` multiplies the
    learning rate of the node's parameters (the optimizer gives them their own parameter group:
    10× for a new head while the pretrained layers learn at the base rate).
    """

    id: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    pos: tuple[float, float] | None = None
    frozen: bool = False
    init: str = "default"
    extra: dict[str, Any] = field(default_factory=dict)
    lr_mult: float = 1.0
    # Bumped on every params/frozen/init/lr_mult edit; analysis caches validated params by it.
    rev: int = field(default=0, compare=False, repr=False)
    # Derived data keyed by ``rev`` (analysis keeps the validated params here, so a full pass
    # after a structural edit does not validate unchanged nodes again). Never saved or copied.
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Edge:
    """``src`` output ``from_port`` → ``dst`` input ``port``."""

    src: str
    dst: str
    port: int = 0
    from_port: int = 0


@dataclass
class Group:
    """A block: a labelled set of node and group ids; groups nest by membership."""

    id: str
    label: str
    members: list[str] = field(default_factory=list)
    collapsed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Graph:
    """The editable DAG. Attribute events are emitted *after* the model has changed."""

    def __init__(self) -> None:
        self._g: nx.MultiDiGraph = nx.MultiDiGraph()
        self.nodes: dict[str, Node] = {}
        self.groups: dict[str, Group] = {}
        # structure_version changes on node/edge add/remove/rename; param_version on any param edit.
        self.structure_version = 0
        self.param_version = 0
        # Kahn's order of the acyclic part and the nodes on/after a cycle; None until asked for.
        self._kahn: tuple[list[str], list[str]] | None = None
        # Our own adjacency for the hot paths (analysis, scene): networkx views are slow per call.
        self._in: dict[str, dict[int, Edge]] = {}
        self._out: dict[str, list[Edge]] = {}
        # Log of param edits: _edits[i] is the node edited at param_version _edits_base + i + 1.
        # Each Analyzer remembers the version it saw, so several analyzers can share a graph.
        self._edits: list[str] = []
        self._edits_base = 0
        self.node_added = Event("node_added")  # (node)
        self.node_removed = Event("node_removed")  # (node)
        self.node_changed = Event("node_changed")  # (node_id) params / frozen / init / lr_mult
        self.node_renamed = Event("node_renamed")  # (old_id, new_id)
        self.node_moved = Event("node_moved")  # (node_id, pos)
        self.edge_added = Event("edge_added")  # (edge)
        self.edge_removed = Event("edge_removed")  # (edge)
        self.groups_changed = Event("groups_changed")  # ()
        self.changed = Event("changed")  # () after any model change: analysis hooks here

    # -- queries ------------------------------------------------------------------------------
    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def node_index(self, node_id: str) -> int:
        """The node's position in the file order (undo of a removal puts it back there)."""
        self.node(node_id)
        return next(i for i, n in enumerate(self.nodes) if n == node_id)

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise UnknownNodeError(f"no node with id {node_id!r}") from None

    @property
    def edges(self) -> list[Edge]:
        return [e for n in self.nodes for e in self.in_edges(n)]

    def in_edges(self, node_id: str) -> list[Edge]:
        """Incoming edges ordered by input port."""
        ins = self._in.get(node_id)
        if not ins:
            return []
        if len(ins) == 1:
            return list(ins.values())
        return [ins[p] for p in sorted(ins)]

    def out_edges(self, node_id: str) -> list[Edge]:
        return list(self._out.get(node_id, ()))

    def predecessors(self, node_id: str) -> list[str]:
        return [e.src for e in self.in_edges(node_id)]

    def successors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.dst for e in self._out.get(node_id, ())))

    def has_cycle(self) -> bool:
        return bool(self.kahn()[1])

    def find_cycle(self) -> list[str]:
        """Node ids on one cycle, in edge order, or ``[]`` (rare path: networkx)."""
        if not self.has_cycle():
            return []
        try:
            return [u for u, _v, *_ in nx.find_cycle(self._g)]
        except nx.NetworkXNoCycle:  # pragma: no cover - kahn() said there is one
            return []

    def kahn(self) -> tuple[list[str], list[str]]:
        """``(order, blocked)``: Kahn's topological order of every node not on or downstream of a
        cycle (ties broken by file order, so the order is stable and reads like the file), and the
        remaining nodes in file order. ``blocked`` is empty for a DAG. Cached until the structure
        changes; O((V + E) log V) for the heap that implements the file-order tie-break.
        """
        if self._kahn is None:
            ins, outs = self._in, self._out
            index = {n: i for i, n in enumerate(self.nodes)}
            names = list(self.nodes)
            # Files and templates usually list nodes in an order that is already topological; then
            # file order *is* the file-order-first topological order, and one pass over the edges
            # proves it.
            if all(index[e.src] < i for i, n in enumerate(names) for e in ins[n].values()):
                self._kahn = (names, [])
                return self._kahn
            indeg = {n: len(ins[n]) for n in names}
            heap = [index[n] for n in names if not indeg[n]]  # already sorted: a valid heap
            order: list[str] = []
            pop, push = heapq.heappop, heapq.heappush
            while heap:
                nid = names[pop(heap)]
                order.append(nid)
                for e in outs[nid]:
                    d = indeg[e.dst] - 1
                    indeg[e.dst] = d
                    if not d:
                        push(heap, index[e.dst])
            blocked = [n for n in names if indeg[n]] if len(order) < len(names) else []
            self._kahn = (order, blocked)
        return self._kahn

    def topo_order(self) -> list[str]:
        """Nodes in topological order (cached until the structure changes); file order breaks ties.

        Raises :class:`CycleError` on a cyclic graph.
        """
        order, blocked = self.kahn()
        if blocked:
            raise CycleError("the graph has a cycle: " + describe_cycle(self.find_cycle()))
        return order

    def descendants(self, node_id: str) -> set[str]:
        """Every node reachable from ``node_id`` (not itself unless on a cycle)."""
        self.node(node_id)
        return self._reach([node_id], forward=True, include_start=False)

    def ancestors(self, node_id: str) -> set[str]:
        """Every node from which ``node_id`` is reachable (not itself unless on a cycle)."""
        self.node(node_id)
        return self._reach([node_id], forward=False, include_start=False)

    def upstream(self, node_ids: Iterable[str]) -> set[str]:
        """``node_ids`` and all their ancestors: one O(V + E) walk over the inputs."""
        return self._reach([n for n in node_ids if n in self.nodes], forward=False, include_start=True)

    def _reach(self, start: list[str], *, forward: bool, include_start: bool) -> set[str]:
        seen: set[str] = set(start) if include_start else set()
        stack = list(start)
        push = stack.append
        if forward:
            outs = self._out
            while stack:
                for e in outs[stack.pop()]:
                    if e.dst not in seen:
                        seen.add(e.dst)
                        push(e.dst)
        else:
            ins = self._in
            while stack:
                for e in ins[stack.pop()].values():
                    if e.src not in seen:
                        seen.add(e.src)
                        push(e.src)
        return seen

    def nx_graph(self) -> nx.MultiDiGraph:
        """The underlying networkx graph (read-only by convention)."""
        return self._g

    def fresh_id(self, base: str) -> str:
        """An unused id from ``base``: ``conv`` → ``conv1``, ``conv2`` …"""
        stem = re.sub(r"[^A-Za-z0-9_]", "_", base) or "node"
        if stem[0].isdigit():
            stem = "n" + stem
        stem = stem[0].lower() + stem[1:]
        if not is_identifier_segment(stem):
            stem += "_"
        stem = stem.rstrip("0123456789") or stem
        i = 1
        while f"{stem}{i}" in self.nodes or f"{stem}{i}" in self.groups:
            i += 1
        return f"{stem}{i}"

    def params_changed_since(self, version: int) -> set[str] | None:
        """Ids of nodes whose params/frozen/init changed after ``param_version`` was ``version``.

        ``None`` when the log no longer reaches back that far (the caller then does a full pass).
        """
        if version < self._edits_base:
            return None
        return set(self._edits[version - self._edits_base:])

    # -- nodes --------------------------------------------------------------------------------
    def add_node(self, type: str, id: str | None = None, params: Mapping[str, Any] | None = None,
                 pos: tuple[float, float] | None = None, *, frozen: bool = False, init: str = "default",
                 extra: Mapping[str, Any] | None = None, lr_mult: float = 1.0) -> Node:
        """Add a node of ``type`` (unknown types are kept; analysis reports them)."""
        check_lr_mult(lr_mult)
        node_id = id if id is not None else self.fresh_id(type)
        check_id(node_id)
        if node_id in self.nodes:
            raise DuplicateIdError(f"a node with id {node_id!r} already exists")
        if node_id in self.groups:
            raise DuplicateIdError(f"{node_id!r} is already the id of a group")
        node = Node(node_id, canonical_type(type), dict(params or {}),
                    None if pos is None else (float(pos[0]), float(pos[1])),
                    frozen, init, dict(extra or {}), float(lr_mult))
        return self.insert_node(node)

    def insert_node(self, node: Node, index: int | None = None) -> Node:
        """Add an existing :class:`Node` object (undo of a removal re-inserts the same node).

        ``index`` puts it at that place in the file order (undo restores the exact file).
        """
        if node.id in self.nodes:
            raise DuplicateIdError(f"a node with id {node.id!r} already exists")
        self.nodes[node.id] = node
        if index is not None and index < len(self.nodes) - 1:
            items = list(self.nodes.items())
            items.insert(max(index, 0), items.pop())
            self.nodes.clear()
            self.nodes.update(items)
        self._g.add_node(node.id)
        self._in[node.id] = {}
        self._out[node.id] = []
        self._structure_changed()
        self.node_added.emit(node)
        self.changed.emit()
        return node

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge], list[tuple[str, int]]]:
        """Remove a node with its edges and group memberships; returns them for undo."""
        node = self.node(node_id)
        # once each: a wire from the node to itself (a file may hold one) is in both lists
        edges = list(dict.fromkeys(self.in_edges(node_id) + self.out_edges(node_id)))
        for e in edges:
            self._remove_edge_quiet(e)
            self.edge_removed.emit(e)
        memberships = []
        for g in self.groups.values():
            if node_id in g.members:
                memberships.append((g.id, g.members.index(node_id)))
                g.members.remove(node_id)
        del self.nodes[node_id]
        self._g.remove_node(node_id)
        del self._in[node_id], self._out[node_id]
        self._structure_changed()
        self.node_removed.emit(node)
        if memberships:
            self.groups_changed.emit()
        self.changed.emit()
        return node, edges, memberships

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        """Set one parameter; ``None`` removes it (inferred / torch default). No-op if unchanged."""
        node = self.node(node_id)
        if value is None:
            if name not in node.params:
                return
            del node.params[name]
        else:
            if node.params.get(name, _MISSING) == value:
                return
            node.params[name] = copy.deepcopy(value)
        self._param_changed(node_id)

    def set_params(self, node_id: str, params: Mapping[str, Any]) -> None:
        """Replace all user-set parameters at once."""
        node = self.node(node_id)
        if node.params == dict(params):
            return
        node.params = copy.deepcopy(dict(params))
        self._param_changed(node_id)

    def set_frozen(self, node_id: str, frozen: bool) -> None:
        node = self.node(node_id)
        if node.frozen != frozen:
            node.frozen = frozen
            self._param_changed(node_id)

    def set_lr_mult(self, node_id: str, value: float) -> None:
        """Set the node's learning-rate multiplier (a positive finite number; 1 is the base rate)."""
        node = self.node(node_id)
        check_lr_mult(value)
        if node.lr_mult != value:
            node.lr_mult = float(value)
            self._param_changed(node_id)

    def set_init(self, node_id: str, init: str) -> None:
        node = self.node(node_id)
        if node.init != init:
            node.init = init
            self._param_changed(node_id)

    def set_position(self, node_id: str, pos: tuple[float, float] | None) -> None:
        node = self.node(node_id)
        new = None if pos is None else (float(pos[0]), float(pos[1]))
        if node.pos != new:
            node.pos = new
            self.node_moved.emit(node_id, new)

    def rename_node(self, old: str, new: str) -> None:
        """Give a node a new id, keeping its edges and group memberships."""
        node = self.node(old)
        if old == new:
            return
        check_id(new)
        if new in self.nodes or new in self.groups:
            raise DuplicateIdError(f"the id {new!r} is already taken")
        edges = self.in_edges(old) + self.out_edges(old)
        for e in edges:
            self._remove_edge_quiet(e)
        self._g.remove_node(old)
        del self._in[old], self._out[old]
        # keep the file order: rebuild the dict with the new key in the old place
        node.id = new
        items = [(new if k == old else k, v) for k, v in self.nodes.items()]
        self.nodes.clear()
        self.nodes.update(items)
        self._g.add_node(new)
        self._in[new] = {}
        self._out[new] = []
        for e in edges:
            ne = Edge(new if e.src == old else e.src, new if e.dst == old else e.dst, e.port, e.from_port)
            self._link(ne)
        for g in self.groups.values():
            g.members = [new if m == old else m for m in g.members]
        self._structure_changed()
        self.node_renamed.emit(old, new)
        self.changed.emit()

    # -- edges --------------------------------------------------------------------------------
    def free_port(self, node_id: str) -> int:
        used = {e.port for e in self.in_edges(node_id)}
        port = 0
        while port in used:
            port += 1
        return port

    def check_edge(self, src: str, dst: str, port: int | None = None, from_port: int = 0) -> int:
        """Validate a prospective edge; return the port it would use. Raises a GraphError."""
        self.node(src)
        dst_node = self.node(dst)
        if src == dst:
            raise CycleError(f"cannot connect {src} to itself")
        spec = get_spec(dst_node.type)
        max_inputs = spec.max_inputs if spec is not None else None
        existing = self.in_edges(dst)
        if max_inputs == 0:
            raise PortError(f"{dst} is an {dst_node.type} node and takes no inputs")
        src_spec = get_spec(self.nodes[src].type)
        if src_spec is not None and src_spec.type == "Output":
            raise PortError(f"{src} is an Output node and has no outputs to connect")
        if src in self._reach([dst], forward=True, include_start=False):
            raise CycleError(f"connecting {src} → {dst} would make a cycle "
                             f"({dst} already feeds {src})")
        if port is None:
            # a single-input layer has one port: an occupied one says so, rather than "port 1"
            port = 0 if max_inputs == 1 else self.free_port(dst)
        if port < 0:
            raise PortError(f"port must be >= 0, got {port}")
        if any(e.port == port for e in existing):
            holder = next(e.src for e in existing if e.port == port)
            raise PortError(f"{dst} already has an input from {holder}"
                            + (f" on port {port}" if max_inputs != 1 else "")
                            + " — disconnect it first")
        if max_inputs is not None and port >= max_inputs:
            raise PortError(f"{dst} ({dst_node.type}) takes {max_inputs} input"
                            f"{'s' if max_inputs != 1 else ''}; port {port} does not exist")
        if from_port < 0:
            raise PortError(f"from_port must be >= 0, got {from_port}")
        return port

    def add_edge(self, src: str, dst: str, port: int | None = None, from_port: int = 0) -> Edge:
        """Connect ``src`` → ``dst`` (next free port when ``port`` is None); checks ports and cycles."""
        port = self.check_edge(src, dst, port, from_port)
        return self.insert_edge(Edge(src, dst, port, from_port))

    def insert_edge(self, edge: Edge, *, check: bool = False) -> Edge:
        """Add ``edge`` as is (used by undo and by the loader, which reports cycles as diagnostics)."""
        if check:
            self.check_edge(edge.src, edge.dst, edge.port, edge.from_port)
        else:
            self.node(edge.src)
            self.node(edge.dst)
            if edge.port in self._in[edge.dst]:
                raise PortError(f"{edge.dst} already has an input on port {edge.port}")
        self._link(edge)
        self._structure_changed()
        self.edge_added.emit(edge)
        self.changed.emit()
        return edge

    def remove_edge(self, edge: Edge) -> None:
        if self._in.get(edge.dst, {}).get(edge.port) != edge:
            raise GraphError(f"no edge {edge.src} → {edge.dst} on port {edge.port}")
        self._remove_edge_quiet(edge)
        self._structure_changed()
        self.edge_removed.emit(edge)
        self.changed.emit()

    def _link(self, edge: Edge) -> None:
        self._g.add_edge(edge.src, edge.dst, key=edge.port, edge=edge)
        self._in[edge.dst][edge.port] = edge
        self._out[edge.src].append(edge)

    def _remove_edge_quiet(self, edge: Edge) -> None:
        self._g.remove_edge(edge.src, edge.dst, key=edge.port)
        stored = self._in[edge.dst].pop(edge.port)
        self._out[edge.src].remove(stored)

    # -- groups -------------------------------------------------------------------------------
    def add_group(self, group_id: str, label: str, members: Iterable[str] = (), collapsed: bool = False,
                  extra: Mapping[str, Any] | None = None) -> Group:
        check_id(group_id)
        if group_id in self.groups or group_id in self.nodes:
            raise DuplicateIdError(f"the id {group_id!r} is already taken")
        members = list(members)
        for m in members:
            if m not in self.nodes and m not in self.groups:
                raise UnknownNodeError(f"group {group_id}: no node or group {m!r}")
        group = Group(group_id, label, members, collapsed, dict(extra or {}))
        self.groups[group_id] = group
        self.groups_changed.emit()
        return group

    def insert_group(self, group: Group) -> None:
        """Re-insert a group object (undo)."""
        self.groups[group.id] = group
        self.groups_changed.emit()

    def remove_group(self, group_id: str) -> Group:
        """Remove a group (its members stay, moving up into the parent group)."""
        group = self.groups.pop(group_id)
        for g in self.groups.values():
            if group_id in g.members:
                i = g.members.index(group_id)
                g.members[i:i + 1] = group.members
        self.groups_changed.emit()
        return group

    def set_group(self, group_id: str, *, label: str | None = None, collapsed: bool | None = None,
                  members: list[str] | None = None) -> None:
        g = self.groups[group_id]
        if label is not None:
            g.label = label
        if collapsed is not None:
            g.collapsed = collapsed
        if members is not None:
            g.members = list(members)
        self.groups_changed.emit()

    def parent_group(self, item_id: str) -> str | None:
        for g in self.groups.values():
            if item_id in g.members:
                return g.id
        return None

    def group_nodes(self, group_id: str) -> list[str]:
        """All node ids inside a group, nested groups included."""
        out: list[str] = []
        seen = {group_id}
        # Depth-first in member order with an explicit stack: a file may nest groups deeper than
        # Python's recursion limit (loading refuses more than MAX_GROUP_DEPTH, edits could not).
        stack = [iter(self.groups[group_id].members)]
        while stack:
            m = next(stack[-1], None)
            if m is None:
                stack.pop()
            elif m in self.groups:
                if m not in seen:
                    seen.add(m)
                    stack.append(iter(self.groups[m].members))
            elif m in self.nodes:
                out.append(m)
        return out

    # -- copying ------------------------------------------------------------------------------
    def copy(self) -> Graph:
        """A deep, independent copy without subscribers (the training thread compiles one)."""
        g = Graph()
        for n in self.nodes.values():
            g.nodes[n.id] = Node(n.id, n.type, copy.deepcopy(n.params), n.pos, n.frozen, n.init,
                                 copy.deepcopy(n.extra), n.lr_mult)
            g._g.add_node(n.id)
            g._in[n.id] = {}
            g._out[n.id] = []
        for e in self.edges:
            g._link(e)
        for grp in self.groups.values():
            g.groups[grp.id] = copy.deepcopy(grp)
        return g

    def iter_nodes(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    # -- internals ----------------------------------------------------------------------------
    def _structure_changed(self) -> None:
        self.structure_version += 1
        self._kahn = None

    def _param_changed(self, node_id: str) -> None:
        self.param_version += 1
        self.nodes[node_id].rev += 1
        self._edits.append(node_id)
        if len(self._edits) > 4096:  # analyzers further behind than this do a full pass
            drop = len(self._edits) - 1024
            del self._edits[:drop]
            self._edits_base += drop
        self.node_changed.emit(node_id)
        self.changed.emit()


class _Missing:
    pass


_MISSING = _Missing()
