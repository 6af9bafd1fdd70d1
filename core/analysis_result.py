"""What analysis answers: per-node results (:class:`NodeResult`), the snapshot of a whole graph
(:class:`Analysis`, one ``summary --json`` object) and its training-memory estimate.

The types only, apart from the walk that fills them (:mod:`core.analysis`, which re-exports them):
the CLI, the GUI and the training tools read these, and the walk is the one place that makes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from core.diagnostics import Diagnostic, Severity
from core.layers.spec import Shape
from core.receptive_field import ReceptiveField

DTYPE_BYTES = 4  # float32 activations and parameters


_NO_ARGS: Mapping[str, Any] = MappingProxyType({})


class NodeResult(NamedTuple):
    """Everything analysis knows about one node (immutable). ``out_shapes`` is ``None`` when unknown."""

    id: str
    type: str
    out_shapes: tuple[Shape, ...] | None
    args: Mapping[str, Any] = _NO_ARGS
    params: int | None = None
    trainable: int | None = None
    buffers: int | None = None
    macs: int | None = None
    rf: ReceptiveField | None = None
    activation_bytes: int | None = None

    @property
    def output_shape(self) -> Shape | None:
        return self.out_shapes[0] if self.out_shapes else None

    @property
    def known(self) -> bool:
        return self.out_shapes is not None

    @property
    def flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id, "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params, "macs": self.macs,
            "receptive_field": self.rf.to_dict() if self.rf is not None else None,
        }
        if self.out_shapes is not None and len(self.out_shapes) > 1:
            d["output_shapes"] = [list(s) for s in self.out_shapes]
        return d


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Training memory for one step, in bytes. ``activations`` are those saved for backward.

    ``params``, ``grads`` and ``optimizer_state`` are exact for float32 training (what torch
    allocates for ``parameters()``, their ``.grad`` and the optimizer's per-element state);
    Adam's per-tensor ``step`` counters (a few bytes each) are left out. ``buffers`` counts the
    running statistics as float32. ``activations`` is an estimate: every node's output, saved once.
    """

    batch_size: int
    optimizer: str
    params: int
    grads: int
    optimizer_state: int
    activations: int
    buffers: int = 0

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.activations + self.buffers


@dataclass(frozen=True)
class Analysis:
    """A snapshot of analysis results; :meth:`to_dict` is one ``summary --json`` object."""

    nodes: Mapping[str, NodeResult]
    order: Sequence[str]
    diagnostics: Sequence[Diagnostic]
    total_params: int
    trainable_params: int
    buffers: int
    macs: int
    activation_bytes: int
    input_shape: Shape | None  # the first Input's (file order)
    output_shapes: Sequence[Shape | None]
    input_shapes: Sequence[Shape | None] = ()  # every Input's, in file order (a Siamese network has two)

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    @property
    def partial(self) -> bool:
        """While errors exist the totals are a lower bound: the layers at and after an error have
        unknown shapes and are not counted (show them as "≥ 2.96 M params")."""
        return not self.ok

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def diagnostics_for(self, node_id: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.node == node_id]

    def memory(self, batch_size: int, optimizer: str = "sgd") -> MemoryEstimate:
        """Training-memory estimate: params, grads, optimizer state, saved activations × batch.

        ``optimizer`` is a declared optimizer's name or its memory key (``sgd_nomomentum``,
        :func:`core.training.options.memory_key`); the number of state tensors per parameter is the
        one its declaration gives, as torch allocates them (an unknown name counts Adam's two).
        """
        # Imported here, not at the top: importing core.training.options runs core.training's
        # package, which loads the whole training engine, and only the estimate needs it.
        from core.training.options import state_tensors

        states = state_tensors(optimizer)
        states = 2 if states is None else states
        p = self.total_params * DTYPE_BYTES
        grads = self.trainable_params * DTYPE_BYTES
        return MemoryEstimate(batch_size, optimizer, p, grads, states * grads,
                              self.activation_bytes * batch_size, self.buffers * DTYPE_BYTES)

    def to_dict(self, source: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": source, "ok": self.ok,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
        }
        if len(self.input_shapes) > 1:  # only then: one-Input summaries keep their exact form
            out["input_shapes"] = [list(s) if s is not None else None for s in self.input_shapes]
        out |= {
            "output_shapes": [list(s) if s is not None else None for s in self.output_shapes],
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "macs": self.macs,
            "nodes": [self.nodes[n].to_dict() for n in self.order],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }
        return out


__all__ = ["DTYPE_BYTES", "Analysis", "MemoryEstimate", "NodeResult"]
