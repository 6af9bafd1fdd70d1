"""What changed in a graph's structure since the last analysis, and which layers still reach an Output.

A long-lived :class:`core.analysis.Analyzer` (the editor's) follows structural edits instead of
starting over (DESIGN.md §10: a 20,000-node graph must not cost a full pass per added node): a
:class:`StructureLog` records the graph's node and edge events, and :func:`update_reach` brings the
set of layers with a path to an Output up to date from the edges that came and went.

The log is trusted only while it is complete: every structural change bumps
``Graph.structure_version`` and then emits its event, so a log that saw the current version saw every
change before it. A rename, an overflow, or a version the log did not see mean a full pass.
"""

from __future__ import annotations

import heapq
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from core.events import Event
from core.graph import Edge, Graph, Node

LOG_LIMIT = 10_000  # more changes than this between two runs: a full pass is cheaper than the log


class StructureLog:
    """The nodes and edges added and removed in ``graph`` since :meth:`reset`, from its events.

    The graph's events hold the log; the log holds neither its analyzer nor the graph (a weak
    reference): a cycle through the graph would leave the graph, and the GUI objects its events
    reach, to the cyclic garbage collector, which may free Qt objects in the middle of a paint.
    The analyzer unsubscribes it when it is collected (``weakref.finalize`` on :meth:`subscribe`'s
    pairs), so throwaway analyzers leave nothing behind.
    """

    __slots__ = ("_graph", "edges_added", "edges_removed", "nodes_added", "nodes_removed", "overflow", "renamed",
                 "seen")

    def __init__(self, graph: Graph, seen: int) -> None:
        """``seen``: the graph's structure version the analysis reflects (a log started after a change
        since then is incomplete: the change was not recorded)."""
        self._graph = weakref.ref(graph)
        self.nodes_added: list[Node] = []
        self.nodes_removed: list[Node] = []
        self.edges_added: list[Edge] = []
        self.edges_removed: list[Edge] = []
        self.renamed = False
        self.overflow = False
        self.seen = seen  # the graph's version after the last recorded event

    def subscribe(self, graph: Graph) -> list[tuple[Event, Callable[..., Any]]]:
        """Listen to ``graph``'s structural events; returns the pairs :func:`unsubscribe` takes."""
        pairs: list[tuple[Event, Callable[..., Any]]] = [
            (graph.node_added, self._node_added), (graph.node_removed, self._node_removed),
            (graph.edge_added, self._edge_added), (graph.edge_removed, self._edge_removed),
            (graph.node_renamed, self._node_renamed)]
        for event, callback in pairs:
            event.sub(callback)
        return pairs

    def _version(self) -> int:
        graph = self._graph()
        return graph.structure_version if graph is not None else -1

    def reset(self) -> None:
        """Forget what was recorded: the analysis now reflects the graph as it is."""
        self.nodes_added.clear()
        self.nodes_removed.clear()
        self.edges_added.clear()
        self.edges_removed.clear()
        self.renamed = self.overflow = False
        self.seen = self._version()

    def complete(self) -> bool:
        """Whether the log describes every structural change since :meth:`reset` in terms
        :func:`update_reach` and the analyzer's structural pass follow (no rename, no overflow)."""
        return not self.renamed and not self.overflow and self.seen == self._version()

    def _note(self, items: list[Node] | list[Edge], item: Node | Edge) -> None:
        self.seen = self._version()
        if self.overflow:
            return
        items.append(item)  # type: ignore[arg-type]
        if len(items) > LOG_LIMIT:
            self.overflow = True
            self.nodes_added.clear()
            self.nodes_removed.clear()
            self.edges_added.clear()
            self.edges_removed.clear()

    def _node_added(self, node: Node) -> None:
        self._note(self.nodes_added, node)

    def _node_removed(self, node: Node) -> None:
        self._note(self.nodes_removed, node)

    def _edge_added(self, edge: Edge) -> None:
        self._note(self.edges_added, edge)

    def _edge_removed(self, edge: Edge) -> None:
        self._note(self.edges_removed, edge)

    def _node_renamed(self, _old: str, _new: str) -> None:
        self.seen = self._version()
        self.renamed = True  # every edge of the node changed its ends: a full pass says it best


