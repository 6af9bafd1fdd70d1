"""What the engine reports, and the :class:`Callbacks` it reports through.

Every event is a frozen dataclass with ``to_dict()`` (plain JSON), so the CLI can print it and
the GUI adapter can pass it across threads as-is. Callbacks run on the training thread: a GUI
adapter should only hand the event to a queued Qt signal and return. ``batch`` is throttled by
the engine to at most 20 calls per second and carries every step's loss since the previous call
(fetched from the device in one transfer), so a plot gets all the points without a per-step sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class RunInfo:
    """Sent once when training starts (after setup, before the first batch)."""

    device: str
    device_name: str
    amp: str  # effective mixed precision: off, bf16 or fp16
    dataset: dict[str, Any]
    epochs: int
    start_epoch: int  # 1 for a new run; the next epoch when resuming
    steps_per_epoch: int
    batch_size: int
    world_size: int
    params: int
    trainable_params: int
    run_dir: str | None
    config: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BatchProgress:
    """Training progress inside an epoch. ``losses`` are the per-step losses since the last report."""

    epoch: int
    epochs: int
    step: int  # 1-based, the step just finished
    steps: int
    global_step: int
    loss: float  # the latest step's loss
    losses: tuple[float, ...]
    first_step: int  # global step of losses[0]
    lr: float
    images_per_s: float
    eta_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch's results. Accuracies are fractions in [0, 1]; ``val_top5`` only above 5 classes."""

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    val_top5: float | None
    lr: float
    images_per_s: float  # samples (images, or token sequences: × T for tokens) per second of the training pass
    seconds: float
    eta_s: float
    data_wait: float  # fraction of the training pass spent waiting for batches
    best: bool = False
    confusion: tuple[tuple[int, ...], ...] = ()  # [true class][predicted class], validation set (class targets)
    # Language models: exp(mean loss per token) of the training and validation passes, and the text
    # generated from the prompt after the epoch ("" when none). Accuracies are then per token.
    train_perplexity: float | None = None
    val_perplexity: float | None = None
    generated: str = ""
    # Segmentation: mean IoU over the classes present (in truth or prediction) in the validation set,
    # the share of labelled pixels predicted right, and each class's IoU (None: the class is absent).
    # ``confusion`` is then per pixel, and val_acc equals val_pixel_acc.
    val_miou: float | None = None
    val_pixel_acc: float | None = None
    val_iou: tuple[float | None, ...] = ()
    # GANs: the epoch's mean discriminator and generator losses, and the discriminator's mean
    # probability for real images, D(x), and for generated ones, D(G(z)) (sigmoid of its logit).
    # train_loss is d_loss + g_loss; val_loss/val_acc are None.
    d_loss: float | None = None
    g_loss: float | None = None
    d_real: float | None = None
    d_fake: float | None = None

    JSON_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "seconds")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["confusion"] = [list(row) for row in self.confusion]
        return d

    def json_line(self) -> dict[str, Any]:
        """The ``train --json`` object: the documented keys (plus top-5 when there is one, and a
        language model's ``val_perplexity`` and ``generated`` text). A perplexity too large for a
        float (a diverged model) is ``null``: JSON has no infinity."""
        d = {k: _round(getattr(self, k)) for k in self.JSON_KEYS}
        if self.val_top5 is not None:
            d["val_top5"] = _round(self.val_top5)
        if self.val_perplexity is not None:
            d["val_perplexity"] = _round(self.val_perplexity) if math.isfinite(self.val_perplexity) else None
        if self.generated:
            d["generated"] = self.generated
        for key in ("val_miou", "val_pixel_acc", "d_loss", "g_loss", "d_real", "d_fake"):
            if getattr(self, key) is not None:
                d[key] = _round(getattr(self, key))
        return d


@dataclass(frozen=True)
class NodeStats:
    """Statistics of one node's output on the probe sample, and its parameters' gradient norm."""

    mean: float
    std: float
    zero_fraction: float  # "dead" share after a ReLU
    grad_norm: float | None  # None: the node has no trainable parameters (or no gradient yet)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProbeData:
    """Feature maps of the probed nodes for the fixed probe sample (CPU tensors, downsampled).

    ``activations[node]`` is ``(samples, channels, H, W)`` for maps or ``(samples, features)``;
    ``channels`` holds the original channel count before the cap. On token data ``images`` holds the
    probe sample's token ids (int64 (samples, T)), ``tokens`` the same decoded, a T×C node's
    activation is ``(samples, T, C)`` (a hidden-state heat map; ``channels`` is C) and
    ``probabilities`` are a language model's at the last position. ``attention[node]`` is float32
    ``(samples, heads, T, S)`` of each module that keeps its attention weights (``keep_attention``);
    ``time_grad_norms[node]`` is float32 ``(T,)``: ‖∂loss/∂output_t‖ over the probe sample of each
    recurrent node, computed with ``torch.autograd.grad`` (parameters' ``.grad`` untouched).
    """

    epoch: int
    step: int
    global_step: int
    images: torch.Tensor  # uint8 (samples, C, H, W): the probe sample as the user sees it
    labels: tuple[int, ...]
    probabilities: torch.Tensor  # (samples, classes) softmax of the first output
    activations: dict[str, torch.Tensor] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    stats: dict[str, NodeStats] = field(default_factory=dict)
    tokens: tuple[tuple[str, ...], ...] = ()
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    time_grad_norms: dict[str, torch.Tensor] = field(default_factory=dict)
    # Segmentation: the probe sample's true and predicted masks, uint8 (samples, H, W) class ids at
    # the images' size (the ignore index stays as it is in the truth).
    masks_true: torch.Tensor | None = None
    masks_pred: torch.Tensor | None = None


@dataclass(frozen=True)
class GanSamples:
    """A GAN's generator output for the run's fixed noise (the same z all run long), after an epoch
    and every few seconds while training: uint8 ``(n, C, H, W)`` on the CPU, mapped from the
    generator's [-1, 1] back to 0..255."""

    epoch: int
    step: int
    global_step: int
    images: torch.Tensor


@dataclass(frozen=True)
class RunSummary:
    """How a run ended. ``status``: completed, early_stopped, stopped or failed."""

    status: str
    epochs_done: int
    best_epoch: int | None
    best_val_acc: float | None
    last: EpochMetrics | None
    run_dir: str | None
    seconds: float
    message: str = ""
    best_val_perplexity: float | None = None  # language models: the best epoch's (lowest val loss) perplexity
    best_val_miou: float | None = None  # segmentation: the best epoch's mean IoU

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["last"] = self.last.json_line() if self.last is not None else None
        return d


@dataclass
class Callbacks:
    """Optional receivers of the engine's events; leave any of them ``None``."""

    run_started: Callable[[RunInfo], None] | None = None
    batch: Callable[[BatchProgress], None] | None = None
    epoch_end: Callable[[EpochMetrics], None] | None = None
    probe: Callable[[ProbeData], None] | None = None
    checkpoint_saved: Callable[[str], None] | None = None
    warning: Callable[[str], None] | None = None
    paused: Callable[[bool], None] | None = None  # True when the run pauses, False when it goes on
    finished: Callable[[RunSummary], None] | None = None
    failed: Callable[[str], None] | None = None
    # the core.training.weights.WeightsReport of weights loaded before the first batch (fine-tuning)
    weights: Callable[[Any], None] | None = None
    samples: Callable[[GanSamples], None] | None = None  # GANs: the fixed-noise grid

    def emit(self, name: str, *args: Any) -> None:
        fn = getattr(self, name)
        if fn is not None:
            fn(*args)


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value
