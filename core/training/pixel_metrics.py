"""Segmentation scores: the per-pixel confusion matrix and what it gives (pixel accuracy, IoU).

Both the engine's validation pass and :func:`core.training.evaluate.evaluate_masks` count the
labelled pixels of every mask in one K×K matrix (rows = true class, columns = predicted class);
pixels whose mask value is the ignore index (VOC's object borders, 255) count nowhere. From it:

- pixel accuracy = trace / total (the share of labelled pixels predicted right);
- IoU of class c = C[c,c] / (Σ_p C[c,p] + Σ_t C[t,c] − C[c,c]) — true positives over the union of
  the pixels that are c and the pixels predicted c; ``None`` where that union is empty (the class
  is absent from both the truth and the prediction, so it has no score rather than 0 or 1);
- mean IoU = the mean of the classes that have one (as torchmetrics' ``JaccardIndex`` with
  ``average="macro"`` over the classes present, and d2l's and VOC's own tables).

Torch is imported inside the function that needs it: the scores are plain numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PixelScores:
    """What a per-pixel confusion matrix says; ``iou[c]`` is ``None`` for a class absent from both
    truth and prediction, ``miou`` is ``None`` only when no pixel was labelled."""

    pixel_accuracy: float | None
    iou: tuple[float | None, ...]
    miou: float | None
    pixels: int  # labelled pixels counted


def pixel_confusion(y: torch.Tensor, pred: torch.Tensor, k: int, ignore_index: int) -> torch.Tensor:
    """The flat K·K confusion counts (int64, on the tensors' device) of one batch of masks ``y``
    (class ids, ``ignore_index`` where unlabelled) against predicted class ids ``pred`` (same shape).

    Ignored pixels (and any mask value outside 0..K−1, which no class can match) go to one extra
    bin that is cut off, so no boolean indexing (a host sync on a GPU) is needed."""
    import torch

    y = y.reshape(-1)
    pred = pred.reshape(-1)
    valid = (y >= 0) & (y < k) & (y != ignore_index)
    cell = torch.where(valid, y * k + pred, torch.full_like(y, k * k))
    return torch.bincount(cell, minlength=k * k + 1)[: k * k]


def pixel_scores(confusion: Sequence[Sequence[int]] | np.ndarray) -> PixelScores:
    """Pixel accuracy, per-class IoU and mean IoU of a K×K per-pixel confusion matrix (rows = truth)."""
    c = np.asarray(confusion, dtype=np.int64)
    k = c.shape[0] if c.ndim == 2 else 0
    total = int(c.sum())
    if k == 0:
        return PixelScores(None, (), None, 0)
    tp = np.diag(c).astype(np.float64)
    union = c.sum(axis=1) + c.sum(axis=0) - np.diag(c)
    iou = tuple(float(tp[i] / union[i]) if union[i] > 0 else None for i in range(k))
    present = [v for v in iou if v is not None]
    return PixelScores(pixel_accuracy=float(tp.sum() / total) if total else None, iou=iou,
                       miou=sum(present) / len(present) if present else None, pixels=total)


__all__ = ["PixelScores", "pixel_confusion", "pixel_scores"]
