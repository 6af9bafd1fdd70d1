"""Benchmark: static analysis of a 1,000-node residual stack next to torchinfo on the same network.

Builds the graph through the public :class:`core.graph.Graph` API (Input, a stem conv, residual
blocks ``conv → [BN] → ReLU → conv → [BN] → Add → ReLU`` until the graph holds 1,000 nodes, then a
global-pool / Flatten / Linear head), times

- a full ``analyze(graph)`` (what every structural edit costs), and the very first analysis of a
  freshly built graph (every node's parameters validated from scratch),
- ``Graph.set_param`` + an incremental ``Analyzer.run()`` after a one-parameter edit that does not
  change any shape (a conv's ``bias``, the Dropout ``p``),

- structural edits followed by an incremental ``Analyzer.run()``: adding a node (and removing it
  again), removing a block's input edge (and putting it back), on the graph of ``--nodes`` and on
  one of ``--big`` nodes (20,000 by default),

each as the median of many runs, and ``torchinfo.summary`` of the same network written by hand
as an ``nn.Module`` here (same layers, same input), all in one run so the ratios compare like
with like. BatchNorm2d is used when the layer registry declares it.

Run: ``.venv/bin/python bench/analysis.py`` (a few seconds; ``--nodes N`` for another size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.analysis as analysis_module
from core.analysis import Analyzer, analyze
from core.graph import Graph
from core.layers import get_spec

BUDGET_FULL_MS = 5.0  # DESIGN.md §10
BUDGET_INCREMENTAL_MS = 1.0
CHANNELS = 16
SIZE = 32


HEAD = (("AdaptiveAvgPool2d", "pool", {"output_size": 1}), ("Flatten", "flatten", {}),
        ("Dropout", "dropout", {"p": 0.5}), ("Linear", "fc", {"out_features": 10}), ("Output", "output", {}))


def build_graph(target_nodes: int, use_bn: bool) -> tuple[Graph, int, int]:
    """The residual stack as a Graph with exactly ``target_nodes`` nodes (Identity nodes fill the
    rest after the last block); returns it, the number of blocks and of filler nodes."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, SIZE, SIZE]})
    g.add_node("Conv2d", "stem", {"out_channels": CHANNELS, "kernel_size": 3, "padding": 1})
    g.add_edge("input", "stem")
    g.add_node("ReLU", "stem_relu")
    g.add_edge("stem", "stem_relu")
    per_block = 7 if use_bn else 5
    blocks = (target_nodes - len(g) - len(HEAD)) // per_block
    fillers = target_nodes - len(g) - len(HEAD) - blocks * per_block
    prev = "stem_relu"
    for b in range(blocks):
        p = f"blocks.{b}"
        conv = {"out_channels": CHANNELS, "kernel_size": 3, "padding": 1, "bias": not use_bn}
        chain = [("Conv2d", "conv1", conv), ("BatchNorm2d", "bn1", {}), ("ReLU", "relu1", {}),
                 ("Conv2d", "conv2", conv), ("BatchNorm2d", "bn2", {})]
        if not use_bn:
            chain = [c for c in chain if c[0] != "BatchNorm2d"]
        last = prev
        for typ, name, params in chain:
            g.add_node(typ, f"{p}.{name}", params)
            g.add_edge(last, f"{p}.{name}")
            last = f"{p}.{name}"
        g.add_node("Add", f"{p}.add")
        g.add_edge(last, f"{p}.add")
        g.add_edge(prev, f"{p}.add")
        g.add_node("ReLU", f"{p}.relu2")
        g.add_edge(f"{p}.add", f"{p}.relu2")
        prev = f"{p}.relu2"
    for i in range(fillers):
        g.add_node("Identity", f"fill{i}")
        g.add_edge(prev, f"fill{i}")
        prev = f"fill{i}"
    for typ, nid, params in HEAD:
        g.add_node(typ, nid, params)
        g.add_edge(prev, nid)
        prev = nid
    return g, blocks, fillers


