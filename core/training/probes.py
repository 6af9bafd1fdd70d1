"""Probes: feature maps and statistics of chosen nodes on a fixed sample, captured while training.

A node id is a module path in the compiled model (DESIGN.md §6). For module nodes a forward hook
is attached just before the probe's forward pass and removed right after it, so training steps
never run with hooks. Stateless nodes of a ``torch.fx.GraphModule`` (Add, Concat …) are captured
by interpreting the graph for that one pass. The probe pass runs in eval mode under ``no_grad``
(BatchNorm running statistics and dropout untouched) and restores the training mode.

Captured maps are detached, capped to ``max_channels`` channels and ``max_size`` pixels per side
(adaptive average pooling), and moved to the CPU as float32.

Sequence models (``sequence=True``: the run trains on token ids) add three things. A T×C output is
kept as ``(samples, T, C)`` (time steps and units capped, not pooled): a hidden-state heat map.
Every module with a ``keep_attention`` attribute (the attention layers) keeps its attention weights
for the probe pass only; they are read from its ``last_attention`` and reset. And each recurrent
node (torch's RNN, LSTM, GRU and their subclasses) gets its gradient norm per time step,
‖∂loss/∂output_t‖ over the probe sample: a second, small pass with gradients, differentiated with
``torch.autograd.grad`` with respect to the node's output only, so the parameters' ``.grad`` (the
optimizer's) are never touched.

When the engine probes is :class:`ProbeCadence`'s rule: the first report of every epoch, then at
least ``probe_interval`` apart and within a share of the epoch's time (a tenth with feature maps, a
fiftieth for the segmentation overlay's mask-only probes).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from core.training.events import NodeStats, ProbeData
from core.training.optim import main_output

MAX_FEATURES = 1024  # a vector output (Linear) is shown as a strip; longer ones are cut
MAX_STEPS = 512  # time steps of a sequence's heat map (longer sequences are cut)
MAX_UNITS = 256  # units (channels) of a sequence's heat map
FEATURE_PROBE_WAIT = 9  # feature-map probes wait nine of their own durations: a tenth of the run
# Mask-only probes (a segmentation run's live overlay, no node probed) may take this share of an
# epoch's time: on a quiet CPU a probe of 4 images costs milliseconds and the interval (1 s) rules;
# on a loaded one, where each of its ~15 small parallel ops waits for a scheduler tick (0.1 s and
# more per probe), the overlay refreshes every few seconds instead of costing 5–10 % of the run.
MASK_PROBE_SHARE = 1 / 50


class ProbeCadence:
    """When the engine probes during one epoch (a new one per epoch), from the times it is given.

    The first report of an epoch always probes: the overlay and the maps refresh at least once per
    epoch. ``interval`` 0 asks for every report, and gets it. Otherwise probes are ``interval``
    apart, and:

    - with feature maps (nodes probed), also ``FEATURE_PROBE_WAIT`` of the last probe's durations
      apart, so probes slower than the steps (an LSTM on a loaded CPU) take at most a tenth of the run;
    - mask-only (the segmentation overlay), only while the epoch's probe time so far plus the next
      probe's (estimated as the last one's) stays within ``MASK_PROBE_SHARE`` of the epoch's time:
      a budget, so probes whose cost varies (a loaded machine) cannot exceed it either."""

    def __init__(self, interval: float, start: float) -> None:
        self.interval = interval
        self.start = start  # when the epoch's training began
        self.last_end: float | None = None  # when the last probe of this epoch ended (None: none yet)
        self.last_cost = 0.0
        self.spent = 0.0  # seconds probed this epoch
        self.count = 0

    def due(self, now: float, feature_maps: bool, paused: float = 0.0) -> bool:
        """Whether to probe at ``now``; ``paused``: the seconds of the epoch spent paused (they earn
        the overlay's budget nothing)."""
        if self.last_end is None or self.interval <= 0:
            return True
        since = now - self.last_end
        if feature_maps:
            return since >= max(self.interval, FEATURE_PROBE_WAIT * self.last_cost)
        budget = MASK_PROBE_SHARE * (now - self.start - paused)
        return since >= self.interval and self.spent + self.last_cost <= budget

    def done(self, began: float, ended: float) -> None:
        """Record a probe that ran from ``began`` to ``ended``."""
        self.last_cost = max(ended - began, 0.0)
        self.spent += self.last_cost
        self.last_end = ended
        self.count += 1


class Prober:
    """Which nodes to probe (settable from any thread) and the capture itself."""

    def __init__(self, max_channels: int = 32, max_size: int = 64, sequence: bool = False) -> None:
        self.max_channels = max_channels
        self.max_size = max_size
        self.sequence = sequence  # token data: T×C outputs are heat maps, attention and time gradients apply
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
                epoch: int, step: int, global_step: int, *, target: str = "class",
                loss: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
                y: torch.Tensor | None = None, tokens: tuple[tuple[str, ...], ...] = (),
                masks: torch.Tensor | None = None) -> ProbeData:
        """One probe pass of ``x`` (already normalised, on the model's device) through ``model``.

        Segmentation probes (``target == "mask"``): ``masks`` are the sample's true masks (uint8
        (samples, H, W)), passed on as ``masks_true``; ``masks_pred`` is the argmax over the classes
        of the first output, (B, K, H, W), as uint8, and ``probabilities`` are each class's mean
        probability over the pixels (the share of the image the network gives it).

        Sequence probes: ``target`` is the task's (``"next-token"``: the probabilities are the last
        position's), ``loss(outputs, y)`` with the probe sample's targets ``y`` gives the time-step
        gradient norms of the recurrent nodes, and ``tokens`` (the decoded sample) is passed on."""
        nodes = self.nodes
        modules = dict(model.named_modules()) if nodes else {}  # the overlay alone needs no hooks
        module_ids = [n for n in nodes if n in modules and n != ""]
        other_ids = [n for n in nodes if n not in modules]
        raw: dict[str, torch.Tensor] = {}
        handles = []
        for nid in module_ids:
            handles.append(modules[nid].register_forward_hook(_recorder(raw, nid)))
        keepers = attention_modules(model) if self.sequence else {}
        for module in keepers.values():
            module.keep_attention = True
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                if other_ids and isinstance(model, fx.GraphModule):
                    out = _Recorder(model, other_ids, raw).run(x)
                else:
                    out = model(x)
                masks_pred = None
                if target == "mask":
                    scores = torch.softmax(_first(out).float(), dim=1)
                    masks_pred = scores.argmax(1).to(torch.uint8).cpu()
                    probs = scores.mean(dim=(2, 3)).cpu()
                else:
                    logits = main_output(out) if target != "next-token" else _first(out)[:, -1]
                    probs = torch.softmax(logits.float(), dim=1).cpu()
        finally:
            for h in handles:
                h.remove()
            attention = _take_attention(keepers)
            model.train(was_training)
        time_grads = (time_grad_norms(model, x, y, loss)
                      if self.sequence and loss is not None and y is not None else {})
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
            if self.sequence and t.ndim == 3:  # (samples, T, C): time steps × units
                channels[nid] = int(t.shape[2])
                activations[nid] = t[:, :MAX_STEPS, :MAX_UNITS].contiguous().cpu()
                continue
            channels[nid] = int(t.shape[1]) if t.ndim >= 2 else 1
            activations[nid] = self._downsample(t).cpu()
        return ProbeData(epoch=epoch, step=step, global_step=global_step, images=images, labels=labels,
                         probabilities=probs, activations=activations, channels=channels, stats=stats,
                         tokens=tokens, attention=attention, time_grad_norms=time_grads,
                         masks_true=masks.to(torch.uint8).cpu() if masks is not None else None, masks_pred=masks_pred)

    def _downsample(self, t: torch.Tensor) -> torch.Tensor:
        if t.ndim >= 3:
            t = t[:, : self.max_channels]
        elif t.ndim == 2:
            t = t[:, :MAX_FEATURES]
        if t.ndim == 4 and (t.shape[2] > self.max_size or t.shape[3] > self.max_size):
            t = F.adaptive_avg_pool2d(t, (min(t.shape[2], self.max_size), min(t.shape[3], self.max_size)))
        return t.contiguous()


