"""Health checks: the plain-language messages for runs that go wrong.

- a NaN/Inf loss stops the run (:func:`nonfinite_message`);
- CUDA out-of-memory stops it with a batch size that should fit (:func:`oom_message`, from the
  analysis memory estimate and the device's total memory);
- a diverging loss and a data pipeline that starves the model are warnings
  (:func:`divergence_warning`, :func:`starvation_warning`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

DIVERGENCE_FACTOR = 3.0
STARVATION_SHARE = 0.3
_USABLE_MEMORY = 0.85  # leave room for the allocator's fragmentation and the CUDA context


class TrainingFailure(Exception):
    """Training cannot go on; ``str()`` is the message shown to the user (no traceback)."""


def nonfinite_message(value: float, epoch: int, step: int, lr: float, amp: str, grad_clip: float) -> str:
    kind = "NaN" if value != value else "infinite"
    tips = [f"lower the learning rate (now {lr:g}; try {lr / 10:g})",
            "check the input normalization (inputs should be roughly mean 0, std 1)"]
    if grad_clip <= 0:
        tips.append("turn on gradient clipping (e.g. grad_clip 1.0)")
    if amp == "fp16":
        tips.append("use bf16 or float32 instead of fp16 (fp16 overflows above 65,504)")
    tips.append("add BatchNorm after deep convolutions, or use ReLU instead of sigmoid in deep networks")
    return (f"Training stopped: the loss became {kind} at epoch {epoch}, step {step} — the network produced "
            f"numbers too large to represent. Try: {'; '.join(tips)}.")


def device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (GPU memory on CUDA, system RAM otherwise)."""
    if device.type == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def suggest_batch_size(batch_size: int, estimate: Callable[[int], int] | None, total: int | None) -> int:
    """The largest power of two below ``batch_size`` whose estimated memory fits ``total``.

    Without an estimate, half the batch size (the batch that failed is known not to fit).
    """
    candidate = 1
    while candidate * 2 < batch_size:
        candidate *= 2
    if estimate is None or total is None:
        return max(1, batch_size // 2)
    budget = total * _USABLE_MEMORY
    while candidate > 1 and estimate(candidate) > budget:
        candidate //= 2
    return candidate


def oom_message(batch_size: int, device: torch.device, device_name: str, estimate: Callable[[int], int] | None,
                amp: str) -> str:
    total = device_memory(device)
    suggestion = suggest_batch_size(batch_size, estimate, total)
    parts = [f"Training stopped: out of memory on {device_name} at batch size {batch_size}"]
    if total is not None:
        parts[0] += f" ({_gib(total)} in total)"
    if estimate is not None:
        parts.append(f"the estimate for this network is {_gib(estimate(batch_size))} at batch size {batch_size} "
                     f"and {_gib(estimate(suggestion))} at {suggestion}")
    parts.append(f"batch size {suggestion} should fit")
    fixes = [f"set the batch size to {suggestion}"]
    if amp == "off" and device.type == "cuda":
        fixes.append("turn on mixed precision (amp), which halves the activations")
    fixes.append("or use smaller images or fewer channels")
    return "; ".join(parts) + ". Try: " + ", ".join(fixes) + ". The memory has been freed."


def divergence_warning(epoch: int, loss: float, first: float) -> str | None:
    if first > 0 and loss > DIVERGENCE_FACTOR * first:
        return (f"The training loss is diverging: {loss:.4g} at epoch {epoch}, more than {DIVERGENCE_FACTOR:g}× "
                f"the first epoch's {first:.4g}. The learning rate is probably too high; try a lower one or a "
                "warm-up.")
    return None


def starvation_warning(epoch: int, share: float, in_memory: bool, workers: int | None) -> str | None:
    if share < STARVATION_SHARE:
        return None
    msg = (f"The data pipeline is starving the model: {share:.0%} of epoch {epoch} was spent waiting for "
           "batches.")
    if in_memory:
        return msg + " Try a larger batch size, or turn augmentation off."
    hint = f" (now {workers})" if workers is not None else ""
    return msg + f" Try more DataLoader workers{hint}, smaller images, or a faster disk."


def _gib(n: float) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GiB"
    return f"{n / (1 << 20):.0f} MiB"
