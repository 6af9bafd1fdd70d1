"""Which torch device a run uses: ``auto`` resolved to CUDA, then MPS, then CPU; a named device checked.

Its own module, below the engine, so that :mod:`core.memory_guard` (which the compiler uses) can
resolve a device the way a run would without importing the engine, which imports the compiler.
"""

from __future__ import annotations

import torch

from core.training.health import TrainingFailure


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA, then MPS, then CPU; an explicit device must exist."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingFailure(f"Unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingFailure(f"The device {name} was requested but no CUDA GPU is available here; "
                                  "use --device auto (or cpu).")
        if device.index is not None and device.index >= torch.cuda.device_count():
            count = torch.cuda.device_count()
            raise TrainingFailure(f"The device {name} does not exist: this machine has {count} GPU(s), "
                                  f"cuda:0 to cuda:{count - 1}.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingFailure("The device mps was requested but Apple's Metal backend is not available here; "
                              "use --device auto (or cpu).")
    return device
