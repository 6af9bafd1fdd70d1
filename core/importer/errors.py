"""The one error the importer raises: :class:`ModelImportError`.

It lives in its own module because every stage raises it (tracing, reading a module's arguments,
the op handlers, the conversion, the final checks against torch) and none of them should import
another stage just to name the error. It is a :class:`~core.errors.SourceError`, so a
``torchvision:NAME`` source that cannot be imported reads like any other bad SOURCE; it comes
from :mod:`core.errors`, not from the registry in :mod:`core.sources`, which imports the importer.
"""

from __future__ import annotations

from core.errors import SourceError


class ModelImportError(SourceError):
    """A module the importer cannot represent; ``str()`` names the operation and the module path."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


__all__ = ["ModelImportError"]
