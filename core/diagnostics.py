"""Diagnostics, and folding the fallout of one mistake into the diagnostic of its root cause.

A :class:`Diagnostic` is ``{severity, node, message, fix?}`` (DESIGN.md §5). Analysis reports
each node's own problems; one edit often breaks many nodes for one reason, and a list of 141
warnings hides the one line that matters. :func:`fold` keeps one diagnostic per root cause:

- *Unreached layers.* Deleting ResNet-50's Stage 4 leaves ``avgpool`` without an input and the
  141 layers before the gap without a path to an Output. The layers that no longer reach an
  Output form regions, each ending in an *open output* (a layer whose result nothing reads).
  A layer that needs an input and has none is the root cause: the region of the nearest open
  output that fits it is folded into its error ("avgpool has no input, so the 141 layers from
  input to layer3.5.relu_2 do not reach an Output"), with the fix that connects the two. A region
  that no such error claims becomes one warning on its open output, not one per layer; it names
  the region's layers with weights, which the compiled model keeps but never runs (issue 12).
- *Repeated fallout.* A missing Flatten makes every Linear after it act on the last axis only:
  the same warning, with the same fix, on fc1, fc2 and fc3, of which only fc1's fix is right.
  A diagnostic whose fix repeats one further up its own chain is folded into that one.

``fold`` needs no analysis internals: the caller passes what it knows about each node (its
output shape) and a ``trial(src, dst)`` that says how well connecting ``src`` to ``dst`` works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from core.graph import Graph
from core.layers.registry import get_spec
from core.layers.spec import Fix, FixAction, Shape, fmt_shape

_CHAIN_LIMIT = 64  # how far up its chain a repeated diagnostic looks for the one it repeats


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: ``node`` is ``None`` for whole-graph problems (no Input, no Output …)."""

    severity: Severity
    node: str | None
    message: str
    fix: Fix | None = None
    param: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"severity": self.severity.value, "node": self.node, "message": self.message}
        if self.fix is not None:
            d["fix"] = self.fix.label
        return d


# trial(src, dst): 0 when connecting src's output to dst leaves dst and every layer after it with a
# known shape, 1 when dst accepts the input but a later layer does not, 2 when dst refuses it.
Trial = Callable[[str, str], int]
ShapeOf = Callable[[str], Shape | None]
# weighted(node): the node holds weights, so the compiled model keeps it even where it does not run
Weighted = Callable[[str], bool]


def unreached_message(node: str, weighted: bool = False) -> str:
    if weighted:
        return f"{node} reaches no Output: its weights are kept but it does not run — connect it onward or delete it"
    return f"{node} does not reach an Output — its result is unused; connect it onward or delete it"


def fold(graph: Graph, node_diags: list[Diagnostic], unreached: Sequence[str], shape_of: ShapeOf,
         trial: Trial, weighted: Weighted | None = None) -> list[Diagnostic]:
    """``node_diags`` (each node's own diagnostics, in graph order) with repeated fallout folded,
    followed by the diagnostics about ``unreached`` layers (those with no path to an Output),
    one per root cause; ``weighted`` says which of them the compiled model keeps, idle."""
    diags = _fold_repeats(graph, node_diags) if node_diags else node_diags
    if not unreached:
        return diags
    return _fold_unreached(graph, diags, unreached, shape_of, trial, weighted or (lambda _n: False))


# -- repeated fallout --------------------------------------------------------------------------

def _signature(d: Diagnostic) -> tuple[Any, ...] | None:
    """Diagnostics with equal signatures propose the same repair (insert Flatten) on their nodes."""
    fix = d.fix
    if fix is None or fix.action != FixAction.INSERT_BEFORE or d.node is None:
        return None
    return (d.severity, fix.action, fix.layer_type, repr(sorted(fix.layer_params.items())))  # values may be lists


def _fold_repeats(graph: Graph, diags: list[Diagnostic]) -> list[Diagnostic]:
    by_node: dict[tuple[str, tuple[Any, ...]], int] = {}
    for i, d in enumerate(diags):
        sig = _signature(d)
        if sig is not None:
            by_node.setdefault((d.node, sig), i)  # type: ignore[arg-type]
    if len(by_node) < 2:
        return diags
    ins = graph._in
    folded: dict[int, list[str]] = {}
    dropped: set[int] = set()
    for (node, sig), i in by_node.items():
        cur = node
        for _ in range(_CHAIN_LIMIT):  # up the single-input chain to the first node with the same repair
            edges = ins.get(cur)
            if not edges or len(edges) != 1:
                break
            cur = next(iter(edges.values())).src
            root = by_node.get((cur, sig))
            if root is not None:
                dropped.add(i)
                folded.setdefault(root, []).append(node)
                break
    if not dropped:
        return diags
    out: list[Diagnostic] = []
    for i, d in enumerate(diags):
        if i in dropped:
            continue
        if i in folded:
            # a root folded into another root further up (fc3 → fc2 → fc1) passes its followers on
            names = _followers(i, folded, dropped, by_node)
            d = replace(d, message=f"{d.message} — {_names(names)} after it {'does' if len(names) == 1 else 'do'} "
                                   f"the same, and this fix clears {'it' if len(names) == 1 else 'them'} too")
        out.append(d)
    return out