def unsubscribe(pairs: list[tuple[Event, Callable[..., Any]]]) -> None:
    for event, callback in pairs:
        event.unsub(callback)


def present(graph: Graph, edge: Edge) -> bool:
    """Whether ``edge`` is in ``graph`` now (an edge may be added and removed between two runs)."""
    ins = graph._in.get(edge.dst)
    return ins is not None and ins.get(edge.port) == edge


def file_order_after(graph: Graph, old: list[str], index: dict[str, int], gone: Collection[str],
                     added: Iterable[Edge], next_index: int) -> tuple[list[str], int] | None:
    """The graph's topological order after the edits, without a Kahn pass over every node, when it is
    simply the file order: ``old`` was the file order (so every edge pointed forward in it), the
    edits only removed nodes (``gone``) and appended new ones at the end, and every edge they added
    points forward. That is the order :meth:`core.graph.Graph.kahn` gives then (its own fast path),
    found here from what changed (a 20,000-node Kahn pass costs more than the rest of an edit).

    On success ``index`` is updated in place (removed nodes dropped, new ones numbered from
    ``next_index``: the numbers keep the order, with gaps) and ``(order, next_index)`` returned;
    ``None`` (nothing changed) when the caller must ask the graph.
    """
    names = list(graph.nodes)
    kept = [n for n in old if n not in gone] if gone else old
    if len(names) < len(kept) or names[:len(kept)] != kept:  # a node put back in the middle, ...
        return None
    new = {nid: next_index + i for i, nid in enumerate(names[len(kept):])}
    for e in added:
        if present(graph, e):
            src, dst = new.get(e.src), new.get(e.dst)
            if (index[e.src] if src is None else src) >= (index[e.dst] if dst is None else dst):
                return None  # an edge back in the file: Kahn's order differs from the file's
    for nid in gone:
        index.pop(nid, None)
    index.update(new)
    return names, next_index + len(new)


def update_reach(graph: Graph, reach: set[str], index: Mapping[str, int], outputs: Collection[str],
                 cut_from: Iterable[str], added: Iterable[Edge]) -> set[str]:
    """Bring ``reach`` (the layers with a path to an Output before the edits) up to date, in place;
    returns the layers it took out (some may be back in through an added edge).

    ``graph`` must be acyclic, ``index`` its topological order, ``reach`` free of removed nodes and
    ``outputs`` its Output nodes (unchanged by the edits). ``cut_from``: the sources of every edge
    removed since ``reach`` was right; ``added``: every edge added since.

    First the losses, in the graph without the added edges (which, with the removed ones gone, is
    part of the old graph, so only the sources of removed edges and their ancestors can lose their
    path): from the highest topological index down, a candidate keeps its place when it is an Output
    or has an edge into ``reach``; one that loses it makes its sources candidates. Every successor of
    a candidate has a higher index, so it is settled before the candidate is looked at. Then the
    gains: each added edge into ``reach`` brings its source and every ancestor not yet in it.
    """
    ins, outs = graph._in, graph._out
    new = {e for e in added if present(graph, e)}
    heap = [(-index[c], c) for c in set(cut_from) if c in reach and c in index]
    heapq.heapify(heap)
    queued = {c for _, c in heap}
    lost: set[str] = set()
    while heap:
        _, nid = heapq.heappop(heap)
        if nid in outputs:
            continue
        if new:
            keeps = any(e.dst in reach for e in outs[nid] if e not in new)
        else:
            keeps = any(e.dst in reach for e in outs[nid])
        if keeps:
            continue
        reach.discard(nid)
        lost.add(nid)
        for e in ins[nid].values():
            if e.src in reach and e.src not in queued:
                queued.add(e.src)
                heapq.heappush(heap, (-index[e.src], e.src))
    stack = [e.src for e in new if e.dst in reach and e.src not in reach]
    while stack:
        nid = stack.pop()
        if nid in reach:
            continue
        reach.add(nid)
        stack.extend(e.src for e in ins[nid].values() if e.src not in reach)
    return lost


__all__ = ["LOG_LIMIT", "StructureLog", "file_order_after", "present", "unsubscribe", "update_reach"]
