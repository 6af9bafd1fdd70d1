"""Every user edit as one undo command (STYLE.md; Orange ``document/commands.py``).

Each command checks its edit in the constructor and raises the core error (a
:class:`core.graph.GraphError`, :class:`core.layers.spec.ParamError` or
:class:`core.project.ProjectError`, all ``ValueError``\\ s with a readable message) *before* anything
changes; :func:`try_push` turns that into the message the window shows. ``redo``/``undo`` then
call the graph's own methods inside :meth:`gui.document.Document.batch`, so observers see one
analysis per edit. A command whose edit changes nothing sets ``noop`` and is never pushed.
Commands never push commands.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from PySide6.QtGui import QUndoCommand

from core.graph import DuplicateIdError, Edge, Graph, GraphError, Group, PortError, UnknownNodeError, check_id
from core.layers.registry import get_spec, suggest
from core.layers.spec import Fix, FixAction, ParamError
from core.layout import (
    CARD_H,
    LAYER_GAP,
    NODE_H,
    arrange,
    expand_shift,
    frame_rect,
    free_spot,
    group_extent,
    parent_map,
)
from core.project import ProjectError, init_problem
from gui.clipboard import plan_paste
from gui.document import Document

Pos = tuple[float, float]
_MOVE_MERGE_ID = 0x4E43  # QUndoCommand.id() of mergeable moves


def drop_defaults(doc: Document, layer_type: str, connect_from: str | None = None) -> dict[str, Any]:
    """Parameters for a freshly dropped layer whose declared defaults (torch's) would be an error.

    torch leaves Upsample's size and scale_factor unset, and GroupNorm, Split and Reshape depend
    on the input; a student dropping one should see a working layer, not a red card. Each
    declaration's ``editor_defaults`` says what to start from; with ``connect_from`` the layer's
    input shape is known and the choice fits it.
    """
    spec = get_spec(layer_type)
    if spec is None:
        return {}
    shape: tuple[int, ...] | None = None
    if connect_from is not None:
        r = doc.analysis.nodes.get(connect_from)
        if r is not None and r.out_shapes:
            shape = tuple(r.out_shapes[0])
    return spec.starting_params(shape)


def new_node_id(graph: Graph, layer_type: str) -> str:
    """A free, readable id for a new node: ``Conv2d`` → ``conv1``, ``BatchNorm2d`` → ``bn1`` (the declared stem)."""
    spec = get_spec(layer_type)
    return graph.fresh_id(spec.stem if spec is not None else "node")


def try_push(doc: Document, factory: QUndoCommand | Callable[[], QUndoCommand]) -> str | None:
    """Build (if a factory) and push a command; return the refusal message, or ``None`` when pushed."""
    try:
        command = factory if isinstance(factory, QUndoCommand) else factory()
    except UnknownNodeError as exc:
        return str(exc)
    except (GraphError, ParamError, ProjectError, ValueError) as exc:
        return str(exc)
    except KeyError as exc:
        return str(exc.args[0]) if exc.args else "unknown item"
    doc.push(command)
    return None


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "×".join(_fmt(v) for v in value) if all(isinstance(v, int) for v in value) else str(list(value))
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 32 else text[:29] + "..."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class _Command(QUndoCommand):
    """Base: remembers the document and wraps redo/undo in one analysis batch."""

    noop = False

    def __init__(self, doc: Document, text: str) -> None:
        super().__init__(text)
        self.doc = doc
        self.graph = doc.graph

    def redo(self) -> None:
        with self.doc.batch():
            self._redo()

    def undo(self) -> None:
        with self.doc.batch():
            self._undo()

    def _redo(self) -> None:
        raise NotImplementedError

    def _undo(self) -> None:
        raise NotImplementedError


# -- groups snapshot (the exact group state, order included, for commands that reshape blocks) --

def _snapshot_groups(graph: Graph) -> list[Group]:
    return [Group(g.id, g.label, list(g.members), g.collapsed, copy.deepcopy(g.extra)) for g in graph.groups.values()]


def _restore_groups(graph: Graph, snap: list[Group]) -> None:
    if list(graph.groups) == [g.id for g in snap]:
        for s in snap:
            cur = graph.groups[s.id]
            if (cur.label, cur.members, cur.collapsed) != (s.label, s.members, s.collapsed):
                graph.set_group(s.id, label=s.label, collapsed=s.collapsed, members=list(s.members))
        return
    for gid in list(graph.groups):
        graph.remove_group(gid)
    for s in snap:
        graph.insert_group(Group(s.id, s.label, list(s.members), s.collapsed, copy.deepcopy(s.extra)))


# -- nodes ------------------------------------------------------------------------------------

class AddNodeCommand(_Command):
    """Add a node of ``type``; with ``connect_from``, also connect that node's output to it."""

    def __init__(self, doc: Document, type: str, node_id: str | None = None, params: Mapping[str, Any] | None = None,
                 pos: Pos | None = None, connect_from: str | None = None) -> None:
        spec = get_spec(type)
        if spec is None:
            hint = suggest(type)
            raise GraphError(f"unknown layer type {type!r}" + (f" — did you mean {hint}?" if hint else ""))
        g = doc.graph
        node_id = node_id if node_id is not None else new_node_id(g, spec.type)
        check_id(node_id)
        if node_id in g.nodes or node_id in g.groups:
            raise DuplicateIdError(f"the id {node_id!r} is already taken — choose another")
        # a new layer from the palette (no params given) starts from values that work
        self.params = dict(params) if params is not None else drop_defaults(doc, spec.type, connect_from)
        spec.resolve(self.params)  # refuses bad values now, not as a diagnostic later
        if connect_from is not None:
            src = g.node(connect_from)
            src_spec = get_spec(src.type)
            if src_spec is not None and src_spec.type == "Output":
                raise PortError(f"{connect_from} is an Output node and has no outputs to connect")
            if spec.max_inputs == 0:
                raise PortError(f"a new {spec.type} node takes no inputs; it cannot follow {connect_from}")
            if pos is None and src.pos is not None:
                pos = free_spot(g, (src.pos[0], src.pos[1] + NODE_H + LAYER_GAP))
        super().__init__(doc, f"Add {spec.type}")
        self.type, self.node_id, self.pos, self.connect_from = spec.type, node_id, pos, connect_from

    def _redo(self) -> None:
        self.graph.add_node(self.type, self.node_id, self.params, self.pos)
        if self.connect_from is not None:
            self.graph.insert_edge(Edge(self.connect_from, self.node_id, 0, 0))

    def _undo(self) -> None:
        self.graph.remove_node(self.node_id)


class RemoveItemsCommand(_Command):
    """Delete nodes (with their edges) and edges; blocks left empty go too."""

    def __init__(self, doc: Document, node_ids: Iterable[str], edges: Iterable[Edge] = ()) -> None:
        g = doc.graph
        self.node_ids = [n for n in dict.fromkeys(node_ids) if n in g.nodes]
        gone = set(self.node_ids)
        self.edges = [e for e in dict.fromkeys(edges)
                      if e.src not in gone and e.dst not in gone and e in g.in_edges(e.dst)]
        nn, ne = len(self.node_ids), len(self.edges)
        if nn and ne:
            text = f"Delete {_plural(nn, 'node')} and {_plural(ne, 'connection')}"
        elif nn:
            text = f"Delete {self.node_ids[0]}" if nn == 1 else f"Delete {_plural(nn, 'node')}"
        elif ne == 1:
            text = f"Delete connection {self.edges[0].src} → {self.edges[0].dst}"
        else:
            text = f"Delete {_plural(ne, 'connection')}"
        super().__init__(doc, text)
        self.noop = not self.node_ids and not self.edges
        self._removed: list[tuple[int, Any, list[Edge]]] = []
        self._groups: list[Group] = []

    def _redo(self) -> None:
        g = self.graph
        self._groups = _snapshot_groups(g)
        had_nodes = {gid for gid in g.groups if g.group_nodes(gid)}
        for e in self.edges:
            g.remove_edge(e)
        index = {n: i for i, n in enumerate(g.nodes)}
        self._removed = []
        for nid in sorted(self.node_ids, key=index.__getitem__):
            i = index[nid]
            node, edges, _ = g.remove_node(nid)
            self._removed.append((i, node, edges))
        for gid in list(g.groups):
            if gid in g.groups and gid in had_nodes and not g.group_nodes(gid):
                g.remove_group(gid)

    def _undo(self) -> None:
        g = self.graph
        for i, node, _ in self._removed:
            g.insert_node(node, index=i)
        restored: set[Edge] = set()
        for _, _, edges in self._removed:
            for e in edges:
                if e not in restored:
                    restored.add(e)
                    g.insert_edge(e)
        for e in self.edges:
            g.insert_edge(e)
        _restore_groups(g, self._groups)


class DeleteAndReconnectCommand(RemoveItemsCommand):
    """Delete nodes (a layer, a block) and join the layer that fed them to the layers they fed.

    Refused, with the reason, when the selection has no single input to carry on (an Add with two
    inputs, an Input) or when the joined graph would have an error or warning the graph has not now
    (the input's shape does not fit what comes after): Delete alone is the choice then.
    """

    def __init__(self, doc: Document, node_ids: Iterable[str]) -> None:
        from core.analysis import analyze

        g = doc.graph
        ids = [n for n in dict.fromkeys(node_ids) if n in g.nodes]
        if not ids:
            raise GraphError("select the layers or the block to delete and reconnect first")
        inside = set(ids)
        feeds = list(dict.fromkeys((e.src, e.from_port) for n in ids for e in g.in_edges(n) if e.src not in inside))
        fed = [e for n in ids for e in g.out_edges(n) if e.dst not in inside]
        what = ids[0] if len(ids) == 1 else f"these {len(ids)} layers"
        if not feeds:
            raise GraphError(f"{what} {'has' if len(ids) == 1 else 'have'} no input to reconnect — use Delete")
        if len(feeds) > 1:
            names = ", ".join(src for src, _ in feeds)
            raise GraphError(f"{what} {'has' if len(ids) == 1 else 'have'} {len(feeds)} inputs ({names}); "
                             f"only a single input can be joined to the output — use Delete")
        src, from_port = feeds[0]
        self.joins = [Edge(src, e.dst, e.port, from_port) for e in fed]
        trial = g.copy()
        for nid in ids:
            trial.remove_node(nid)
        for e in self.joins:
            trial.insert_edge(e)
        # a new error or warning after the join (a Linear now fed a feature map): the shapes do not allow it
        after = {e.dst for e in self.joins}
        after.update(*(trial.descendants(n) for n in list(after)))
        before = {d.message for d in doc.analysis.diagnostics}
        broken = next((d for d in analyze(trial).diagnostics
                       if d.severity.value != "info" and d.node in after and d.message not in before), None)
        if broken is not None:
            raise GraphError(f"joining {src} to {', '.join(dict.fromkeys(e.dst for e in fed))} does not fit: "
                             f"{broken.message} — use Delete")
        super().__init__(doc, ids)
        self.setText(f"Delete and reconnect {ids[0] if len(ids) == 1 else _plural(len(ids), 'node')}")

    def _redo(self) -> None:
        super()._redo()
        for e in self.joins:
            self.graph.insert_edge(e)

    def _undo(self) -> None:
        for e in self.joins:
            self.graph.remove_edge(e)
        super()._undo()


class SetParamCommand(_Command):
    """Set one parameter of a node; ``None`` removes it (inferred, or torch's default)."""

    def __init__(self, doc: Document, node_id: str, name: str, value: Any) -> None:
        node = doc.graph.node(node_id)
        spec = get_spec(node.type)
        if spec is not None:
            try:
                pspec = spec.param(name)
            except KeyError:
                known = ", ".join(spec.param_names) or "none"
                raise GraphError(f"{node_id}: {spec.type} has no parameter {name!r} (known: {known})") from None
            if value is not None:
                try:
                    pspec.validate(value)
                except ParamError as exc:
                    raise ParamError(f"{node_id}.{name}: {exc}") from None
        self.node_id, self.name = node_id, name
        self.value = copy.deepcopy(value)
        self.old = copy.deepcopy(node.params.get(name))
        text = f"Reset {node_id}.{name}" if value is None else f"Set {node_id}.{name} = {_fmt(value)}"
        super().__init__(doc, text)
        self.noop = self.old == self.value and (name in node.params) == (value is not None)

    def _redo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.value)

    def _undo(self) -> None:
        self.graph.set_param(self.node_id, self.name, self.old)


