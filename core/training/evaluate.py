"""Evaluation: where a trained classifier errs (DESIGN.md §7 ``evaluate``, §11; issue 13).

:func:`evaluate` runs a model over one split of a :class:`~core.training.data.DataSource` in
dataset order and returns an :class:`Evaluation`: accuracy, top-5 (only with six classes or more,
like the engine's ``val_top5``), per-class precision / recall / F1 / support, the confusion matrix
(rows = true class) and, per sample, the true class, the predicted class and the softmax
probability of the prediction, so that a viewer can list the samples of any confusion cell.

:func:`evaluate_run` evaluates a run folder's checkpoint on the data and settings it trained with
and writes ``evaluation.json`` into the folder (atomically); the GUI's Evaluation tab reads it
back with :meth:`Evaluation.load`.

The metrics are computed from the confusion matrix with numpy. A class that is never predicted
has precision 0 (there is nothing to be precise about, and no 0/0 warning is raised); a class
with no samples has recall 0 and support 0.

A language model has no classes to tabulate: :func:`evaluate_tokens` measures its loss per token,
perplexity (exp of that loss) and next-token accuracy (:class:`TokenEvaluation`). A sequence
classifier is evaluated like an image classifier. A segmentation network (task target ``mask``) is
evaluated per pixel by :func:`evaluate_masks`: the same :class:`Evaluation`, whose confusion matrix
counts labelled pixels (the ignore index left out), plus ``pixel_accuracy``, ``miou`` and each
class's ``iou`` (:mod:`core.training.pixel_metrics`); it has no per-sample lists.

This module imports torch only inside the functions that run a model, so the editor can read an
``evaluation.json`` (and the CLI build its parser) without paying for the torch import.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.training.pixel_metrics import pixel_confusion, pixel_scores

if TYPE_CHECKING:
    import torch
    from torch import nn

    from core.training.data import DataSource
    from core.training.weights import InputPipeline

EVALUATION_FILE = "evaluation.json"
TOP_K = 5  # top-5 accuracy is reported when there are more classes than this


class EvaluationError(Exception):
    """An evaluation that cannot run or a file that cannot be read back; ``str()`` is one line."""


class EvaluationCancelled(EvaluationError):
    """``cancel()`` returned true: the evaluation stopped between two batches."""


@dataclass
class ClassStats:
    """One row of the per-class table."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int  # samples (segmentation: labelled pixels) whose true class this is
    iou: float | None = None  # segmentation: intersection over union (None: absent from truth and prediction)

    def to_dict(self, per_pixel: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"class": self.name, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                             "support": self.support}
        if per_pixel:
            d["iou"] = self.iou
        return d


