"""Static analysis of a graph: shapes, receptive fields, parameters, MACs, memory, diagnostics.

``analyze(graph)`` walks the DAG once in topological order (DESIGN.md §5). It never runs torch
and never raises on a bad graph: every problem becomes a :class:`Diagnostic` with a severity, the
node at fault, a message that says what is wrong and where, and, where one exists, an
applicable :class:`~core.layers.spec.Fix`. Nodes downstream of an error get unknown shapes and
no errors of their own.

:class:`Analyzer` keeps the per-node results between runs: after a parameter edit only the
edited node is recomputed, and its successors only while its output shape or receptive field
actually changed (the GUI's live checking relies on that to stay well under a frame).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.graph import Graph, Node
from core.layers.registry import get_spec, suggest
from core.layers.spec import (
    GLOBAL,
    Fix,
    LayerError,
    LayerSpec,
    ParamError,
    Scale,
    Shape,
    Window,
    fmt_shape,
    insert_fix,
    numel,
    set_param_fix,
)

DTYPE_BYTES = 4  # float32 activations and parameters


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: ``node`` is ``None`` for whole-graph problems (no Input, no Output …)."""

    severity: Severity
    node: str | None
    message: str
    fix: Fix | None = None
    param: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"severity": self.severity.value, "node": self.node, "message": self.message}
        if self.fix is not None:
            d["fix"] = self.fix.label
        return d


@dataclass(frozen=True, slots=True)
class ReceptiveField:
    """Per spatial axis: ``size`` (``None`` = the whole input), effective ``stride`` and ``padding``."""

    size: tuple[float, ...] | None
    stride: tuple[float, ...]
    padding: tuple[float, ...]

    @property
    def is_global(self) -> bool:
        return self.size is None

    def to_dict(self) -> dict[str, Any]:
        return {"size": _ints(self.size), "stride": _ints(self.stride) if self.size is not None else None,
                "padding": _ints(self.padding) if self.size is not None else None}

    def short(self) -> str:
        if self.size is None:
            return "global"
        return "×".join(_fmt_num(x) for x in self.size)


GLOBAL_RF = ReceptiveField(None, (), ())


@dataclass(frozen=True, slots=True)
class NodeResult:
    """Everything analysis knows about one node. ``out_shapes`` is ``None`` when unknown."""

    id: str
    type: str
    out_shapes: tuple[Shape, ...] | None
    args: Mapping[str, Any] = field(default_factory=dict)
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


