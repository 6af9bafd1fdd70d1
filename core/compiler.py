"""Graph → ``torch.fx.GraphModule`` (DESIGN.md §6), and carrying weights across an edit.

:func:`compile_graph` builds the fx graph directly from the DAG: one ``placeholder`` per Input
node, in file order (``x`` when there is one; see :func:`input_names`), a ``call_module`` per
module layer, a ``call_function`` per stateless op (merges), an ``operator.getitem`` where an
edge picks one output of a multi-output layer, and the ``output`` (a tuple when there are
several Output nodes, in file order). Layers with weights that reach no Output are kept idle
(:attr:`Plan.idle`). The node id is the module path, so ``state_dict`` keys are
``<node id>.<parameter>`` and torchvision's module paths give torchvision's keys. Every module
is built by its declaration's ``build`` from the resolved parameters plus the arguments analysis
inferred from the input shape (``in_channels`` …), so the model and its forward code
(``gm.code``) come from one source.

A graph with error diagnostics is refused with :class:`CompileError`. :func:`plan_graph` is the
shared front half: the exporter (:mod:`core.export`) writes Python from the same plan.

:func:`carry_weights` copies the trained state of every node whose type, parameters and input
shapes did not change from an old compiled model into a new one, so editing a trained network
keeps what still fits, and reports what was kept and what was re-initialized.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import keyword
import math
import operator
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from torch import fx, nn

from core.analysis import Analysis, Diagnostic, Severity, analyze
from core.graph import Graph, id_problem
from core.layers.registry import get_spec
from core.layers.spec import Emit, LayerSpec, Shape
from core.memory_guard import biggest_layer, weights_problem

META_KEY = "netcanvas"  # GraphModule.meta[META_KEY]: per-node signatures for carry_weights


class CompileError(ValueError):
    """The graph cannot be compiled; ``str()`` lists every error, ``diagnostics`` holds them."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        n = len(self.diagnostics)
        lines = [f"cannot compile the network: {n} error{'s' if n != 1 else ''}"]
        lines += [f"  - {d.message}" for d in self.diagnostics]
        super().__init__("\n".join(lines))

    @classmethod
    def single(cls, message: str, node: str | None = None) -> CompileError:
        return cls([Diagnostic(Severity.ERROR, node, message)])


class TooBigError(CompileError):
    """The network cannot fit in the free memory of the device it would be built on
    (:mod:`core.memory_guard`); ``str()`` is the one plain sentence saying so."""

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__([Diagnostic(Severity.ERROR, node, message)])
        self.args = (message,)

    def __str__(self) -> str:
        return self.diagnostics[0].message


@dataclass(frozen=True)
class PlannedNode:
    """One node ready to build: resolved params, inferred args, and where its inputs come from."""

    id: str
    spec: LayerSpec
    params: Mapping[str, Any]  # validated, defaults filled in
    args: Mapping[str, Any]  # inferred from the input shapes (in_channels …)
    in_shapes: tuple[Shape, ...]
    out_shapes: tuple[Shape, ...]
    inputs: tuple[tuple[str, int], ...]  # (source id, source output index), by input port
    frozen: bool = False
    init: str = "default"

    @property
    def type(self) -> str:
        return self.spec.type

    @property
    def build_params(self) -> dict[str, Any]:
        """What ``spec.build`` receives: the params with the inferred arguments filled in."""
        return {**self.params, **self.args}

    @property
    def signature(self) -> str:
        """Type, build params and input shapes: equal signatures build interchangeable modules."""
        return json.dumps([self.type, self.build_params, [list(s) for s in self.in_shapes]],
                          sort_keys=True, default=str)

    @property
    def carry_signature(self) -> str:
        """What :func:`carry_weights` compares: type, build params, and of each input its rank and
        channel count, not its spatial extent. A convolution's or a BatchNorm's trained weights are as
        good at 160×160 as at 224×224: counting the size made a new Input resolution start 40 of
        ResNet-18's 41 pretrained layers fresh (what the build depends on, ``in_features`` after a
        Flatten for one, is in the build params)."""
        return json.dumps([self.type, self.build_params, [[len(s), *s[:1]] for s in self.in_shapes]],
                          sort_keys=True, default=str)