@dataclass
class Evaluation:
    """What :func:`evaluate` found; see the module docstring.

    ``predicted``, ``truth`` and ``confidence`` hold one entry per evaluated sample, in dataset
    order; ``indices`` holds the dataset index of each (``None``: the positions are the indices;
    they differ only where a folder dataset skipped unreadable images).
    """

    classes: list[str]
    accuracy: float
    top5: float | None  # None when there are fewer than six classes
    per_class: list[ClassStats]
    confusion: list[list[int]]  # rows = true class, columns = predicted class
    predicted: list[int]
    truth: list[int]
    confidence: list[float]  # softmax probability of the predicted class
    split: str = "val"
    indices: list[int] | None = None
    dataset: str = ""  # the data source's name, e.g. "shapes" or "folder:…"
    extra: dict[str, Any] = field(default_factory=dict)  # where the model came from (run, epoch, weights)
    # Segmentation (per_pixel): the confusion counts pixels; images evaluated, pixel accuracy, mean IoU.
    per_pixel: bool = False
    images: int = 0
    pixel_accuracy: float | None = None
    miou: float | None = None

    @property
    def count(self) -> int:
        """Samples (images) evaluated."""
        return self.images if self.per_pixel else len(self.truth)

    @property
    def macro_f1(self) -> float:
        """The unweighted mean F1 over the classes that have samples."""
        scores = [c.f1 for c in self.per_class if c.support > 0]
        return sum(scores) / len(scores) if scores else 0.0

    def most_confused(self, k: int = 5) -> list[tuple[str, str, int]]:
        """The ``k`` largest off-diagonal cells as ``(true class, predicted class, count)``, most
        errors first (ties in class order); cells without errors are left out."""
        cells = [(-count, t, p) for t, row in enumerate(self.confusion) for p, count in enumerate(row)
                 if t != p and count > 0]
        cells.sort()
        return [(self.classes[t], self.classes[p], -neg) for neg, t, p in cells[:max(0, k)]]

    def samples(self, true_idx: int, pred_idx: int) -> list[int]:
        """Dataset indices of the samples of class ``true_idx`` predicted as ``pred_idx`` (one
        confusion cell), in dataset order."""
        where = self.indices if self.indices is not None else range(len(self.truth))
        return [int(i) for i, t, p in zip(where, self.truth, self.predicted, strict=True)
                if t == true_idx and p == pred_idx]

    def to_dict(self) -> dict[str, Any]:
        """``main.py evaluate --json``'s object (DESIGN.md §7) with ``most_confused``, ``split``,
        ``dataset`` and ``count`` added; the per-sample lists are left out (see :meth:`save`)."""
        pixels = {"pixel_accuracy": self.pixel_accuracy, "miou": self.miou,
                  "pixels": int(sum(map(sum, self.confusion)))} if self.per_pixel else {}
        return {
            "accuracy": self.accuracy, "top5": self.top5, **pixels, "classes": list(self.classes),
            "per_class": [c.to_dict(self.per_pixel) for c in self.per_class],
            "confusion": [list(row) for row in self.confusion],
            "most_confused": [{"true": t, "predicted": p, "count": n} for t, p, n in self.most_confused()],
            "split": self.split, "dataset": self.dataset, "count": self.count, **self.extra,
        }

    def to_csv(self) -> str:
        """The per-class table as CSV (``class,precision,recall,f1,support``, then ``iou`` for segmentation)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["class", "precision", "recall", "f1", "support", *(["iou"] if self.per_pixel else [])])
        for c in self.per_class:
            iou = ([f"{c.iou:.6g}" if c.iou is not None else ""] if self.per_pixel else [])
            writer.writerow([c.name, f"{c.precision:.6g}", f"{c.recall:.6g}", f"{c.f1:.6g}", c.support, *iou])
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` plus the per-sample lists to ``path`` as JSON, atomically."""
        from core.project import atomic_write_text

        data = self.to_dict()
        data["samples"] = {"truth": list(self.truth), "predicted": list(self.predicted),
                           "confidence": [round(float(c), 6) for c in self.confidence],
                           "indices": list(self.indices) if self.indices is not None else None}
        atomic_write_text(Path(path), json.dumps(data) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Evaluation:
        """Read a file :meth:`save` wrote; anything else raises :class:`EvaluationError` naming the
        file and the entry at fault."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise EvaluationError(f"cannot read {p}: {_first_line(exc)}") from None
        try:
            return cls.from_dict(data)
        except EvaluationError as exc:
            raise EvaluationError(f"{p}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Any) -> Evaluation:
        """The inverse of :meth:`save`'s JSON (per-sample lists optional); :class:`EvaluationError`
        names the first entry that is missing or of the wrong kind."""
        if not isinstance(data, dict):
            raise EvaluationError("not an evaluation: expected a JSON object")
        classes = _list_of(data, "classes", str)
        k = len(classes)
        confusion = data.get("confusion")
        if (not isinstance(confusion, list) or len(confusion) != k
                or not all(isinstance(r, list) and len(r) == k and all(_is_int(v) and v >= 0 for v in r)
                           for r in confusion)):
            raise EvaluationError(f"confusion: expected a {k}×{k} matrix of counts (one row per class)")
        samples = data.get("samples") or {}
        if not isinstance(samples, dict):
            raise EvaluationError("samples: expected an object")
        # the per-sample lists are optional: a file written from to_dict() alone still loads
        truth = _list_of(samples, "truth", int, "samples.") if "truth" in samples else []
        predicted = _list_of(samples, "predicted", int, "samples.") if "predicted" in samples else []
        confidence = ([float(v) for v in _list_of(samples, "confidence", float, "samples.")]
                      if "confidence" in samples else [])
        indices = _list_of(samples, "indices", int, "samples.") if samples.get("indices") is not None else None
        lengths = {len(truth), len(predicted), len(confidence), *([len(indices)] if indices is not None else [])}
        if len(lengths) > 1:
            raise EvaluationError("samples: truth, predicted, confidence and indices must have one entry per sample")
        if any(not 0 <= v < k for v in (*truth, *predicted)):
            raise EvaluationError(f"samples: class numbers must be 0 to {k - 1}")
        per_pixel = "miou" in data  # a segmentation's: its scores come from the confusion again
        ev = from_confusion(np.asarray(confusion, dtype=np.int64).reshape(k, k), classes, top5=None,
                            split=str(data.get("split", "val")), dataset=str(data.get("dataset", "")),
                            per_pixel=per_pixel)
        if per_pixel:
            images = data.get("count", 0)
            if not _is_int(images) or images < 0:
                raise EvaluationError("count: expected the number of images evaluated")
            ev.images = int(images)
        top5 = data.get("top5")
        if top5 is not None and not isinstance(top5, int | float):
            raise EvaluationError("top5: expected a number or null")
        ev.top5 = float(top5) if top5 is not None else None
        ev.predicted, ev.truth, ev.confidence, ev.indices = predicted, truth, confidence, indices
        known = {"accuracy", "top5", "classes", "per_class", "confusion", "most_confused", "split", "dataset",
                 "count", "samples", "miou", "pixel_accuracy", "pixels"}
        ev.extra = {key: value for key, value in data.items() if key not in known}
        return ev


def from_confusion(confusion: np.ndarray, classes: Sequence[str], *, top5: float | None, split: str = "val",
                   dataset: str = "", per_pixel: bool = False) -> Evaluation:
    """Accuracy and the per-class table from a confusion matrix (rows = true class), with numpy.

    precision_i = C[i,i] / Σ_t C[t,i] (0 when class i is never predicted), recall_i = C[i,i] /
    Σ_p C[i,p] (0 without samples), F1 = 2PR / (P + R) (0 when both are 0). The per-sample lists
    are left empty (:func:`evaluate` fills them). ``per_pixel``: a segmentation's matrix of pixels,
    whose IoU per class, mean IoU and pixel accuracy are filled in too.
    """
    c = np.asarray(confusion, dtype=np.int64)
    diag = np.diag(c).astype(np.float64)
    predicted_as = c.sum(axis=0).astype(np.float64)
    support = c.sum(axis=1)
    # np.divide with `where` leaves the 0/0 cells at the `out` value (0) and warns about nothing
    precision = np.divide(diag, predicted_as, out=np.zeros_like(diag), where=predicted_as > 0)
    recall = np.divide(diag, support.astype(np.float64), out=np.zeros_like(diag), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(diag), where=both > 0)
    total = int(c.sum())
    scores = pixel_scores(c) if per_pixel else None
    rows = [ClassStats(str(name), float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]),
                       scores.iou[i] if scores is not None else None)
            for i, name in enumerate(classes)]
    return Evaluation(classes=[str(n) for n in classes], accuracy=float(diag.sum() / total) if total else 0.0,
                      top5=top5, per_class=rows, confusion=c.tolist(), predicted=[], truth=[], confidence=[],
                      split=split, dataset=dataset, per_pixel=per_pixel,
                      pixel_accuracy=scores.pixel_accuracy if scores is not None else None,
                      miou=scores.miou if scores is not None else None)


@dataclass
class TokenEvaluation:
    """A language model on one split: mean cross-entropy per token, its exp (perplexity) and the
    share of next tokens predicted exactly (``count`` tokens scored)."""

    loss: float
    perplexity: float
    token_accuracy: float
    count: int
    split: str = "val"
    dataset: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``main.py evaluate --json``'s object for a language model (a perplexity that overflows is null)."""
        return {"loss": self.loss, "perplexity": self.perplexity if math.isfinite(self.perplexity) else None,
                "token_accuracy": self.token_accuracy, "tokens": self.count, "split": self.split,
                "dataset": self.dataset, **self.extra}


def evaluate_tokens(model: nn.Module, data: DataSource, *, split: str = "val", device: str = "cpu",
                    batch_size: int = 256, progress: Callable[[int, int], None] | None = None,
                    cancel: Callable[[], bool] | None = None) -> TokenEvaluation:
    """Run a language model over ``data``'s ``split`` (token sequences with next-token targets) in
    order, in eval mode: :class:`TokenEvaluation`. ``progress(done, total)`` hears the sequences
    done; ``cancel()`` is asked before each batch. Raises :class:`EvaluationError` for an empty split
    or an output that is not T×V."""
    import torch
    import torch.nn.functional as F

    from core.training.optim import task_logits

    dev, total = _split_and_device(data, split, device, batch_size, "sequences")
    t, v = int(data.sample_shape[0]), data.num_classes
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    hits = torch.zeros((), dtype=torch.long, device=dev)
    tokens = done = 0
    was_training = model.training
    model.to(dev).eval()
    try:
        with torch.inference_mode():
            for x, y in data.batches(split, batch_size, dev, None):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("evaluation cancelled")
                try:
                    logits = task_logits(model(x), "next-token").float()
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise EvaluationError(f"the network cannot take the dataset's sequences of {t} token ids "
                                          f"({_first_line(exc)})") from None
                if tuple(logits.shape[1:]) != (t, v):
                    raise EvaluationError(f"the network's output is {'×'.join(map(str, logits.shape[1:]))} values "
                                          f"per sequence but a language model needs T×V = {t}×{v}")
                flat = logits.reshape(-1, v)
                loss_sum += F.cross_entropy(flat, y.reshape(-1), reduction="sum").double()
                hits += (flat.argmax(-1) == y.reshape(-1)).sum()
                tokens += y.numel()
                done += int(y.shape[0])
                if progress is not None:
                    progress(done, total)
    finally:
        model.train(was_training)
    loss = float(loss_sum) / max(tokens, 1)
    return TokenEvaluation(loss=loss, perplexity=math.exp(loss) if loss < 700 else math.inf,
                           token_accuracy=int(hits) / max(tokens, 1), count=tokens, split=split, dataset=data.name)


def evaluate(model: nn.Module, data: DataSource, *, split: str = "val", device: str = "cpu", batch_size: int = 256,
             progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
             input_shape: Sequence[int] | None = None) -> Evaluation:
    """Run ``model`` over ``data``'s ``split`` in dataset order (no augmentation, eval mode) and
    measure it; see the module docstring.

    ``device`` is ``cpu``, ``cuda[:N]``, ``mps`` or ``auto``; ``progress(done, total)`` hears the
    samples done after each batch; ``cancel()`` is asked before each batch (true: raises
    :class:`EvaluationCancelled`). ``input_shape`` is the graph's Input shape when it is 1-D (an MLP
    on flattened images: each batch is reshaped to it, as the engine does). The model is left on
    ``device`` in the train/eval mode it had. Raises :class:`EvaluationError` for an empty split or
    an output whose width is not the number of classes.
    """
    import torch

    from core.training.optim import main_output

    dev, total = _split_and_device(data, split, device, batch_size, "samples")
    k = data.num_classes
    view = _flat_view(input_shape, data.sample_shape)
    truth: list[torch.Tensor] = []
    predicted: list[torch.Tensor] = []
    confidence: list[torch.Tensor] = []
    indices: list[torch.Tensor] = []
    hits5 = torch.zeros((), dtype=torch.long, device=dev)
    was_training = model.training
    model.to(dev).eval()
    done = 0
    try:
        with torch.inference_mode():
            for x, y, idx in _batches(data, split, batch_size, dev):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("evaluation cancelled")
                if view is not None:
                    x = x.reshape(x.shape[0], *view)
                try:
                    logits = main_output(model(x)).float()
                except (RuntimeError, ValueError, TypeError) as exc:
                    shape = "×".join(map(str, data.sample_shape))
                    noun = (f"sequences of {shape} token ids" if getattr(data, "modality", "image") == "tokens"
                            else f"{shape} images")
                    raise EvaluationError(f"the network cannot take the dataset's {noun} "
                                          f"({_first_line(exc)})") from None
                if logits.ndim != 2 or logits.shape[1] != k:
                    got = logits.shape[1] if logits.ndim == 2 else list(logits.shape[1:])
                    raise EvaluationError(f"the network's output has {got} values per sample but the dataset "
                                          f"{data.name} has {k} classes")
                probs = torch.softmax(logits, dim=1)
                conf, pred = probs.max(dim=1)
                y = y.to(dev)
                if k > TOP_K:
                    hits5 += (logits.topk(TOP_K, dim=1).indices == y[:, None]).any(1).sum()
                # kept on the device until the end: a copy per batch would wait for each batch
                truth.append(y)
                predicted.append(pred)
                confidence.append(conf)
                indices.append(idx)
                done += int(y.shape[0])
                if progress is not None:
                    progress(done, total)
    finally:
        model.train(was_training)
    t = torch.cat(truth).cpu() if truth else torch.zeros(0, dtype=torch.long)
    p = torch.cat(predicted).cpu() if predicted else torch.zeros(0, dtype=torch.long)
    if t.numel() == 0:
        raise EvaluationError(f"no sample of {data.name}'s {split} split could be read")
    matrix = torch.bincount(t * k + p, minlength=k * k).view(k, k).numpy()
    ev = from_confusion(matrix, list(data.classes), top5=int(hits5) / t.numel() if k > TOP_K else None, split=split,
                        dataset=data.name)
    ev.truth, ev.predicted = t.tolist(), p.tolist()
    ev.confidence = torch.cat(confidence).cpu().tolist()
    where = torch.cat([i.cpu() for i in indices]).tolist()
    ev.indices = None if where == list(range(len(where))) else where
    return ev


def evaluate_masks(model: nn.Module, data: DataSource, *, split: str = "val", device: str = "cpu",
                   batch_size: int = 64, ignore_index: int | None = None,
                   progress: Callable[[int, int], None] | None = None,
                   cancel: Callable[[], bool] | None = None) -> Evaluation:
    """Run a segmentation network over ``data``'s ``split`` (images with masks) in eval mode and
    count its labelled pixels in a K×K confusion matrix: the per-pixel :class:`Evaluation`
    (precision/recall/F1 per class, IoU per class, mean IoU, pixel accuracy). Pixels equal to
    ``ignore_index`` (default: the data's, else 255) count nowhere. ``progress``/``cancel`` as in
    :func:`evaluate`. Raises :class:`EvaluationError` for an empty split or an output that is not
    classes×H×W at the masks' size."""
    import torch

    from core.training.data.base import Augment
    from core.training.optim import task_logits

    dev, total = _split_and_device(data, split, device, batch_size, "images")
    k = data.num_classes
    ignore = int(ignore_index if ignore_index is not None else getattr(data, "ignore_index", 255))
    confusion = torch.zeros(k * k, dtype=torch.int64, device=dev)
    was_training = model.training
    model.to(dev).eval()
    done = 0
    try:
        with torch.inference_mode():
            for x, y in data.batches(split, batch_size, dev, None, Augment()):
                if cancel is not None and cancel():
                    raise EvaluationCancelled("evaluation cancelled")
                try:
                    logits = task_logits(model(x), "mask")
                except (RuntimeError, ValueError, TypeError) as exc:
                    shape = "×".join(map(str, data.sample_shape))
                    raise EvaluationError(f"the network cannot take the dataset's {shape} images "
                                          f"({_first_line(exc)})") from None
                want = (k, *y.shape[1:])
                if tuple(logits.shape[1:]) != want:
                    raise EvaluationError(f"the network's output is {'×'.join(map(str, logits.shape[1:]))} per "
                                          f"image but the masks need classes×H×W = {'×'.join(map(str, want))}")
                confusion += pixel_confusion(y.to(dev), logits.argmax(1), k, ignore)
                done += int(y.shape[0])
                if progress is not None:
                    progress(done, total)
    finally:
        model.train(was_training)
    ev = from_confusion(confusion.view(k, k).cpu().numpy(), list(data.classes), top5=None, split=split,
                        dataset=data.name, per_pixel=True)
    ev.images = done
    return ev


def _split_and_device(data: DataSource, split: str, device: str, batch_size: int,
                      noun: str) -> tuple[torch.device, int]:
    """The device to evaluate on and the split's size, after checking the split name, the batch size
    and that the split has ``noun`` (samples, sequences) to evaluate; :class:`EvaluationError` if not."""
    from core.training.devices import resolve_device
    from core.training.health import TrainingFailure

    if split not in ("train", "val"):
        raise EvaluationError(f"split must be 'train' or 'val', got {split!r}")
    if batch_size < 1:
        raise EvaluationError(f"the batch size must be at least 1, got {batch_size}")
    try:
        dev = resolve_device(device)
    except TrainingFailure as exc:
        raise EvaluationError(str(exc)) from None
    total = data.count(split)
    if total == 0:
        raise EvaluationError(f"the dataset {data.name} has no {'validation' if split == 'val' else 'training'} "
                              f"{noun} to evaluate")
    return dev, total


def _flat_view(input_shape: Sequence[int] | None, sample_shape: Sequence[int]) -> tuple[int, ...] | None:
    """The shape each sample is reshaped to: a 1-D Input of C·H·W values takes images flattened."""
    if input_shape is None or tuple(input_shape) == tuple(sample_shape):
        return None
    shape = tuple(int(v) for v in input_shape)
    return shape if math.prod(shape) == math.prod(sample_shape) else None


def _batches(data: DataSource, split: str, batch_size: int,
             device: torch.device) -> Any:
    """``(normalised x, y, dataset indices)`` per batch, in dataset order, on ``device``.

    In-memory sources are indexed directly; folder sources are read through their DataLoader,
    whose batches say which files decoded (an unreadable one is skipped, as in training), so every
    prediction keeps its dataset index. Any other source goes through its plain batch stream.
    """
    import torch

    from core.training.data.base import Augment, InMemorySource, Normalizer

    norm = Normalizer(data.mean, data.std, device)
    n = data.count(split)
    if isinstance(data, InMemorySource):
        part = data.split(split)
        for start in range(0, n, batch_size):
            idx = torch.arange(start, min(n, start + batch_size))
            where = idx.to(part.images.device)
            x = part.images.index_select(0, where).to(device)
            yield norm(x), part.labels.index_select(0, where), idx
        return
    loader_of = getattr(data, "loader", None)
    if callable(loader_of):
        loader, sampler = loader_of(split, device)
        sampler.batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
        for step, (x, y, keep, bad) in enumerate(loader):
            skipped = getattr(data, "skipped", None)
            if bad and isinstance(skipped, set):
                skipped.update(bad)
            if keep.numel() == 0:
                continue
            yield norm(x.to(device)), y, keep + step * batch_size
        return
    start = 0
    for x, y in data.batches(split, batch_size, device, None, Augment()):
        idx = torch.arange(start, start + int(y.shape[0]))
        start += int(y.shape[0])
        yield x, y, idx


def sample_images(data: DataSource, indices: Sequence[int], split: str = "val") -> list[np.ndarray]:
    """The samples at ``indices`` of ``split`` as uint8 ``H×W×C`` arrays (what the network sees,
    before normalisation), for the Evaluation tab's grid of one confusion cell. An index out of
    range raises :class:`EvaluationError`; a folder image that no longer decodes comes back black."""
    import torch

    from core.training.data.base import InMemorySource

    n = data.count(split)
    bad = [i for i in indices if not 0 <= int(i) < n]
    if bad:
        raise EvaluationError(f"sample {bad[0]} is out of range: {data.name}'s {split} split has {n} samples")
    if isinstance(data, InMemorySource):
        images = data.split(split).images
        idx = torch.as_tensor([int(i) for i in indices], dtype=torch.long, device=images.device)
        chosen = images.index_select(0, idx).cpu()
        return [np.ascontiguousarray(img.permute(1, 2, 0).numpy()) for img in chosen]
    # FolderSource: (path, label) per sample, and decode(path) as the network sees it (its pipeline)
    items, decode = getattr(data, "_items", None), getattr(data, "decode", None)
    if isinstance(items, dict) and callable(decode):
        out = []
        for i in indices:
            try:
                chw = decode(items[split][int(i)][0])
            except Exception:  # any decoder error: the file changed since the evaluation
                chw = np.zeros(data.sample_shape, dtype=np.uint8)
            out.append(np.ascontiguousarray(chw.transpose(1, 2, 0)))
        return out
    raise EvaluationError(f"{data.name} cannot show single samples")


# ------------------------------------------------------------------------------------------- runs


def load_run_model(run_dir: str | Path, checkpoint: str = "last.pt") -> tuple[Any, Any, Any, dict[str, Any]]:
    """The project, training settings, model (with the checkpoint's weights, on the CPU) and the
    checkpoint of a run folder. Raises :class:`EvaluationError` with one line naming the folder."""
    from core.analysis import analyze
    from core.compiler import CompileError, compile_graph
    from core.training.health import TrainingFailure
    from core.training.run_inputs import resume_settings
    from core.training.runs import RunFolderError, load_checkpoint

    folder = Path(run_dir)
    try:
        project, config = resume_settings(folder)
        ckpt = load_checkpoint(folder / "checkpoints" / checkpoint)
    except (TrainingFailure, RunFolderError) as exc:
        raise EvaluationError(str(exc).removeprefix("Cannot resume from ")) from None
    analysis = analyze(project.graph)
    if not analysis.ok:
        raise EvaluationError(f"{folder}: the run's graph has errors: {analysis.errors[0].message}")
    try:
        model = compile_graph(project.graph, seed=config.seed, analysis=analysis)
        model.load_state_dict(ckpt["model"])
    except (CompileError, RuntimeError, KeyError) as exc:
        raise EvaluationError(f"{folder}: the checkpoint's weights do not fit the run's graph "
                              f"({_first_line(exc)})") from None
    return project, config, model, ckpt


def evaluate_run(run_dir: str | Path, *, model: nn.Module | None = None, data: DataSource | None = None,
                 device: str | None = None, checkpoint: str = "last.pt",
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Callable[[], bool] | None = None, save: bool = True) -> Evaluation:
    """Evaluate a run on the validation split of the data it trained on (its training split when it
    has none) and write ``evaluation.json`` into the run folder (unless ``save`` is false).

    By default the checkpoint (``last.pt``) is compiled from the run's graph and the dataset is
    opened from the run's settings. At the end of a run the session may pass the trained ``model``
    and the ``data`` it already has open instead (nothing is reopened; the model should be the one
    the last checkpoint holds). ``device`` defaults to the run's. Raises :class:`EvaluationError`.
    """
    from core.analysis import analyze
    from core.training.tasks import task_option

    project, config, loaded, ckpt = load_run_model(run_dir, checkpoint)
    shape = analyze(project.graph).input_shape
    if data is None:
        data = open_run_data(run_dir, config, shape)
    split = "val" if data.val_count else "train"
    net = model if model is not None else loaded
    if task_option(config.task).target == "mask":  # per pixel: masks of H×W, batches the size training used
        ev = evaluate_masks(net, data, split=split, device=device or config.device, batch_size=config.batch_size,
                            ignore_index=config.ignore_index, progress=progress, cancel=cancel)
    else:
        ev = evaluate(net, data, split=split, device=device or config.device, batch_size=max(config.batch_size, 256),
                      progress=progress, cancel=cancel, input_shape=shape)
    ev.extra = {"run": str(Path(run_dir)), "epoch": int(ckpt.get("epoch", 0)), "checkpoint": checkpoint}
    if save:
        try:
            ev.save(Path(run_dir) / EVALUATION_FILE)
        except OSError as exc:
            raise EvaluationError(f"cannot write {Path(run_dir) / EVALUATION_FILE}: {exc}") from None
    return ev


def open_run_data(run_dir: str | Path, config: Any, input_shape: Sequence[int] | None,
                  log: Callable[[str], None] | None = None) -> DataSource:
    """The data a run trained on, opened from its settings (``config``, a TrainConfig), normalised
    with the statistics the run recorded in its ``config.json``.

    The built-in shapes set is then generated without its training split (its validation images
    come from their own seed; only the normalisation read the training split, and the run recorded
    that): a few seconds instead of twenty. A folder is decoded with the input pipeline the run
    recorded (pretrained weights' resize, crop, mean, std). Raises :class:`EvaluationError` when the
    data cannot be opened or its classes are not the ones the run trained on (a folder that changed).
    """
    from core.training.data import DatasetError, parse_spec
    from core.training.runs import RunFolder, RunFolderError

    try:
        recorded = RunFolder(run_dir).read_json("config.json").get("dataset") or {}
    except (RunFolderError, AttributeError):
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    pipeline = _recorded_pipeline(recorded, Path(run_dir) / "config.json")
    mean, std = recorded.get("mean"), recorded.get("std")
    stats: tuple[list[Any], list[Any]] | None = None
    if isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) > 0:
        stats = (mean, std)
    try:
        if stats is not None and parse_spec(config.dataset).kind == "shapes":
            config = config.updated(train_size=1)
        data = open_eval_data(config, input_shape, log, pipeline)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    classes = recorded.get("classes")
    if isinstance(classes, list) and classes and [str(c) for c in classes] != list(data.classes):
        raise EvaluationError(f"{data.name} does not have the classes the run trained on ({len(classes)} in the "
                              f"run, {data.num_classes} here: {_diff(classes, data.classes)})")
    if stats is not None and len(stats[0]) == len(data.mean):
        data.mean, data.std = tuple(float(v) for v in stats[0]), tuple(float(v) for v in stats[1])
    return data


