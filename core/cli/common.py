"""Helpers shared by CLI subcommands: loading sources with one-line errors, number formatting."""

from __future__ import annotations

from core.cli import UsageError
from core.project import Project, ProjectError
from core.sources import SourceError, load_source


def load_or_fail(source: str) -> Project:
    """Load a SOURCE or raise :class:`UsageError` with a one-line message (exit status 2)."""
    try:
        return load_source(source)
    except (ProjectError, SourceError) as exc:
        raise UsageError(f"{source}: {exc}") from None
    except Exception as exc:  # an importer or template failure must still be one line
        raise UsageError(f"{source}: {type(exc).__name__}: {exc}") from None


def human(n: float | None, unit: str = "") -> str:
    """``138357544`` → ``138.36 M``; keeps small numbers exact."""
    if n is None:
        return "?"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.2f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip() if isinstance(n, float) else f"{n} {unit}".rstrip()


def human_bytes(n: float) -> str:
    for div, suffix in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= div:
            return f"{n / div:.2f} {suffix}"
    return f"{int(n)} B"
