"""The importer's placement of nodes: one row per longest-path depth, rows centred on x = 0.

It is alone in its module so that the pipeline (:mod:`core.importer.pipeline`) names it in one
import line: when core has its one Qt-free layout, the importer switches to it by changing that
line, and this module goes (the CLI's ``import`` command, which lays out sources saved without
positions, imports it through ``core.importer``). It knows only :class:`~core.graph.Graph`,
nothing of torch.
"""

from __future__ import annotations

from core.graph import Graph


def layout_top_down(graph: Graph, dx: float = 200.0, dy: float = 90.0) -> None:
    """Positions: one row per longest-path depth from the input, rows centred on x = 0."""
    depth: dict[str, int] = {}
    for nid in graph.topo_order():
        depth[nid] = max((depth[s] + 1 for s in graph.predecessors(nid)), default=0)
    rows: dict[int, list[str]] = {}
    for nid, d in depth.items():
        rows.setdefault(d, []).append(nid)
    for d, ids in rows.items():
        for i, nid in enumerate(ids):
            graph.set_position(nid, ((i - (len(ids) - 1) / 2) * dx, d * dy))


__all__ = ["layout_top_down"]
