"""Numbers as people read them, for every front-end: ``138.36 M`` parameters, ``1.50 GiB``.

The command line and the editor both print counts (parameters, MACs) and sizes (memory) with
these functions, so a figure reads the same in ``main.py summary`` and in the Summary panel.

Counts come from files, and a file may ask for a layer of 10²²⁰⁰ features: its totals then have
thousands of digits, more than Python converts to text (``ValueError`` past 4,300 digits) or to
a float (``OverflowError`` past 10³⁰⁸). Every count is therefore written here, never with a bare
``f"{n:,}"``: beyond :data:`EXACT_BELOW` it reads in scientific form, ``≈ 1.23e4400``.
"""

from __future__ import annotations

import math
from typing import Any

# Exact digits stop helping long before Python's limits: 10²¹ parameters is already absurd.
EXACT_BELOW = 10**21
_SCALES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def scientific(n: float) -> str:
    """``≈ 1.23e4400`` for any int or float, however large: no conversion of the whole number."""
    if isinstance(n, float) and not math.isfinite(n):
        return str(n)
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    magnitude = abs(n)
    log = math.log10(magnitude)  # exact enough for 3 digits; math.log10 takes ints of any size
    exponent = math.floor(log)
    mantissa = round(10 ** (log - exponent), 2)
    if mantissa >= 10:  # 9.996 rounds up to the next power of ten
        mantissa, exponent = 1.0, exponent + 1
    return f"≈ {sign}{mantissa:.2f}e{exponent}"


def count(n: int | None) -> str:
    """A count with thousands separators (``61,706``), scientific past :data:`EXACT_BELOW`."""
    if n is None:
        return "?"
    if abs(n) >= EXACT_BELOW:
        return scientific(n)
    return f"{n:,}"


def human(n: float | None, unit: str = "") -> str:
    """``138357544`` → ``138.36 M``; keeps small numbers exact; ``None`` (unknown) → ``?``."""
    if n is None:
        return "?"
    if abs(n) >= 1e15:  # past 1000 T the suffixes stop helping, and huge ints overflow a float
        return f"{scientific(n)} {unit}".rstrip()
    for div, suffix in _SCALES:
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip() if isinstance(n, float) else f"{n} {unit}".rstrip()


def human_bytes(n: float) -> str:
    """A byte count in binary units: ``1610612736`` → ``1.50 GiB``."""
    if n >= 1 << 50:  # past 1024 TiB: scientific (a huge int would overflow the division)
        return f"{scientific(n)} B"
    for div, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{int(n)} B"


def json_safe(value: Any) -> Any:
    """``value`` with every int too long for ``json.dumps`` (Python's digit limit) replaced by its
    scientific text, so a JSON report of an absurd network is still written. Iterative copy."""
    limit = EXACT_BELOW ** 200  # 4,200 digits: under Python's default limit of 4,300

    def fix(v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= limit:
            return scientific(v)
        return v

    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        holder, key = stack.pop()
        item = holder[key]
        if isinstance(item, dict):
            item = dict(item)
            holder[key] = item
            stack.extend((item, k) for k in item)
        elif isinstance(item, (list, tuple)):
            item = list(item)
            holder[key] = item
            stack.extend((item, i) for i in range(len(item)))
        else:
            holder[key] = fix(item)
    return root[0]


def fmt_duration(seconds: float) -> str:
    """A run's time as a clock reads it: ``4:07``, ``1:02:03`` (non-finite or negative: ``0:00``)."""
    s = max(0, round(seconds)) if math.isfinite(seconds) else 0
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


__all__ = ["EXACT_BELOW", "count", "fmt_duration", "human", "human_bytes", "json_safe", "scientific"]
