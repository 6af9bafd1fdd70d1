"""Import a PyTorch ``nn.Module`` as an editable graph, through ``torch.fx`` (DESIGN.md §6).

:func:`import_module` traces the module symbolically (every module class the layer registry
knows is kept whole, as a leaf), runs the trace once on fake tensors to learn every value's
shape without computing anything, and turns the fx graph into a :class:`~core.graph.Graph`:

- each leaf module becomes a layer node whose id is its module path (``layer1.0.conv1``), with
  its constructor arguments read back from the module, so the compiled import has exactly the
  source's ``state_dict`` keys and torchvision's weights load with ``strict=True``;
- functional calls (``x + y``, ``torch.cat``, ``F.relu``, ``x.mean((2, 3))``, ``x.view(n, -1)``,
  a channel shuffle's view/transpose/view, ``x.chunk`` …) become the matching layer types, with
  ids in the calling module's scope (``layer1.0.add``) that never equal a real module path;
- the module hierarchy becomes nested groups labelled with the module's class name.

Shape arithmetic (``x.size(0)``, ``c // groups``) is evaluated during the trace and leaves no
node. Anything else is refused with :class:`ModelImportError`, naming the operation and the
module path — nothing is ever dropped silently. Before returning, the importer checks its result
against torch: analysis must agree with the traced shape of every node, and every parameter of
the source must belong to a node.

The module is traced in training mode (restored afterwards), so training-only branches such as
GoogLeNet's and Inception's auxiliary heads become extra Output nodes instead of unused weights.
"""

from __future__ import annotations

import importlib
import inspect
import keyword
import operator
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from core.analysis import analyze
from core.graph import Graph, id_problem
from core.layers import all_specs, get_spec
from core.layers.extra import OWN_CLASSES
from core.layers.spec import Kind, LayerSpec, ParamError, ParamSpec, fmt_shape, tup
from core.project import Project
from core.sources import SourceError

BATCH = 2  # traced batch size: 2 tells the batch axis apart from a real axis of size 1


class ModelImportError(SourceError):
    """A module the importer cannot represent; ``str()`` names the operation and the module path."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# -- values flowing through the conversion -------------------------------------------------------

@dataclass(frozen=True)
class _Ref:
    """A tensor: output ``port`` of graph node ``node``."""

    node: str
    port: int = 0


@dataclass(frozen=True)
class _Multi:
    """The tuple of tensors of a node with several outputs (Chunk, Split)."""

    node: str
    count: int


@dataclass(frozen=True)
class _Param:
    """A parameter read directly in ``forward`` (``self.layer_scale``)."""

    path: str
    value: torch.Tensor


@dataclass(frozen=True)
class _Outputs:
    """A tuple (or namedtuple) of tensors returned by the model."""

    items: tuple[Any, ...]
    names: tuple[str, ...]


# -- which module classes are layers --------------------------------------------------------------

def _resolve_class(dotted: str) -> type | None:
    """``torch.nn.Conv2d`` → the class, or None when it does not exist here."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj if isinstance(obj, type) else None
    return None


@cache
def layer_classes() -> dict[type, LayerSpec]:
    """Module class → layer type, from every declaration's ``torch_class`` (exact classes only)."""
    out: dict[type, LayerSpec] = {}
    for spec in all_specs():
        names = [spec.torch_class] if (spec.is_module or spec.module_class) else []
        if spec.type in OWN_CLASSES:
            names.append(OWN_CLASSES[spec.type])
        for name in names:
            cls = _resolve_class(name)
            if cls is not None and issubclass(cls, nn.Module):
                out.setdefault(cls, spec)
    return out


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


def _trace(module: nn.Module) -> fx.GraphModule:
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


def _propagate(gm: fx.GraphModule, module: nn.Module, input_shape: Sequence[int]) -> None:
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


# -- reading constructor arguments back from a module ---------------------------------------------

