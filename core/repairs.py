"""Finding the fix for a merge (Add, Concat) whose inputs disagree, by looking up its branches.

A merge's mismatch is rarely the merge's fault: a branch lost its padding, or a stride changed on
one branch and not on the other (ResNet's main path set to stride 1 while its projection shortcut
still has stride 2). :func:`merge_fix` proposes, in this order:

1. a padding on the odd branch's own conv that restores the size (``padding=1 keeps 32×32``);
2. for an Add whose branches differ only in channels, a 1×1 Conv2d on the odd branch;
3. a stride on the shorter branch (the shortcut) that matches the longer one
   (``stride=1 gives 56×56`` on the projection conv), or, where the shortcut is the identity,
   a 1×1 Conv2d with that stride inserted on it; failing that, a stride on the longer branch.

Only a layer that feeds nothing but this branch is ever changed: changing a layer shared with the
other branch would change both sides. The analyzer passes itself as the :class:`Context`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from core.graph import Edge, Graph
from core.layers.conv import conv_out_size
from core.layers.registry import get_spec
from core.layers.spec import Fix, Shape, fmt_shape, insert_fix, numel, set_param_fix, tup

_WALK = 8  # layers walked up one branch
_RESTRIDABLE = frozenset(("Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d"))


class Context(Protocol):
    """What the fix finders need from the analyzer."""

    graph: Graph

    def output_shape(self, node_id: str) -> Shape | None: ...

    def resolved(self, node_id: str) -> dict[str, Any] | None: ...

    def depend(self, on: str, node_id: str) -> None: ...


def merge_fix(ctx: Context, nid: str, merge_type: str, shapes: Sequence[Shape], edges: Sequence[Edge]) -> Fix | None:
    """The fix for merge ``nid`` whose inputs ``shapes`` (arriving by ``edges``) disagree, or ``None``."""
    if merge_type not in ("Add", "Concat"):
        return None
    # Targets: the largest spatial size first, so a fix keeps the resolution rather than lose it.
    order = sorted(range(len(shapes)), key=lambda i: (-numel(shapes[i][1:]), i))
    for t in order:
        target = shapes[t]
        for s, e in zip(shapes, edges, strict=True):
            if s == target or len(s) != len(target) or len(s) < 2:
                continue
            if s[1:] != target[1:] and (merge_type == "Concat" or s[0] == target[0]):
                fix = _padding_fix(ctx, nid, e.src, target[1:])
                if fix is not None:
                    return fix
            elif s[1:] == target[1:] and merge_type == "Add" and len(s) == 3:
                return insert_fix("Conv2d", {"out_channels": target[0], "kernel_size": 1},
                                  f"insert a 1×1 Conv2d to {target[0]} channels after {e.src}",
                                  port=e.port).at(nid)
    return _stride_fix(ctx, nid, merge_type, shapes, edges)


def _padding_fix(ctx: Context, nid: str, src: str, target: Shape) -> Fix | None:
    """Walk up the odd branch through shape-preserving layers that feed only it, to a conv whose
    padding would give ``target``."""
    g = ctx.graph
    for _ in range(_WALK):
        ctx.depend(src, nid)
        if len(g._out[src]) != 1:
            return None
        spec = get_spec(g.nodes[src].type)
        if spec is None:
            return None
        preds = g.in_edges(src)
        if spec.type in ("Conv1d", "Conv2d"):
            params = ctx.resolved(src)
            if params is None or len(preds) != 1:
                return None
            ctx.depend(preds[0].src, nid)
            up = ctx.output_shape(preds[0].src)
            if up is None or len(up) != len(target) + 1:
                return None
            nd = len(target)
            k, s, d = tup(params["kernel_size"], nd), tup(params["stride"], nd), tup(params["dilation"], nd)
            pads = []
            for n, ki, si, di, t in zip(up[1:], k, s, d, target, strict=True):
                found = next((p for p in range(0, di * (ki - 1) + 1) if conv_out_size(n, ki, si, p, di) == t), None)
                if found is None:
                    return None
                pads.append(found)
            value: Any = pads[0] if len(set(pads)) == 1 else pads
            return set_param_fix("padding", value, f"padding={value} keeps {fmt_shape(target)}").at(src)
        if spec.window is not None or len(preds) != 1:
            return None
        src = preds[0].src
    return None


def _branch_length(g: Graph, src: str) -> int:
    """Layers between a merge and the fork its branch starts from: 0 for an identity shortcut."""
    n = 0
    while n < 64 and len(g._out[src]) == 1 and len(g._in[src]) == 1:
        src = next(iter(g._in[src].values())).src
        n += 1
    return n


def _stride_fix(ctx: Context, nid: str, merge_type: str, shapes: Sequence[Shape],
                edges: Sequence[Edge]) -> Fix | None:
    g = ctx.graph
    lengths = [_branch_length(g, e.src) for e in edges]
    main = max(range(len(edges)), key=lambda i: (lengths[i], numel(shapes[i][1:])))
    target = shapes[main]
    # the shortcut follows the main path (the stride the user just set there is kept) ...
    for i in sorted(range(len(edges)), key=lengths.__getitem__):
        s, e = shapes[i], edges[i]
        if i == main or len(s) != len(target) or len(s) < 2 or s[1:] == target[1:]:
            continue
        fix = _restride(ctx, nid, e.src, target[1:])
        if fix is not None:
            return fix
        if lengths[i] == 0 and len(s) == 3:
            stride = _stride_for(s[1:], (1, 1), (0, 0), (1, 1), target[1:], False)
            if stride is not None:
                channels = target[0] if merge_type == "Add" else s[0]
                return insert_fix("Conv2d", {"out_channels": channels, "kernel_size": 1, "stride": stride,
                                             "bias": False},
                                  f"insert a 1×1 Conv2d with stride {_show(stride)} after {e.src}",
                                  port=e.port).at(nid)
    # ... or else the main path follows the shortcut
    other = next((shapes[i] for i in range(len(edges)) if i != main and len(shapes[i]) == len(target)), None)
    if other is not None and other[1:] != target[1:]:
        return _restride(ctx, nid, edges[main].src, other[1:])
    return None


def _restride(ctx: Context, nid: str, src: str, target: Shape) -> Fix | None:
    """Walk up one branch, through layers that keep the spatial size and feed only this branch, to a
    conv or pooling layer whose stride would give ``target``."""
    g = ctx.graph
    for _ in range(_WALK):
        ctx.depend(src, nid)
        preds = g.in_edges(src)
        spec = get_spec(g.nodes[src].type)
        if spec is None or len(g._out[src]) != 1 or len(preds) != 1:
            return None
        ctx.depend(preds[0].src, nid)
        up, out = ctx.output_shape(preds[0].src), ctx.output_shape(src)
        if up is None or out is None or len(up) != len(target) + 1:
            return None
        if spec.type in _RESTRIDABLE:
            params = ctx.resolved(src)
            if params is None:
                return None
            nd = len(target)
            k = tup(params["kernel_size"], nd)
            stride = params["stride"] if params["stride"] is not None else params["kernel_size"]
            found = _stride_for(up[1:], k, tup(params.get("padding", 0), nd), tup(params.get("dilation", 1), nd),
                                target, bool(params.get("ceil_mode", False)))
            if found is not None and tup(found, nd) != tup(stride, nd):
                return set_param_fix("stride", found, f"stride={_show(found)} gives {fmt_shape(target)}").at(src)
        if out[1:] != up[1:] or (spec.window is not None and spec.type not in _RESTRIDABLE):
            return None  # this layer changes the size (or sees it all) and cannot be made to give target
        src = preds[0].src
    return None


def _stride_for(sizes: Sequence[int], k: Sequence[int], p: Sequence[int], d: Sequence[int], target: Sequence[int],
                ceil_mode: bool) -> Any:
    """The stride (one value, or one per axis) that gives ``target`` from ``sizes``, or ``None``."""
    found = []
    for n, ki, pi, di, t in zip(sizes, k, p, d, target, strict=True):
        s = _smallest_stride(n, ki, pi, di, t, ceil_mode)
        if s is None:
            return None
        found.append(s)
    return found[0] if len(set(found)) == 1 else found


def _smallest_stride(n: int, k: int, p: int, d: int, target: int, ceil_mode: bool) -> int | None:
    """The smallest stride whose output size is ``target``. The output size never grows with the
    stride, so a bisection finds it in a few dozen steps even for a padding of 10**400 (a scan of
    every stride hung analysis there); small ranges are scanned, which also covers ceil_mode's
    last-window rule exactly."""
    def out(s: int) -> int:
        return conv_out_size(n, k, s, p, d, ceil_mode)

    top = n + 2 * p
    if top < 1:
        return None
    if top <= 4096:
        return next((s for s in range(1, top + 1) if out(s) == target), None)
    lo, hi = 1, top
    if out(hi) > target:
        return None
    while lo < hi:  # the first stride whose output is at most target
        mid = (lo + hi) // 2
        if out(mid) <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo if out(lo) == target else None


def _show(value: Any) -> str:
    return "×".join(map(str, value)) if isinstance(value, list) else str(value)


__all__ = ["Context", "merge_fix"]