class SetFrozenCommand(_Command):
    """Freeze (no gradient) or unfreeze a node's parameters."""

    def __init__(self, doc: Document, node_id: str, frozen: bool) -> None:
        node = doc.graph.node(node_id)
        super().__init__(doc, f"{'Freeze' if frozen else 'Unfreeze'} {node_id}")
        self.node_id, self.frozen, self.old = node_id, bool(frozen), node.frozen
        self.noop = self.old == self.frozen

    def _redo(self) -> None:
        self.graph.set_frozen(self.node_id, self.frozen)

    def _undo(self) -> None:
        self.graph.set_frozen(self.node_id, self.old)


class SetInitCommand(_Command):
    """Choose a node's weight initialisation (``default``, ``kaiming_normal``, ``normal(0.01)`` …)."""

    def __init__(self, doc: Document, node_id: str, init: str) -> None:
        node = doc.graph.node(node_id)
        problem = init_problem(init)
        if problem:
            raise GraphError(f"{node_id}: weight init {problem}")
        super().__init__(doc, f"Set {node_id} init = {init}")
        self.node_id, self.init, self.old = node_id, init, node.init
        self.noop = self.old == init

    def _redo(self) -> None:
        self.graph.set_init(self.node_id, self.init)

    def _undo(self) -> None:
        self.graph.set_init(self.node_id, self.old)


