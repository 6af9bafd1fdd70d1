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

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from core.analysis import analyze
from core.graph import Graph
from core.importer.converter import Converter, add_groups
from core.importer.errors import ModelImportError
from core.importer.trace import shape_values, trace_module
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
            if conv.key(name).rpartition(".")[0] not in owners]
    if lost:
        shown = ", ".join(lost[:4]) + (f" and {len(lost) - 4} more" if len(lost) > 4 else "")
        raise ModelImportError(f"{type(module).__name__}.forward never uses {shown}: importing would drop these "
                               f"weights (an unused head or branch?)", lost[0].rpartition(".")[0])


def import_module(module: nn.Module, input_shape: Sequence[int]) -> Graph:
    """The editable graph of ``module`` for per-sample ``input_shape`` (e.g. ``(3, 224, 224)``).

    Raises :class:`ModelImportError` for anything that cannot be represented.
    """
    return _import(module, input_shape).graph


def _import(module: nn.Module, input_shape: Sequence[int]) -> Converter:
    """Every stage in order; the converter comes back because it also maps the weights' keys."""
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ModelImportError(f"input shape must be positive sizes without the batch axis, got {list(input_shape)}")
    gm = trace_module(module)
    shape_values(gm, module, shape)
    conv = Converter(module, gm)
    graph = conv.run()
    add_groups(conv)
    _check(conv, module)
    _drop_inferred(graph)
    # Auto-arrange's layout, in one column (every wire points down, as in the source's forward);
    # the editor folds the blocks when it opens an import and arranges their cards, wrapped if long
    lay_out(graph, wrap=False)
    return conv


def import_with_weights(module: nn.Module, input_shape: Sequence[int]) -> tuple[Graph, dict[str, torch.Tensor]]:
    """:func:`import_module` plus a copy of the source's weights, keyed for the compiled graph.

    Node ids are the source's module paths, so the keys are the source's own ``state_dict``
    keys (except where a module name is not a valid id, see :func:`~core.importer.modules.id_paths`):
    ``compile_graph(graph).load_state_dict(state, strict=True)`` gives the same model.
    """
    conv = _import(module, input_shape)
    state = {conv.key(k): v.detach().clone() for k, v in module.state_dict().items()}
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
