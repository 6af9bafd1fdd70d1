"""Where the cards go: the one layout of NetCanvas, and the geometry of folded blocks. No Qt.

The importer, Auto-arrange (in the editor's worker thread), templates that open folded, paste
and new documents all place nodes with this module, so a graph looks the same whichever way it
arrived. Positions are the top-left corners of node cards in scene units (pixels at 100 % zoom);
every card has the same size, so the sizes below are plain numbers that the canvas draws with.

:func:`arrange` is a small Sugiyama pipeline: layers by longest path, dummy nodes on edges that
span several layers (so long skip connections reserve a lane), a few barycenter sweeps that keep
the ordering with the fewest crossings, then x positions by weighted isotonic regression (each
node as close as possible to the mean of its neighbours while keeping order and spacing), run
down and up a few times. Flow is top to bottom.

A long chain (LeNet: fifteen layers in a row) would fit a window only far below the zoom where
labels show, so :func:`snake` wraps it into side-by-side columns, like a newspaper, cutting only
where a single wire joins two rows and never through a block.

Collapsed groups are laid out as one card in their parent, and their members are laid out
inside the card's footprint, so expanding a block grows it in place (see :func:`expand_shift`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise
from typing import Any, Generic, TypeVar

from core.graph import Graph, GraphError

# Card sizes and spacings in scene units; the canvas draws with these (gui/canvas/metrics.py).
NODE_W = 196.0
NODE_H = 52.0
CARD_W = 280.0  # a collapsed block
CARD_H = 96.0  # title band, a line of detail, badges, output shape
LAYER_GAP = 48.0  # vertical room between layers: edge labels and group frames live there
COLUMN_GAP = 44.0
DUMMY_W = 24.0  # the lane a long edge reserves while passing a layer
FRAME_PAD = 12.0  # an expanded block's frame around its members
FRAME_TOP = 18.0  # extra room for the frame's title
FRAME_TITLE_H = 20.0  # the title pill, half of it above the frame's top edge

Pos = tuple[float, float]
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1
# Told the share of the work done (0..1) as :func:`arrange` goes; it may raise to stop the layout
# (the canvas computes it in a worker thread and abandons it when the graph changes meanwhile).
Progress = Callable[[float], None]
_SWEEPS = 4
_X_PASSES = 3
# Edge weights for x placement: long-edge lanes stay straight, the main chain stays straight,
# a skip connection barely pulls on the nodes it joins.
_W_REAL, _W_MIXED, _W_DUMMY = 1.0, 0.25, 4.0
# Wrapping long chains into columns: the canvas area of a 1600×1000 window in scene units at 100 %
# (with fit_all's margins), the zoom below which one column is too small to read (labels show
# from LOD_TEXT = 0.42 up; ResNet-50's folded column, at about 0.56, still reads well), the
# fewest rows a column may hold (a lone card in a column of its own reads as an accident), and
# the room between columns (wide enough for the wire that climbs to the top of the next one).
_VIEW_W, _VIEW_H = 960.0, 640.0
_SNAKE_BELOW = 0.5
_SNAKE_MIN_ROWS = 3
_SNAKE_GAP = 120.0
_SNAKE_MAX_COLUMNS = 6


# -- folding: which item shows a node ---------------------------------------------------------

def parent_map(graph: Graph) -> dict[str, str]:
    """Member id (node or group) -> the id of the group that lists it."""
    return {m: gid for gid, g in graph.groups.items() for m in g.members}


def visible_unit(graph: Graph, parent: Mapping[str, str], node_id: str, container: str | None = None) -> str:
    """The id of what shows ``node_id`` inside ``container``: itself, or its outermost collapsed group."""
    unit = node_id
    gid = parent.get(node_id)
    seen = 0
    while gid is not None and gid != container and seen < 64:
        if graph.groups[gid].collapsed:
            unit = gid
        gid = parent.get(gid)
        seen += 1
    return unit


def is_hidden_group(graph: Graph, parent: Mapping[str, str], gid: str) -> bool:
    """True when a collapsed ancestor hides group ``gid`` entirely."""
    up = parent.get(gid)
    seen = 0
    while up is not None and seen < 64:
        if graph.groups[up].collapsed:
            return True
        up = parent.get(up)
        seen += 1
    return False


def free_spot(graph: Graph, pos: Pos) -> Pos:
    """``pos``, or the first place to its right where a new card overlaps no other card."""
    x, y = pos
    taken = [n.pos for n in graph.nodes.values() if n.pos is not None]
    for _ in range(len(taken) + 1):
        if not any(abs(px - x) < NODE_W + 8 and abs(py - y) < NODE_H + 8 for px, py in taken):
            break
        x += NODE_W + COLUMN_GAP
    return (x, y)


def node_rect(pos: tuple[float, float] | None) -> Rect:
    x, y = pos if pos is not None else (0.0, 0.0)
    return (x, y, x + NODE_W, y + NODE_H)


def group_extent(graph: Graph, gid: str, _depth: int = 0) -> Rect | None:
    """The area the group's contents take when it is expanded (nested collapsed groups as cards)."""
    rects: list[Rect] = []
    for m in graph.groups[gid].members:
        if m in graph.nodes:
            rects.append(node_rect(graph.nodes[m].pos))
        elif m in graph.groups and _depth < 64:
            sub = card_rect(graph, m, _depth + 1) if graph.groups[m].collapsed else group_extent(graph, m, _depth + 1)
            if sub is not None:
                rects.append(sub)
    return union(rects)