class RenameNodeCommand(_Command):
    """Give a node a new id (its module path in the compiled model)."""

    def __init__(self, doc: Document, old: str, new: str) -> None:
        g = doc.graph
        g.node(old)
        new = new.strip() if isinstance(new, str) else new
        if new != old:
            check_id(new)
            if new in g.nodes or new in g.groups:
                raise DuplicateIdError(f"the id {new!r} is already taken — choose another")
        super().__init__(doc, f"Rename {old} → {new}")
        self.old, self.new = old, new
        self.noop = new == old

    def _redo(self) -> None:
        self.graph.rename_node(self.old, self.new)

    def _undo(self) -> None:
        self.graph.rename_node(self.new, self.old)


# -- edges ------------------------------------------------------------------------------------

class ConnectCommand(_Command):
    """Connect ``src`` output ``from_port`` to ``dst`` input ``port`` (the next free one when None)."""

    def __init__(self, doc: Document, src: str, dst: str, port: int | None = None, from_port: int = 0) -> None:
        g = doc.graph
        spec = get_spec(g.node(dst).type)
        if port is None and spec is not None and spec.max_inputs == 1:
            port = 0  # a single-input node: say who holds its input rather than "port 1 does not exist"
        port = g.check_edge(src, dst, port, from_port)
        super().__init__(doc, f"Connect {src} → {dst}")
        self.edge = Edge(src, dst, port, from_port)

    def _redo(self) -> None:
        self.graph.insert_edge(self.edge)

    def _undo(self) -> None:
        self.graph.remove_edge(self.edge)


