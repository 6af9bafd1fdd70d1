"""What of the Training dock follows the chosen task (:mod:`core.training.tasks`).

A task names the viewers that apply to it; :class:`TaskViews` adds the task-only tabs (Text: the
sample a language model writes after each epoch, :class:`gui.training.text_view.TextView`;
Attention: attention maps, hidden states and gradients per time step,
:class:`gui.training.sequence_view.SequenceView`; Segmentation: true and predicted masks, IoU per
class and the head's receptive field, :class:`gui.training.segmentation_view.SegmentationView`;
Samples: a GAN's generated grid, :class:`gui.training.gan_view.GanSamplesView`), hides the tabs the
chosen task does not use (Predictions and Evaluation for a language model) and shows them again
when the task changes back, turns the accuracy plot into perplexity for language models, mean IoU
for segmentation and D(x) / D(G(z)) for GANs (:func:`plot_metric`), and words the headline
numbers ("val perplexity 4.21", "val mIoU 0.71"). It follows the settings form's Task chooser;
the run's own task decides what its events mean.
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
    from core.training.events import GanSamples
    from gui.training.dock import TrainingPanel
    from gui.training.gan_view import GanSamplesView
    from gui.training.segmentation_view import SegmentationView
    from gui.training.sequence_view import SequenceView
    from gui.training.text_view import TextView

# layers whose outputs the Attention tab draws (hidden states, attention weights, gradients per step)
SEQUENCE_CATEGORIES = (Category.RECURRENT, Category.ATTENTION)


def uses_perplexity(task: TaskOption) -> bool:
    return "val_perplexity" in task.metrics


def plot_metric(task: TaskOption) -> str:
    """What the second plot shows for ``task`` (:meth:`gui.training.plots.MetricsPlots.set_metric`)."""
    if uses_perplexity(task):
        return "perplexity"
    if "val_miou" in task.metrics:
        return "miou"
    if "d_real" in task.metrics:
        return "gan"
    return "accuracy"


def gan_headline(m: EpochMetrics | None) -> str:
    """``D(x) 0.62 · D(G(z)) 0.31``: the discriminator's mean output on real and on generated images."""
    if m is None or m.d_real is None or m.d_fake is None:
        return ""
    return f"D(x) {m.d_real:.2f} · D(G(z)) {m.d_fake:.2f}"


def epoch_headline(m: EpochMetrics, task: TaskOption) -> str:
    """The epoch's validation figure in users' words: ``val perplexity 4.21``, ``val mIoU 0.71``,
    ``D(x) 0.62 · D(G(z)) 0.31`` or ``val acc 93.1%``."""
    metric = plot_metric(task)
    if metric == "perplexity" and m.val_perplexity is not None:
        return f"val perplexity {m.val_perplexity:.2f}"
    if metric == "miou" and m.val_miou is not None:
        return f"val mIoU {m.val_miou:.2f}"
    if metric == "gan":
        return gan_headline(m)
    return f"val acc {m.val_acc:.1%}" if m.val_acc is not None else ""