def card_rect(graph: Graph, gid: str, _depth: int = 0) -> Rect | None:
    """Where a collapsed group's card sits: at the top of its contents, centred on its first node
    (the block's entry, on the main path), so stacked blocks line up in one column."""
    ext = group_extent(graph, gid, _depth)
    if ext is None:
        return None
    first = _first_node(graph, gid)
    pos = graph.nodes[first].pos if first is not None else None
    cx = pos[0] + NODE_W / 2 if pos is not None else (ext[0] + ext[2]) / 2
    return (cx - CARD_W / 2, ext[1], cx + CARD_W / 2, ext[1] + CARD_H)


def frame_rect(graph: Graph, gid: str, _depth: int = 0) -> Rect | None:
    """Where the frame of ``gid`` stands when the block is expanded, its title pill included:
    the members (nested collapsed blocks as cards, nested expanded ones as their frames) plus the
    frame's padding: the canvas draws the frame exactly there."""
    rects: list[Rect] = []
    for m in graph.groups[gid].members:
        if m in graph.nodes:
            rects.append(node_rect(graph.nodes[m].pos))
        elif m in graph.groups and _depth < 64:
            sub = card_rect(graph, m) if graph.groups[m].collapsed else frame_rect(graph, m, _depth + 1)
            if sub is not None:
                rects.append(sub)
    content = union(rects)
    if content is None:
        return None
    return (content[0] - FRAME_PAD, content[1] - FRAME_TOP - FRAME_TITLE_H / 2,
            content[2] + FRAME_PAD, content[3] + FRAME_PAD)


def _first_node(graph: Graph, gid: str) -> str | None:
    nodes = graph.group_nodes(gid)
    return nodes[0] if nodes else None


def union(rects: Iterable[Rect]) -> Rect | None:
    rects = list(rects)
    if not rects:
        return None
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


T = TypeVar("T")


class RectIndex(Generic[T]):
    """Things with rectangles, found by overlap with a query rectangle.

    Sorted by top edge and cut by bisection (a match starts at most one tallest-rectangle height
    above the query), so a query costs the rectangles in its rows, not all of them. The canvas
    asks one for every long wire when it routes the wires around the cards after a layout:
    asking the scene instead took 35 s on DenseNet-201's 2,511 wires.
    """

    def __init__(self, items: Iterable[tuple[Rect, T]]) -> None:
        self._items = sorted(items, key=lambda it: it[0][1])
        self._tops = [r[1] for r, _ in self._items]
        self._tallest = max((r[3] - r[1] for r, _ in self._items), default=0.0)

    def overlapping(self, q: Rect) -> list[tuple[Rect, T]]:
        """What overlaps ``q`` with some area (touching edges do not count), top to bottom."""
        lo = bisect_left(self._tops, q[1] - self._tallest)
        hi = bisect_right(self._tops, q[3])
        return [(r, v) for r, v in self._items[lo:hi]
                if r[0] < q[2] and r[2] > q[0] and r[1] < q[3] and r[3] > q[1]]


