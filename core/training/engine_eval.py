"""The engine's validation pass and the check of the first output's shape, per task target.

Kept apart from :mod:`core.training.engine` (whose class drives the loop) so that each file stays
readable; these functions read the :class:`~core.training.engine.Trainer`'s state and never change
it, except the model's train/eval mode, which they restore.

Validation accumulates on the device and reads back once at the end of the pass (one transfer;
under DDP one ``all_reduce`` of the sums first):

- class targets: loss, accuracy, top-5 (above five classes) and the K×K confusion matrix;
- next-token targets: loss, accuracy and the summed cross-entropy per token (perplexity) — no
  confusion matrix (a V×V matrix of a 5,000-word vocabulary would be large and say little);
- mask targets: the loss weighted by labelled pixels and a K×K confusion matrix of pixels
  (:func:`core.training.pixel_metrics.pixel_confusion`: ignore-index pixels left out), from which
  pixel accuracy (``acc``), per-class IoU and mean IoU come (:func:`~core.training.pixel_metrics.pixel_scores`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from core.training import distributed as ddp
from core.training.data.base import Augment
from core.training.optim import task_logits
from core.training.pixel_metrics import pixel_confusion, pixel_scores

if TYPE_CHECKING:
    from core.training.data import DataSource
    from core.training.engine import Trainer


def evaluate_epoch(tr: Trainer) -> dict[str, Any]:
    """One pass over the validation split: ``loss``, ``acc``, ``top5``, ``confusion`` (rows = truth),
    plus ``nll`` (next-token) or ``pixel_acc``/``iou``/``miou`` (masks). All ``None`` (and an empty
    confusion) when there is no validation split."""
    data, target = tr.data, tr.task.target
    k = data.num_classes
    masks = target == "mask"
    if data.val_count == 0:
        return {"loss": None, "acc": None, "top5": None, "confusion": (), "pixel_acc": None, "iou": (), "miou": None}
    dev = tr.device
    tr.model.eval()
    stream = data.batches("val", tr.cfg.batch_size, dev, None, Augment(), tr.rank, tr.world)
    loss_sum = torch.zeros((), device=dev)
    nll_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev)
    top5 = torch.zeros((), device=dev)
    seen = torch.zeros((), device=dev)
    confusion = torch.zeros(0 if tr.next_token else k * k, device=dev, dtype=torch.int64)
    with torch.no_grad():
        for x, y in stream:
            tr._check_control()
            with tr._autocast():
                outputs = tr.model(tr._prepare(x))
                loss = tr.single_loss(task_logits(outputs, target), y)
            logits = task_logits(outputs, target).float()
            if masks:
                # the loss is a mean over the batch's labelled pixels: weight it by their number
                pixels = (y != tr.cfg.ignore_index).sum()
                loss_sum += loss.float() * pixels
                seen += pixels
                confusion += pixel_confusion(y, logits.argmax(1), k, tr.cfg.ignore_index)
                continue
            pred = logits.argmax(-1)
            loss_sum += loss.float() * y.numel()
            correct += (pred == y).sum()
            seen += y.numel()
            if tr.next_token:
                if tr.nll is not None:
                    nll_sum += tr.nll(logits, y)
                continue
            if k > 5:
                top5 += (logits.topk(5, dim=1).indices == y[:, None]).any(1).sum()
            confusion += torch.bincount(y * k + pred, minlength=k * k)
    tr.model.train()
    totals = torch.stack([loss_sum, correct, top5, seen, nll_sum])
    if tr.world > 1:
        ddp.all_reduce_sum(totals)
        if not tr.next_token:
            ddp.all_reduce_sum(confusion)
    loss_total, correct_total, top5_total, n, nll_total = totals.tolist()
    n = max(n, 1)
    if tr.next_token:
        return {"loss": loss_total / n, "acc": correct_total / n, "top5": None, "confusion": (),
                "nll": (nll_total if tr.nll is not None else loss_total) / n}
    matrix = confusion.view(k, k).tolist()
    out: dict[str, Any] = {"loss": loss_total / n, "confusion": tuple(tuple(row) for row in matrix)}
    if masks:
        scores = pixel_scores(matrix)
        return {**out, "acc": scores.pixel_accuracy, "top5": None, "pixel_acc": scores.pixel_accuracy,
                "iou": scores.iou, "miou": scores.miou}
    return {**out, "acc": correct_total / n, "top5": top5_total / n if k > 5 else None}


def output_problem(out: torch.Tensor, data: DataSource, target: str, tokens: bool) -> str | None:
    """The sentence that refuses the first output ``out`` of a preview forward pass for ``data``
    and the task's ``target``, or ``None`` when its shape fits."""
    k = data.num_classes
    if target == "next-token":
        t = int(data.sample_shape[0])
        if tuple(out.shape[1:]) != (t, k):
            size = "×".join(map(str, out.shape[1:])) if out.ndim > 1 else "1"
            return (f"The network's output is {size} values per sequence but a language model needs "
                    f"T×V = {t}×{k} (a Linear applied per time step with out_features {k}).")
        return None
    if target == "mask":
        h, w = (int(v) for v in data.sample_shape[-2:])
        if tuple(out.shape[1:]) != (k, h, w):
            size = "×".join(map(str, out.shape[1:])) if out.ndim > 1 else "1"
            return (f"The network's output is {size} per image but segmentation needs a score per class at every "
                    f"pixel of the {h}×{w} masks, classes×H×W = {k}×{h}×{w}: end with a convolution of "
                    f"{k} out_channels at the masks' size (upsample to {h}×{w}).")
        return None
    if out.ndim != 2 or out.shape[1] != k:
        got = out.shape[1] if out.ndim == 2 else list(out.shape[1:])
        sample = "sequence" if tokens else "image"
        return (f"The network's output has {got} values per {sample} but the dataset {data.name} has {k} "
                f"classes: set the last layer's out_features to {k}.")
    return None
