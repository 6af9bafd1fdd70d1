"""The training panel's one document edit: the project's training settings, as an undo step.

Pressing Start writes the form's settings into ``project.training`` (they are saved with the
project). Doing it through the document's undo stack marks the document modified, so closing the
window offers to save them instead of silently dropping them, and Ctrl+Z gives the old ones back.
The command changes the document only (:meth:`gui.document.Document.set_training`); the settings
form follows the document's ``training_changed``.
"""

from __future__ import annotations

import copy
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
    """

    def __init__(self, doc: Any, training: dict[str, Any]) -> None:
        super().__init__("Set training settings")
        self.doc = doc
        self.old = copy.deepcopy(dict(doc.project.training or {}))
        self.new = copy.deepcopy(dict(training))
        self.noop = self.old == self.new or _normal(self.old) == self.new

    def redo(self) -> None:  # Qt override
        self.doc.set_training(self.new)

    def undo(self) -> None:  # Qt override
        self.doc.set_training(self.old)


__all__ = ["SetTrainingCommand"]