def _followers(root: int, folded: dict[int, list[str]], dropped: set[int],
               by_node: dict[tuple[str, tuple[Any, ...]], int]) -> list[str]:
    index = {i: key[0] for key, i in by_node.items()}
    names: list[str] = []
    stack = [root]
    while stack:
        for name in folded.get(stack.pop(), ()):
            names.append(name)
            stack.extend(i for i, n in index.items() if n == name and i in dropped)
    return names


def _names(names: Sequence[str]) -> str:
    if len(names) <= 3:
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]
    return f"{names[0]}, {names[1]} and {len(names) - 2} more layers"


# -- layers that do not reach an Output ------------------------------------------------------

def _needs_input(graph: Graph, nid: str) -> bool:
    spec = get_spec(graph.nodes[nid].type)
    return spec is not None and spec.min_inputs == 1 and spec.max_inputs != 0 and not graph._in[nid]


def _regions(graph: Graph, unreached: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``(open output, its region)`` pairs: every unreached layer joins the region of the first
    open output (in graph order) it feeds; a region lists its layers in graph order."""
    pending = set(unreached)
    ends = [n for n in unreached if not graph._out[n]]
    order = {n: i for i, n in enumerate(unreached)}
    out: list[tuple[str, list[str]]] = []
    for end in ends:
        if end not in pending:
            continue
        members = {end}
        pending.discard(end)
        stack = [end]
        while stack:
            for e in graph._in[stack.pop()].values():
                if e.src in pending:
                    pending.discard(e.src)
                    members.add(e.src)
                    stack.append(e.src)
        out.append((end, sorted(members, key=order.__getitem__)))
    return out


def _distance(graph: Graph, a: str, b: str, order: dict[str, int]) -> float:
    """Between the cards when both have a place, else between their places in the file; ``order``
    is filled here on first need (a walk over every node, which most folds never need)."""
    pa, pb = graph.nodes[a].pos, graph.nodes[b].pos
    if pa is not None and pb is not None:
        return math.hypot(pa[0] - pb[0], pa[1] - pb[1])
    if not order:
        order.update((n, i) for i, n in enumerate(graph.nodes))
    return float(abs(order.get(a, 0) - order.get(b, 0)))


def _fold_unreached(graph: Graph, diags: list[Diagnostic], unreached: Sequence[str], shape_of: ShapeOf,
                    trial: Trial, weighted: Weighted) -> list[Diagnostic]:
    regions = dict(_regions(graph, unreached))
    order: dict[str, int] = {}  # file positions, filled by _distance when a card has no place
    # each layer that needs an input and has none takes the nearest open output that fits it;
    # several taking the same one (both branches of a deleted block's successor) share one diagnostic
    chosen: dict[str, list[int]] = {}
    for i, d in enumerate(diags):
        nid = d.node
        if (d.severity is not Severity.ERROR or d.fix is not None or nid is None or nid not in graph.nodes
                or not _needs_input(graph, nid)):
            continue
        best: tuple[int, float, str] | None = None
        for end in regions:
            if shape_of(end) is None:
                continue
            how = trial(end, nid)
            if how < 2:
                key = (how, _distance(graph, end, nid, order), end)
                best = key if best is None or key < best else best
        if best is not None:
            chosen.setdefault(best[2], []).append(i)
    replaced: dict[int, Diagnostic | None] = {}
    for end, indices in chosen.items():
        needy = [diags[i].node for i in indices]
        replaced[indices[0]] = _connect_diagnostic(diags[indices[0]], needy, end, regions[end],  # type: ignore[arg-type]
                                                   shape_of(end))
        replaced.update((i, None) for i in indices[1:])
    out = [replaced.get(i, d) for i, d in enumerate(diags) if replaced.get(i, d) is not None]
    grouped: set[str] = set()
    for end, members in regions.items():
        grouped.update(members)
        if end in chosen:
            continue
        if len(members) == 1:
            out.append(Diagnostic(Severity.WARNING, end, unreached_message(end, weighted(end))))
        else:
            k = len(members) - 1
            held = [m for m in members if weighted(m)]
            kept = (f", and the weights of {_names(held)} are kept but do not run" if held else "")
            out.append(Diagnostic(
                Severity.WARNING, end,
                f"{end} does not reach an Output, nor do the {k} layer{'s' * (k != 1)} before it "
                f"(from {members[0]}) — their results are unused{kept}; connect {end} onward or delete them"))
    out += [Diagnostic(Severity.WARNING, n, unreached_message(n, weighted(n))) for n in unreached if n not in grouped]
    return out  # type: ignore[return-value]


def _connect_diagnostic(d: Diagnostic, needy: list[str], end: str, members: list[str],
                        shape: Shape | None) -> Diagnostic:
    k = len(members)
    what = f"{end} does not" if k == 1 else f"the {k} layers from {members[0]} to {end} do not"
    nid, rest = needy[0], needy[1:]
    who = f"{nid} has" if not rest else f"{_names(needy)} have"
    them = "it" if not rest else "them"
    return Diagnostic(
        d.severity, nid,
        f"{who} no input, so {what} reach an Output — connect {end} ({fmt_shape(shape)}), "
        f"the nearest open output that fits, to {them}",
        Fix(f"connect {end} → {_names(needy)}", FixAction.CONNECT, nid, value=tuple(rest), source=end), d.param)


__all__ = ["Diagnostic", "Severity", "fold", "unreached_message"]
