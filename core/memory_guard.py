"""Refuse a network too big for the machine before a byte of it is allocated (issue 11, item 8).

A three-line project file (a Conv2d of 3 → 100,000 channels with a kernel of 100) asks for 12 GB
of weights; building it would swap the machine to a halt or be killed by the kernel with no word.
The analysis already knows every layer's parameter count and the training-memory estimate, so
this module compares those with the free memory of the device the network is about to live on
and answers with one plain sentence naming the biggest layer. Every path that builds a network
asks here: :func:`core.compiler.compile_plan` (Train, the GUI's Train button, *Verify with
torchinfo*, ONNX export) checks the weights, and the CLI's ``train`` and the training dock check
the whole training step (weights, gradients, optimizer state, activations) on the training device.

Free memory: on the CPU the kernel's ``MemAvailable`` (what can be allocated without swapping),
else the available physical pages; on CUDA ``torch.cuda.mem_get_info``. Where neither can be
read (the meta device, MPS, an unknown platform) nothing is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from core.analysis import DTYPE_BYTES, Analysis
from core.units import human, human_bytes


def available_ram() -> int | None:
    """Bytes of RAM that can be allocated without swapping, or ``None`` when it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def free_bytes(device: str | torch.device | None) -> int | None:
    """Free memory of ``device`` (``None`` is the CPU), or ``None`` when unknown or not checked."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cpu":
        return available_ram()
    if dev.type == "cuda" and torch.cuda.is_available():
        try:
            free, _total = torch.cuda.mem_get_info(dev)
        except (RuntimeError, ValueError, AssertionError):
            return None
        return int(free)
    return None


def _where(device: str | torch.device | None) -> str:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return "this machine has" if dev.type == "cpu" else f"the GPU ({dev}) has"


def biggest_layer(analysis: Analysis, node_ids: Iterable[str] | None = None) -> tuple[str, int] | None:
    """The node with the most parameters (among ``node_ids`` when given) and its count."""
    ids = analysis.nodes if node_ids is None else node_ids
    best: tuple[str, int] | None = None
    for nid in ids:
        result = analysis.nodes.get(nid)
        n = result.params if result is not None else None
        if n and (best is None or n > best[1]):
            best = (nid, n)
    return best


def _advice(analysis: Analysis, node_ids: Iterable[str] | None, extra: str = "") -> str:
    big = biggest_layer(analysis, node_ids)
    named = f" ({big[0]} has {human(big[1])} parameters)" if big is not None else ""
    return f"make the layers smaller{extra}{named}"


def weights_problem(analysis: Analysis, device: str | torch.device | None = None,
                    node_ids: Iterable[str] | None = None) -> str | None:
    """One sentence when the weights (and buffers) of ``node_ids`` (default: every node) cannot fit
    in the free memory of ``device``; ``None`` when they fit or the free memory is unknown."""
    ids = list(analysis.nodes if node_ids is None else node_ids)
    count = 0
    for nid in ids:
        result = analysis.nodes.get(nid)
        if result is not None:
            count += (result.params or 0) + (result.buffers or 0)
    need = count * DTYPE_BYTES
    if need == 0:
        return None
    free = free_bytes(device)
    if free is None or need <= free:
        return None
    return (f"The network's weights need {human_bytes(need)}, but {_where(device)} {human_bytes(free)} free: "
            f"{_advice(analysis, ids)}.")


def training_problem(analysis: Analysis, device: str | torch.device, batch_size: int,
                     optimizer: str) -> str | None:
    """One sentence when one training step (the analysis' estimate: weights, gradients, optimizer
    state, activations for ``batch_size``) cannot fit in the free memory of ``device``."""
    estimate = analysis.memory(batch_size, optimizer)
    need = estimate.total
    free = free_bytes(device)
    if free is None or need <= free:
        return None
    return (f"Training needs about {human_bytes(need)} (weights, gradients, optimizer state and the "
            f"activations of a batch of {batch_size}), but {_where(device)} {human_bytes(free)} free: "
            f"{_advice(analysis, None, ' or the batch smaller')}.")


def training_device_problem(analysis: Analysis, device: str, batch_size: int, optimizer: str) -> str | None:
    """:func:`training_problem` on the device a run with ``--device device`` would use (``auto``
    resolved as the engine does); an unknown device is left to the engine to refuse."""
    from core.training.devices import resolve_device
    from core.training.health import TrainingFailure

    try:
        dev = resolve_device(device)
    except TrainingFailure:
        return None
    return training_problem(analysis, dev, batch_size, optimizer)


__all__ = ["available_ram", "biggest_layer", "free_bytes", "training_device_problem", "training_problem",
           "weights_problem"]
