"""The recent per-layer statistics of a run, for the canvas's sparklines.

Each probe brings, per probed layer, the mean, standard deviation, dead fraction and gradient norm
of its output; :class:`NodeStatsHistory` keeps the last :data:`STAT_HISTORY` finite values of each
and hands them out as plain lists (what the canvas draws). The panel decides when to send them.
"""

from __future__ import annotations

import math
from collections import deque

from core.training import ProbeData

STAT_HISTORY = 120  # values kept per node and statistic for the canvas sparklines
STATS = ("mean", "std", "dead", "grad")


class NodeStatsHistory:
    """Per node id: the last values of each statistic (non-finite values are skipped)."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[str, deque[float]]] = {}

    def add(self, data: ProbeData) -> None:
        for nid, stats in data.stats.items():
            hist = self._nodes.get(nid)
            if hist is None:
                hist = self._nodes[nid] = {k: deque(maxlen=STAT_HISTORY) for k in STATS}
            for key, value in zip(STATS, (stats.mean, stats.std, stats.zero_fraction, stats.grad_norm),
                                  strict=True):
                if value is not None and math.isfinite(value):
                    hist[key].append(float(value))

    def series(self) -> dict[str, dict[str, list[float]]]:
        """Node id → statistic → its values, oldest first (statistics without a value left out)."""
        return {nid: {k: list(v) for k, v in hist.items() if v} for nid, hist in self._nodes.items()}

    def __getitem__(self, node_id: str) -> dict[str, deque[float]]:
        return self._nodes[node_id]

    def clear(self) -> None:
        self._nodes = {}


__all__ = ["STATS", "STAT_HISTORY", "NodeStatsHistory"]
