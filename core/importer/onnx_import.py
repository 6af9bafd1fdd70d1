"""Import an ONNX file as an editable graph with its initializers as weights (issue 12 §2).

:func:`import_onnx` reads the file (:mod:`core.importer.onnx_read`), walks its nodes in order and
sends each to its handler in the one op table of :mod:`core.importer.onnx_ops`, which adds the
layer nodes the registry declares (:mod:`core.layers`) through the conversion state of
:mod:`core.importer.onnx_conversion`. It returns the same pair as
:func:`~core.importer.import_with_weights`: the graph, and a ``state_dict`` that
``compile_graph(graph).load_state_dict(state, strict=True)`` accepts, so the compiled graph gives
the ONNX model's outputs. :func:`import_onnx_project` wraps the graph as a project.

Every node's shapes come from the layer declarations as the graph is built and are compared with
ONNX's own shape inference, so a layer that would compute something else is refused at its node
rather than imported wrongly; the finished graph must then pass analysis, and its compiled module
must have exactly the keys and shapes of the weights. An op without a handler, or a configuration
a layer type cannot represent, is refused in one line naming the op type and the node's name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from core.analysis import analyze
from core.compiler import compile_graph
from core.graph import Graph
from core.importer.errors import ModelImportError
from core.importer.onnx_conversion import OnnxConversion, valid_id
from core.importer.onnx_ops import convert_node
from core.importer.onnx_read import read_onnx
from core.importer.values import Ref
from core.layout import lay_out
from core.project import Project


def _walk(conv: OnnxConversion) -> Graph:
    """Every ONNX node in order (:func:`~core.importer.onnx_ops.convert_node`), then the Outputs."""
    several = len(conv.m.inputs) > 1
    for k, (name, shape) in enumerate(conv.m.inputs):
        # one Input per data input, named after it when there are several (as the torch importer does)
        node_id = "input"
        if several:
            stem = valid_id(name)
            node_id = stem if "." not in stem and not conv.clashes(stem) else f"input_{k}"
        conv.graph.add_node("Input", node_id, {"shape": list(shape)})
        conv.alias(name, Ref(node_id))
        conv.out_shapes[Ref(node_id)] = shape
    for node in conv.m.nodes:
        if id(node) not in conv.done:
            convert_node(conv, node)
    conv.add_outputs()
    return conv.graph


def _class_names(conv: OnnxConversion) -> dict[str, str]:
    """Module path → class name, where torch's exporter recorded both (``layer1.0`` → ``BasicBlock``)."""
    out: dict[str, str] = {}
    for node in conv.m.nodes:
        props = {p.key: p.value for p in node.metadata_props}
        scopes, classes = props.get("pkg.torch.onnx.name_scopes"), props.get("pkg.torch.onnx.class_hierarchy")
        if scopes and classes:
            paths = [s.strip(" '\"") for s in scopes.strip("[]").split(",")]
            names = [c.strip(" '\"").rpartition(".")[2] for c in classes.strip("[]").split(",")]
            out.update((valid_id(p), c) for p, c in zip(paths, names, strict=False) if p)
    return out


def _add_groups(conv: OnnxConversion) -> None:
    """One group per module path that holds nodes (``layer1``, ``layer1.0``), as the torch importer makes,
    labelled with the module's class where the file records it, else with the path."""
    g = conv.graph
    members: dict[str, list[str]] = {}  # group path → its direct members, in order
    for nid in list(g.nodes):
        child, path = nid, nid.rpartition(".")[0]
        while path and path not in g.nodes:
            bucket = members.setdefault(path, [])
            if child in bucket:
                break
            bucket.append(child)
            child, path = path, path.rpartition(".")[0]
    if not members:
        return
    labels = _class_names(conv)
    for path in sorted(members, key=lambda p: -p.count(".")):  # children first: members must exist
        if all(m in g.nodes or m in g.groups for m in members[path]):
            g.add_group(path, labels.get(path, path), members[path])


def _check(conv: OnnxConversion) -> None:
    """Refuse rather than return a graph that analysis or the compiled module disagrees with."""
    result = analyze(conv.graph)
    if result.errors:
        first = result.errors[0]
        raise ModelImportError(f"{conv.m.path}: the imported graph does not check: {first.message}", first.node)
    module = compile_graph(conv.graph, device="meta")
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in conv.state.items()}
    if want != got:
        wrong = sorted(set(want) ^ set(got)) or [k for k in want if want[k] != got[k]]
        raise ModelImportError(f"{conv.m.path}: the weights do not fit the imported graph at {wrong[0]}", None)


InputShapes = Sequence[int] | Sequence[Sequence[int]]


def import_onnx(path: str | os.PathLike[str], input_shape: InputShapes | None = None,
                ) -> tuple[Graph, dict[str, torch.Tensor]]:
    """The editable graph of the ONNX model at ``path`` and its weights, keyed for the compiled graph.

    ``input_shape`` (per sample, without the batch axis; one shape per data input, in the file's
    order, for a model with several) is needed only when the file leaves a size other than the
    batch open. Raises :class:`ModelImportError` in one line for a file that
    cannot be read or a node that cannot be represented.
    """
    conv = OnnxConversion(read_onnx(path, input_shape))
    graph = _walk(conv)
    _add_groups(conv)
    _check(conv)
    lay_out(graph, wrap=False)
    return graph, conv.state


def import_onnx_project(path: str | os.PathLike[str], input_shape: InputShapes | None = None,
                        ) -> tuple[Project, dict[str, torch.Tensor]]:
    """:func:`import_onnx` as a :class:`~core.project.Project` named after the file, plus the weights."""
    graph, state = import_onnx(path, input_shape)
    name = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "onnx model"
    return Project(graph=graph, name=name, extra={"imported_from": f"onnx:{os.path.basename(os.fspath(path))}"}), state


__all__ = ["import_onnx", "import_onnx_project"]