class DisconnectCommand(_Command):
    """Remove one edge."""

    def __init__(self, doc: Document, edge: Edge) -> None:
        g = doc.graph
        if edge.dst not in g.nodes or edge not in g.in_edges(edge.dst):
            raise GraphError(f"there is no connection {edge.src} → {edge.dst} to remove")
        super().__init__(doc, f"Disconnect {edge.src} → {edge.dst}")
        self.edge = edge

    def _redo(self) -> None:
        self.graph.remove_edge(self.edge)

    def _undo(self) -> None:
        self.graph.insert_edge(self.edge)


class ReconnectCommand(_Command):
    """Move the input end of an edge to another node (or another input port)."""

    def __init__(self, doc: Document, edge: Edge, dst: str, port: int | None = None) -> None:
        g = doc.graph
        if edge.dst not in g.nodes or edge not in g.in_edges(edge.dst):
            raise GraphError(f"there is no connection {edge.src} → {edge.dst} to move")
        same = dst == edge.dst and (port is None or port == edge.port)
        new_port = edge.port if same else g.check_edge(edge.src, dst, port, edge.from_port)
        super().__init__(doc, f"Reconnect {edge.src} → {dst}")
        self.old = edge
        self.new = Edge(edge.src, dst, new_port, edge.from_port)
        self.noop = same

    def _redo(self) -> None:
        self.graph.remove_edge(self.old)
        self.graph.insert_edge(self.new)

    def _undo(self) -> None:
        self.graph.remove_edge(self.new)
        self.graph.insert_edge(self.old)


