"""GUI test fixtures shared by every file under tests/gui."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _empty_clipboard(qapp) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Leave the clipboard empty after each test.

    With the offscreen platform, a clipboard still owning our QMimeData when the interpreter
    exits after main windows were created and destroyed crashes Qt's teardown (exit status 139
    after every test passed). Tests that copy therefore clean up here.
    """
    yield
    qapp.clipboard().clear()
