"""Training tasks, declared once: what data a task takes, its loss, its metrics and its viewers.

A task ties together what must travel together: the kind of samples it trains on (images or
token sequences), how its loss and metrics are computed, which epoch metrics the CLI and the
curves show, and which Training-dock viewers apply. The engine, the CLI (``train --task``), the
GUI's settings form and the memory estimate all read these declarations; the project's
``training`` section names the task (``"task"``; absent means ``classification``, so every
earlier file still means the same). Adding a task is one :class:`TaskOption` in ``_TASKS``.

No torch here: the CLI parser and the editor read these declarations without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.training.options import GENERATE_LENGTH, IGNORE_INDEX, N_CRITIC, TEMPERATURE, ParamOption


@dataclass(frozen=True)
class TaskOption:
    """One task.

    ``modality``: the samples it trains on, matched against ``DataSource.modality``: ``"image"``
    (uint8 C×H×W) or ``"tokens"`` (int64 token ids, T per sample).

    ``target``: what a label is: ``"class"`` (one class per sample; the output is (classes,)),
    ``"next-token"`` (a token per time step; the output is T×vocabulary), ``"mask"`` (a class per
    pixel: the output is classes×H×W against an H×W mask) or ``"gan"`` (no label: a generator and
    a discriminator, two networks in one graph, are trained against each other on the images).

    ``datasets``: the dataset option names it offers, default first. ``metrics``: the
    :class:`~core.training.events.EpochMetrics` fields its curves and epoch lines show.
    ``viewers``: the Training-dock tabs that apply (``maps``, ``predictions``, ``evaluation``,
    ``text``, ``attention``, ``segmentation``, ``samples``). ``params``: settings only this task
    reads.
    """

    name: str
    label: str
    doc: str
    modality: str
    target: str
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    viewers: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    params: tuple[ParamOption, ...] = ()  # the task's own settings (generated text's length …)

    @property
    def default_dataset(self) -> str:
        return self.datasets[0]


_TASKS = (
    TaskOption("classification", "Image classification",
               "one class per image: softmax cross-entropy, accuracy and top-5",
               "image", "class", ("shapes", "mnist", "fashion-mnist", "cifar10", "folder", "synthetic"),
               ("val_acc", "val_top5"), ("maps", "predictions", "evaluation"), aliases=("image-classification",)),
    TaskOption("language-model", "Language model",
               "predict each next token of a text: cross-entropy per token, perplexity, generated text",
               "tokens", "next-token", ("sentences", "text"),
               ("val_perplexity", "val_acc"), ("maps", "text", "attention"), aliases=("lm", "language_model"),
               params=(TEMPERATURE, GENERATE_LENGTH)),
    TaskOption("sequence-classification", "Sequence classification",
               "one class per token sequence: softmax cross-entropy and accuracy",
               "tokens", "class", ("brackets", "digitsum"),
               ("val_acc",), ("maps", "evaluation", "attention"),
               aliases=("seq-classification", "sequence_classification")),
    TaskOption("segmentation", "Semantic segmentation",
               "a class per pixel: cross-entropy (or Dice) over the pixels, pixel accuracy and mean IoU",
               "image", "mask", ("shapes-seg", "segfolder", "voc"),
               ("val_miou", "val_pixel_acc"), ("maps", "segmentation", "evaluation"),
               aliases=("seg", "semantic-segmentation"), params=(IGNORE_INDEX,)),
    TaskOption("gan", "GAN (image generation)",
               "a generator and a discriminator trained against each other: D's and G's losses, D(x) and D(G(z)), "
               "a grid of generated samples",
               "image", "gan", ("shapes", "mnist", "fashion-mnist", "cifar10", "folder"),
               ("d_loss", "g_loss", "d_real", "d_fake"), ("samples", "maps"), aliases=("dcgan",),
               params=(N_CRITIC,)),
)

TASKS: dict[str, TaskOption] = {t.name: t for t in _TASKS}
DEFAULT_TASK = "classification"


def task_aliases() -> dict[str, str]:
    """Other spelling → task name."""
    return {alias: t.name for t in _TASKS for alias in t.aliases}


def task_option(name: str | None) -> TaskOption:
    """The task called ``name`` (or an alias); ``None`` or ``""`` is the default task.

    Raises ``KeyError`` with a sentence naming the known tasks for anything else.
    """
    key = (name or DEFAULT_TASK).strip().lower()
    key = task_aliases().get(key, key)
    if key not in TASKS:
        raise KeyError(f"unknown task {name!r}; use one of {', '.join(TASKS)}")
    return TASKS[key]