def open_eval_data(config: Any, input_shape: Sequence[int] | None, log: Callable[[str], None] | None = None,
                   pipeline: InputPipeline | None = None) -> DataSource:
    """The data ``config`` names, opened as training opens it (:func:`core.training.run_inputs.open_data`),
    with ``pipeline`` (pretrained weights' resize, crop, mean and std) applied to folder images.
    Raises :class:`~core.training.data.DatasetError`."""
    from core.training.run_inputs import open_data

    return open_data(config, input_shape, log, pipeline)


def _recorded_pipeline(recorded: dict[str, Any], where: Path) -> InputPipeline | None:
    """The input pipeline a run's folder dataset applied (its config.json's ``dataset.pipeline``)."""
    entry = recorded.get("pipeline")
    if entry is None:
        return None
    from core.training.weights import InputPipeline

    try:
        pipeline = InputPipeline(resize=int(entry["resize"]), crop=int(entry["crop"]),
                                 mean=tuple(float(v) for v in entry["mean"]),
                                 std=tuple(float(v) for v in entry["std"]),
                                 interpolation=str(entry.get("interpolation", "bilinear")))
    except (TypeError, KeyError, ValueError, AttributeError):
        raise EvaluationError(f"{where}: dataset.pipeline must hold resize, crop, mean and std") from None
    return pipeline