@dataclass(frozen=True)
class Plan:
    """A graph checked and resolved for building, in topological order."""

    nodes: Mapping[str, PlannedNode]  # what the forward runs
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]  # Output node ids, in file order
    analysis: Analysis
    # Layers with weights that reach no Output: built and registered (their state_dict keys stay, so
    # an imported model's weights load with strict=True), never called by the forward.
    idle: Mapping[str, PlannedNode] = field(default_factory=dict)

    @property
    def module_nodes(self) -> list[PlannedNode]:
        """The modules the forward calls, in topological order."""
        return [n for n in self.nodes.values() if n.spec.is_module]

    @property
    def built_nodes(self) -> list[PlannedNode]:
        """Every module the compiled model holds: those the forward calls, then the idle ones."""
        return [*self.module_nodes, *self.idle.values()]


@dataclass(frozen=True)
class CarryReport:
    """Node ids (with parameters or buffers) whose state was kept, re-initialized, or dropped."""

    kept: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # in the old model only

    def summary(self) -> str:
        parts = [f"kept the weights of {len(self.kept)} layer{'s' if len(self.kept) != 1 else ''}"]
        if self.reinitialized:
            parts.append(f"re-initialized {', '.join(self.reinitialized)}")
        if self.removed:
            parts.append(f"dropped {', '.join(self.removed)}")
        return "; ".join(parts)


# -- planning ------------------------------------------------------------------------------------

@cache
def _reserved_names(top_level: bool) -> frozenset[str]:
    """Attribute names a submodule may not take (nn.Module's, and GraphModule's at the top)."""
    names = set(dir(nn.Module()))
    if top_level:
        names |= set(dir(fx.GraphModule(nn.Module(), fx.Graph())))
    return frozenset(names)


def _path_problem(node_id: str) -> str | None:
    problem = id_problem(node_id)
    if problem:
        return f"invalid id: {problem}"
    for i, seg in enumerate(node_id.split(".")):
        if seg in _reserved_names(i == 0):
            return (f"{node_id}: the name {seg!r} clashes with an attribute torch modules already have "
                    f"— rename the node (e.g. {seg}_)")
    return None


def plan_graph(graph: Graph, analysis: Analysis | None = None) -> Plan:
    """Check ``graph`` and resolve every node; raise :class:`CompileError` on any error."""
    a = analysis if analysis is not None else analyze(graph)
    errors = list(a.errors)
    if errors:
        raise CompileError(errors)
    problems: list[Diagnostic] = []
    nodes: dict[str, PlannedNode] = {}
    order = graph.topo_order()
    for nid in order:
        node = graph.nodes[nid]
        spec = get_spec(node.type)
        result = a.nodes.get(nid)
        if spec is None or result is None or result.out_shapes is None:
            # Only nodes that reach no Output can be unresolved without an error: skip them.
            continue
        in_edges = graph.in_edges(nid)
        in_shapes = []
        for e in in_edges:
            src = a.nodes[e.src]
            if src.out_shapes is None:  # pragma: no cover - analysis reports this as an error
                raise CompileError.single(f"{nid}: the shape of its input {e.src} is unknown", nid)
            in_shapes.append(tuple(src.out_shapes[e.from_port]))
        if spec.is_module:
            problem = _path_problem(nid)
            if problem:
                problems.append(Diagnostic(Severity.ERROR, nid, problem))
        elif spec.type not in ("Input", "Output") and spec.function is None:
            problems.append(Diagnostic(Severity.ERROR, nid,
                                       f"{nid}: layer type {spec.type} declares neither a module nor a function "
                                       f"— it cannot be compiled"))
        nodes[nid] = PlannedNode(nid, spec, spec.resolve(node.params), dict(result.args), tuple(in_shapes),
                                 tuple(tuple(s) for s in result.out_shapes),
                                 tuple((e.src, e.from_port) for e in in_edges), node.frozen, node.init)
    # Several Inputs (a Siamese network) are the forward's arguments in file order, like Outputs.
    inputs = [nid for nid, n in graph.nodes.items() if n.type == "Input" and nid in nodes]
    outputs = [nid for nid, n in graph.nodes.items() if n.type == "Output" and nid in nodes]
    if not inputs:
        problems.append(Diagnostic(Severity.ERROR, None, "the network has no Input node — add one"))
    if not outputs:
        problems.append(Diagnostic(Severity.ERROR, None, "the network has no Output node — add one"))
    if problems:
        raise CompileError(problems)
    # Nodes that feed no Output are left out of the forward: they would be dead code. Those with
    # weights stay in the model, idle (issue 12: an imported model whose unused branch holds
    # weights must load its state_dict strictly); analysis warns that they do not run.
    live = set(outputs)
    for nid in reversed(list(nodes)):
        if nid in live:
            live.update(src for src, _ in nodes[nid].inputs)
    idle = {nid: n for nid, n in nodes.items() if nid not in live and n.spec.is_module and _holds_state(a, nid)}
    # An Input that reaches no Output stays an argument: the forward's signature follows the file.
    nodes = {nid: n for nid, n in nodes.items() if nid in live or n.spec.type == "Input"}
    return Plan(nodes, tuple(inputs), tuple(outputs), a, idle)