def _first(outputs: Any) -> torch.Tensor:
    return outputs[0] if isinstance(outputs, tuple | list) else outputs


def attention_modules(model: nn.Module) -> dict[str, Any]:
    """The modules that can keep their attention weights (a bool ``keep_attention``), by module path;
    one inside another such module is left to it (the outer one is the node)."""
    found: dict[str, Any] = {}  # Any: mypy types a Module's attributes as Tensor | Module
    for name, module in model.named_modules():
        if not isinstance(getattr(module, "keep_attention", None), bool):
            continue
        if any(name.startswith(f"{outer}.") for outer in found if outer):
            continue
        found[name] = module
    return found


def _take_attention(keepers: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Each keeper's ``last_attention`` as float32 on the CPU; keeping is switched off and reset."""
    out: dict[str, torch.Tensor] = {}
    for name, module in keepers.items():
        weights = getattr(module, "last_attention", None)
        module.keep_attention = False
        if isinstance(weights, torch.Tensor):
            out[name] = weights.detach().float()[:, :, :MAX_STEPS, :MAX_STEPS].cpu()
        with contextlib.suppress(AttributeError):
            module.last_attention = None
    return out


def recurrent(module: nn.Module) -> bool:
    """Whether ``module`` is a recurrent layer (torch's RNN, LSTM, GRU or a subclass, or a module of
    that name)."""
    return isinstance(module, nn.RNNBase) or any(k in type(module).__name__ for k in ("RNN", "LSTM", "GRU"))


def time_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss: Callable[[Any, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    """‖∂loss/∂output_t‖ (float32 (T,), over the samples and units) of every recurrent node, from one
    pass in eval mode with gradients on (cuDNN off: its RNN backward runs only in training mode)."""
    layers = {name: m for name, m in model.named_modules() if name and recurrent(m)}
    if not layers:
        return {}
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            value = output[0] if isinstance(output, tuple | list) else output
            if isinstance(value, torch.Tensor) and value.requires_grad and value.ndim == 3:
                outputs[name] = value

        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            value = loss(model(x), y)
            if not outputs or not value.requires_grad:
                return {}
            names = list(outputs)
            grads = torch.autograd.grad(value, [outputs[n] for n in names], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: g.detach().float().pow(2).sum(dim=(0, 2)).sqrt().cpu()
            for name, g in zip(names, grads, strict=True) if g is not None}


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
