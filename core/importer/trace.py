"""Tracing: the source module as a ``torch.fx`` graph whose every value's shape is known.

:func:`trace_module` traces symbolically, keeping every module class the layer registry knows
whole (as a leaf), in training mode so that training-only branches (GoogLeNet's and Inception's
auxiliary heads) are part of the graph. :func:`shape_values` then runs the trace once on meta
(or fake) tensors, so each fx node's ``meta['val']`` holds its value's shape, or the int of
shape arithmetic, without computing anything.

This stage knows torch.fx and nothing of the editable graph; the converter
(:mod:`core.importer.converter`) reads what it leaves in ``meta``. Both failures are turned into
a :class:`~core.importer.errors.ModelImportError` that names the module where tracing stopped.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import fx, nn

from core.importer.errors import ModelImportError
from core.importer.modules import layer_classes
from core.layers.spec import fmt_shape

BATCH = 2  # traced batch size: 2 tells the batch axis apart from a real axis of size 1


class _Tracer(fx.Tracer):
    """Keeps registered layer classes whole and remembers which module it is inside."""

    def __init__(self) -> None:
        super().__init__()
        self.classes = layer_classes()
        self.stack: list[str] = []

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return type(m) in self.classes or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        # Not popped on an exception: the innermost path is where tracing failed.
        self.stack.append(self.path_of_module(m))
        out = super().call_module(m, forward, args, kwargs)
        self.stack.pop()
        return out


@contextmanager
def _mode(module: nn.Module, training: bool) -> Iterator[None]:
    """Temporarily set every submodule's train/eval flag; restores each one afterwards."""
    saved = [(m, m.training) for m in module.modules()]
    module.train(training)
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def trace_module(module: nn.Module) -> fx.GraphModule:
    """``module`` traced in training mode, registered layer classes kept whole."""
    tracer = _Tracer()
    try:
        with _mode(module, True):
            graph = tracer.trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError … for dynamic code
        where = tracer.stack[-1] if tracer.stack else ""
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "control flow" in reason or "iterate" in reason or "Proxy" in reason:
            reason += " (the forward depends on tensor values, e.g. an `if` on a tensor)"
        at = f" in module {where!r} ({type(module.get_submodule(where)).__name__})" if where else " in forward"
        raise ModelImportError(f"torch.fx cannot trace {type(module).__name__}{at}: {reason}", where) from None
    return fx.GraphModule(module, graph, class_name=type(module).__name__)


class _Recorder(fx.Interpreter):
    """Runs the traced graph and keeps each node's result in ``node.meta['val']``."""

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        n.meta["val"] = value
        return value


class _Holder(nn.Module):
    """Lets ``functional_call`` swap the traced module's weights while :class:`_Recorder` runs it."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__()
        self.gm = gm

    def forward(self, x: torch.Tensor) -> Any:
        return _Recorder(self.gm).run(x)


def shape_values(gm: fx.GraphModule, module: nn.Module, input_shape: Sequence[int]) -> None:
    """Fill ``node.meta['val']`` with every value's shape (ints for shape arithmetic), computing nothing.

    Runs on meta tensors standing in for the weights; a forward that needs real values (a tensor
    constant that is not a buffer) runs on fake tensors instead, which is slower but general.
    """
    try:
        # eval(): nothing in the source (BatchNorm running statistics) may change while we look.
        with _mode(module, False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shape propagation only; the user sees no torch chatter
            holder = _Holder(gm)
            try:
                state = {k: torch.empty_like(v, device="meta")
                         for k, v in [*holder.named_parameters(), *holder.named_buffers()]}
                x = torch.empty(BATCH, *input_shape, device="meta")
                torch.func.functional_call(holder, state, (x,))
            except Exception:
                # The fallback's machinery is imported only when a model needs it.
                from torch._subclasses.fake_tensor import FakeTensorMode
                from torch.fx.passes.fake_tensor_prop import FakeTensorProp

                mode = FakeTensorMode(allow_non_fake_inputs=True)
                first = next(iter([*module.parameters(), *module.buffers()]), None)
                device = first.device if first is not None else torch.device("cpu")
                fake = mode.from_tensor(torch.empty(BATCH, *input_shape, device=device))
                FakeTensorProp(gm, mode).propagate_dont_convert_inputs(fake)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelImportError(f"{type(module).__name__} does not run on a {fmt_shape(input_shape)} input: "
                               f"{reason} — check the input shape") from None


__all__ = ["BATCH", "shape_values", "trace_module"]