_ARG_TAKEN = frozenset({"self", "torch", "nn", "F"})  # what a forward reads besides its arguments


def input_names(input_ids: Sequence[str]) -> dict[str, str]:
    """The forward's argument name of each Input node: ``x`` for a network's only Input; with
    several, each Input's id as a Python name (``left.image`` → ``left_image``).

    A name that is a keyword, a builtin or a name the forward itself uses gets a ``_`` appended,
    as does the later (in sorted id order) of two ids that map to one name, so the compiled model
    and the exported file (which sees its Inputs in another order) name every argument alike.
    """
    if len(input_ids) == 1:
        return {input_ids[0]: "x"}
    names: dict[str, str] = {}
    taken: set[str] = set()
    for nid in sorted(input_ids):
        name = var_name(nid)
        while name in _ARG_TAKEN or name in taken or keyword.iskeyword(name) or hasattr(builtins, name):
            name += "_"
        taken.add(name)
        names[nid] = name
    return names


def _holds_state(a: Analysis, nid: str) -> bool:
    r = a.nodes.get(nid)
    return r is not None and bool(r.params or r.buffers)


# -- building ------------------------------------------------------------------------------------

def parse_init(init: str) -> tuple[str, float | None]:
    """``"normal(0.01)"`` → ``("normal", 0.01)``; other names → ``(name, None)``."""
    if init.startswith("normal(") and init.endswith(")"):
        return "normal", float(init[7:-1])
    return init, None


def apply_init(module: nn.Module, init: str, where: str = "") -> None:
    """Initialise every ``weight*`` of ``module`` by ``init`` and zero its biases (not for ``default``).

    Kaiming uses torch's defaults (fan-in) with the ReLU gain √2; Xavier the gain 1. Raises
    :class:`CompileError` when a Kaiming/Xavier init meets a weight with fewer than 2 axes
    (BatchNorm's scale has no fan-in).
    """
    name, std = parse_init(init)
    if name == "default":
        return
    with torch.no_grad():
        for pname, p in module.named_parameters():
            leaf = pname.rsplit(".", 1)[-1]
            if leaf.startswith("bias"):
                nn.init.zeros_(p)
                continue
            if not leaf.startswith("weight"):
                continue
            if name in ("kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform") and p.dim() < 2:
                raise CompileError.single(
                    f"{where}: init {name} needs a weight with at least 2 axes, but {pname} has {p.dim()} "
                    f"— use default, normal(std) or zeros for this layer", where or None)
            if name == "kaiming_normal":
                nn.init.kaiming_normal_(p, nonlinearity="relu")
            elif name == "kaiming_uniform":
                nn.init.kaiming_uniform_(p, nonlinearity="relu")
            elif name == "xavier_normal":
                nn.init.xavier_normal_(p)
            elif name == "xavier_uniform":
                nn.init.xavier_uniform_(p)
            elif name == "normal":
                nn.init.normal_(p, 0.0, std if std is not None and math.isfinite(std) else 0.01)
            elif name == "zeros":
                nn.init.zeros_(p)
            else:
                raise CompileError.single(f"{where}: unknown init {init!r}", where or None)


def build_module(node: PlannedNode) -> nn.Module:
    """The node's module from its declaration, with its init and frozen flag applied."""
    assert node.spec.build is not None
    try:
        module = node.spec.build(node.build_params)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CompileError.single(f"{node.id}: torch refused to build {node.type}: {exc}", node.id) from None
    apply_init(module, node.init, node.id)
    if node.frozen:
        for p in module.parameters():
            p.requires_grad_(False)
    return module


def _assemble(modules: Mapping[str, nn.Module]) -> nn.Module:
    """A root module holding each module at its path; plain containers fill missing prefixes."""
    root = nn.Module()
    for nid in sorted(modules, key=lambda n: n.count(".")):  # parents before their children
        *parents, leaf = nid.split(".")
        holder = root
        for seg in parents:
            child = holder._modules.get(seg)
            if child is None:
                child = nn.Module()
                _add(holder, seg, child, nid)
            holder = child
        _add(holder, leaf, modules[nid], nid)
    return root


