"""Numbers as people read them, for every front-end: ``138.36 M`` parameters, ``1.50 GiB``.

The command line and the editor both print counts (parameters, MACs) and sizes (memory) with
these two functions, so a figure reads the same in ``main.py summary`` and in the Summary panel.
"""

from __future__ import annotations


def human(n: float | None, unit: str = "") -> str:
    """``138357544`` → ``138.36 M``; keeps small numbers exact; ``None`` (unknown) → ``?``."""
    if n is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip() if isinstance(n, float) else f"{n} {unit}".rstrip()


def human_bytes(n: float) -> str:
    """A byte count in binary units: ``1610612736`` → ``1.50 GiB``."""
    for div, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{int(n)} B"


__all__ = ["human", "human_bytes"]