def _plain(value: Any, p: ParamSpec, m: nn.Module) -> Any:
    """A module attribute as a project-file value (lists, numbers, booleans)."""
    if p.kind is Kind.BOOL and isinstance(value, torch.Tensor):
        return True  # ``bias`` is stored as the Parameter itself
    if p.kind is Kind.BOOL and value is None and not p.optional:
        return False
    if p.name == "padding" and isinstance(value, str):
        if value == "valid":
            return 0
        spans = [d * (k - 1) for d, k in zip(tup(m.dilation, 2), tup(m.kernel_size, 2), strict=False)]
        if value == "same" and all(s % 2 == 0 for s in spans):
            return [s // 2 for s in spans]
    if isinstance(value, (tuple, list, torch.Size)):
        return [_plain(v, p, m) for v in value]
    return value


def _norm(value: Any, p: ParamSpec) -> Any:
    if p.kind in (Kind.INTS, Kind.FLOATS) and value is not None:
        return tup(value, p.arity)
    return tuple(value) if isinstance(value, list) else value


def _compact(value: Any, p: ParamSpec) -> Any:
    if p.kind in (Kind.INTS, Kind.FLOATS) and isinstance(value, list) and len(set(value)) == 1:
        return value[0]
    return value


def _torch_required(spec: LayerSpec) -> frozenset[str]:
    """Constructor arguments torch requires (kernel_size …): written out even when they equal our default."""
    return _required_args(spec.torch_class)


@cache
def _required_args(torch_class: str) -> frozenset[str]:
    cls = _resolve_class(torch_class)
    if cls is None:
        return frozenset()
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(k for k, p in sig.parameters.items()
                     if p.default is inspect.Parameter.empty and k != "self"
                     and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def user_params(spec: LayerSpec, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``raw`` and keep what differs from torch's defaults (inferred arguments dropped)."""
    try:
        resolved = spec.resolve(raw)
    except ParamError as exc:
        raise ModelImportError(f"{where}: {spec.type} {exc}", where) from None
    out = {}
    required = _torch_required(spec)
    for p in spec.params:
        value = resolved[p.name]
        if p.inferred or (_norm(value, p) == _norm(p.default, p) and p.name not in required):
            continue
        out[p.name] = _compact(value, p)
    return out


def module_params(spec: LayerSpec, m: nn.Module, path: str) -> dict[str, Any]:
    """The constructor arguments of ``m`` as ``spec`` params (through ``spec.from_module`` if set)."""
    if spec.from_module is not None:
        try:
            raw = spec.from_module(m)
        except ParamError as exc:
            raise ModelImportError(f"{path}: {spec.type} {exc}", path) from None
    else:
        raw = {}
        for p in spec.params:
            if p.inferred:
                continue
            if not hasattr(m, p.name):
                raise ModelImportError(f"{path}: {type(m).__name__} has no attribute {p.name!r}, which the "
                                       f"{spec.type} layer type needs", path)
            raw[p.name] = _plain(getattr(m, p.name), p, m)
    return user_params(spec, raw, path)


# -- the conversion -------------------------------------------------------------------------------

def _segment(name: str) -> str:
    if name.isdigit() or not id_problem(name):
        return name
    seg = re.sub(r"[^A-Za-z0-9_]", "_", name, flags=re.ASCII) or "_"
    if seg[0].isdigit():
        seg = "_" + seg
    return seg + "_" if keyword.iskeyword(seg) else seg


def id_paths(module: nn.Module) -> dict[str, str]:
    """Module path → node id path: the same path, unless a name has characters ids refuse.

    RegNet names its blocks ``block1-0``; its nodes become ``…block1_0…`` and
    :func:`import_with_weights` renames the weights' keys to match.
    """
    paths = [p for p, _ in module.named_modules(remove_duplicate=False)]
    out = {p: p for p in paths if not p or not id_problem(p)}
    taken = set(out.values())
    for path in paths:  # parents come before their children
        if path in out:
            continue
        parent, _, leaf = path.rpartition(".")
        head = out[parent]
        candidate = f"{head}.{_segment(leaf)}" if head else _segment(leaf)
        while candidate in taken:
            candidate += "_"
        out[path] = candidate
        taken.add(candidate)
    return out


def _tensors(value: Any) -> Iterator[Any]:
    """The tensor references inside an argument (lists of tensors for cat), in order."""
    if isinstance(value, (_Ref, _Param, _Multi)):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


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


class _Converter:
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
        self.reserved = {i for i in self.ids.values() if i}
        self.reserved |= {self.key(name) for name, _ in module.named_parameters(remove_duplicate=False)}
        self.reserved |= {self.key(name) for name, _ in module.named_buffers(remove_duplicate=False)}
        self.calls: dict[str, int] = {}

    # -- helpers ----------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        """A source state_dict key (``owner.weight``) as the compiled graph's key."""
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
            scope: str, n: fx.Node | None) -> Any:
        self.graph.add_node(type_name, node_id, params)
        self.scope[node_id] = scope
        for port, ref in enumerate(inputs):
            self.graph.add_edge(ref.node, node_id, port, ref.port)
        if n is None:
            return _Ref(node_id)
        self.expected[node_id] = self.shapes(n)
        spec = get_spec(type_name)
        if spec is not None and spec.outputs(spec.resolve(params)) > 1:
            return _Multi(node_id, spec.outputs(spec.resolve(params)))
        return _Ref(node_id)

    def functional(self, n: fx.Node, type_name: str, params: Mapping[str, Any], inputs: Sequence[Any],
                   name: str | None = None) -> Any:
        scope = self.where(n)
        base = (name or _op_name(n)).rstrip("_") or "op"
        node_id = self.fresh(f"{self.ids[scope]}.{base}" if scope else base)
        spec = get_spec(type_name)
        assert spec is not None, type_name
        return self.add(type_name, node_id, user_params(spec, params, node_id), inputs, scope, n)

    def refs(self, n: fx.Node, value: Any, what: str) -> list[_Ref]:
        out = []
        for v in _tensors(value):
            if not isinstance(v, _Ref):
                raise self.fail(n, f"{what} on " + ("a parameter" if isinstance(v, _Param) else "a tuple"),
                                "its input must be the output of a layer")
            out.append(v)
        return out

    # -- the walk ---------------------------------------------------------------------------------
    def run(self) -> Graph:
        outputs: Any = None
        for n in self.gm.graph.nodes:
            if n in self.skip:
                continue
            if n.op == "placeholder":
                if any(v for v in self.values.values() if isinstance(v, _Ref)):
                    raise ModelImportError(f"{type(self.module).__name__}.forward takes more than one input "
                                           f"({n.name}); a network here has one Input")
                node_id = self.fresh("input")
                self.graph.add_node("Input", node_id, {"shape": list(self.shapes(n)[0])})
                self.values[n] = _Ref(node_id)
            elif n.op == "get_attr":
                val = self.gm
                for seg in str(n.target).split("."):
                    val = getattr(val, seg)
                if not isinstance(val, torch.Tensor):
                    raise self.fail(n, f"attribute {n.target!r}")
                self.values[n] = _Param(str(n.target), val)
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
        if n.kwargs or any(not isinstance(a, fx.Node) for a in n.args):
            raise ModelImportError(f"cannot import module {path!r} ({spec.type}): it is called with extra "
                                   f"arguments, which a layer node cannot take", path)
        inputs = self.refs(n, [self.values[a] for a in n.args], spec.type)
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
        return self.add(spec.type, node_id, params, inputs, parent, n)

    def call(self, n: fx.Node) -> Any:
        args = fx.node.map_arg(n.args, lambda a: self.values[a])
        kwargs = fx.node.map_arg(n.kwargs, lambda a: self.values[a])
        if not _has_tensor(n.meta.get("val")):
            # Shape arithmetic (x.size(0), c // g, asserts): its value is known; no node.
            return n.meta.get("val")
        if isinstance(n.target, type) and issubclass(n.target, tuple):  # a namedtuple of outputs
            names = getattr(n.target, "_fields", ())
            return _Outputs(tuple(args) + tuple(kwargs.values()), tuple(names) + tuple(kwargs))
        from core.importer_ops import handler_for

        if n.op == "call_method" and str(n.target).endswith("_") and len(n.args[0].users) > 1:  # type: ignore[union-attr]
            # x.sigmoid_() changes x for its other users too; a layer node cannot do that.
            raise self.fail(n, f"the in-place {_describe(n)}", "it changes a tensor that is used again, "
                            "which a layer node cannot do")
        handler = handler_for(n)
        if handler is None:
            kind = "method" if n.op == "call_method" else "function"
            raise self.fail(n, f"the {kind} {_describe(n)}")
        return handler(self, n, args, kwargs)

    def outputs(self, value: Any) -> None:
        if isinstance(value, _Outputs):
            items, names = value.items, value.names
        elif isinstance(value, (tuple, list)):
            items, names = tuple(value), tuple(str(i) for i in range(len(value)))
        else:
            items, names = (value,), ("",)
        for i, (item, name) in enumerate(zip(items, names, strict=True)):
            if not isinstance(item, _Ref):
                raise ModelImportError(f"{type(self.module).__name__}.forward returns a {type(item).__name__} "
                                       f"at position {i}; only tensors (or tuples of tensors) can be Outputs")
            node_id = self.fresh("output" if i == 0 else f"output_{name}" if name else f"output_{i}")
            self.graph.add_node("Output", node_id)
            self.graph.add_edge(item.node, node_id, 0, item.port)


def _describe(n: fx.Node) -> str:
    """How a reader would write the call: ``F.relu``, ``torch.einsum``, ``Tensor.view``, ``operator.add``."""
    if n.op == "call_method":
        return f"Tensor.{n.target}"
    name = getattr(n.target, "__name__", str(n.target))
    if getattr(F, name, None) is n.target:
        return f"F.{name}"
    if getattr(torch, name, None) is n.target:
        return f"torch.{name}"
    if getattr(operator, name, None) is n.target:
        return f"operator.{name}"
    mod = getattr(n.target, "__module__", None) or ""
    return f"{mod}.{name}" if mod else name


# -- groups, checks, layout -----------------------------------------------------------------------

def _add_groups(conv: _Converter) -> None:
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


def _check(conv: _Converter, module: nn.Module) -> None:
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


def layout_top_down(graph: Graph, dx: float = 200.0, dy: float = 90.0) -> None:
    """Positions: one row per longest-path depth from the input, rows centred on x = 0."""
    depth: dict[str, int] = {}
    for nid in graph.topo_order():
        depth[nid] = max((depth[s] + 1 for s in graph.predecessors(nid)), default=0)
    rows: dict[int, list[str]] = {}
    for nid, d in depth.items():
        rows.setdefault(d, []).append(nid)
    for d, ids in rows.items():
        for i, nid in enumerate(ids):
            graph.set_position(nid, ((i - (len(ids) - 1) / 2) * dx, d * dy))


# -- public API -----------------------------------------------------------------------------------

def import_module(module: nn.Module, input_shape: Sequence[int]) -> Graph:
    """The editable graph of ``module`` for per-sample ``input_shape`` (e.g. ``(3, 224, 224)``).

    Raises :class:`ModelImportError` for anything that cannot be represented.
    """
    return _import(module, input_shape).graph


def _import(module: nn.Module, input_shape: Sequence[int]) -> _Converter:
    shape = tuple(int(d) for d in input_shape)
    if not shape or any(d < 1 for d in shape):
        raise ModelImportError(f"input shape must be positive sizes without the batch axis, got {list(input_shape)}")
    gm = _trace(module)
    _propagate(gm, module, shape)
    conv = _Converter(module, gm)
    graph = conv.run()
    _add_groups(conv)
    _check(conv, module)
    _drop_inferred(graph)
    layout_top_down(graph)
    return conv


def import_with_weights(module: nn.Module, input_shape: Sequence[int]) -> tuple[Graph, dict[str, torch.Tensor]]:
    """:func:`import_module` plus a copy of the source's weights, keyed for the compiled graph.

    Node ids are the source's module paths, so the keys are the source's own ``state_dict``
    keys (except where a module name is not a valid id, see :func:`id_paths`):
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


def torchvision_names() -> list[str]:
    """torchvision's classification model names (``resnet18`` …)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_input_shape(name: str, model: nn.Module | None = None) -> tuple[int, int, int]:
    """The input a torchvision model expects: its weights' crop size (3×299×299 for Inception v3).

    A model that fixes its size (``image_size`` of the vision transformers) has the last word.
    """
    import torchvision

    fixed = getattr(model, "image_size", None)
    if isinstance(fixed, int):
        return (3, fixed, fixed)
    size = 224
    try:
        weights = torchvision.models.get_model_weights(name)
        transforms = next(iter(weights)).transforms
        size = int(getattr(transforms, "keywords", {}).get("crop_size", size))
    except (ValueError, StopIteration, TypeError):
        pass
    return (3, size, size)


def _check_name(name: str) -> None:
    import difflib

    names = torchvision_names()
    if name not in names:
        close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.6)
        hint = f" — did you mean {' or '.join(close)}?" if close else " (see torchvision.models.list_models())"
        raise SourceError(f"torchvision has no classification model {name!r}{hint}")


def torchvision_model(name: str, *, meta: bool = False, **kwargs: Any) -> nn.Module:
    """``torchvision.models.get_model(name, **kwargs)`` without weights; ``meta`` skips allocating them.

    Unknown names raise :class:`SourceError` with the closest names.
    """
    import torchvision

    _check_name(name)
    with warnings.catch_warnings():
        # GoogLeNet and Inception v3 warn that their default init will change; it does not matter here.
        warnings.filterwarnings("ignore", message="The default weight initialization", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The default weight initialization", category=UserWarning)
        if meta:
            try:
                with torch.device("meta"):
                    return torchvision.models.get_model(name, **kwargs)
            except (NotImplementedError, RuntimeError):
                pass  # an init that reads its own values (RegNet): build it for real
        return torchvision.models.get_model(name, **kwargs)


def import_torchvision(name: str, input_shape: Sequence[int] | None = None) -> Project:
    """``torchvision:NAME`` as a project: the model's structure imported and laid out top to bottom.

    The project holds no weights (it never does); the model is built on the meta device where
    torchvision allows, so even the largest import in a second or two.
    """
    model = torchvision_model(name, meta=True)
    graph = import_module(model, input_shape or torchvision_input_shape(name, model))
    return Project(graph=graph, name=name, extra={"imported_from": f"torchvision:{name}"})


__all__ = ["ModelImportError", "import_module", "import_torchvision", "import_with_weights", "layer_classes",
           "layout_top_down", "module_params", "torchvision_input_shape", "torchvision_model", "torchvision_names",
           "user_params"]