def _add(holder: nn.Module, name: str, module: nn.Module, nid: str) -> None:
    try:
        holder.add_module(name, module)
    except KeyError:
        raise CompileError.single(
            f"{nid}: the name {name!r} clashes with an attribute of {type(holder).__name__} "
            f"— rename the node", nid) from None


def var_name(node_id: str) -> str:
    """The fx/Python variable name for a node id: ``layer1.0.conv1`` → ``layer1_0_conv1``."""
    return node_id.replace(".", "_")


def _fx_graph(plan: Plan) -> fx.Graph:
    g = fx.Graph()
    values: dict[tuple[str, int], fx.Node] = {}
    results: dict[str, fx.Node] = {}

    def value(src: str, port: int) -> fx.Node:
        key = (src, port)
        if key not in values:
            spec = plan.nodes[src].spec
            if spec.outputs(plan.nodes[src].params) > 1:
                values[key] = g.create_node("call_function", operator.getitem, (results[src], port), {},
                                            name=f"{var_name(src)}_{port}")
            else:
                values[key] = results[src]
        return values[key]

    outs: dict[str, fx.Node] = {}
    args = input_names(plan.inputs)
    for nid in plan.inputs:  # placeholders first, in file order: they are the forward's arguments
        results[nid] = g.placeholder(args[nid])
    for nid, node in plan.nodes.items():
        ins = [value(src, port) for src, port in node.inputs]
        spec = node.spec
        if spec.type == "Input":
            continue
        elif spec.type == "Output":
            outs[nid] = ins[0]
        elif spec.is_module:
            results[nid] = g.create_node("call_module", nid, tuple(ins), {}, name=var_name(nid))
        elif spec.fx is not None and spec.fx.emit is Emit.CHAIN:
            # The declared operator chains so ``gm.code`` reads like hand-written torch: a + b + c.
            op = spec.fx.resolve()
            acc = ins[0]
            for i, other in enumerate(ins[1:], start=2):
                name = var_name(nid) if i == len(ins) else f"{var_name(nid)}_{i}"
                acc = g.create_node("call_function", op, (acc, other), {}, name=name)
            results[nid] = acc
        elif spec.fx is not None and spec.fx.emit is Emit.LIST:
            results[nid] = g.create_node("call_function", spec.fx.resolve(), (ins,), dict(node.params),
                                         name=var_name(nid))
        else:
            # Other stateless ops follow the convention function(*inputs, **params).
            target = spec.fx.resolve() if spec.fx is not None else spec.function
            if target is None:  # pragma: no cover - the plan refuses a type with neither module nor function
                raise CompileError.single(f"{nid}: layer type {spec.type} declares no function", nid)
            results[nid] = g.create_node("call_function", target, tuple(ins), dict(node.params),
                                         name=var_name(nid))
    for nid in plan.idle:
        # A bare attribute read, never called: fx.GraphModule keeps only the submodules its graph
        # names, also in copy.deepcopy and pickling, so this is what keeps an idle layer's weights.
        g.get_attr(nid)
    ordered = [outs[o] for o in plan.outputs]  # file order, not topological order
    g.output(ordered[0] if len(ordered) == 1 else tuple(ordered))
    g.lint()
    return g


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def compile_graph(graph: Graph, *, seed: int | None = None, device: str | torch.device | None = None,
                  analysis: Analysis | None = None, class_name: str = "NetCanvasModel") -> fx.GraphModule:
    """Build the ``torch.fx.GraphModule`` of ``graph`` (DESIGN.md §6).

    ``seed`` makes the initial weights reproducible without touching the global RNG;
    ``device`` builds the modules there (``"meta"`` builds shapes only). Raises
    :class:`CompileError` when the graph has error diagnostics.
    """
    plan = plan_graph(graph, analysis)
    return compile_plan(plan, seed=seed, device=device, class_name=class_name)


