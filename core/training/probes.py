"""Probes: feature maps and statistics of chosen nodes on a fixed sample, captured while training.

A node id is a module path in the compiled model (DESIGN.md §6). For module nodes a forward hook
is attached just before the probe's forward pass and removed right after it, so training steps
never run with hooks. Stateless nodes of a ``torch.fx.GraphModule`` (Add, Concat …) are captured
by interpreting the graph for that one pass. The probe pass runs in eval mode under ``no_grad``
(BatchNorm running statistics and dropout untouched) and restores the training mode.

Captured maps are detached, capped to ``max_channels`` channels and ``max_size`` pixels per side
(adaptive average pooling), and moved to the CPU as float32.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from core.training.events import NodeStats, ProbeData
from core.training.optim import main_output

MAX_FEATURES = 1024  # a vector output (Linear) is shown as a strip; longer ones are cut


class Prober:
    """Which nodes to probe (settable from any thread) and the capture itself."""

    def __init__(self, max_channels: int = 32, max_size: int = 64) -> None:
        self.max_channels = max_channels
        self.max_size = max_size
        self._nodes: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def set_nodes(self, node_ids: Iterable[str]) -> None:
        with self._lock:
            self._nodes = tuple(dict.fromkeys(node_ids))

    @property
    def nodes(self) -> tuple[str, ...]:
        with self._lock:
            return self._nodes

    def capture(self, model: nn.Module, x: torch.Tensor, images: torch.Tensor, labels: tuple[int, ...],
                epoch: int, step: int, global_step: int) -> ProbeData:
        """One probe pass of ``x`` (already normalised, on the model's device) through ``model``."""
        nodes = self.nodes
        modules = dict(model.named_modules())
        module_ids = [n for n in nodes if n in modules and n != ""]
        other_ids = [n for n in nodes if n not in modules]
        raw: dict[str, torch.Tensor] = {}
        handles = []
        for nid in module_ids:
            handles.append(modules[nid].register_forward_hook(_recorder(raw, nid)))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if other_ids and isinstance(model, fx.GraphModule):
                    out = _Recorder(model, other_ids, raw).run(x)
                else:
                    out = model(x)
                probs = torch.softmax(main_output(out).float(), dim=1).cpu()
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        activations: dict[str, torch.Tensor] = {}
        channels: dict[str, int] = {}
        stats: dict[str, NodeStats] = {}
        for nid in nodes:
            if nid not in raw:
                continue
            t = raw[nid].detach().float()
            stats[nid] = NodeStats(mean=float(t.mean()), std=float(t.std()) if t.numel() > 1 else 0.0,
                                   zero_fraction=float((t == 0).float().mean()),
                                   grad_norm=_grad_norm(modules.get(nid)))
            channels[nid] = int(t.shape[1]) if t.ndim >= 2 else 1
            activations[nid] = self._downsample(t).cpu()
        return ProbeData(epoch=epoch, step=step, global_step=global_step, images=images, labels=labels,
                         probabilities=probs, activations=activations, channels=channels, stats=stats)

    def _downsample(self, t: torch.Tensor) -> torch.Tensor:
        if t.ndim >= 3:
            t = t[:, : self.max_channels]
        elif t.ndim == 2:
            t = t[:, :MAX_FEATURES]
        if t.ndim == 4 and (t.shape[2] > self.max_size or t.shape[3] > self.max_size):
            t = F.adaptive_avg_pool2d(t, (min(t.shape[2], self.max_size), min(t.shape[3], self.max_size)))
        return t.contiguous()


def _recorder(store: dict[str, torch.Tensor], nid: str) -> Any:
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        value = output[0] if isinstance(output, tuple | list) else output
        if isinstance(value, torch.Tensor):
            store[nid] = value.detach()

    return hook


class _Recorder(fx.Interpreter):
    """Runs a GraphModule and keeps the outputs of the fx nodes named after the wanted ids."""

    def __init__(self, module: fx.GraphModule, node_ids: Iterable[str], store: dict[str, torch.Tensor]) -> None:
        super().__init__(module)
        self.wanted = {nid.replace(".", "_"): nid for nid in node_ids}
        self.store = store

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        nid = self.wanted.get(n.name)
        if nid is not None and isinstance(result, torch.Tensor):
            self.store[nid] = result.detach()
        return result


def _grad_norm(module: nn.Module | None) -> float | None:
    if module is None:
        return None
    grads = [p.grad.detach().float().norm() for p in module.parameters(recurse=True)
             if p.requires_grad and p.grad is not None]
    if not grads:
        return None
    return float(torch.stack(grads).norm())
