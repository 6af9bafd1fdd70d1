"""The conversion: one walk over the traced fx graph that builds the editable :class:`~core.graph.Graph`.

:class:`Converter` visits the fx nodes in order, after :mod:`core.importer.trace` has left every
value's shape in ``node.meta['val']``:

- each leaf module becomes a layer node whose id is its module path (``layer1.0.conv1``), with
  its constructor arguments read back by :mod:`core.importer.modules`, so the compiled import has
  exactly the source's ``state_dict`` keys (a module called with more than its tensors, like ViT's
  ``self_attention(x, x, x, need_weights=False)``, as :func:`~core.importer.ops_vit.module_call` says);
- each functional call goes to its handler in :mod:`core.importer.ops` (or :mod:`core.importer.ops_timm`,
  :mod:`core.importer.ops_vit` and :mod:`core.importer.ops_more`, asked first), which adds the matching
  layer node with an id in the calling module's scope (``layer1.0.add``) that never equals a real
  module path; shape arithmetic (``x.size(0)``, ``c // groups``) leaves no node;
- anything else is refused with a :class:`~core.importer.errors.ModelImportError` naming the
  operation and the module path, so nothing is ever dropped silently.

:func:`add_groups` then nests the nodes in one group per module, labelled with its class name.
The converter implements the handlers' :class:`~core.importer.ops.Conversion` and imports them;
they never import it back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from core.graph import Graph, id_problem
from core.importer.errors import ModelImportError
from core.importer.modules import id_paths, layer_classes, module_params, user_params
from core.importer.ops import describe
from core.importer.ops_more import is_mask
from core.importer.ops_sequence import State, on_state, state_name, state_op
from core.importer.ops_timm import handler_for
from core.importer.ops_vit import module_call
from core.importer.trace import BATCH
from core.importer.values import Multi, Outputs, Param, Ref, tensors_in
from core.layers import get_spec
from core.layers.spec import is_identifier_segment


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, dict):
        return any(_has_tensor(v) for v in value.values())
    return False


def _op_name(n: fx.Node) -> str:
    if n.op == "call_method":
        return str(n.target)
    return getattr(n.target, "__name__", str(n.target))


_FORBIDDEN_SEGMENTS = frozenset(dir(nn.Module())) | frozenset(dir(fx.GraphModule(nn.Module(), fx.Graph())))


class Converter:
    """Walks the traced fx graph once, in order, and builds the editable graph."""

    def __init__(self, module: nn.Module, gm: fx.GraphModule) -> None:
        self.module = module
        self.gm = gm
        self.graph = Graph()
        self.values: dict[fx.Node, Any] = {}
        self.scope: dict[str, str] = {}  # node id → module path of the group it belongs to
        self.expected: dict[str, tuple[tuple[int, ...], ...]] = {}  # node id → torch's shapes
        self.skip: set[fx.Node] = set()
        self.ids = id_paths(module)  # module path → node id path
        self.param_nodes: dict[str, str] = {}  # source parameter name → its Parameter node
        self.absorbed: set[str] = set()  # buffers a node computes itself (BlurPool2d's filter), not held
        self.reserved = {i for i in self.ids.values() if i}
        self.reserved |= {self.key(name) for name, _ in module.named_parameters(remove_duplicate=False)}
        self.reserved |= {self.key(name) for name, _ in module.named_buffers(remove_duplicate=False)}
        self.calls: dict[str, int] = {}

    # -- helpers ----------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        """A source state_dict key (``owner.weight``) as the compiled graph's key.

        A parameter held by a Parameter node moves one level down, to the node's ``weight``."""
        if name in self.param_nodes:
            return f"{self.param_nodes[name]}.weight"
        owner, _, leaf = name.rpartition(".")
        return f"{self.ids[owner]}.{leaf}" if owner else leaf

    def where(self, n: fx.Node) -> str:
        stack = n.meta.get("nn_module_stack") or {}
        if not stack:
            return ""
        path = list(stack.values())[-1][0]
        return str(path)

    def fail(self, n: fx.Node, what: str, why: str = "NetCanvas has no layer type for it") -> ModelImportError:
        """The refusal for ``what`` at fx node ``n``, naming the module whose forward does it."""
        path = self.where(n)
        at = (f"in module {path!r} ({type(self.module.get_submodule(path)).__name__})" if path
              else f"in {type(self.module).__name__}.forward")
        return ModelImportError(f"cannot import {what} {at}: {why}", path)

    def shapes(self, n: fx.Node) -> tuple[tuple[int, ...], ...]:
        val = n.meta.get("val")
        vals = val if isinstance(val, (tuple, list)) else (val,)
        out = []
        for v in vals:
            if not isinstance(v, torch.Tensor) or v.dim() == 0 or v.shape[0] != BATCH:
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ModelImportError(f"{_op_name(n)} in module {self.where(n)!r} gives {got}, which is not a "
                                       f"batch of samples (the batch axis must stay first)", self.where(n))
            out.append(tuple(int(d) for d in v.shape[1:]))
        return tuple(out)

    def fresh(self, base: str) -> str:
        *head, last = base.split(".")
        ok = (last.isidentifier() and not id_problem(last) and last not in _FORBIDDEN_SEGMENTS) or last.isdigit()
        stem = ".".join([*head, last if ok else "op"])
        candidate, k = stem, 0
        while candidate in self.graph.nodes or candidate in self.reserved:
            k += 1
            candidate = f"{stem}_{k}"
        return candidate

    def add(self, type_name: str, node_id: str, params: Mapping[str, Any], inputs: Sequence[Any],
            scope: str, n: fx.Node | None, *, checked: bool = True) -> Any:
        self.graph.add_node(type_name, node_id, params)
        self.scope[node_id] = scope
        for port, ref in enumerate(inputs):
            self.graph.add_edge(ref.node, node_id, port, ref.port)
        if n is None:
            return Ref(node_id)
        if checked:
            self.expected[node_id] = self.shapes(n)
        spec = get_spec(type_name)
        if spec is not None and spec.outputs(spec.resolve(params)) > 1:
            return Multi(node_id, spec.outputs(spec.resolve(params)))
        return Ref(node_id)

    def functional(self, n: fx.Node, type_name: str, params: Mapping[str, Any], inputs: Sequence[Any],
                   name: str | None = None, *, last: bool = True) -> Any:
        scope = self.where(n)
        base = (name or _op_name(n)).rstrip("_") or "op"
        node_id = self.fresh(f"{self.ids[scope]}.{base}" if scope else base)
        spec = get_spec(type_name)
        assert spec is not None, type_name
        return self.add(type_name, node_id, user_params(spec, params, node_id), inputs, scope, n, checked=last)

    def refs(self, n: fx.Node, value: Any, what: str) -> list[Ref]:
        out = []
        for v in tensors_in(value):
            if not isinstance(v, Ref):
                raise self.fail(n, f"{what} on " + ("a parameter" if isinstance(v, Param) else "a tuple"),
                                "its input must be the output of a layer")
            out.append(v)
        return out

    # -- the walk ---------------------------------------------------------------------------------
    def run(self) -> Graph:
        outputs: Any = None
        tensors = [n for n in self.gm.graph.nodes
                   if n.op == "placeholder" and isinstance(n.meta.get("val"), torch.Tensor)]
        for n in self.gm.graph.nodes:
            if n in self.skip:
                continue
            if n.op == "placeholder":
                if n not in tensors:  # an argument left at its default (a flag): a constant
                    self.values[n] = n.meta.get("val")
                    continue
                # One Input per tensor argument, named after it when there are several (Siamese nets).
                node_id = self.fresh("input" if len(tensors) == 1 else str(n.target))
                self.graph.add_node("Input", node_id, {"shape": list(self.shapes(n)[0])})
                self.values[n] = Ref(node_id)
            elif n.op == "get_attr":
                val = self.gm
                for seg in str(n.target).split("."):
                    val = getattr(val, seg)
                if not isinstance(val, torch.Tensor):
                    raise self.fail(n, f"attribute {n.target!r}")
                self.values[n] = Param(str(n.target), val)
            elif n.op == "call_module":
                self.values[n] = self.call_module(n)
            elif n.op in ("call_function", "call_method"):
                self.values[n] = self.call(n)
            elif n.op == "output":
                outputs = fx.node.map_arg(n.args[0], lambda a: self.values[a])
        self.outputs(outputs)
        return self.graph

    def call_module(self, n: fx.Node) -> Any:
        path = str(n.target)
        m = self.gm.get_submodule(path)
        spec = layer_classes().get(type(m))
        cls = f"{type(m).__module__}.{type(m).__qualname__}"
        if spec is None:
            raise ModelImportError(f"cannot import module {path!r} ({cls}): NetCanvas has no layer type for it", path)
        special = module_call(self, n, m, spec)  # nn.MultiheadAttention(x, x, x, need_weights=False)
        if special is None and (n.kwargs or any(not isinstance(a, fx.Node) for a in n.args)):
            raise ModelImportError(f"cannot import module {path!r} ({spec.type}): it is called with extra "
                                   f"arguments, which a layer node cannot take", path)
        inputs = (special.inputs if special is not None
                  else self.refs(n, [self.values[a] for a in n.args if isinstance(a, fx.Node)], spec.type))
        params = module_params(spec, m, path)
        self.calls[path] = self.calls.get(path, 0) + 1
        node_id = self.ids[path]
        if self.calls[path] > 1:
            # A module called twice is one layer used twice: fine without state, not with weights.
            if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
                raise ModelImportError(f"module {path!r} ({spec.type}) is called {self.calls[path]} times, sharing "
                                       f"its weights; a graph of layers gives each use its own weights", path)
            node_id = self.fresh(node_id)
        parent = path.rpartition(".")[0]
        if special is not None:
            return special.result(self.add(spec.type, node_id, params, inputs, parent, n, checked=special.checked))
        return self.add(spec.type, node_id, params, inputs, parent, n)

    def call(self, n: fx.Node) -> Any:
        args = fx.node.map_arg(n.args, lambda a: self.values[a])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: self.values[a])
        if not _has_tensor(n.meta.get("val")):
            # Shape arithmetic (x.size(0), c // g, asserts): its value is known; no node.
            return n.meta.get("val")
        if isinstance(n.target, type) and issubclass(n.target, tuple):  # a namedtuple of outputs
            names = getattr(n.target, "_fields", ())
            return Outputs(tuple(args) + tuple(kwargs.values()), tuple(names) + tuple(kwargs))
        if (n.op == "call_method" and str(n.target).endswith("_") and len(n.args[0].users) > 1  # type: ignore[union-attr]
                and not is_mask(args[0])):  # a drop-path mask divided in place is followed by its handler
            # x.sigmoid_() changes x for its other users too; a layer node cannot do that.
            raise self.fail(n, f"the in-place {describe(n)}", "it changes a tensor that is used again, "
                            "which a layer node cannot do")
        if (state := on_state(args, kwargs, n)) is not None:  # h_n of an nn.LSTM: torch's axis order
            return state_op(self, n, state, args, kwargs)
        handler = handler_for(n)
        if handler is None:
            kind = "method" if n.op == "call_method" else "function"
            raise self.fail(n, f"the {kind} {describe(n)}")
        return handler(self, n, args, kwargs)

    def outputs(self, value: Any) -> None:
        """One Output node per returned tensor, in order: a dict's keys name them, a tuple's positions."""
        keyed = isinstance(value, dict)
        if isinstance(value, Outputs):
            items, names = value.items, value.names
        elif keyed:
            items, names = tuple(value.values()), tuple(str(k) for k in value)
        elif isinstance(value, (tuple, list)):
            items, names = tuple(value), tuple(str(i) for i in range(len(value)))
        else:
            items, names = (value,), ("",)
        for i, (item, name) in enumerate(zip(items, names, strict=True)):
            if not isinstance(item, Ref):
                where = f"under key {name!r}" if keyed else f"at position {i}"
                if isinstance(item, State):  # d2l's language model returns its state: torch's axis order
                    raise ModelImportError(f"{type(self.module).__name__}.forward returns {state_name(item)} {where}"
                                           f", which an Output holds batch first: return its .transpose(0, 1) "
                                           f"instead, or only the output", item.path)
                raise ModelImportError(f"{type(self.module).__name__}.forward returns a {type(item).__name__} "
                                       f"{where}; only tensors (or tuples or dicts of tensors) can be Outputs")
            if keyed:
                node_id = self.fresh(name if name.isidentifier() else f"output_{i}")
            else:
                node_id = self.fresh("output" if i == 0 else f"output_{name}" if name else f"output_{i}")
            # a dict's key names its Output (torchvision's segmentation models return {"out", "aux"})
            named = keyed and is_identifier_segment(name)
            self.graph.add_node("Output", node_id, {"name": name} if named else {})
            self.graph.add_edge(item.node, node_id, 0, item.port)


