"""The import, step by step: trace, learn shapes, convert, group, check against torch, tidy, lay out.

:func:`import_module` and :func:`import_with_weights` run the stages of the other modules in
order; this module adds the last two, which judge the finished graph rather than build it:

- the check refuses rather than returns a graph that disagrees with torch: analysis must give
  the traced shape of every node, and every parameter and buffer of the source must belong to a
  node (an unused head would otherwise lose its weights silently);
- the tidy-up drops optional parameters that analysis infers anyway (LayerNorm's
  ``normalized_shape``), so editing the imported graph stays free.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from numbers import Integral
from typing import Any

import torch
from torch import nn

from core.analysis import analyze
from core.graph import Graph, id_problem
from core.importer.converter import Converter, add_groups
from core.importer.errors import ModelImportError
from core.importer.modules import layer_classes
from core.importer.sequence import id_inputs
from core.importer.trace import Shapes, shape_values, trace_module
from core.layers import get_spec
from core.layers.spec import fmt_shape
from core.layout import lay_out


def _check(conv: Converter, module: nn.Module) -> None:
    """Refuse rather than return a graph that disagrees with torch."""
    g = conv.graph
    result = analyze(g)
    if result.errors:
        first = result.errors[0]
        raise ModelImportError(f"the imported graph does not check: {first.message}", first.node)
    for node_id, want in conv.expected.items():
        got = result.nodes[node_id].out_shapes
        if got != want:
            shown = ", ".join(fmt_shape(s) for s in got or ())
            raise ModelImportError(f"{node_id}: analysis gives {shown or '?'} but torch gives "
                                   f"{', '.join(fmt_shape(s) for s in want)} — this {g.nodes[node_id].type} "
                                   f"configuration cannot be imported faithfully", node_id)
    owners = {nid for nid, node in g.nodes.items() if (spec := get_spec(node.type)) is not None and spec.is_module}
    lost = [name for name, _ in [*module.named_parameters(), *module.named_buffers()]
            if _holder(conv.key(name), owners) is None and name not in conv.absorbed]
    if lost:
        shown = ", ".join(lost[:4]) + (f" and {len(lost) - 4} more" if len(lost) > 4 else "")
        raise ModelImportError(f"{type(module).__name__}.forward never uses {shown}: importing would drop these "
                               f"weights (an unused head or branch?)", lost[0].rpartition(".")[0])


def _holder(key: str, nodes: Collection[str]) -> str | None:
    """The node whose state holds ``key``: its owner, or a module above it (``attn.out_proj.weight`` is
    the attention layer's own sub-module's weight), or None."""
    owner = key.rpartition(".")[0]
    while owner and owner not in nodes:
        owner = owner.rpartition(".")[0]
    return owner or None


InputShapes = Sequence[int] | Sequence[Sequence[int]]


def import_module(module: nn.Module, input_shape: InputShapes) -> Graph:
    """The editable graph of ``module`` for per-sample ``input_shape`` (e.g. ``(3, 224, 224)``).

    A forward with several tensor arguments takes one shape per argument, in its order
    (``[(3, 64, 64), (3, 64, 64)]`` for a Siamese net): each becomes an Input node.
    Raises :class:`ModelImportError` for anything that cannot be represented.
    """
    return _import(module, input_shape).graph


class _Whole(nn.Module):
    """Holds a source that is itself one layer (a bare ``nn.Linear``), so it becomes Input → layer → Output."""

    def __init__(self, name: str, layer: nn.Module) -> None:
        super().__init__()
        self.add_module(name, layer)
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.get_submodule(self.name)(x)  # type: ignore[no-any-return]


def _whole(module: nn.Module) -> nn.Module:
    """``module`` itself, or held by :class:`_Whole` when it is a layer: its node needs an id."""
    base = layer_classes().registered_base(type(module))
    if base is None:
        return module
    spec = layer_classes()[base]
    name = spec.type.lower()
    return _Whole(name if not id_problem(name) else "layer", module)


def _refuse_hooks(module: nn.Module) -> None:
    """Hooks change what a module computes; a layer node cannot carry them, so say which and where."""
    from torch.nn.modules import module as torch_module
    from torch.nn.utils import prune

    globals_ = [*torch_module._global_forward_pre_hooks.values(), *torch_module._global_forward_hooks.values()]
    if globals_:
        raise ModelImportError(f"a global forward hook is registered ({_hook_name(globals_[0])}): it would run "
                               f"on every layer of the source but not of the import — remove it first")
    for path, m in module.named_modules():
        where = f"module {path!r} ({type(m).__name__})" if path else f"the model ({type(m).__name__})"
        for kind, hooks in (("forward pre-hook", m._forward_pre_hooks), ("forward hook", m._forward_hooks)):
            for hook in hooks.values():
                if isinstance(hook, prune.BasePruningMethod):
                    name = getattr(hook, "_tensor_name", "weight")
                    raise ModelImportError(
                        f"{where} is pruned ({_hook_name(hook)} on {name!r}, a {kind} that multiplies "
                        f"{name}_orig by {name}_mask): make the pruning permanent with "
                        f"torch.nn.utils.prune.remove(module, {name!r}) and import again", path)
                raise ModelImportError(f"{where} has a {kind} ({_hook_name(hook)}), which changes what it computes "
                                       f"and which a layer node cannot carry: remove it (handle.remove()) and "
                                       f"import again", path)


def _hook_name(hook: object) -> str:
    if hasattr(hook, "_pruning_methods"):  # several prunings of one tensor, held in a container
        return " + ".join(type(h).__name__ for h in hook._pruning_methods)
    name = getattr(hook, "__qualname__", None) or type(hook).__name__
    return str(name)


def _freeze(conv: Converter) -> None:
    """``requires_grad=False`` in the source becomes the frozen flag of the node that holds the weights."""
    flags: dict[str, set[bool]] = {}
    names: dict[str, list[str]] = {}
    for name, p in conv.module.named_parameters():
        owner = _holder(conv.key(name), conv.graph.nodes) or conv.key(name).rpartition(".")[0]
        flags.setdefault(owner, set()).add(p.requires_grad)
        names.setdefault(owner, []).append(name)
    for owner, seen in flags.items():
        if seen == {False} and owner in conv.graph.nodes:
            conv.graph.set_frozen(owner, True)
        elif len(seen) > 1:
            frozen = [n.rpartition(".")[2] for n in names[owner] if not conv.module.get_parameter(n).requires_grad]
            raise ModelImportError(f"{owner}: {', '.join(frozen)} has requires_grad=False but the layer's other "
                                   f"parameters train; a node is frozen whole — freeze all of them or none", owner)


def _shapes(input_shape: InputShapes) -> Shapes:
    """One shape, or one per input, as a tuple of shapes; anything else is refused saying what was given."""
    items: list[Any] = list(input_shape)
    several = bool(items) and all(isinstance(s, Sequence) and not isinstance(s, str) for s in items)
    shapes: list[list[Any]] = [list(s) for s in items] if several else [items]
    for shape in shapes:
        if not shape or not all(isinstance(d, Integral) and not isinstance(d, bool) and int(d) >= 1 for d in shape):
            raise ModelImportError(f"input shape must be positive sizes without the batch axis, got {shape}"
                                   + (f" (in {shapes})" if several else ""))
    return tuple(tuple(int(d) for d in shape) for shape in shapes)


def _import(module: nn.Module, input_shape: InputShapes) -> Converter:
    """Every stage in order; the converter comes back because it also maps the weights' keys."""
    shapes = _shapes(input_shape)
    _refuse_hooks(module)
    module = _whole(module)
    gm = trace_module(module, shapes)
    shape_values(gm, module, shapes, id_inputs(gm))
    conv = Converter(module, gm)
    graph = conv.run()
    add_groups(conv)
    _check(conv, module)
    _freeze(conv)
    _drop_inferred(graph)
    # Auto-arrange's layout, in one column (every wire points down, as in the source's forward);
    # the editor folds the blocks when it opens an import and arranges their cards, wrapped if long
    lay_out(graph, wrap=False)
    return conv


