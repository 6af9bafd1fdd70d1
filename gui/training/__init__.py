"""Training from the editor: the Training dock and Train menu, the QThread worker and the viewers.

The modules: :mod:`~gui.training.panel_dock` (the dock :class:`gui.main_window.MainWindow` builds
and rebinds like its other panels, and the Train menu), :mod:`~gui.training.preload` (the panel's
heavy modules imported on a background thread), :mod:`~gui.training.dock` (the panel itself),
:mod:`~gui.training.worker` (a run on its own thread), :mod:`~gui.training.screenshot`
(``main.py FILE --train --screenshot OUT``) and the viewers (settings, plots, maps, predictions,
runs). Importing this package stays light (Qt only): the panel, the worker and what they need
(torch, pyqtgraph) are imported when first asked for.
"""

from __future__ import annotations

from typing import Any

from gui.training.panel_dock import TrainingDock, install_training, training_dock_height
from gui.training.screenshot import screenshot_after_training


def __getattr__(name: str) -> Any:  # the heavy classes, imported when first asked for (PEP 562)
    if name == "TrainingPanel":
        from gui.training.dock import TrainingPanel

        return TrainingPanel
    if name in ("TrainingWorker", "RunRequest"):
        from gui.training import worker

        return getattr(worker, name)
    raise AttributeError(f"module 'gui.training' has no attribute {name!r}")


__all__ = ["RunRequest", "TrainingDock", "TrainingPanel", "TrainingWorker", "install_training",
           "screenshot_after_training", "training_dock_height"]