def build_module(blocks: int, fillers: int, use_bn: bool) -> object:
    """The same network as a hand-written nn.Module (for torchinfo)."""
    import torch.nn as nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=not use_bn)
            self.bn1 = nn.BatchNorm2d(CHANNELS) if use_bn else nn.Identity()
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, bias=not use_bn)
            self.bn2 = nn.BatchNorm2d(CHANNELS) if use_bn else nn.Identity()
            self.relu2 = nn.ReLU()

        def forward(self, x: object) -> object:
            y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(y + x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, CHANNELS, 3, padding=1)
            self.stem_relu = nn.ReLU()
            self.blocks = nn.Sequential(*(Block() for _ in range(blocks)))
            self.fill = nn.Sequential(*(nn.Identity() for _ in range(fillers)))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(CHANNELS, 10)

        def forward(self, x: object) -> object:
            x = self.fill(self.blocks(self.stem_relu(self.stem(x))))
            return self.fc(self.dropout(self.flatten(self.pool(x))))

    return Net()


def timings(fn: Callable[[], object], repeat: int, budget_s: float = 2.0) -> list[tuple[float, float]]:
    """(wall, this thread's CPU) times of ``fn`` in ms over up to ``repeat`` runs (stops after
    ``budget_s``). CPU time shows the cost without the waits a loaded shared machine adds."""
    times = []
    start = time.perf_counter()
    for _ in range(repeat):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        times.append(((time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3))
        if time.perf_counter() - start > budget_s and len(times) >= 5:
            break
    return times


def alternating(first: Callable[[], object], second: Callable[[], object], repeat: int,
                budget_s: float = 2.0) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """:func:`timings` of an edit and the edit that undoes it, run in turns (the graph is back where
    it started after each pair)."""
    a: list[tuple[float, float]] = []
    b: list[tuple[float, float]] = []
    start = time.perf_counter()
    for _ in range(repeat):
        a += timings(first, 1)
        b += timings(second, 1)
        if time.perf_counter() - start > budget_s and len(a) >= 5:
            break
    return a, b


def structural_rows(g: Graph, blocks: int, repeat: int) -> None:
    """Add a node / remove it, remove an edge / put it back, each with ``Analyzer.run()`` after it
    (what the editor pays per structural edit); checks the analyzer still agrees with a full pass."""
    analyzer = Analyzer(g)
    analyzer.run()
    n = len(g)
    counts: dict[str, list[int]] = {}

    def edit(label: str, fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            fn()
            analyzer.run()
            counts.setdefault(label, []).append(analyzer.recomputed)
        return run

    mid = f"blocks.{blocks // 2}"
    added = edit("add", lambda: g.add_node("ReLU", "bench_new"))
    removed = edit("remove node", lambda: g.remove_node("bench_new"))
    edge = g.in_edges(f"{mid}.conv1")[0]
    cut = edit("cut", lambda: g.remove_edge(edge))
    joined = edit("join", lambda: g.insert_edge(edge))
    add_t, remove_t = alternating(added, removed, repeat)
    cut_t, join_t = alternating(cut, joined, repeat)
    for label, key, times in [("add a node", "add", add_t), ("remove that node", "remove node", remove_t),
                              ("remove an edge", "cut", cut_t), ("put that edge back", "join", join_t)]:
        # DESIGN §10 budgets a 1,000-node graph; a structural edit there must cost no more than a full pass
        report(f"{n} nodes: {label} + run", times, BUDGET_FULL_MS if n <= 1000 else None,
               f"({statistics.median(counts[key]):g} node{'s' if statistics.median(counts[key]) != 1 else ''} "
               f"recomputed)")
    g.add_node("ReLU", "bench_new")
    analyzer.run()
    assert analyzer.run() == analyze(g), "incremental analysis drifted from a full one after a structural edit"
    g.remove_node("bench_new")
    g.remove_edge(edge)
    assert analyzer.run() == analyze(g), "incremental analysis drifted from a full one after a structural edit"
    g.insert_edge(edge)
    assert analyzer.run() == analyze(g)


def report(label: str, times: list[tuple[float, float]], budget: float | None = None, note: str = "") -> float:
    wall = [w for w, _ in times]
    med = statistics.median(wall)
    line = (f"{label:<40}{med:9.3f} ms median, {min(wall):8.3f} min, {statistics.median(c for _, c in times):8.3f} "
            f"cpu, of {len(times):4d}")
    if budget is not None:
        line += f"   budget {budget:.1f} ms {'OK' if med <= budget else 'OVER'}"
    print(line + (f"   {note}" if note else ""))
    return med


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--big", type=int, default=20_000, help="nodes of the graph for the second set of "
                    "structural-edit rows (0: none)")
    ap.add_argument("--no-torchinfo", action="store_true", help="skip the torchinfo comparison")
    args = ap.parse_args(argv)

    use_bn = get_spec("BatchNorm2d") is not None and get_spec("Dropout") is not None
    g, blocks, fillers = build_graph(args.nodes, use_bn)
    first = analyze(g)
    assert first.ok, [d.message for d in first.diagnostics[:3]]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (wall times suffer when it is high)")
    print(f"graph: {len(g)} nodes, {len(g.edges)} edges: stem, {blocks} residual blocks "
          f"({'conv/bn/relu/conv/bn/add/relu' if use_bn else 'conv/relu/conv/add/relu'}), {fillers} Identity, "
          f"pool/flatten/dropout/fc head; input 3×{SIZE}×{SIZE}; {first.total_params:,} params")

    # Cold: the first analysis of a graph just built (every node's params validated, memos empty).
    cold = []
    for _ in range(10):
        fresh, _b, _f = build_graph(args.nodes, use_bn)
        analysis_module._resolve_memo.clear()
        analysis_module._infer_memo.clear()
        cold += timings(lambda fresh=fresh: analyze(fresh), 1)
    # Full: what a structural edit costs (a fresh Analyzer walks every node of a known graph).
    full_ms = report("analyze, full pass", timings(lambda: analyze(g), 400), BUDGET_FULL_MS)
    report("analyze, first pass of a new graph", cold, BUDGET_FULL_MS)

    analyzer = Analyzer(g)
    analyzer.run()
    edits = {"conv bias": (f"blocks.{blocks // 2}.conv1", "bias", [True, False]),
             "Dropout p": ("dropout", "p", [0.3, 0.5])}
    inc_ms = 0.0
    for label, (node, param, values) in edits.items():
        recomputed: list[int] = []
        state = {"i": 0}

        def one_edit(node: str = node, param: str = param, values: list[object] = values,
                     recomputed: list[int] = recomputed, state: dict[str, int] = state) -> None:
            state["i"] += 1
            g.set_param(node, param, values[state["i"] % 2])
            analyzer.run()
            recomputed.append(analyzer.recomputed)

        # timed: Graph.set_param + Analyzer.run(), what the GUI pays per edit
        med = report(f"edit {label} + incremental run", timings(one_edit, 2000), BUDGET_INCREMENTAL_MS,
                     f"({statistics.median(recomputed):g} node recomputed)")
        inc_ms = max(inc_ms, med)
    assert analyzer.run() == analyze(g), "incremental analysis drifted from a full one"
    structural_rows(g, blocks, 400)
    if args.big:
        big, big_blocks, _f = build_graph(args.big, use_bn)
        report(f"{args.big} nodes: analyze, full pass", timings(lambda: analyze(big), 20))
        structural_rows(big, big_blocks, 100)

    status = 0 if full_ms <= BUDGET_FULL_MS and inc_ms <= BUDGET_INCREMENTAL_MS else 1
    if args.no_torchinfo:
        return status
    import torch
    import torchinfo

    torch.set_num_threads(1)
    model = build_module(blocks, fillers, use_bn)
    n_params = sum(p.numel() for p in model.parameters())  # type: ignore[attr-defined]

    def run_torchinfo() -> None:
        torchinfo.summary(model, input_size=(1, 3, SIZE, SIZE), verbose=0, device="cpu")

    run_torchinfo()  # warm-up: first call pays torch's lazy initialisation
    ti_ms = report("torchinfo.summary (same network)", timings(run_torchinfo, 7, budget_s=3.0),
                   note=f"({n_params:,} params{', same' if n_params == first.total_params else ', DIFFERENT'})")
    print(f"ratio torchinfo / full analyze:        {ti_ms / full_ms:8.0f}×")
    print(f"ratio torchinfo / incremental analyze: {ti_ms / inc_ms:8.0f}×")
    return status


if __name__ == "__main__":
    sys.exit(main())