def compile_plan(plan: Plan, *, seed: int | None = None, device: str | torch.device | None = None,
                 class_name: str = "NetCanvasModel") -> fx.GraphModule:
    """:func:`compile_graph` for an already checked :class:`Plan`.

    Before anything is allocated, the weights the analysis counts are compared with the free
    memory of ``device`` (:mod:`core.memory_guard`): a network that cannot fit raises
    :class:`TooBigError` instead of swapping the machine to a halt.
    """
    built = plan.built_nodes
    if device is None or torch.device(device).type != "meta":
        ids = [n.id for n in built]
        problem = weights_problem(plan.analysis, device, ids)
        if problem is not None:
            big = biggest_layer(plan.analysis, ids)
            raise TooBigError(problem, big[0] if big is not None else None)
    where = torch.device(device) if device is not None else contextlib.nullcontext()
    with _seeded(seed), where:
        modules = {n.id: build_module(n) for n in built}
    root = _assemble(modules)
    gm = fx.GraphModule(root, _fx_graph(plan), class_name=class_name)
    gm.meta[META_KEY] = {"signatures": {n.id: n.carry_signature for n in built}, "idle": list(plan.idle)}
    return gm


def idle_layers(module: nn.Module) -> list[str]:
    """The node ids of ``module``'s layers that hold weights but never run (they reach no Output):
    DistributedDataParallel must be told (``find_unused_parameters``), or it stops the run."""
    meta = getattr(module, "meta", None)
    if isinstance(meta, dict) and isinstance(meta.get(META_KEY), dict):
        return list(meta[META_KEY].get("idle", ()))
    return []


# -- carrying weights ----------------------------------------------------------------------------

def signatures(module: nn.Module, graph: Graph | None = None) -> dict[str, str] | None:
    """Per module node: its signature, from ``graph`` when given, else from the compiled module."""
    if graph is not None:
        return {n.id: n.carry_signature for n in plan_graph(graph).built_nodes}
    meta = getattr(module, "meta", None)
    if isinstance(meta, dict) and isinstance(meta.get(META_KEY), dict):
        return dict(meta[META_KEY]["signatures"])
    return None


def _owned_state(module: nn.Module, node_ids: Sequence[str] | None) -> dict[str, dict[str, torch.Tensor]]:
    """State tensors (parameters and buffers) grouped by the node that owns them.

    A key belongs to the longest node id that prefixes it, so a node whose id prefixes other
    nodes (a module with children) owns only its own tensors. Without node ids, a tensor
    belongs to the module that holds it directly.
    """
    state = module.state_dict(keep_vars=True)
    ids = sorted(node_ids or [], key=len, reverse=True)
    owned: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        owner = next((n for n in ids if key.startswith(n + ".")), None)
        if owner is None:
            owner = key.rsplit(".", 1)[0] if "." in key else ""
        owned.setdefault(owner, {})[key[len(owner) + 1:] if owner else key] = tensor
    return owned


def carry_weights(old_module: nn.Module, new_module: nn.Module, old_graph: Graph | None = None,
                  new_graph: Graph | None = None) -> CarryReport:
    """Copy into ``new_module`` the state of every node that did not change since ``old_module``.

    A node keeps its weights when its type, resolved parameters, inferred arguments and its inputs'
    ranks and channel counts (not their spatial size: :attr:`PlannedNode.carry_signature`) are equal
    in both (from the graphs when given, else from what :func:`compile_graph` recorded in each
    module) and its tensors have the same names and shapes. Everything else in
    ``new_module`` keeps its fresh initialisation. ``requires_grad`` follows the new model.
    """
    old_sigs = signatures(old_module, old_graph)
    new_sigs = signatures(new_module, new_graph)
    old_owned = _owned_state(old_module, list(old_sigs) if old_sigs is not None else None)
    new_owned = _owned_state(new_module, list(new_sigs) if new_sigs is not None else None)
    kept: list[str] = []
    fresh: list[str] = []
    for nid, tensors in new_owned.items():
        old = old_owned.get(nid)
        same = old is not None and old.keys() == tensors.keys() and all(
            old[k].shape == t.shape and old[k].dtype == t.dtype for k, t in tensors.items())
        if same and old_sigs is not None and new_sigs is not None:
            same = old_sigs.get(nid) == new_sigs.get(nid)
        if not same:
            fresh.append(nid)
            continue
        assert old is not None
        with torch.no_grad():
            for k, t in tensors.items():
                t.copy_(old[k].to(t.device))
        kept.append(nid)
    removed = [nid for nid in old_owned if nid not in new_owned]
    return CarryReport(kept, fresh, removed)


__all__ = ["CarryReport", "CompileError", "Plan", "PlannedNode", "TooBigError", "apply_init", "carry_weights",
           "compile_graph", "compile_plan", "idle_layers", "input_names", "plan_graph", "signatures", "var_name"]
