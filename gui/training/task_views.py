"""What of the Training dock follows the chosen task (:mod:`core.training.tasks`).

A task names the viewers that apply to it; :class:`TaskViews` adds the task-only tabs (Text: the
sample a language model writes after each epoch, :class:`gui.training.text_view.TextView`;
Attention: attention maps, hidden states and gradients per time step,
:class:`gui.training.sequence_view.SequenceView`), hides the tabs the chosen task does not use
(Predictions and Evaluation for a language model) and shows them again when the task changes
back, turns the accuracy plot into perplexity for language models, and words the headline
numbers ("val perplexity 4.21"). It follows the settings form's Task chooser; the run's own
task decides what its events mean.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QObject

from core.layers.registry import get_spec
from core.layers.spec import Category
from core.training import EpochMetrics, ProbeData, RunSummary
from core.training.tasks import TaskOption, task_option

if TYPE_CHECKING:
    from gui.training.dock import TrainingPanel
    from gui.training.sequence_view import SequenceView
    from gui.training.text_view import TextView

# layers whose outputs the Attention tab draws (hidden states, attention weights, gradients per step)
SEQUENCE_CATEGORIES = (Category.RECURRENT, Category.ATTENTION)


def uses_perplexity(task: TaskOption) -> bool:
    return "val_perplexity" in task.metrics


def epoch_headline(m: EpochMetrics, task: TaskOption) -> str:
    """The epoch's validation figure in users' words: ``val perplexity 4.21`` or ``val acc 93.1%``."""
    if uses_perplexity(task) and m.val_perplexity is not None:
        return f"val perplexity {m.val_perplexity:.2f}"
    return f"val acc {m.val_acc:.1%}" if m.val_acc is not None else ""


def summary_headline(summary: RunSummary, task: TaskOption) -> str:
    """A finished run's best validation figure (with its epoch), or ``""``."""
    if uses_perplexity(task):
        ppl = summary.best_val_perplexity
        if ppl is None and summary.last is not None:
            ppl = summary.last.val_perplexity
        return f"val perplexity {ppl:.2f}" + (f" (epoch {summary.best_epoch})" if summary.best_epoch else "") \
            if ppl is not None else ""
    acc = summary.best_val_acc
    return f"best val acc {acc:.1%} (epoch {summary.best_epoch})" if acc is not None else ""


class TaskViews(QObject):
    """The panel's task-dependent tabs and plot (a child of the panel)."""

    def __init__(self, panel: TrainingPanel) -> None:
        super().__init__(panel)
        self._panel = weakref.ref(panel)  # its child: a strong reference back would be a cycle
        self.task = task_option(None)  # the form's task; a run's own while it runs (run_task)
        self.run_task = self.task
        self._probe: ProbeData | None = None  # the latest, for an Attention tab built later
        tabs = panel.viewer_tabs
        tabs.add("text", "Text", _make_text, "text")
        tabs.add("attention", "Attention", _make_attention, "attention")
        panel.settings.task.currentIndexChanged.connect(self.follow_form)
        self.follow_form()

    @property
    def panel(self) -> TrainingPanel:
        panel = self._panel()
        assert panel is not None, "the task views outlived their panel"
        return panel

    @property
    def text(self) -> TextView:
        return cast("TextView", self.panel.viewer_tabs.get("text"))

    @property
    def attention(self) -> SequenceView:
        return cast("SequenceView", self.panel.viewer_tabs.get("attention"))

    def follow_form(self, *_: Any) -> None:
        """The form's task changed: its tabs and its curve (not while a run shows another task's)."""
        self.task = self.panel.settings.task_option
        if not self.panel.running:
            self._show(self.task)

    def _show(self, task: TaskOption) -> None:
        self.panel.viewer_tabs.set_viewers(task.viewers)
        self.panel.plots.set_metric("perplexity" if uses_perplexity(task) else "accuracy")

    def probes(self, ids: list[str]) -> list[str]:
        """The nodes a run probes: those the maps show, and for a task with the Attention tab, every
        recurrent and attention layer (their hidden states, attention weights and step gradients)."""
        doc = self.panel.doc
        task = self.run_task if self.panel.running else self.task  # a run probes for its own task
        if "attention" not in task.viewers or doc is None:
            return ids
        analysis = doc.analysis
        extra = [i for i in analysis.order if i not in ids and _is_sequence_layer(analysis.nodes[i].type)]
        return [*ids, *extra]

    def run_started(self, config: Any) -> None:
        """A run of ``config`` starts: its task's tabs and curve, and empty viewers."""
        self.run_task = task_option(getattr(config, "task", None))
        self._show(self.run_task)
        self._probe = None
        text = self.panel.viewer_tabs.built("text")
        if text is not None or "text" in self.run_task.viewers:
            self.text.set_run(config)
        attention = cast("SequenceView | None", self.panel.viewer_tabs.built("attention"))
        if attention is not None:
            attention.clear()
            attention.set_analysis(self.panel.doc.analysis if self.panel.doc is not None else None)

    def run_ended(self) -> None:
        """Back to the form's task (the user may have chosen another meanwhile)."""
        self._show(self.task)

    def add_epoch(self, m: EpochMetrics) -> None:
        if m.generated:
            self.text.add_epoch(m.epoch, m.generated)

    def show_probe(self, data: ProbeData) -> None:
        self._probe = data
        attention = cast("SequenceView | None", self.panel.viewer_tabs.built("attention"))
        if attention is not None:
            attention.show_probe(data)

    @property
    def rate_unit(self) -> str:
        """What the run's samples per second count: images, or token sequences."""
        return "seq/s" if self.run_task.modality == "tokens" else "img/s"

    def epoch_headline(self, m: EpochMetrics) -> str:
        return epoch_headline(m, self.run_task)

    def summary_headline(self, summary: RunSummary) -> str:
        return summary_headline(summary, self.run_task)

    def set_theme(self, theme: Any) -> None:
        for key in ("text", "attention"):
            view = self.panel.viewer_tabs.built(key)
            if view is not None:
                view.set_theme(theme)  # type: ignore[attr-defined]


def _is_sequence_layer(type_name: str) -> bool:
    spec = get_spec(type_name)
    return spec is not None and spec.category in SEQUENCE_CATEGORIES and type_name != "Embedding"


def _make_text(_panel: TrainingPanel) -> TextView:
    from gui.training.text_view import TextView

    return TextView()  # a language model's run fills it from its start (TaskViews.run_started)


def _make_attention(panel: TrainingPanel) -> SequenceView:
    from gui.training.sequence_view import SequenceView

    view = SequenceView()
    if panel.doc is not None:
        view.set_analysis(panel.doc.analysis)
    probe = panel.task_views._probe
    if probe is not None:
        view.show_probe(probe)
    return view


__all__ = ["TaskViews", "epoch_headline", "summary_headline", "uses_perplexity"]
