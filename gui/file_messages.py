"""How a problem with a file is worded: the path once, then what is wrong.

Its own module, below :mod:`gui.files` and the import dialogs, so that both can word a problem
the same way without importing each other.
"""

from __future__ import annotations

from pathlib import Path


def file_problem(path: Path | str, exc: BaseException | str) -> str:
    """``"PATH: problem"`` with the path exactly once, whether or not the error already names it.

    Loader errors (:class:`ProjectError`) start with the path; an ``OSError`` names the file it
    failed on (perhaps a temporary one) inside its text, so only its ``strerror`` is kept.
    """
    if isinstance(exc, OSError) and exc.strerror:
        problem = exc.strerror
    else:
        problem = str(exc)
    where = str(path)
    if problem.startswith(f"{where}: ") or problem == where:
        return problem
    return f"{where}: {problem}"
