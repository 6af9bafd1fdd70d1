"""The node-graph canvas: a scene that observes a :class:`gui.document.Document` and a view.

``CanvasScene(doc)`` mirrors the model (nodes, edges, blocks, analysis results) and writes it
only by pushing undo commands; ``CanvasView(scene)`` adds the gestures, shortcuts and the public
API the window uses (fit, find, copy/paste, auto-arrange …). Where cards go is
:mod:`core.layout`'s business, not the canvas's.

Names are imported lazily: :mod:`gui.commands` uses :mod:`gui.canvas.blocks` without pulling in
the scene, which itself imports the commands.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CanvasScene", "CanvasView"]


def __getattr__(name: str) -> Any:
    if name == "CanvasScene":
        from gui.canvas.scene import CanvasScene

        return CanvasScene
    if name == "CanvasView":
        from gui.canvas.view import CanvasView

        return CanvasView
    raise AttributeError(f"module 'gui.canvas' has no attribute {name!r}")