_OPTIMIZER_STATES = {"sgd": 1, "sgd_nomomentum": 0, "adam": 2, "adamw": 2, "rmsprop": 1, "adagrad": 1}


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Training memory for one step, in bytes. ``activations`` are those saved for backward."""

    batch_size: int
    optimizer: str
    params: int
    grads: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.activations


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
    input_shape: Shape | None
    output_shapes: Sequence[Shape | None]

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

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

        ``optimizer`` is ``sgd`` (with momentum), ``sgd_nomomentum``, ``adam``, ``adamw``,
        ``rmsprop`` or ``adagrad``: the number of state tensors per parameter follows torch.
        """
        states = _OPTIMIZER_STATES.get(optimizer.lower(), 2)
        p = self.total_params * DTYPE_BYTES
        grads = self.trainable_params * DTYPE_BYTES
        return MemoryEstimate(batch_size, optimizer, p, grads, states * grads,
                              self.activation_bytes * batch_size)

    def to_dict(self, source: str | None = None) -> dict[str, Any]:
        return {
            "source": source, "ok": self.ok,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "output_shapes": [list(s) if s is not None else None for s in self.output_shapes],
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "macs": self.macs,
            "nodes": [self.nodes[n].to_dict() for n in self.order],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


class Analyzer:
    """Incremental analysis bound to one graph; :meth:`run` returns a fresh :class:`Analysis`.

    Structural edits (nodes, edges, renames) trigger a full pass; parameter edits recompute the
    edited nodes and propagate only while a node's output shapes or receptive field change.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._structure_version = -1
        self._results: dict[str, NodeResult] = {}
        self._diags: dict[str, list[Diagnostic]] = {}  # per node
        self._global: list[Diagnostic] = []
        self._order: list[str] = []
        self._index: dict[str, int] = {}
        self._resolved: dict[str, tuple[Node, int, dict[str, Any] | ParamError]] = {}
        self._totals = [0, 0, 0, 0, 0]  # params, trainable, buffers, macs, activation bytes
        self.recomputed = 0  # nodes recomputed by the last run (tests and benchmarks read it)

    # -- public -------------------------------------------------------------------------------
    def run(self) -> Analysis:
        g = self.graph
        if g.structure_version != self._structure_version:
            g.take_dirty()
            self._full()
        else:
            dirty = g.take_dirty()
            self.recomputed = 0
            if dirty:
                self._incremental(dirty)
        return self._snapshot()

    # -- passes -------------------------------------------------------------------------------
    def _full(self) -> None:
        g = self.graph
        self._structure_version = g.structure_version
        self._results = {}
        self._diags = {}
        self._totals = [0, 0, 0, 0, 0]
        self._global = []
        self._resolved = {k: v for k, v in self._resolved.items() if k in g.nodes}
        blocked: set[str] = set()
        if g.has_cycle():
            cyc = g.find_cycle()
            self._global.append(Diagnostic(
                Severity.ERROR, cyc[0] if cyc else None,
                "the graph has a cycle: " + " → ".join([*cyc, cyc[0]] if cyc else [])
                + " — remove one of these connections"))
            import networkx as nx

            nxg = g.nx_graph()
            for comp in nx.strongly_connected_components(nxg):
                if len(comp) > 1 or any(nxg.has_edge(n, n) for n in comp):
                    blocked |= comp
            for n in list(blocked):
                blocked |= nx.descendants(nxg, n)
            sub = nxg.subgraph([n for n in g.nodes if n not in blocked])
            index = {n: i for i, n in enumerate(g.nodes)}
            order = list(nx.lexicographical_topological_sort(sub, key=index.__getitem__))
            order += [n for n in g.nodes if n in blocked]
        else:
            order = g.topo_order()
        self._order = list(order)
        self._index = {n: i for i, n in enumerate(self._order)}
        for nid in self._order:
            if nid in blocked:
                node = g.nodes[nid]
                self._results[nid] = NodeResult(nid, node.type, None)
            else:
                self._compute(nid)
        self._structural_checks()
        self.recomputed = len(self._order)

    def _incremental(self, dirty: set[str]) -> None:
        heap = [(self._index[n], n) for n in dirty if n in self._index]
        heapq.heapify(heap)
        queued = {n for _, n in heap}
        while heap:
            _, nid = heapq.heappop(heap)
            old = self._results.get(nid)
            self._compute(nid)
            self.recomputed += 1
            new = self._results[nid]
            if old is None or old.out_shapes != new.out_shapes or old.rf != new.rf:
                for succ in self.graph.successors(nid):
                    if succ not in queued and succ in self._index:
                        queued.add(succ)
                        heapq.heappush(heap, (self._index[succ], succ))

    # -- one node -----------------------------------------------------------------------------
    def _params_of(self, node: Node, spec: LayerSpec) -> dict[str, Any] | ParamError:
        cached = self._resolved.get(node.id)
        if cached is not None and cached[0] is node and cached[1] == node.rev:
            return cached[2]
        try:
            resolved: dict[str, Any] | ParamError = spec.resolve(node.params)
        except ParamError as exc:
            resolved = exc
        self._resolved[node.id] = (node, node.rev, resolved)
        return resolved

    def _set(self, result: NodeResult, diags: list[Diagnostic]) -> None:
        old = self._results.get(result.id)
        t = self._totals
        if old is not None and old.known:
            t[0] -= old.params or 0
            t[1] -= old.trainable or 0
            t[2] -= old.buffers or 0
            t[3] -= old.macs or 0
            t[4] -= old.activation_bytes or 0
        if result.known:
            t[0] += result.params or 0
            t[1] += result.trainable or 0
            t[2] += result.buffers or 0
            t[3] += result.macs or 0
            t[4] += result.activation_bytes or 0
        self._results[result.id] = result
        if diags:
            self._diags[result.id] = diags
        else:
            self._diags.pop(result.id, None)

    def _compute(self, nid: str) -> None:
        g = self.graph
        node = g.nodes[nid]
        diags: list[Diagnostic] = []
        unknown = NodeResult(nid, node.type, None)
        spec = get_spec(node.type)
        if spec is None:
            hint = suggest(node.type)
            diags.append(Diagnostic(Severity.ERROR, nid, f"{nid}: unknown layer type {node.type!r}"
                                    + (f" — did you mean {hint}?" if hint else "")))
            self._set(unknown, diags)
            return
        params = self._params_of(node, spec)
        if isinstance(params, ParamError):
            diags.append(Diagnostic(Severity.ERROR, nid, f"{nid}: {params}", param=str(params).split(":")[0]))
            self._set(unknown, diags)
            return
        in_edges = g.in_edges(nid)
        n_in = len(in_edges)
        if n_in < spec.min_inputs:
            if spec.min_inputs == 1:
                msg = f"{nid} has no input — connect a layer's output to it"
            else:
                msg = f"{nid} ({spec.type}) needs at least {spec.min_inputs} inputs, has {n_in}"
            diags.append(Diagnostic(Severity.ERROR, nid, msg))
            self._set(unknown, diags)
            return
        if spec.max_inputs is not None and n_in > spec.max_inputs:
            srcs = ", ".join(e.src for e in in_edges)
            msg = (f"{nid} ({spec.type}) takes no inputs, but has {n_in} ({srcs})" if spec.max_inputs == 0
                   else f"{nid} ({spec.type}) takes {spec.max_inputs} input, but has {n_in} ({srcs})"
                   f" — merge them with Add or Concat first")
            diags.append(Diagnostic(Severity.ERROR, nid, msg))
            self._set(unknown, diags)
            return
        shapes: list[Shape] = []
        rfs: list[ReceptiveField | None] = []
        results = self._results
        for e in in_edges:
            src = results.get(e.src)
            if src is None or src.out_shapes is None:
                self._set(unknown, diags)  # downstream of an error: unknown, silently
                return
            if e.from_port >= len(src.out_shapes):
                diags.append(Diagnostic(Severity.ERROR, nid,
                                        f"{nid}: input from {e.src} uses output {e.from_port}, but "
                                        f"{e.src} has {len(src.out_shapes)} output(s)"))
                self._set(unknown, diags)
                return
            shapes.append(src.out_shapes[e.from_port])
            rfs.append(src.rf)
        try:
            inf = spec.infer(params, shapes)
        except LayerError as exc:
            msg = exc.message
            if n_in > 1:
                msg += " — inputs: " + ", ".join(f"{fmt_shape(s)} from {e.src}"
                                                 for s, e in zip(shapes, in_edges, strict=True))
            fix = exc.fix.at(nid) if exc.fix is not None else self._merge_fix(nid, spec, shapes, in_edges)
            diags.append(Diagnostic(Severity.ERROR, nid, f"{nid}: {msg}", fix, exc.param))
            self._set(unknown, diags)
            return
        # Arguments given by the user that disagree with what the input implies.
        for name, value in inf.args.items():
            given = params.get(name)
            if given is not None and given != value:
                src = in_edges[0].src if in_edges else "its input"
                what = {"in_channels": "input channels", "in_features": "input features",
                        "num_features": "features"}.get(name, name)
                extra = " or insert a 1×1 Conv2d" if name == "in_channels" else ""
                diags.append(Diagnostic(
                    Severity.ERROR, nid,
                    f"{nid}: expects {given} {what} ({name}={given}), gets {value} from {src} "
                    f"— set {name} to {value}{extra}",
                    set_param_fix(name, value, f"set {name} to {value}").at(nid), name))
                self._set(unknown, diags)
                return
        for msg, fix in inf.warnings:
            diags.append(Diagnostic(Severity.WARNING, nid, f"{nid}: {msg}", fix.at(nid) if fix else None))
        rf = self._receptive_field(nid, spec, params, shapes, rfs, inf.out_shapes, diags)
        act = sum(numel(s) for s in inf.out_shapes) * DTYPE_BYTES
        trainable = 0 if node.frozen else inf.params
        self._set(NodeResult(nid, spec.type, inf.out_shapes, inf.args, inf.params, trainable, inf.buffers,
                             inf.macs, rf, act), diags)

    # -- receptive field ----------------------------------------------------------------------
    def _receptive_field(self, nid: str, spec: LayerSpec, params: Mapping[str, Any], shapes: Sequence[Shape],
                         rfs: Sequence[ReceptiveField | None], out_shapes: Sequence[Shape],
                         diags: list[Diagnostic]) -> ReceptiveField | None:
        if not shapes:  # Input: a spatial sample starts with a 1-pixel field per axis
            nsp = len(out_shapes[0]) - 1
            return ReceptiveField((1,) * nsp, (1,) * nsp, (0,) * nsp) if nsp > 0 else GLOBAL_RF
        if len(rfs) > 1:
            base = self._merge_rf(nid, spec, rfs, shapes, diags)
        else:
            base = rfs[0]
        if base is None:
            return None
        rule = spec.window(params, shapes) if spec.window is not None else None
        if rule is None:
            return base
        if rule is GLOBAL:
            if base.size is not None and len(shapes[0]) >= 2:
                spatial = shapes[0][1:]
                inp = self._input_spatial()
                if inp is not None and len(inp) == len(base.size) and any(
                        s < i for s, i in zip(base.size, inp, strict=True)):
                    diags.append(Diagnostic(
                        Severity.INFO, nid,
                        f"{nid}: the receptive field before this layer is {base.short()}, smaller than the "
                        f"{fmt_shape(inp)} input — each of the {fmt_shape(spatial)} positions sees only part "
                        f"of the image; more layers or strides would let the head see all of it"))
            return GLOBAL_RF
        if base.size is None:
            return base
        if isinstance(rule, Scale):
            return ReceptiveField(base.size, tuple(j / f for j, f in zip(base.stride, rule.factor, strict=True)),
                                  base.padding)
        assert isinstance(rule, Window)
        size, jump, pad = list(base.size), list(base.stride), list(base.padding)
        if len(size) != len(rule.kernel):
            return base
        for i, (k, s, p, d) in enumerate(zip(rule.kernel, rule.stride, rule.padding, rule.dilation, strict=True)):
            k_eff = d * (k - 1) + 1
            if rule.transposed:
                # each output position draws on ceil(k_eff / s) input positions
                size[i] += (-(-k_eff // s) - 1) * jump[i]
                pad[i] += (k_eff - 1 - p) * jump[i] / s  # approximate: see Distill §upsampling
                jump[i] /= s
            else:
                size[i] += (k_eff - 1) * jump[i]
                pad[i] += p * jump[i]
                jump[i] *= s
        return ReceptiveField(tuple(size), tuple(jump), tuple(pad))

    def _merge_rf(self, nid: str, spec: LayerSpec, rfs: Sequence[ReceptiveField | None],
                  shapes: Sequence[Shape], diags: list[Diagnostic]) -> ReceptiveField | None:
        known = [r for r in rfs if r is not None]
        if not known:
            return None
        local = [r for r in known if r.size is not None]
        if not local:
            return GLOBAL_RF
        if spec.type != "Multiply" and len(local) < len(known):
            return GLOBAL_RF
        # Multiply with a global gate (squeeze-excitation) keeps its spatial input's field.
        jumps = {r.stride for r in local}
        if len(jumps) > 1:
            diags.append(Diagnostic(Severity.WARNING, nid,
                                    f"{nid}: inputs have different effective strides "
                                    f"({', '.join('×'.join(_fmt_num(x) for x in j) for j in sorted(jumps))}); "
                                    f"the receptive field is not well defined here"))
        n = len(local[0].size or ())
        if any(len(r.size or ()) != n for r in local):
            return local[0]
        size = tuple(max((r.size or ())[i] for r in local) for i in range(n))
        pad = tuple(max(r.padding[i] for r in local) for i in range(n))
        return ReceptiveField(size, local[0].stride, pad)

    def _input_spatial(self) -> Shape | None:
        for nid in self._order:
            r = self._results.get(nid)
            if r is not None and r.type == "Input" and r.output_shape is not None:
                return r.output_shape[1:] if len(r.output_shape) > 1 else None
        return None

    # -- fixes --------------------------------------------------------------------------------
    def _merge_fix(self, nid: str, spec: LayerSpec, shapes: Sequence[Shape], in_edges: Sequence[Any]) -> Fix | None:
        """For Add/Concat mismatches: a padding on the odd branch's conv that keeps the size."""
        if spec.type not in ("Add", "Concat") or len(shapes) < 2:
            return None
        target = shapes[0]
        for s, e in zip(shapes[1:], in_edges[1:], strict=True):
            if len(s) == len(target) and len(s) >= 2 and s[1:] != target[1:]:
                fix = self._padding_fix(e.src, target[1:])
                if fix is not None:
                    return fix
        for s, e in zip(shapes[:1], in_edges[:1], strict=True):
            other = shapes[1]
            if len(s) == len(other) and len(s) >= 2 and s[1:] != other[1:]:
                return self._padding_fix(e.src, other[1:])
        return None

    def _padding_fix(self, src: str, target: Shape) -> Fix | None:
        """Walk up through shape-preserving layers to a conv whose padding would give ``target``."""
        g = self.graph
        seen = 0
        while seen < 8:
            seen += 1
            node = g.nodes[src]
            spec = get_spec(node.type)
            if spec is None:
                return None
            if spec.type in ("Conv2d", "Conv1d"):
                from core.layers.conv import conv_out_size  # local: avoid import cycle at load
                from core.layers.spec import tup

                params = self._params_of(node, spec)
                preds = g.in_edges(src)
                if isinstance(params, ParamError) or not preds:
                    return None
                up = self._results.get(preds[0].src)
                if up is None or up.output_shape is None:
                    return None
                nd = len(target)
                n_in = up.output_shape[1:]
                k, s, d = tup(params["kernel_size"], nd), tup(params["stride"], nd), tup(params["dilation"], nd)
                pads = []
                for n, ki, si, di, t in zip(n_in, k, s, d, target, strict=True):
                    found = next((p for p in range(0, di * (ki - 1) + 1)
                                  if conv_out_size(n, ki, si, p, di) == t), None)
                    if found is None:
                        return None
                    pads.append(found)
                value: Any = pads[0] if len(set(pads)) == 1 else pads
                return set_param_fix("padding", value, f"padding={value} keeps {fmt_shape(target)}").at(src)
            if spec.window is not None or len(g.in_edges(src)) != 1:
                return None
            src = g.in_edges(src)[0].src
        return None

    # -- whole-graph checks -------------------------------------------------------------------
    def _structural_checks(self) -> None:
        g = self.graph
        inputs = [n for n in g.nodes.values() if n.type == "Input"]
        outputs = [n for n in g.nodes.values() if n.type == "Output"]
        if not g.nodes:
            return
        if not inputs:
            self._global.append(Diagnostic(Severity.ERROR, None,
                                           "the network has no Input node — add one and set its shape",
                                           Fix("add an Input node", "add_input")))
        elif len(inputs) > 1:
            for extra in inputs[1:]:
                self._global.append(Diagnostic(
                    Severity.ERROR, extra.id,
                    f"{extra.id}: a network takes one Input, and {inputs[0].id} is already one — remove {extra.id}"))
        if not outputs:
            self._global.append(Diagnostic(
                Severity.ERROR, None, "the network has no Output node — connect the last layer to an Output"))
            return
        nxg = g.nx_graph()
        reach: set[str] = set()
        for o in outputs:
            reach.add(o.id)
            reach |= g.ancestors(o.id) if o.id in nxg else set()
        for nid in g.nodes:
            if nid not in reach:
                self._global.append(Diagnostic(Severity.WARNING, nid,
                                               f"{nid} does not reach an Output — its result is unused"))

    # -- snapshot -----------------------------------------------------------------------------
    def _snapshot(self) -> Analysis:
        index = self._index
        per_node = sorted(self._diags.items(), key=lambda kv: index.get(kv[0], 0))
        diags: list[Diagnostic] = [d for _, ds in per_node for d in ds]
        diags += self._global
        order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
        diags.sort(key=lambda d: order[d.severity])
        results = self._results
        input_shape = None
        outputs: list[Shape | None] = []
        for nid, node in self.graph.nodes.items():
            if node.type == "Input" and input_shape is None:
                r = results.get(nid)
                input_shape = r.output_shape if r is not None else None
            elif node.type == "Output":
                r = results.get(nid)
                outputs.append(r.output_shape if r is not None else None)
        t = self._totals
        return Analysis(dict(results), tuple(self._order), tuple(diags), t[0], t[1], t[2], t[3], t[4],
                        input_shape, tuple(outputs))


def analyze(graph: Graph) -> Analysis:
    """One full, stateless analysis of ``graph``."""
    return Analyzer(graph).run()


def _ints(values: Sequence[float] | None) -> list[float] | None:
    if values is None:
        return None
    return [int(v) if float(v).is_integer() else v for v in values]


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


__all__ = ["Analysis", "Analyzer", "Diagnostic", "MemoryEstimate", "NodeResult", "ReceptiveField", "Severity",
           "analyze", "insert_fix"]