# -- positions --------------------------------------------------------------------------------

class MoveNodesCommand(_Command):
    """Move nodes: ``{id: (old_pos, new_pos)}``. Pushes with the same ``merge_key`` merge (one drag)."""

    def __init__(self, doc: Document, moves: Mapping[str, tuple[Pos | None, Pos | None]],
                 merge_key: object | None = None, text: str | None = None) -> None:
        self.moves = {n: (o, nw) for n, (o, nw) in moves.items() if o != nw and n in doc.graph.nodes}
        only = next(iter(self.moves), "")
        super().__init__(doc, text or (f"Move {only}" if len(self.moves) == 1
                                       else f"Move {_plural(len(self.moves), 'node')}"))
        self.merge_key = merge_key
        self.noop = not self.moves

    def id(self) -> int:
        return _MOVE_MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # Qt override
        if not isinstance(other, MoveNodesCommand) or other.merge_key != self.merge_key or self.merge_key is None:
            return False
        for nid, (old, new) in other.moves.items():
            self.moves[nid] = (self.moves[nid][0] if nid in self.moves else old, new)
        return True

    def _redo(self) -> None:
        for nid, (_old, new) in self.moves.items():
            self.graph.set_position(nid, new)

    def _undo(self) -> None:
        for nid, (old, _new) in self.moves.items():
            self.graph.set_position(nid, old)


class AutoArrangeCommand(MoveNodesCommand):
    """Lay the whole graph out in layers (top to bottom) with no overlaps.

    ``positions`` is a layout already computed (the canvas lays big graphs out in a worker thread,
    :mod:`gui.canvas.arrange_job`); without it the layout is computed here.
    """

    def __init__(self, doc: Document, positions: Mapping[str, Pos] | None = None) -> None:
        g = doc.graph
        new = arrange(g) if positions is None else positions
        super().__init__(doc, {n: (g.nodes[n].pos, p) for n, p in new.items() if n in g.nodes},
                         text="Auto-arrange")


# -- blocks -----------------------------------------------------------------------------------

