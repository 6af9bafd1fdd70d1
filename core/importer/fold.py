"""Layer subclasses with their own ``forward``, folded back into the layer they are.

Model zoos subclass the layers we know: a ``BatchNorm2d`` that applies its activation after the
norm, a ``LayerNorm`` for channels-first maps, a ``Conv2d`` that pads "same" from the input size.
The tracer keeps a subclass whole when it keeps its parent's ``forward``
(:class:`~core.importer.modules.LayerClasses`); one with its own ``forward`` is traced into, and
there the layer's work is a functional call (``F.batch_norm``, ``F.layer_norm``,
``F.group_norm``, ``F.conv2d``, ``F.linear``) on the module's **own** parameters.

:func:`fold_layer_calls` turns each such call back into a call of the module, as the layer class
it subclasses: when every argument is the module's own (its weight, bias, running statistics,
eps, stride …), the call computes exactly what the layer computes. The node keeps the module's
path (so its ``state_dict`` keys), and whatever the subclass does around the call (an activation,
a pad) stays in the graph as the ops it is. A ``LayerNorm`` whose call sits between
``permute(0, 2, 3, 1)`` and ``permute(0, 3, 1, 2)`` is a channels-first LayerNorm and becomes
LayerNorm2d. A call that uses anything else (a scaled weight, another eps) is left alone, and the
converter refuses it as before, naming it.

This stage works on the fx graph only, between tracing and shape propagation.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import fx, nn

from core.importer.modules import layer_classes, resolve_class

# functional call → (layer classes whose module it can be, tensor arguments that are the module's own)
_CALLS: dict[Callable[..., Any], tuple[tuple[type[nn.Module], ...], tuple[str, ...]]] = {
    F.linear: ((nn.Linear,), ("weight", "bias")),
    F.conv1d: ((nn.Conv1d,), ("weight", "bias")),
    F.conv2d: ((nn.Conv2d,), ("weight", "bias")),
    F.batch_norm: ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), ("weight", "bias", "running_mean", "running_var")),
    F.layer_norm: ((nn.LayerNorm,), ("weight", "bias")),
    F.group_norm: ((nn.GroupNorm,), ("weight", "bias")),
}

# what each call's other arguments must equal: argument name → module attribute
_SAME: dict[Callable[..., Any], dict[str, str]] = {
    F.conv1d: {"stride": "stride", "padding": "padding", "dilation": "dilation", "groups": "groups"},
    F.conv2d: {"stride": "stride", "padding": "padding", "dilation": "dilation", "groups": "groups"},
    F.batch_norm: {"eps": "eps"},
    F.layer_norm: {"normalized_shape": "normalized_shape", "eps": "eps"},
    F.group_norm: {"num_groups": "num_groups", "eps": "eps"},
}


# F.linear and F.conv*d are builtins without a signature to bind: their arguments, with torch's defaults
_CONV_ARGS = (("input", None), ("weight", None), ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1),
              ("groups", 1))
_BUILTIN_ARGS: dict[Callable[..., Any], tuple[tuple[str, Any], ...]] = {
    F.linear: (("input", None), ("weight", None), ("bias", None)),
    F.conv1d: _CONV_ARGS,
    F.conv2d: _CONV_ARGS,
}


def _bound(n: fx.Node) -> dict[str, Any] | None:
    """The call's arguments by name, defaults filled in; None when they do not fit the signature."""
    spelled = _BUILTIN_ARGS.get(n.target)  # type: ignore[arg-type]
    if spelled is not None:
        names = [name for name, _ in spelled]
        if len(n.args) > len(names) or any(k not in names for k in n.kwargs):
            return None
        out = dict(spelled)
        out.update(zip(names, n.args, strict=False))
        out.update(n.kwargs)
        return out
    try:
        ba = inspect.signature(n.target).bind(*n.args, **n.kwargs)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    ba.apply_defaults()
    return dict(ba.arguments)


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _owner(n: fx.Node, args: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The module path whose attributes the call's tensor arguments all are, or None."""
    owners = set()
    for name in names:
        a = args.get(name)
        if isinstance(a, fx.Node):
            if a.op != "get_attr":
                return None
            path, _, attr = str(a.target).rpartition(".")
            if attr != name:
                return None
            owners.add(path)
    return owners.pop() if len(owners) == 1 else None


def _matches(n: fx.Node, args: dict[str, Any], m: nn.Module, path: str) -> bool:
    """Whether the call computes exactly what ``m``'s layer class computes."""
    _, names = _CALLS[n.target]  # type: ignore[index]
    for name in names:
        own = getattr(m, name, None)
        a = args.get(name)
        if (own is None) != (a is None):
            return False
        if isinstance(a, fx.Node) and str(a.target) != f"{path}.{name}":
            return False
    for arg, attr in _SAME.get(n.target, {}).items():  # type: ignore[arg-type]
        want, got = getattr(m, attr, None), args.get(arg)
        if isinstance(want, tuple) and not isinstance(got, (list, tuple)):
            got = (got,) * len(want)
        if _tuple(want) != _tuple(got):
            return False
    if isinstance(m, nn.modules.conv._ConvNd) and m.padding_mode != "zeros":
        return False
    if n.target is F.batch_norm:
        # torch's BatchNorm: batch statistics in training (or without running statistics), and
        # ``momentum`` for the running ones; a momentum of None (cumulative average) is not this call
        return isinstance(args.get("training"), bool) and args.get("momentum") == m.momentum
    return True


def _sandwich(n: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """For a layer_norm between permute(0, 2, 3, 1) and permute(0, 3, 1, 2): (first, last) permute."""
    before = n.args[0]
    if not (isinstance(before, fx.Node) and before.op == "call_method" and before.target == "permute"
            and len(before.users) == 1 and len(n.users) == 1):
        return None
    after = next(iter(n.users))
    if not (after.op == "call_method" and after.target == "permute"):
        return None

    def dims(p: fx.Node) -> tuple[Any, ...]:
        rest = p.args[1:]
        return tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else tuple(rest)

    return (before, after) if dims(before) == (0, 2, 3, 1) and dims(after) == (0, 3, 1, 2) else None


def _as_class(m: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """``m`` seen as ``cls``: the same parameters, buffers and attributes, the class's own forward."""
    view = copy.copy(m)  # shares m's parameters and buffers: the source's weights are what load
    view.__class__ = cls
    return view


def fold_layer_calls(gm: fx.GraphModule, module: nn.Module) -> None:
    """Replace each functional layer call on a module's own parameters by a call of that module."""
    classes = layer_classes()
    folded: list[str] = []
    for n in list(gm.graph.nodes):
        if n.op != "call_function" or n.target not in _CALLS:
            continue
        kinds, names = _CALLS[n.target]
        args = _bound(n)
        if args is None:
            continue
        path = _owner(n, args, names)
        if not path:
            continue
        m = module.get_submodule(path)
        base = classes.registered_base(type(m))
        if base is None or not issubclass(base, kinds) or not _matches(n, args, m, path):
            continue
        x, first, last = args.get("input"), n, n
        cls: type[nn.Module] = base
        if n.target is F.layer_norm and (ends := _sandwich(n)) is not None:
            ln2d = resolve_class("core.layers.extra_modules.LayerNorm2d")
            if ln2d is not None and isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
                first, last = ends
                x, cls = first.args[0], ln2d
        if not isinstance(x, fx.Node):
            continue
        gm.add_submodule(path, _as_class(m, cls))
        with gm.graph.inserting_before(first):
            call = gm.graph.call_module(path, (x,))
        call.meta = dict(n.meta)
        last.replace_all_uses_with(call)
        for dead in ([last, n, first] if last is not n else [n]):
            if not dead.users:
                gm.graph.erase_node(dead)
        folded.append(path)
    if folded:
        _drop_own_bookkeeping(gm, folded)
        gm.graph.lint()
        gm.recompile()


def _drop_own_bookkeeping(gm: fx.GraphModule, paths: list[str]) -> None:
    """Drop what is left of a folded module's forward: reads of its own attributes nothing uses.

    BatchNorm's ``self.num_batches_tracked.add_(1)`` in training is the typical one: the layer
    node counts its own batches, so the traced copy of that bookkeeping is not needed.
    """
    prefixes = tuple(f"{p}." for p in paths)

    def own(a: fx.Node) -> bool:
        return a.op == "get_attr" and str(a.target).startswith(prefixes)

    changed = True
    while changed:
        changed = False
        for node in reversed(list(gm.graph.nodes)):
            if node.users or node.op not in ("get_attr", "call_method", "call_function"):
                continue
            inputs = node.all_input_nodes
            if own(node) or (inputs and all(own(a) for a in inputs)):
                gm.graph.erase_node(node)
                changed = True
