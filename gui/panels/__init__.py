"""The editor's dock panels: palette, inspector, problems, summary and code."""

from gui.panels.code import CodePanel
from gui.panels.inspector import InspectorPanel
from gui.panels.palette import LAYER_MIME, PalettePanel
from gui.panels.problems import ProblemsPanel
from gui.panels.summary import SummaryPanel

__all__ = ["LAYER_MIME", "CodePanel", "InspectorPanel", "PalettePanel", "ProblemsPanel", "SummaryPanel"]
