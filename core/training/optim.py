"""Optimizers, learning-rate schedules and losses named in :class:`~core.training.config.TrainConfig`.

The schedule is our own small class rather than a chain of torch schedulers: warm-up combines
with every schedule the same way, reduce-on-plateau mixes per-step and per-epoch decisions,
and its whole state is two numbers, so checkpoints and resume are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.training.config import TrainConfig
from core.training.health import TrainingFailure


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over the parameters that require grad (frozen nodes are left out)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainingFailure("Nothing to train: every layer is frozen (or the network has no parameters). "
                              "Unfreeze at least one layer in the inspector.")
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=wd)  # type: ignore[arg-type]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=wd)  # type: ignore[arg-type]
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)


class LRSchedule:
    """Learning-rate factor as a function of training progress, set on the optimizer every step.

    ``constant``; ``step`` (× gamma every ``step_size`` epochs); ``cosine`` (to 0 at the end);
    ``onecycle`` (cosine up from lr/25 over the first 30 %, then cosine down to lr/10⁴ — the
    shape of torch's OneCycleLR); ``plateau`` (× gamma when the validation loss has not improved
    for ``plateau_patience`` epochs). Warm-up ramps linearly from ~0 over ``warmup_epochs``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.optimizer = optimizer
        self.kind = cfg.schedule
        self.base_lr = cfg.lr
        self.epochs = cfg.epochs
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.warmup = cfg.warmup_epochs
        self.step_size = cfg.step_size or max(1, cfg.epochs // 3)
        self.gamma = cfg.gamma
        self.patience = cfg.plateau_patience
        self.plateau_factor = 1.0
        self.best_val: float | None = None
        self.bad_epochs = 0
        self.lr = self.base_lr

    def factor(self, progress: float) -> float:
        """``progress`` in epochs since the start (fractional)."""
        total = max(self.epochs, 1e-9)
        if self.kind == "step":
            f = self.gamma ** int(progress // self.step_size)
        elif self.kind == "cosine":
            f = 0.5 * (1 + math.cos(math.pi * min(progress / total, 1.0)))
        elif self.kind == "onecycle":
            t = min(progress / total, 1.0)
            if t < 0.3:
                f = _cos_between(1 / 25, 1.0, t / 0.3)
            else:
                f = _cos_between(1.0, 1 / 25e4, (t - 0.3) / 0.7)
        elif self.kind == "plateau":
            f = self.plateau_factor
        else:
            f = 1.0
        if self.warmup > 0 and progress < self.warmup:
            f *= (progress + 1.0 / self.steps_per_epoch) / self.warmup
        return f

    def set_step(self, epoch: int, step: int) -> float:
        """Set the learning rate for ``step`` (0-based) of ``epoch`` (1-based); returns it."""
        self.lr = self.base_lr * self.factor(epoch - 1 + step / self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr
        return self.lr

    def epoch_end(self, val_loss: float | None) -> None:
        if self.kind != "plateau" or val_loss is None:
            return
        if self.best_val is None or val_loss < self.best_val * (1 - 1e-4):
            self.best_val, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.patience:
                self.plateau_factor *= self.gamma
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_factor": self.plateau_factor, "best_val": self.best_val, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_factor = float(state["plateau_factor"])
        self.best_val = state["best_val"]
        self.bad_epochs = int(state["bad_epochs"])


def _cos_between(start: float, end: float, t: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


LossFn = Callable[[torch.Tensor | Sequence[torch.Tensor], torch.Tensor], torch.Tensor]
SingleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_loss(cfg: TrainConfig, num_classes: int) -> tuple[LossFn, SingleLoss]:
    """``(loss(outputs, labels), single(logits, labels))``: the first sums the main output and the
    weighted auxiliary outputs (GoogLeNet: ``loss0 + 0.3·aux1 + 0.3·aux2``)."""
    kind = cfg.loss

    def single(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.ndim > 2:
            logits = logits.flatten(1)
        if kind == "cross_entropy":
            return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        target = F.one_hot(y, num_classes).to(logits.dtype)
        if kind == "bce_with_logits":
            return F.binary_cross_entropy_with_logits(logits, target)
        if kind == "mse":
            return F.mse_loss(logits, target)
        if kind == "l1":
            return F.l1_loss(logits, target)
        return F.huber_loss(logits, target)

    def total(outputs: torch.Tensor | Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return single(outputs, y)
        main, *aux = outputs
        loss = single(main, y)
        weights = list(cfg.aux_weights) if cfg.aux_weights is not None else [0.3] * len(aux)
        for w, out in zip(weights, aux, strict=False):
            if w:
                loss = loss + w * single(out, y)
        return loss

    return total, single


def main_output(outputs: Any) -> torch.Tensor:
    """The first output (the classifier) of a model that may return a tuple, flattened to (B, K)."""
    out = outputs[0] if isinstance(outputs, tuple | list) else outputs
    return out.flatten(1) if out.ndim > 2 else out
