"""Optimizers, learning-rate schedules and losses named in :class:`~core.training.config.TrainConfig`,
built from their declarations in :mod:`core.training.options`.

The schedule is our own small class rather than a chain of torch schedulers: warm-up combines
with every schedule the same way, reduce-on-plateau mixes per-step and per-epoch decisions,
and its whole state is two numbers, so checkpoints and resume are exact.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from core.training.config import TrainConfig
from core.training.health import TrainingFailure
from core.training.options import LOSSES, OPTIMIZERS, SCHEDULES, pixel_cross_entropy

PIXEL_LOSSES = ("cross_entropy", "dice", "ce_dice")  # the losses that know an ignore index


def owner(name: str, node_ids: Collection[str]) -> str | None:
    """The node that owns the parameter, buffer or submodule ``name`` of a compiled model: the
    longest prefix of the dotted ``name`` that is a node id (a node id is its module's path, and a
    layer's module may hold submodules of its own, like MultiheadAttention's ``out_proj``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in node_ids:
            return prefix
    return None


def param_groups(model: nn.Module, graph: Any = None) -> list[dict[str, Any]]:
    """The trainable parameters grouped by their node's learning-rate multiplier (``Node.lr_mult``):
    ``[{"params": [...], "lr_mult": 1.0}, {"params": [...], "lr_mult": 10.0}, ...]``, base rate
    first, then the others in the order their first parameter appears. Frozen parameters
    (``requires_grad`` off) are left out. Without a graph everything is one group at the base rate."""
    mults: dict[str, float] = {}
    if graph is not None:
        mults = {nid: float(node.lr_mult) for nid, node in graph.nodes.items()
                 if getattr(node, "lr_mult", 1.0) != 1.0}
    groups: dict[float, list[torch.nn.Parameter]] = {1.0: []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        node = owner(name, mults) if mults else None
        groups.setdefault(mults[node] if node is not None else 1.0, []).append(p)
    return [{"params": ps, "lr_mult": m} for m, ps in groups.items() if ps]


def build_optimizer(model: nn.Module, cfg: TrainConfig, graph: Any = None) -> torch.optim.Optimizer:
    """The configured optimizer over the parameters that require grad (frozen nodes are left out),
    one parameter group per learning-rate multiplier of ``graph``'s nodes (:func:`param_groups`);
    each group's ``lr`` is ``cfg.lr × lr_mult``, and :class:`LRSchedule` keeps that ratio."""
    groups = param_groups(model, graph)
    if not groups:
        raise TrainingFailure("Nothing to train: every layer is frozen (or the network has no parameters). "
                              "Unfreeze at least one layer in the inspector.")
    optimizer = OPTIMIZERS[cfg.optimizer].build(groups, cfg)
    for group in optimizer.param_groups:
        group["lr"] = cfg.lr * group.get("lr_mult", 1.0)
    return optimizer


def frozen_batchnorms(model: nn.Module, graph: Any) -> Iterator[nn.Module]:
    """The BatchNorm modules of ``model`` owned by frozen nodes of ``graph`` (a frozen BatchNorm
    node, or one inside a frozen layer)."""
    frozen = {nid for nid, node in graph.nodes.items() if node.frozen} if graph is not None else set()
    if not frozen:
        return
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and owner(name, frozen) is not None:
            yield module


class LRSchedule:
    """Learning-rate factor as a function of training progress, set on the optimizer every step.

    The shape is the configured schedule's declared ``factor`` (:data:`core.training.options.SCHEDULES`);
    this class keeps the state they read (the plateau decisions) and adds the warm-up, which ramps
    linearly from ~0 over ``warmup_epochs`` whatever the schedule.
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
        f = SCHEDULES[self.kind].factor(self, progress)
        if self.warmup > 0 and progress < self.warmup:
            f *= (progress + 1.0 / self.steps_per_epoch) / self.warmup
        return f

    def set_step(self, epoch: int, step: int) -> float:
        """Set the learning rate for ``step`` (0-based) of ``epoch`` (1-based); returns it."""
        self.lr = self.base_lr * self.factor(epoch - 1 + step / self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * group.get("lr_mult", 1.0)
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


LossFn = Callable[[torch.Tensor | Sequence[torch.Tensor], torch.Tensor], torch.Tensor]
SingleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_loss(cfg: TrainConfig, num_classes: int, target: str = "class") -> tuple[LossFn, SingleLoss]:
    """``(loss(outputs, labels), single(logits, labels))``: the first sums the main output and the
    weighted auxiliary outputs (GoogLeNet: ``loss0 + 0.3·aux1 + 0.3·aux2``).

    ``target`` is the task's (:class:`core.training.tasks.TaskOption`): ``"class"`` takes (B, K)
    logits (a larger output is flattened) and (B,) labels; ``"next-token"`` takes (B, T, V) logits
    and (B, T) next tokens and averages the loss over all B·T tokens (label smoothing as set);
    ``"mask"`` takes (B, K, H, W) logits and (B, H, W) masks, and its losses leave the pixels equal
    to ``cfg.ignore_index`` out (cross-entropy, Dice, or both: the one-hot losses are refused)."""
    loss_fn = LOSSES[cfg.loss].fn
    per_token = target == "next-token"
    per_pixel = target == "mask"
    if per_pixel:
        if cfg.loss not in PIXEL_LOSSES:
            raise TrainingFailure(f"The segmentation task trains with {', '.join(PIXEL_LOSSES)} (they leave the "
                                  f"ignore-index pixels out); the {cfg.loss} loss compares one-hot labels: choose "
                                  "one of those.")
        if cfg.loss == "cross_entropy":  # torch's, told the ignore index
            loss_fn = pixel_cross_entropy

    def single(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if per_pixel:
            return loss_fn(logits, y, num_classes, cfg)
        if per_token:
            return loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), num_classes, cfg)
        if logits.ndim > 2:
            logits = logits.flatten(1)
        return loss_fn(logits, y, num_classes, cfg)

    def total(outputs: torch.Tensor | Sequence[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return single(outputs, y)
        if per_token:  # an RNN's h_n/c_n outputs are states, not predictions: only the first is scored
            return single(outputs[0], y)
        main, *aux = outputs
        loss = single(main, y)
        weights = list(cfg.aux_weights) if cfg.aux_weights is not None else [0.3] * len(aux)
        for w, out in zip(weights, aux, strict=False):
            if w:
                loss = loss + w * single(out, y)
        return loss

    return total, single


def build_nll(cfg: TrainConfig, target: str) -> SingleLoss | None:
    """A language model's plain cross-entropy summed over the tokens (no gradient), from which its
    perplexity is computed, where the training loss differs from it (label smoothing, another
    loss); ``None`` where the loss is that already, or the task has no perplexity."""
    if target != "next-token" or (cfg.loss == "cross_entropy" and cfg.label_smoothing == 0):
        return None

    def nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        with torch.no_grad():
            return F.cross_entropy(logits.detach().float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                   reduction="sum")

    return nll


def main_output(outputs: Any) -> torch.Tensor:
    """The first output (the classifier) of a model that may return a tuple, flattened to (B, K)."""
    out = outputs[0] if isinstance(outputs, tuple | list) else outputs
    return out.flatten(1) if out.ndim > 2 else out


def task_logits(outputs: Any, target: str) -> torch.Tensor:
    """The predictions the task scores: :func:`main_output` for class targets, the first output as
    it is — (B, T, V), one prediction per time step — for next-token targets, and (B, K, H, W), a
    class score per pixel, for mask targets."""
    if target not in ("next-token", "mask"):
        return main_output(outputs)
    return outputs[0] if isinstance(outputs, tuple | list) else outputs