class GroupCommand(_Command):
    """Put the given nodes/blocks into a new block (inside their innermost common block)."""

    def __init__(self, doc: Document, ids: Iterable[str], label: str | None = None) -> None:
        g = doc.graph
        items = [i for i in dict.fromkeys(ids) if i in g.nodes or i in g.groups]
        if not items:
            raise GraphError("select the nodes to group first")
        parent = parent_map(g)

        def chain(item: str) -> list[str]:
            out, cur = [], parent.get(item)
            while cur is not None and len(out) < 64:
                out.append(cur)
                cur = parent.get(cur)
            return out

        chains = [chain(i) for i in items]
        common = set(chains[0])
        for c in chains[1:]:
            common &= set(c)
        lca = next((gid for gid in chains[0] if gid in common), None)
        lifted: list[str] = []
        for item, c in zip(items, chains, strict=True):
            top = item
            for gid in c:
                if gid == lca:
                    break
                top = gid
            if top not in lifted:
                lifted.append(top)
        order = {n: i for i, n in enumerate(g.nodes)}

        def first(item: str) -> int:
            nodes = g.group_nodes(item) if item in g.groups else [item]
            return min((order[n] for n in nodes), default=len(order))

        self.members = sorted(lifted, key=first)
        self.parent = lca
        self.label = (label or "").strip() or "Block"
        stem = re.sub(r"[^A-Za-z0-9_]", "_", self.label).strip("_").lower() or "block"
        self.group_id = g.fresh_id(stem if stem[0].isalpha() else "block")
        super().__init__(doc, f"Group {_plural(len(self.members), 'item')} as {self.label}")
        self._before: list[Group] = []

    def _redo(self) -> None:
        g = self.graph
        self._before = _snapshot_groups(g)
        g.add_group(self.group_id, self.label, self.members)
        if self.parent is not None:
            old = g.groups[self.parent].members
            at = min(old.index(m) for m in self.members)
            rest = [m for m in old if m not in self.members]
            rest.insert(min(at, len(rest)), self.group_id)
            g.set_group(self.parent, members=rest)

    def _undo(self) -> None:
        _restore_groups(self.graph, self._before)


class UngroupCommand(_Command):
    """Dissolve a block; its members move up into the enclosing block."""

    def __init__(self, doc: Document, group_id: str) -> None:
        grp = doc.graph.groups.get(group_id)
        if grp is None:
            raise GraphError(f"there is no block {group_id!r}")
        super().__init__(doc, f"Ungroup {grp.label}")
        self.group_id = group_id
        self._before: list[Group] = []

    def _redo(self) -> None:
        self._before = _snapshot_groups(self.graph)
        self.graph.remove_group(self.group_id)

    def _undo(self) -> None:
        _restore_groups(self.graph, self._before)


def fold_moves(graph: Graph, group_id: str, collapsing: bool) -> dict[str, tuple[Pos | None, Pos]]:
    """``{node: (old, new)}`` for collapsing or expanding ``group_id``: the block and what stands
    below it in its column make room for the expanded frame, or close up under the card.

    :func:`~core.layout.expand_shift` sizes the change by the members' own extent. An
    expanded block also shows its frame (and the frames of the blocks inside it) with a title
    pill above the members and padding below, so the members move down by the frame's height
    above them (the frame's top then stands where the card's top was, clear of the item above)
    and the items below move on by the frame's top and bottom margins; collapsing undoes exactly
    that, so expand and collapse are inverses.
    """
    shift = expand_shift(graph, group_id, collapsing=collapsing)
    ext = group_extent(graph, group_id)
    outer = frame_rect(graph, group_id)
    if ext is None or outer is None:
        return {n: (graph.nodes[n].pos, p) for n, p in shift.items()}
    sign = -1.0 if collapsing else 1.0
    above = ext[1] - outer[1]
    below = outer[3] - ext[3]
    moves: dict[str, tuple[Pos | None, Pos]] = {}
    for nid in graph.group_nodes(group_id):
        x, y = graph.nodes[nid].pos or (0.0, 0.0)
        moves[nid] = (graph.nodes[nid].pos, (x, y + sign * above))
    dy = sign * ((ext[3] - ext[1]) - CARD_H + above + below)
    shifted: set[str] = set()
    for nid, (x, y) in shift.items():
        old = graph.nodes[nid].pos
        if old is not None and abs(y - old[1]) > 1e-6:
            shifted.add(nid)
            moves[nid] = (old, (x, old[1] + dy))
        else:
            moves[nid] = (old, (x, y))
    # A block below moves as a whole: expand_shift finds columns from x-spans, and a block's side
    # lane (GoogLeNet's auxiliary heads) can read as a column of its own and stay behind while the
    # rest of its block moves down, tearing its frame across the expanded one.
    parent = parent_map(graph)
    mine = {group_id}
    up = parent.get(group_id)
    while up is not None and len(mine) < 64:
        mine.add(up)
        up = parent.get(up)

    def block_of(nid: str) -> str:
        item, up, seen = nid, parent.get(nid), 0
        while up is not None and up not in mine and seen < 64:
            item, up, seen = up, parent.get(up), seen + 1
        return item

    inside = set(graph.group_nodes(group_id))
    families: dict[str, list[str]] = defaultdict(list)
    for nid in graph.nodes:
        if nid not in inside:
            families[block_of(nid)].append(nid)
    threshold = ext[3] if collapsing else ext[1] + CARD_H  # as expand_shift: what lies below
    for fam in families.values():
        if any(n in shifted for n in fam):
            for nid in fam:
                pos = graph.nodes[nid].pos
                if nid not in moves and pos is not None and pos[1] >= threshold - 1.0:
                    moves[nid] = (pos, (pos[0], pos[1] + dy))
    return {n: m for n, m in moves.items() if m[0] != m[1]}


