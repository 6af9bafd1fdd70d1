"""The error of a SOURCE that names nothing loadable, apart from the registry that resolves them.

:class:`SourceError` is raised by every kind of source (a template with an unknown name, a
torchvision model the importer refuses) and caught by both front-ends, which print its one line.
It lives in a module of its own so that a kind of source can raise it without importing
:mod:`core.sources`, the registry that loads that kind on first use: the arrow between the two
then runs one way only. :mod:`core.sources` re-exports it.
"""

from __future__ import annotations


class SourceError(ValueError):
    """A SOURCE that names nothing loadable; ``str()`` is one readable line."""


__all__ = ["SourceError"]