def summary_headline(summary: RunSummary, task: TaskOption) -> str:
    """A finished run's best validation figure (with its epoch), or ``""``."""
    metric = plot_metric(task)
    if metric == "gan":  # no validation figure: how the last epoch left the two networks
        return gan_headline(summary.last)
    if metric == "miou":
        miou = summary.best_val_miou
        if miou is None and summary.last is not None:
            miou = summary.last.val_miou
        return f"best val mIoU {miou:.2f}" + (f" (epoch {summary.best_epoch})" if summary.best_epoch else "") \
            if miou is not None else ""
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
        self._probe: ProbeData | None = None  # the latest, for an Attention or Segmentation tab built later
        self._epoch: EpochMetrics | None = None  # the latest, likewise
        self._samples: GanSamples | None = None  # the latest generated grid, for a Samples tab built later
        self._run: tuple[Any, str | None] | None = None  # the current/last run's (config, folder)
        tabs = panel.viewer_tabs
        tabs.add("text", "Text", _make_text, "text")
        tabs.add("attention", "Attention", _make_attention, "attention")
        tabs.add("segmentation", "Segmentation", _make_segmentation, "segmentation")
        tabs.add("samples", "Samples", _make_samples, "samples")
        panel.settings.task.currentIndexChanged.connect(self.follow_form)
        panel.settings.data_changed.connect(self._data_changed)
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

    @property
    def segmentation(self) -> SegmentationView:
        return cast("SegmentationView", self.panel.viewer_tabs.get("segmentation"))

    @property
    def samples(self) -> GanSamplesView:
        return cast("GanSamplesView", self.panel.viewer_tabs.get("samples"))

    def _built(self, key: str) -> Any:
        return self.panel.viewer_tabs.built(key)

    def follow_form(self, *_: Any) -> None:
        """The form's task changed: its tabs and its curve (not while a run shows another task's)."""
        self.task = self.panel.settings.task_option
        if not self.panel.running:
            self._show(self.task)

    def _show(self, task: TaskOption) -> None:
        self.panel.viewer_tabs.set_viewers(task.viewers)
        self.panel.plots.set_metric(plot_metric(task))

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
        self._probe = self._epoch = self._samples = None
        run_dir = self.panel.run_dir
        self._run = (config, str(run_dir) if run_dir is not None else None)
        text = self.panel.viewer_tabs.built("text")
        if text is not None or "text" in self.run_task.viewers:
            self.text.set_run(config)
        attention = cast("SequenceView | None", self.panel.viewer_tabs.built("attention"))
        if attention is not None:
            attention.clear()
            attention.set_analysis(self.panel.doc.analysis if self.panel.doc is not None else None)
        segmentation = cast("SegmentationView | None", self._built("segmentation"))
        if segmentation is not None:
            segmentation.clear()
            _setup_segmentation(self.panel, segmentation)
        samples = cast("GanSamplesView | None", self._built("samples"))
        if samples is not None:
            samples.clear()
            samples.run_started(*self._run)

    def run_ended(self) -> None:
        """Back to the form's task (the user may have chosen another meanwhile)."""
        self._show(self.task)

    def add_epoch(self, m: EpochMetrics) -> None:
        self._epoch = m
        if m.generated:
            self.text.add_epoch(m.epoch, m.generated)
        for key in ("segmentation", "samples"):
            view = self._built(key)
            if view is not None:
                view.add_epoch(m)

    def show_probe(self, data: ProbeData) -> None:
        self._probe = data
        for key in ("attention", "segmentation"):
            view = self._built(key)
            if view is not None:
                view.show_probe(data)

    def show_samples(self, samples: GanSamples) -> None:
        """A GAN's generated grid (the worker's ``samples`` signal): to the Samples tab, or kept for it."""
        self._samples = samples
        view = cast("GanSamplesView | None", self._built("samples"))
        if view is not None:
            view.add_samples(samples)

    def _data_changed(self, data: Any) -> None:
        """The form opened another data source: the Segmentation tab's classes and colours follow it
        (not while a run shows its own)."""
        view = cast("SegmentationView | None", self._built("segmentation"))
        if view is not None and data is not None and not self.panel.running:
            view.set_data(data)

    @property
    def rate_unit(self) -> str:
        """What the run's samples per second count: images, or token sequences."""
        return "seq/s" if self.run_task.modality == "tokens" else "img/s"

    def epoch_headline(self, m: EpochMetrics) -> str:
        return epoch_headline(m, self.run_task)

    def summary_headline(self, summary: RunSummary) -> str:
        return summary_headline(summary, self.run_task)

    def set_theme(self, theme: Any) -> None:
        for key in ("text", "attention", "segmentation", "samples"):
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


def _setup_segmentation(panel: TrainingPanel, view: SegmentationView) -> None:
    """The data's classes, colours and object size, and the head whose field a click shows: the run's
    graph while one runs (or ran), the canvas's otherwise."""
    view.set_data(panel.settings.data)
    doc = panel.doc
    if panel.run_graph is not None and panel.run_doc is doc and doc is not None:
        from core.analysis import analyze
        from core.project import graph_from_dict

        graph = graph_from_dict(panel.run_graph)
        view.set_analysis(analyze(graph), graph)
    elif doc is not None:
        view.set_analysis(doc.analysis, doc.graph)


def _make_segmentation(panel: TrainingPanel) -> SegmentationView:
    from gui.training.segmentation_view import SegmentationView

    view = SegmentationView()
    _setup_segmentation(panel, view)
    views = panel.task_views
    if views._epoch is not None:
        view.add_epoch(views._epoch)
    if views._probe is not None:
        view.show_probe(views._probe)
    return view


def _make_samples(panel: TrainingPanel) -> GanSamplesView:
    from gui.training.gan_view import GanSamplesView  # written alongside (the GAN viewer)

    view = GanSamplesView()
    views = panel.task_views
    if views._run is not None:
        view.run_started(*views._run)
    if views._samples is not None:
        view.add_samples(views._samples)
    if views._epoch is not None:
        view.add_epoch(views._epoch)
    return view


__all__ = ["TaskViews", "epoch_headline", "gan_headline", "plot_metric", "summary_headline", "uses_perplexity"]