class SetGroupCollapsedCommand(_Command):
    """Collapse a block into one card (the layout below closes up) or expand it (and make room)."""

    def __init__(self, doc: Document, group_id: str, collapsed: bool) -> None:
        g = doc.graph
        grp = g.groups.get(group_id)
        if grp is None:
            raise GraphError(f"there is no block {group_id!r}")
        super().__init__(doc, f"{'Collapse' if collapsed else 'Expand'} {grp.label}")
        self.group_id, self.collapsed = group_id, bool(collapsed)
        self.noop = grp.collapsed == self.collapsed
        self.moves = {} if self.noop else fold_moves(g, group_id, collapsing=self.collapsed)

    def _redo(self) -> None:
        self.graph.set_group(self.group_id, collapsed=self.collapsed)
        for nid, (_old, new) in self.moves.items():
            self.graph.set_position(nid, new)

    def _undo(self) -> None:
        for nid, (old, _new) in self.moves.items():
            self.graph.set_position(nid, old)
        self.graph.set_group(self.group_id, collapsed=not self.collapsed)


def reveal_node(doc: Document, node_id: str) -> list[str]:
    """Expand the collapsed blocks that hide ``node_id``, outermost first, *without* an undo step;
    return the blocks expanded.

    Whether a block is collapsed is saved with the project (it is how the user left the picture),
    but it is a way of looking at the network, not a change to it. So the rule is: the user's own
    expand/collapse (a click on the block) is an undoable edit like a move; revealing a node for
    them (Find, a click in the Problems panel) only changes the view: it goes around the undo
    stack, so it leaves the undo history and the document's modified mark alone. Later undo steps
    still restore exactly what they changed (positions they recorded, a block they folded).
    """
    g = doc.graph
    parent = parent_map(g)
    hiding: list[str] = []
    gid = parent.get(node_id)
    while gid is not None and len(hiding) < 64:
        if g.groups[gid].collapsed:
            hiding.append(gid)
        gid = parent.get(gid)
    for gid in reversed(hiding):
        moves = fold_moves(g, gid, collapsing=False)
        with doc.batch():
            g.set_group(gid, collapsed=False)
            for nid, (_old, new) in moves.items():
                g.set_position(nid, new)
    return list(reversed(hiding))


class RenameGroupCommand(_Command):
    """Change a block's label."""

    def __init__(self, doc: Document, group_id: str, label: str) -> None:
        grp = doc.graph.groups.get(group_id)
        if grp is None:
            raise GraphError(f"there is no block {group_id!r}")
        label = label.strip()
        if not label:
            raise GraphError("a block needs a name — type one")
        super().__init__(doc, f"Rename block {grp.label} → {label}")
        self.group_id, self.label, self.old = group_id, label, grp.label
        self.noop = label == grp.label

    def _redo(self) -> None:
        self.graph.set_group(self.group_id, label=self.label)

    def _undo(self) -> None:
        self.graph.set_group(self.group_id, label=self.old)


# -- paste and fixes --------------------------------------------------------------------------

