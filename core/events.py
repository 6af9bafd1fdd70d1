"""A tiny observer primitive for the Qt-free model.

The model emits plain events; exactly one GUI bridge turns them into Qt signals. Keeping this
in pure Python means every core object can be tested without a ``QApplication``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Event:
    """A named list of subscribers, called in subscription order with the emitted arguments."""

    __slots__ = ("_subscribers", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._subscribers: list[Callable[..., Any]] = []

    def sub(self, callback: Callable[..., Any]) -> None:
        """Subscribe ``callback``; subscribing the same callable twice is a no-op."""
        if callback not in self._subscribers:
            self._subscribers.append(callback)

    def unsub(self, callback: Callable[..., Any]) -> None:
        """Remove ``callback`` if subscribed."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every subscriber; a copy of the list lets subscribers unsubscribe while called."""
        for callback in list(self._subscribers):
            callback(*args)

    def __len__(self) -> int:
        return len(self._subscribers)

    def __repr__(self) -> str:
        return f"Event({self.name!r}, {len(self._subscribers)} subscribers)"
