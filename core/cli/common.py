"""What CLI subcommands share: the usage error and loading sources with one-line errors.

Numbers are formatted by :mod:`core.units`, which the editor uses too.
"""

from __future__ import annotations

from core.project import Project, ProjectError
from core.sources import SourceError, load_source


class UsageError(Exception):
    """Bad arguments or unreadable input: printed as one line, exit status 2."""


def load_or_fail(source: str) -> Project:
    """Load a SOURCE or raise :class:`UsageError` with a one-line message (exit status 2)."""
    try:
        return load_source(source)
    except (ProjectError, SourceError) as exc:
        message = str(exc)  # a file's own errors already start with its path
        raise UsageError(message if message.startswith(source) else f"{source}: {message}") from None
    except Exception as exc:  # an importer or template failure must still be one line
        raise UsageError(f"{source}: {type(exc).__name__}: {exc}") from None

