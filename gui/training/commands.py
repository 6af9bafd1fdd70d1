"""The training panel's one document edit: the project's training settings, as an undo step.

Pressing Start writes the form's settings into ``project.training`` (they are saved with the
project). Doing it through the document's undo stack marks the document modified, so closing the
window offers to save them instead of silently dropping them, and Ctrl+Z gives the old ones back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QUndoCommand

from core.training import ConfigError, TrainConfig


def _normal(training: dict[str, Any]) -> dict[str, Any] | None:
    """A section as the panel writes it (defaults left out), so an unedited form is no change."""
    try:
        return TrainConfig.from_dict(training).to_dict(only_changed=True)
    except ConfigError:
        return None


class SetTrainingCommand(QUndoCommand):
    """Set ``doc.project.training`` to ``training``; undo restores the previous section.

    ``noop`` is True when nothing changes, not even in how the section is written (``Document.push``
    then skips it: no empty undo step, the document stays unmodified).
    ``on_change(training)`` runs after an undo or a later redo, so the settings form can follow.
    """

    def __init__(self, doc: Any, training: dict[str, Any],
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__("Set training settings")
        self.doc = doc
        self.old = copy.deepcopy(dict(doc.project.training or {}))
        self.new = copy.deepcopy(dict(training))
        self.noop = self.old == self.new or _normal(self.old) == self.new
        self.on_change = on_change
        self._first = True  # the first redo is the push itself: the form already shows these values

    def _set(self, training: dict[str, Any]) -> None:
        self.doc.project.training = copy.deepcopy(training)
        if self.on_change is not None:
            self.on_change(copy.deepcopy(training))

    def redo(self) -> None:  # Qt override
        if self._first:
            self._first = False
            self.doc.project.training = copy.deepcopy(self.new)
            return
        self._set(self.new)

    def undo(self) -> None:  # Qt override
        self._set(self.old)


__all__ = ["SetTrainingCommand"]
