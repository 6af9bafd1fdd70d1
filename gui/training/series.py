"""The plots' point buffers and the smoothed curve's arithmetic (no Qt): :class:`Series`, a growable
pair of float64 buffers whose filled parts the curves show in place, and :func:`ema`, the
exponential moving average of TensorBoard's smoothing slider, computed blockwise.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

_BLOCK = 256


class Series:
    """A growable pair of float64 buffers; ``x``/``y`` are views of the filled part."""

    def __init__(self, capacity: int = 4096) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def extend(self, xs: np.ndarray | Sequence[float], ys: np.ndarray | Sequence[float]) -> None:
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        need = self.n + len(xs)
        if need > len(self._x):
            size = max(need, 2 * len(self._x))
            self._x = np.resize(self._x, size)
            self._y = np.resize(self._y, size)
        self._x[self.n:need] = xs
        self._y[self.n:need] = ys
        self.n = need

    def append(self, x: float, y: float) -> None:
        self.extend((x,), (y,))

    def clear(self) -> None:
        self.n = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]


def ema(values: np.ndarray, weight: float, start: float | None = None) -> np.ndarray:
    """Exponential moving average ``s_t = w·s_{t−1} + (1−w)·x_t`` (``s_{−1}`` = ``start`` or ``x_0``).

    Blockwise: within a block of B values, ``s = M·x + p·s_prev`` with ``M[t, i] = (1−w)·w^(t−i)``
    (lower triangular) and ``p[t] = w^(t+1)``; every power is ≤ 1, so it is stable for any length.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    if not len(values):
        return out
    if weight <= 0:
        out[:] = values
        return out
    prev = float(values[0]) if start is None else float(start)
    matrix, carry = _ema_operator(float(weight))
    for i in range(0, len(values), _BLOCK):
        block = values[i:i + _BLOCK]
        b = len(block)
        out[i:i + b] = matrix[:b, :b] @ block + carry[:b] * prev
        prev = float(out[i + b - 1])
    return out


@functools.lru_cache(maxsize=8)
def _ema_operator(weight: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(_BLOCK)
    lag = t[:, None] - t[None, :]
    matrix = np.where(lag >= 0, (1 - weight) * weight ** np.clip(lag, 0, None), 0.0)
    return matrix, weight ** (t + 1)


__all__ = ["Series", "ema"]