def expand_shift(graph: Graph, gid: str, collapsing: bool) -> dict[str, tuple[float, float]]:
    """New positions for the nodes below a block that collapses (move up) or expands (move down).

    Only whole visible items move (a collapsed block below moves with all its members), so the
    inside of other blocks is never distorted. Returns ``{node_id: new_pos}`` for nodes that move.
    """
    ext = group_extent(graph, gid)
    if ext is None:
        return {}
    dh = (ext[3] - ext[1]) - CARD_H
    if abs(dh) < 1e-6:
        return {}
    threshold = ext[3] if collapsing else ext[1] + CARD_H
    delta = -dh if collapsing else dh
    parent = parent_map(graph)
    inside = set(graph.group_nodes(gid))
    units: dict[str, list[str]] = defaultdict(list)
    for nid in graph.nodes:
        if nid not in inside:
            units[visible_unit(graph, parent, nid)].append(nid)
    moves: dict[str, tuple[float, float]] = {}
    band: list[tuple[str, Rect]] = []  # items beside the block, in the rows it grows into
    rects: dict[str, Rect] = {}
    for unit in units:
        r = card_rect(graph, unit) if unit in graph.groups else node_rect(graph.nodes[unit].pos)
        if r is not None:
            rects[unit] = r
    # Only the block's own column moves up or down: in a layout wrapped into columns (snake) the
    # next column is not "below" it. Columns farther right move aside when the block gets wider.
    # (columns are found from the nodes' own spans: a card is wider than its members and would
    # bridge the gap between two columns)
    spans = {u: (min((graph.nodes[n].pos or (0.0, 0.0))[0] for n in ns),
                 max((graph.nodes[n].pos or (0.0, 0.0))[0] for n in ns) + NODE_W, u)
             for u, ns in units.items() if u in rects}
    col_x0, col_x1, others = _column_of((ext[0], ext[2], ""), list(spans.values()))
    for unit, r in rects.items():
        members = units[unit]
        if unit in others:
            continue
        if r[1] >= threshold - 1.0:
            for nid in members:
                x, y = graph.nodes[nid].pos or (0.0, 0.0)
                moves[nid] = (x, y + delta)
        elif r[3] > ext[1] and r[1] < ext[3]:
            band.append((unit, r))
    if not collapsing and band:
        # the expanded block is also wider than its card: move what stands beside it sideways
        cx = (ext[0] + ext[2]) / 2
        right = [(u, r) for u, r in band if (r[0] + r[2]) / 2 >= cx]
        left = [(u, r) for u, r in band if (r[0] + r[2]) / 2 < cx]
        push_r = ext[2] + COLUMN_GAP - min((r[0] for _, r in right), default=ext[2] + COLUMN_GAP)
        push_l = max((r[2] for _, r in left), default=ext[0] - COLUMN_GAP) + COLUMN_GAP - ext[0]
        for side, dx in ((right, push_r), (left, -push_l)):
            if abs(dx) > 1e-6 and (dx > 0) == (side is right):
                for u, _ in side:
                    for nid in units[u]:
                        x, y = graph.nodes[nid].pos or (0.0, 0.0)
                        moves[nid] = (x + dx, y)
    if not collapsing and others:
        new_x0 = min([ext[0], col_x0] + [x for n, (x, _) in moves.items()])
        new_x1 = max([ext[2], col_x1] + [x + NODE_W for n, (x, _) in moves.items()])
        right_side = {u for u in others if spans[u][0] >= col_x1}
        push_r = max(0.0, new_x1 + _SNAKE_GAP - min((rects[u][0] for u in right_side), default=float("inf")))
        push_l = max(0.0, max((rects[u][2] for u in others - right_side), default=-float("inf"))
                     + _SNAKE_GAP - new_x0)
        for u in others:
            dx = push_r if u in right_side else -push_l
            if dx:
                for nid in units[u]:
                    x, y = graph.nodes[nid].pos or (0.0, 0.0)
                    moves[nid] = (x + dx, y)
    return moves