def import_with_weights(module: nn.Module, input_shape: InputShapes) -> tuple[Graph, dict[str, torch.Tensor]]:
    """:func:`import_module` plus a copy of the source's weights, keyed for the compiled graph.

    Node ids are the source's module paths, so the keys are the source's own ``state_dict``
    keys (except where a module name is not a valid id, see :func:`~core.importer.modules.id_paths`):
    ``compile_graph(graph).load_state_dict(state, strict=True)`` gives the same model.
    """
    conv = _import(module, input_shape)
    # conv.module: the source, or what holds it when it is a single layer (its keys get the layer's id)
    state = {conv.key(k): v.detach().clone() for k, v in conv.module.state_dict().items()}
    return conv.graph, state


def _drop_inferred(graph: Graph) -> None:
    """Drop optional params equal to what analysis infers (LayerNorm's normalized_shape): edits stay free.

    The exception is ``in_features`` of a Linear on a multi-axis input, which is kept (see below).
    """
    result = analyze(graph)
    for nid, node in graph.nodes.items():
        spec, r = get_spec(node.type), result.nodes.get(nid)
        if spec is None or r is None:
            continue
        if node.type == "Linear" and "in_features" in r.args and _multi_axis_input(result, graph, nid):
            # A per-position Linear (ConvNeXt's H×W×C MLP) is meant, not a forgotten Flatten: say so
            # explicitly, which also tells analysis not to suggest one.
            graph.set_param(nid, "in_features", r.args["in_features"])
            continue
        for name, value in list(node.params.items()):
            if spec.param(name).default is None and name in r.args and _same(r.args[name], value):
                graph.set_param(nid, name, None)


def _multi_axis_input(result: Any, graph: Graph, nid: str) -> bool:
    """Whether the node's (first) input has more than one axis per sample."""
    edges = graph.in_edges(nid)
    src = result.nodes.get(edges[0].src) if edges else None
    return bool(src is not None and src.output_shape is not None and len(src.output_shape) > 1)


def _same(a: Any, b: Any) -> bool:
    def norm(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(norm(x) for x in v) if len(v) != 1 else norm(v[0])
        return v

    return norm(a) == norm(b)


__all__ = ["import_module", "import_with_weights"]