def add_groups(conv: Converter) -> None:
    """One group per module path that holds nodes, nested like the modules, labelled by class."""
    g, module = conv.graph, conv.module
    # members[path]: ("node", id) and ("group", module path) entries, in order of first appearance
    members: dict[str, list[tuple[str, str]]] = {}
    for node_id in g.nodes:
        path = conv.scope.get(node_id, "")
        child = ("node", node_id)
        while path:
            fresh = path not in members
            bucket = members.setdefault(path, [])
            if child not in bucket:
                bucket.append(child)
            if not fresh:
                break
            child, path = ("group", path), path.rpartition(".")[0]
    gid: dict[str, str] = {}
    for path in members:
        ident = conv.ids[path]
        if ident in g.nodes:  # a LayerScale node owns this path (its parameter lives there)
            *head, last = ident.split(".")
            ident = ".".join([*head, f"_{last}_block" if last[0].isdigit() else f"{last}_block"])
            while ident in g.nodes or ident in conv.reserved:
                ident += "_"
        gid[path] = ident
    for path in sorted(members, key=lambda p: -p.count(".")):  # children first: members must exist
        label = type(module.get_submodule(path)).__name__
        g.add_group(gid[path], label, [gid[m] if kind == "group" else m for kind, m in members[path]])


__all__ = ["Converter", "add_groups"]