def _column_of(block: tuple[float, float, str],
               items: list[tuple[float, float, str]]) -> tuple[float, float, set[str]]:
    """The x-span of the column holding ``block`` and the items (x0, x1, id) outside it.

    Columns are runs of items whose x-spans overlap or nearly touch (a layered layout keeps
    neighbours COLUMN_GAP apart; wrapped columns stand _SNAKE_GAP apart).
    """
    spans = sorted([*items, block])
    join = (COLUMN_GAP + _SNAKE_GAP) / 2
    clusters: list[list[tuple[float, float, str]]] = []
    right = -float("inf")
    for x0, x1, u in spans:
        if not clusters or x0 > right + join:
            clusters.append([])
        clusters[-1].append((x0, x1, u))
        right = max(right, x1) if len(clusters[-1]) > 1 else x1
    mine = next(c for c in clusters if any(u == "" for _, _, u in c))
    inside = {u for _, _, u in mine}
    return min(x0 for x0, _, _ in mine), max(x1 for _, x1, _ in mine), {u for _, _, u in items if u not in inside}


# -- the layered layout -------------------------------------------------------------------------

def arrange(graph: Graph, *, keep_inner: bool = False, wrap: bool = True,
            progress: Progress | None = None) -> dict[str, tuple[float, float]]:
    """Top-left positions for every node: a layered layout with no overlaps, starting at (0, 0).

    ``keep_inner`` lays out only what shows at the top level and keeps the arrangement inside each
    collapsed block as it is (moved as a whole): a template's hand-made block layouts survive, and
    its folded cards still line up in one column. ``wrap=False`` never wraps a long chain into
    columns (:func:`snake`): every wire then points down. ``progress`` hears how far the top-level
    layout got (the insides of collapsed blocks count as its first tenth).
    """
    if not graph.nodes:
        return {}
    try:
        ranked = list(graph.topo_order())
    except GraphError:  # a cycle: analysis reports it; file order still gives a readable picture
        ranked = list(graph.nodes)
    parent = parent_map(graph)
    tick = progress or _no_progress
    positions = _arrange_container(graph, parent, None, ranked, keep_inner, tick)
    if wrap:
        positions = snake(graph, parent, positions)
    tick(1.0)
    return {n: (round(x, 1), round(y, 1)) for n, (x, y) in positions.items()}


def lay_out(graph: Graph, *, keep_inner: bool = False, wrap: bool = True) -> None:
    """Move every node of ``graph`` to where :func:`arrange` puts it (an import, a new document)."""
    for nid, pos in arrange(graph, keep_inner=keep_inner, wrap=wrap).items():
        graph.set_position(nid, pos)


def _no_progress(_done: float) -> None:
    return None


def _arrange_container(graph: Graph, parent: Mapping[str, str], container: str | None,
                       ranked: list[str], keep_inner: bool = False,
                       tick: Progress = _no_progress) -> dict[str, tuple[float, float]]:
    """Lay out ``ranked`` (node ids in topological order) inside ``container``; bbox at (0, 0)."""
    units: list[str] = []
    members: dict[str, list[str]] = defaultdict(list)
    unit_of: dict[str, str] = {}
    for nid in ranked:
        u = visible_unit(graph, parent, nid, container)
        unit_of[nid] = u
        if u not in members:
            units.append(u)
        members[u].append(nid)
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for nid in ranked:
        for e in graph.out_edges(nid):
            v = unit_of.get(e.dst)
            u = unit_of[nid]
            if v is not None and u != v and (u, v) not in seen:
                seen.add((u, v))
                edges.append((u, v))
    # Contents of collapsed blocks first: the card's footprint must fit them.
    inner: dict[str, dict[str, tuple[float, float]]] = {}
    for u in units:
        if u in graph.groups:
            inner[u] = (_kept(graph, members[u]) if keep_inner
                        else _arrange_container(graph, parent, u, members[u]))
            tick(0.1 * len(inner) / len(units))
    sizes = {u: ((CARD_W, CARD_H) if u in graph.groups else (NODE_W, NODE_H)) for u in units}
    placed = layered(units, edges, sizes, tick if container is None else _no_progress)
    out: dict[str, tuple[float, float]] = {}
    for u in units:
        x, y = placed[u]
        if u in inner:
            sub = inner[u]
            first = _first_node(graph, u)
            fx = sub[first][0] if first in sub else (max(px for px, _ in sub.values()) + NODE_W) / 2 - NODE_W / 2
            # the first node sits under the card's centre, the contents start at its top (card_rect)
            dx = x + CARD_W / 2 - (fx + NODE_W / 2)
            for nid, (px, py) in sub.items():
                out[nid] = (px + dx, py + y)
        else:
            out[u] = (x, y)
    minx = min(x for x, _ in out.values())
    miny = min(y for _, y in out.values())
    return {n: (x - minx, y - miny) for n, (x, y) in out.items()}


