"""Helpers shared by CLI subcommands: loading sources with one-line errors (numbers: :mod:`core.units`)."""

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