def _diff(then: Sequence[Any], now: Sequence[str]) -> str:
    gone = [str(c) for c in then if str(c) not in now]
    new = [c for c in now if c not in {str(t) for t in then}]
    parts = ([f"missing {', '.join(gone[:3])}"] if gone else []) + ([f"new {', '.join(new[:3])}"] if new else [])
    return "; ".join(parts) or "the same names in another order"


def load_run_evaluation(run_dir: str | Path) -> Evaluation | None:
    """The run's ``evaluation.json``, or ``None`` when it has none (an unreadable one raises
    :class:`EvaluationError`)."""
    path = Path(run_dir) / EVALUATION_FILE
    return Evaluation.load(path) if path.is_file() else None


# ---------------------------------------------------------------------------------------- helpers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list_of(data: dict[str, Any], key: str, kind: type, prefix: str = "") -> list[Any]:
    value = data.get(key)
    if kind is float:
        ok = isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    elif kind is int:
        ok = isinstance(value, list) and all(_is_int(v) for v in value)
    else:
        ok = isinstance(value, list) and all(isinstance(v, kind) for v in value)
    if not ok:
        what = "numbers" if kind is float else f"{kind.__name__}s"
        raise EvaluationError(f"{prefix}{key}: expected a list of {what}")
    return list(value)  # type: ignore[arg-type]


__all__ = [
    "EVALUATION_FILE", "ClassStats", "Evaluation", "EvaluationCancelled", "EvaluationError", "TokenEvaluation",
    "evaluate", "evaluate_masks", "evaluate_run", "evaluate_tokens", "from_confusion", "load_run_evaluation",
    "load_run_model", "open_eval_data", "open_run_data", "sample_images",
]