def _kept(graph: Graph, ids: list[str]) -> dict[str, tuple[float, float]]:
    """The current positions of ``ids``, moved so their bounding box starts at (0, 0)."""
    pos = {n: graph.nodes[n].pos or (0.0, 0.0) for n in ids}
    minx = min(x for x, _ in pos.values())
    miny = min(y for _, y in pos.values())
    return {n: (x - minx, y - miny) for n, (x, y) in pos.items()}


def _top_group(parent: Mapping[str, str], item: str) -> str | None:
    """The outermost group holding ``item`` (None for a top-level node)."""
    top = None
    gid = parent.get(item)
    seen = 0
    while gid is not None and seen < 64:
        top = gid
        gid = parent.get(gid)
        seen += 1
    return top


def snake(graph: Graph, parent: Mapping[str, str],
          positions: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Wrap a top-to-bottom layout that is too tall to read into columns left to right.

    Rows are the layers of ``positions``; a column may end between two rows only where exactly
    one wire crosses (and it joins those two rows) and no block is cut in two. The number of
    columns is the one that lets the whole picture fit a window at the largest zoom (up to 100 %).
    """
    if not positions:
        return positions
    units: dict[str, list[str]] = defaultdict(list)
    for nid in positions:
        units[visible_unit(graph, parent, nid)].append(nid)
    rect: dict[str, Rect] = {}
    for u, ns in units.items():
        if u in graph.groups:  # as card_rect places it, from the new positions
            first = _first_node(graph, u)
            cx = positions[first][0] + NODE_W / 2 if first in positions else positions[ns[0]][0] + NODE_W / 2
            top = min(positions[n][1] for n in ns)
            rect[u] = (cx - CARD_W / 2, top, cx + CARD_W / 2, top + CARD_H)
        else:
            rect[u] = node_rect(positions[u])
    rows: dict[float, list[str]] = defaultdict(list)  # a layer's units share their centre line
    for u, r in rect.items():
        rows[round((r[1] + r[3]) / 2, 1)].append(u)
    keys = sorted(rows)
    if len(keys) < 4:
        return positions
    row_of = {u: i for i, k in enumerate(keys) for u in rows[k]}
    unit_of = {nid: u for u, ns in units.items() for nid in ns}
    tops = [min(rect[u][1] for u in rows[k]) for k in keys]
    bottoms = [max(rect[u][3] for u in rows[k]) for k in keys]
    crossing = [0] * len(keys)  # wires crossing the cut below row i
    bad = [False] * len(keys)
    for e in graph.edges:
        a, b = row_of.get(unit_of.get(e.src, "")), row_of.get(unit_of.get(e.dst, ""))
        if a is None or b is None or a == b:
            continue
        lo, hi = min(a, b), max(a, b)
        for i in range(lo, hi):
            crossing[i] += 1
            bad[i] = bad[i] or hi - lo > 1
    top_of = {u: _top_group(parent, u) for u in units}
    cuts = []
    for i in range(len(keys) - 1):
        above = {top_of[u] for u in rows[keys[i]]} - {None}
        below = {top_of[u] for u in rows[keys[i + 1]]} - {None}
        if crossing[i] == 1 and not bad[i] and not (above & below):
            cuts.append(i)
    width = max(r[2] for r in rect.values()) - min(r[0] for r in rect.values())
    height = bottoms[-1] - tops[0]

    def zoom(w: float, h: float) -> float:
        return min(1.0, _VIEW_W / (w + 80), _VIEW_H / (h + 80))

    best_zoom = zoom(width, height)
    if best_zoom >= _SNAKE_BELOW or not cuts:
        return positions
    best: list[int] = []
    for k in range(2, _SNAKE_MAX_COLUMNS + 1):
        chosen = _balanced_cuts(tops, bottoms, cuts, k)
        if chosen is None:
            break
        spans = list(zip([0, *[c + 1 for c in chosen]], [*chosen, len(keys) - 1], strict=True))
        col_w = [max(rect[u][2] for i in range(a, b + 1) for u in rows[keys[i]])
                 - min(rect[u][0] for i in range(a, b + 1) for u in rows[keys[i]]) for a, b in spans]
        z = zoom(sum(col_w) + _SNAKE_GAP * (k - 1), max(bottoms[b] - tops[a] for a, b in spans))
        if z > best_zoom + 0.02:
            best_zoom, best = z, chosen
    if not best:
        return positions
    out: dict[str, tuple[float, float]] = {}
    x = 0.0
    for a, b in zip([0, *[c + 1 for c in best]], [*best, len(keys) - 1], strict=True):
        col = [u for i in range(a, b + 1) for u in rows[keys[i]]]
        left = min(rect[u][0] for u in col)
        dx, dy = x - left, tops[0] - tops[a]
        for u in col:
            for nid in units[u]:
                px, py = positions[nid]
                out[nid] = (px + dx, py + dy)
        x += max(rect[u][2] for u in col) - left + _SNAKE_GAP
    return out


def _balanced_cuts(tops: list[float], bottoms: list[float], cuts: list[int], k: int) -> list[int] | None:
    """``k - 1`` of the allowed ``cuts`` that make the tallest of ``k`` columns as short as can be
    (binary search on that height; greedy packing is optimal for a given height)."""
    if len(cuts) < k - 1:
        return None
    last = len(tops) - 1

    def pack(limit: float) -> list[int] | None:
        chosen: list[int] = []
        start = 0
        while bottoms[last] - tops[start] > limit:
            fits = [c for c in cuts if c - start >= _SNAKE_MIN_ROWS - 1 and last - c >= _SNAKE_MIN_ROWS
                    and bottoms[c] - tops[start] <= limit]
            if not fits or len(chosen) == k - 1:
                return None
            chosen.append(fits[-1])
            start = fits[-1] + 1
        return chosen

    lo, hi = (bottoms[last] - tops[0]) / k, bottoms[last] - tops[0]
    for _ in range(30):
        mid = (lo + hi) / 2
        if pack(mid) is None:
            lo = mid
        else:
            hi = mid
    return pack(hi)


def layered(units: list[str], edges: list[tuple[str, str]], sizes: Mapping[str, tuple[float, float]],
            tick: Progress = _no_progress) -> dict[str, tuple[float, float]]:
    """Top-left positions of ``units`` (given in a preferred order) for a top-to-bottom layout.

    ``tick`` hears the share done from 0.1 to 0.95: ordering takes up to 0.6, x placement the rest.
    """
    n_real = len(units)
    index = {u: i for i, u in enumerate(units)}
    topo = _unit_topo(n_real, [(index[a], index[b]) for a, b in edges])
    rank = {v: i for i, v in enumerate(topo)}
    fwd = [(index[a], index[b]) if rank[index[a]] < rank[index[b]] else (index[b], index[a]) for a, b in edges]
    layer = [0] * n_real
    preds: list[list[int]] = [[] for _ in range(n_real)]
    for a, b in fwd:
        preds[b].append(a)
    for v in topo:
        if preds[v]:
            layer[v] = max(layer[p] for p in preds[v]) + 1
    # Dummy nodes split long edges into one-layer steps.
    width = [sizes[u][0] for u in units]
    height = [sizes[u][1] for u in units]
    up: list[list[int]] = [[] for _ in range(n_real)]
    down: list[list[int]] = [[] for _ in range(n_real)]

    def link(a: int, b: int) -> None:
        down[a].append(b)
        up[b].append(a)

    # The long edges out of one unit share one lane (a bus): a DenseNet layer feeds every later
    # concatenation of its block, and a lane per edge made 180,000 dummies out of 709 layers.
    targets: list[list[int]] = [[] for _ in range(n_real)]
    for a, b in fwd:
        targets[a].append(b)
    for a in range(n_real):
        lane = [a]  # lane[k]: what carries a's output down through layer layer[a] + k
        for b in sorted(targets[a], key=lambda b: layer[b]):
            while len(lane) < layer[b] - layer[a]:
                d = len(layer)
                layer.append(layer[a] + len(lane))
                width.append(DUMMY_W)
                height.append(0.0)
                up.append([])
                down.append([])
                link(lane[-1], d)
                lane.append(d)
            link(lane[layer[b] - layer[a] - 1], b)
    n = len(layer)
    n_layers = max(layer) + 1
    layers: list[list[int]] = [[] for _ in range(n_layers)]
    for v in sorted(range(n), key=lambda v: (rank.get(v, n_real + v))):
        layers[layer[v]].append(v)
    tick(0.15)
    layers = _order(layers, up, down, lambda f: tick(0.15 + 0.45 * f))
    xs = _place_x(layers, up, down, width, n_real, lambda f: tick(0.6 + 0.35 * f))
    tops, y = [], 0.0
    for lay in layers:
        tops.append(y)
        y += max((height[v] for v in lay), default=NODE_H) + LAYER_GAP
    out: dict[str, tuple[float, float]] = {}
    for li, lay in enumerate(layers):
        lh = max(height[v] for v in lay)
        for v in lay:
            if v < n_real:
                out[units[v]] = (xs[v] - width[v] / 2, tops[li] + (lh - height[v]) / 2)
    return out


def _unit_topo(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Kahn's order, ties by the given order; units on cycles (folding can make them) go last."""
    import heapq

    indeg = [0] * n
    outs: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        if a != b:
            outs[a].append(b)
            indeg[b] += 1
    heap = [v for v in range(n) if not indeg[v]]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        v = heapq.heappop(heap)
        order.append(v)
        for w in outs[v]:
            indeg[w] -= 1
            if not indeg[w]:
                heapq.heappush(heap, w)
    done = set(order)
    return order + [v for v in range(n) if v not in done]


def _crossings(upper: list[int], down: list[list[int]], at: list[int]) -> int:
    """Wires from ``upper`` to the layer below that cross: inversions of their lower ends (``at``:
    each vertex's index in its layer), counted by bisection into the ends seen so far."""
    ends: list[int] = []
    for v in upper:
        below = down[v]
        if len(below) == 1:
            ends.append(at[below[0]])
        elif below:
            ends.extend(sorted([at[w] for w in below]))
    seen: list[int] = []
    count = 0
    for k, b in enumerate(ends):
        # wires already seen (further left above) whose lower end is strictly right of b cross it
        count += k - bisect_right(seen, b)
        insort(seen, b)
    return count


def _order(layers: list[list[int]], up: list[list[int]], down: list[list[int]],
           tick: Progress = _no_progress) -> list[list[int]]:
    """Barycenter sweeps down and up; keep the ordering with the fewest crossings.

    Only the layers a sweep reorders have their crossings counted again (a DenseNet layer's lanes
    rarely move, and recounting all 700 pairs after every sweep took a third of the layout).
    """
    at = [0] * len(up)  # each vertex's index in its layer, kept in step with ``cur``
    for lay in layers:
        for i, v in enumerate(lay):
            at[v] = i
    pairs = [_crossings(layers[li], down, at) for li in range(len(layers) - 1)]
    best = [list(lay) for lay in layers]
    best_c = sum(pairs)
    cur = [list(lay) for lay in layers]
    for sweep in range(_SWEEPS):
        if best_c == 0:
            break
        downward = sweep % 2 == 0
        rng = range(1, len(cur)) if downward else range(len(cur) - 2, -1, -1)
        nbrs = up if downward else down
        moved: list[int] = []
        for li in rng:
            lay = cur[li]
            keyed = []
            for i, v in enumerate(lay):
                ns = nbrs[v]  # all in the neighbouring layer: every edge spans one layer
                if len(ns) == 1:
                    keyed.append((at[ns[0]] / 1, i, v))
                elif ns:
                    keyed.append((sum([at[w] for w in ns]) / len(ns), i, v))
                else:
                    keyed.append((float(i), i, v))
            keyed.sort()
            order = [v for _, _, v in keyed]
            if order != lay:
                cur[li] = order
                for i, v in enumerate(order):
                    at[v] = i
                moved.append(li)
        for li in {p for m in moved for p in (m - 1, m) if 0 <= p < len(pairs)}:
            pairs[li] = _crossings(cur[li], down, at)
        c = sum(pairs)
        if c < best_c:
            best, best_c = [list(lay) for lay in cur], c
        tick((sweep + 1) / _SWEEPS)
    return best


def _place_x(layers: list[list[int]], up: list[list[int]], down: list[list[int]],
             width: list[float], n_real: int, tick: Progress = _no_progress) -> list[float]:
    n = len(width)
    xs = [0.0] * n
    seps: list[list[float]] = []
    for lay in layers:
        s = [0.0]
        for a, b in pairwise(lay):
            gap = COLUMN_GAP if a < n_real and b < n_real else COLUMN_GAP / 2
            s.append(s[-1] + (width[a] + width[b]) / 2 + gap)
        seps.append(s)
        for v, o in zip(lay, s, strict=True):
            xs[v] = o - s[-1] / 2
    # What pulls each vertex never changes between passes: work it out once per layer and direction.
    # Long-edge lanes stay straight, the main chain stays straight, a skip barely pulls.
    Pull = tuple[int, Any, Any, float, float]  # kind (0 none, 1 one, 2 several), whom, weights, total, offset
    plans: list[list[list[Pull]]] = []
    for nbrs in (up, down):
        per_layer: list[list[Pull]] = []
        for lay, offsets in zip(layers, seps, strict=True):
            plan: list[Pull] = []
            for v, o in zip(lay, offsets, strict=True):
                ns = nbrs[v]
                if v < n_real:
                    ws = [_W_REAL if w < n_real else _W_MIXED for w in ns]
                else:
                    ws = [_W_MIXED if w < n_real else _W_DUMMY for w in ns]
                tot = float(sum(ws))
                if len(ns) == 1:
                    plan.append((1, ns[0], ws[0], tot, o))
                elif ns:
                    plan.append((2, ns, ws, tot, o))
                else:
                    plan.append((0, v, None, 0.05, o))
            per_layer.append(plan)
        plans.append(per_layer)
    for p in range(_X_PASSES * 2 + 1):
        downward = p % 2 == 0
        rng = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
        per_layer = plans[0] if downward else plans[1]
        for li in rng:
            values: list[float] = []
            weights: list[float] = []
            for kind, u, f, tot, o in per_layer[li]:
                # the weighted mean of the neighbours' x (summed in the same order as ever), or
                # where the vertex is when nothing pulls it
                if kind == 1:
                    values.append(f * xs[u] / tot - o)
                elif kind == 2:
                    values.append(sum([w * xs[n] for w, n in zip(f, u, strict=True)]) / tot - o)
                else:
                    values.append(xs[u] - o)
                weights.append(tot)
            # already in order (a lane that keeps its place): the fit is the values themselves
            placed = values if len(values) < 2 or values == sorted(values) else _isotonic(values, weights)
            for v, y, o in zip(layers[li], placed, seps[li], strict=True):
                xs[v] = y + o
        tick((p + 1) / (_X_PASSES * 2 + 1))
    return xs


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    means: list[float] = []  # one block of pooled values each: its mean, weight and size
    mass: list[float] = []
    sizes: list[int] = []
    for m, w in zip(values, weights, strict=True):
        c = 1
        while means and means[-1] > m:
            m1, w1 = means.pop(), mass.pop()
            c += sizes.pop()
            tw = w1 + w
            m, w = (m1 * w1 + m * w) / tw, tw
        means.append(m)
        mass.append(w)
        sizes.append(c)
    out: list[float] = []
    for m, c in zip(means, sizes, strict=True):
        out.extend([m] * c)
    return out
