"""Multi-process training (DistributedDataParallel) under ``torchrun``.

``torchrun --nproc_per_node=N main.py train …`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``;
:func:`from_env` then joins the process group (NCCL on CUDA, Gloo on the CPU) and picks this
process's device (``cuda:LOCAL_RANK``). The engine wraps the model in DDP, gives each rank its
slice of every global batch (see :mod:`core.training.data.base`), sums the metrics over the ranks
at the end of each epoch, and lets rank 0 alone report, write the run folder and checkpoints.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world: int
    local_rank: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def from_env(device: str = "auto", timeout_s: float = 600.0) -> DistContext | None:
    """Join the process group torchrun describes, or ``None`` when running as one process."""
    world = env_world_size()
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device in ("auto", "cuda") and torch.cuda.is_available()) or device.startswith("cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world=world, local_rank=local_rank, backend=backend)


def device_for(ctx: DistContext | None, requested: str) -> str:
    """Each rank's device: ``cuda:LOCAL_RANK`` under NCCL, the CPU under Gloo."""
    if ctx is None:
        return requested
    return f"cuda:{ctx.local_rank}" if ctx.backend == "nccl" else "cpu"


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown(timeout_s: float = 120.0) -> None:
    """Leave the process group together: a rank that tears Gloo down while another still talks to it
    can abort the other process ("terminate called without an active exception")."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    with contextlib.suppress(RuntimeError):  # a peer already gone: nothing left to wait for
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=timeout_s))
        else:
            dist.barrier()
    dist.destroy_process_group()
