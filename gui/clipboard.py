"""Copy and paste through the project JSON format (never pickles).

Copying writes the selected nodes, the edges between them and the blocks fully inside the
selection as a small project file, under MIME ``application/x-netcanvas-graph`` and as plain
text, so a selection can travel between windows, or into a text editor and back. Pasting parses
it with the same validating loader as a file on disk (:func:`core.project.loads_project`):
anything else on the clipboard is refused with a readable message and nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.graph import Edge, Graph, id_problem
from core.layout import arrange
from core.project import Project, ProjectError, dumps_project, loads_project

MIME = "application/x-netcanvas-graph"
_TAIL_RE = re.compile(r"^(.*?)(\d*)$")


def selection_json(graph: Graph, node_ids: Iterable[str], name: str = "Clipboard") -> str:
    """The project JSON of ``node_ids`` with their internal edges and enclosed blocks."""
    ids = [n for n in dict.fromkeys(node_ids) if n in graph.nodes]
    chosen = set(ids)
    sub = Graph()
    for nid in ids:
        n = graph.nodes[nid]
        sub.add_node(n.type, n.id, n.params, n.pos, frozen=n.frozen, init=n.init,
                     extra={k: v for k, v in n.extra.items() if k != "_edge_extra"})
    for nid in ids:
        for e in graph.in_edges(nid):
            if e.src in chosen:
                sub.insert_edge(e)
    # Blocks whose every node is copied come along; inner blocks before the blocks that list them.
    whole = {gid for gid in graph.groups if (nodes := graph.group_nodes(gid)) and set(nodes) <= chosen}
    added: set[str] = set()
    pending = [gid for gid in graph.groups if gid in whole]
    while pending:
        progressed = False
        for gid in list(pending):
            grp = graph.groups[gid]
            inner = [m for m in grp.members if m in graph.groups and m in whole]
            if all(m in added for m in inner):
                members = [m for m in grp.members if m in chosen or m in added]
                sub.add_group(gid, grp.label, members, grp.collapsed)
                added.add(gid)
                pending.remove(gid)
                progressed = True
        if not progressed:  # a malformed nesting loop: leave the rest out rather than spin
            break
    return dumps_project(Project(sub, name=name))


@dataclass
class PastePlan:
    """What a paste will add: nodes, edges and groups with fresh ids, positions already offset."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    groups: list[tuple[str, str, list[str], bool]] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def node_ids(self) -> list[str]:
        return [n["id"] for n in self.nodes]


def fresh_like(item_id: str, taken: set[str]) -> str:
    """A free id that reads like ``item_id``: ``conv1`` → ``conv2``, ``layer1.0`` → ``layer1.1``."""
    head, _, last = item_id.rpartition(".")
    stem, digits = _TAIL_RE.match(last).groups()  # type: ignore[union-attr]
    i = int(digits) + 1 if digits else 1
    while True:
        candidate = f"{head}.{stem}{i}" if head else f"{stem}{i}"
        if candidate not in taken and id_problem(candidate) is None:
            return candidate
        i += 1


def plan_paste(graph: Graph, text: str, offset: tuple[float, float] | None = None,
               at: tuple[float, float] | None = None) -> PastePlan:
    """Parse clipboard ``text`` for pasting into ``graph``; raise :class:`ProjectError` if it is not a graph.

    Ids already used in ``graph`` get fresh ones. ``offset`` moves every position; ``at`` instead
    puts the top-left of the pasted nodes there.
    """
    if not isinstance(text, str) or not text.strip():
        raise ProjectError("the clipboard is empty — copy some nodes first")
    try:
        project = loads_project(text, origin="clipboard")
    except ProjectError as exc:
        raise ProjectError(f"the clipboard does not hold NetCanvas nodes ({exc})") from None
    src = project.graph
    if not src.nodes:
        raise ProjectError("the copied graph has no nodes to paste")
    taken = set(graph.nodes) | set(graph.groups)
    mapping: dict[str, str] = {}
    for item in [*src.nodes, *src.groups]:
        new = item if item not in taken else fresh_like(item, taken)
        taken.add(new)
        mapping[item] = new
    missing = [n for n in src.nodes.values() if n.pos is None]
    auto: Mapping[str, tuple[float, float]] = {}
    if missing:
        auto = arrange(src)
    pos = {nid: (n.pos if n.pos is not None else auto[nid]) for nid, n in src.nodes.items()}
    if at is not None:
        x0 = min(p[0] for p in pos.values())
        y0 = min(p[1] for p in pos.values())
        dx, dy = at[0] - x0, at[1] - y0
    else:
        dx, dy = offset if offset is not None else (0.0, 0.0)
    plan = PastePlan(mapping=mapping)
    for nid, n in src.nodes.items():
        x, y = pos[nid]
        plan.nodes.append({"id": mapping[nid], "type": n.type, "params": dict(n.params),
                           "pos": (x + dx, y + dy), "frozen": n.frozen, "init": n.init, "extra": dict(n.extra)})
    for e in src.edges:
        plan.edges.append(Edge(mapping[e.src], mapping[e.dst], e.port, e.from_port))
    for gid, grp in src.groups.items():
        plan.groups.append((mapping[gid], grp.label, [mapping[m] for m in grp.members], grp.collapsed))
    return plan


# -- the system clipboard ---------------------------------------------------------------------

def put_on_clipboard(text: str) -> None:
    """Offer ``text`` as our MIME type and as plain text."""
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QGuiApplication

    data = QMimeData()
    data.setData(MIME, text.encode("utf-8"))
    data.setText(text)
    QGuiApplication.clipboard().setMimeData(data)


def release_clipboard() -> None:
    """At quit, hand a copied selection back as plain text.

    Qt (seen with PySide6 6.11) crashes while tearing down a clipboard that still owns a
    QMimeData we set, so before the application object goes away we replace our rich payload
    with the same JSON as plain text: another window or app can still paste it.
    """
    from PySide6.QtGui import QGuiApplication

    clipboard = QGuiApplication.clipboard()
    data = clipboard.mimeData()
    if data is not None and data.hasFormat(MIME):
        clipboard.setText(bytes(data.data(MIME).data()).decode("utf-8"))


def clipboard_text() -> str:
    """Our MIME payload if present, else the clipboard's plain text ('' when empty)."""
    from PySide6.QtGui import QGuiApplication

    data = QGuiApplication.clipboard().mimeData()
    if data is None:
        return ""
    if data.hasFormat(MIME):
        return bytes(data.data(MIME).data()).decode("utf-8", errors="replace")
    return data.text() if data.hasText() else ""
