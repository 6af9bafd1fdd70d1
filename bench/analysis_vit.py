"""Benchmark: analysis cost per node of a 12-layer ViT-B/16 graph next to ResNet-50's, in one run.

Issue 14 asks that attention graphs analyse "under the same per-node cost as CNNs". Both graphs
come from the importer (``torchvision:vit_b_16`` and ``torchvision:resnet50``, no weights); each
is analysed many times, warm (``analyze(graph)`` with the layer memos filled: what a structural
edit costs at worst in the editor) and cold (memos emptied first: the first analysis of a file
just opened), and the median time per node is printed for both graphs, with their ratios.

Run: ``.venv/bin/python bench/analysis_vit.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core.analysis as analysis_module
from core.analysis import analyze
from core.sources import load_source


def per_node_us(source: str, repeat: int) -> tuple[int, float, float]:
    """(nodes, median µs per node warm, median µs per node cold)."""
    graph = load_source(source).graph
    analyze(graph)
    warm, cold = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        result = analyze(graph)
        warm.append(time.perf_counter() - t)
        analysis_module._resolve_memo.clear()
        analysis_module._infer_memo.clear()
        t = time.perf_counter()
        analyze(graph)
        cold.append(time.perf_counter() - t)
    assert not result.errors, f"{source}: {result.errors[:1]}"
    n = len(graph.nodes)
    return n, statistics.median(warm) / n * 1e6, statistics.median(cold) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    rows = [(name, *per_node_us(f"torchvision:{name}", args.repeat)) for name in ("resnet50", "vit_b_16")]
    print(f"{'graph':<10} {'nodes':>6} {'warm/node':>10} {'cold/node':>10}")
    for name, n, warm, cold in rows:
        print(f"{name:<10} {n:>6} {warm:>7.1f} µs {cold:>7.1f} µs")
    print(f"ViT-B/16 ÷ ResNet-50 per node: warm {rows[1][2] / rows[0][2]:.2f}×, cold {rows[1][3] / rows[0][3]:.2f}×")


if __name__ == "__main__":
    main()