class PasteCommand(_Command):
    """Add the nodes, edges and blocks of copied project JSON, with fresh ids where taken."""

    def __init__(self, doc: Document, project_json_text: str, offset: Pos | None = None,
                 at: Pos | None = None) -> None:
        self.plan = plan_paste(doc.graph, project_json_text, offset, at)
        n = len(self.plan.nodes)
        super().__init__(doc, f"Paste {self.plan.nodes[0]['id']}" if n == 1 else f"Paste {_plural(n, 'node')}")
        # blocks listing other pasted blocks are added after them
        pending = list(self.plan.groups)
        ordered: list[tuple[str, str, list[str], bool]] = []
        names = {gid for gid, *_ in pending}
        while pending:
            done = {gid for gid, *_ in ordered}
            ready = [p for p in pending if all(m not in names or m in done for m in p[2])]
            if not ready:
                raise ProjectError("the copied blocks contain each other in a loop")
            ordered += ready
            pending = [p for p in pending if p not in ready]
        self.groups = ordered

    @property
    def new_ids(self) -> list[str]:
        return self.plan.node_ids

    def _redo(self) -> None:
        g = self.graph
        for n in self.plan.nodes:
            g.add_node(n["type"], n["id"], n["params"], n["pos"], frozen=n["frozen"], init=n["init"], extra=n["extra"])
        for e in self.plan.edges:
            g.insert_edge(e)
        for gid, label, members, collapsed in self.groups:
            g.add_group(gid, label, members, collapsed)

    def _undo(self) -> None:
        g = self.graph
        for gid, *_ in reversed(self.groups):
            g.remove_group(gid)
        for n in reversed(self.plan.nodes):
            g.remove_node(n["id"])


class ApplyFixCommand(_Command):
    """Apply a diagnostic's :class:`core.layers.spec.Fix` as one undoable edit (through
    :func:`core.fixes.apply_fix`, whose step record gives the exact undo and redo)."""

    def __init__(self, doc: Document, fix: Fix) -> None:
        from core.fixes import apply_fix

        g = doc.graph
        self.fix = fix
        self.moves: dict[str, tuple[Pos | None, Pos | None]] = {}
        target = g.nodes.get(fix.node or "")
        if fix.action == FixAction.INSERT_BEFORE and target is not None and target.pos is not None:
            # make room: the node and everything below it move down one row; the new layer
            # then lands in the gap (core places it halfway between its neighbours)
            step = NODE_H + LAYER_GAP
            y0 = target.pos[1]
            self.moves = {n.id: (n.pos, (n.pos[0], n.pos[1] + step)) for n in g.nodes.values()
                          if n.pos is not None and n.pos[1] >= y0 - 1.0}
        trial = g.copy()  # a stale fix is refused with core's message before anything changes
        for nid, (_old, new) in self.moves.items():
            trial.set_position(nid, new)
        apply_fix(trial, fix)
        super().__init__(doc, f"Fix: {fix.label}")
        self.applied: Any = None

    @property
    def new_ids(self) -> list[str]:
        return list(self.applied.created) if self.applied is not None else []

    def _redo(self) -> None:
        from core.fixes import apply_fix

        for nid, (_old, new) in self.moves.items():
            self.graph.set_position(nid, new)
        if self.applied is None:
            self.applied = apply_fix(self.graph, self.fix)
        else:
            self.applied.redo(self.graph)

    def _undo(self) -> None:
        self.applied.undo(self.graph)
        for nid, (old, _new) in self.moves.items():
            self.graph.set_position(nid, old)


__all__ = ["AddNodeCommand", "ApplyFixCommand", "AutoArrangeCommand", "ConnectCommand", "DeleteAndReconnectCommand",
           "DisconnectCommand",
           "GroupCommand", "MoveNodesCommand", "PasteCommand", "ReconnectCommand", "RemoveItemsCommand",
           "RenameGroupCommand", "RenameNodeCommand", "SetFrozenCommand", "SetGroupCollapsedCommand",
           "SetInitCommand", "SetParamCommand", "UngroupCommand", "fold_moves", "free_spot", "new_node_id",
           "reveal_node", "try_push"]
