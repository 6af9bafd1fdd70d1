"""Static analysis of a graph: shapes, receptive fields, parameters, MACs, memory, diagnostics.

``analyze(graph)`` walks the DAG once in topological order (DESIGN.md §5). It never runs torch
and never raises on a bad graph: every problem becomes a :class:`Diagnostic` with a severity, the
node at fault, a message that says what is wrong and where, and, where one exists, an
applicable :class:`~core.layers.spec.Fix`. Nodes downstream of an error get unknown shapes and
no errors of their own; other fallout of one mistake (the layers a gap cuts off from the Output,
the same missing Flatten seen by every Linear after it) is folded into the diagnostic of its root
cause by :func:`core.diagnostics.fold`. While errors exist the totals are partial
(:attr:`Analysis.partial`): the layers with unknown shapes are not counted.

:class:`Analyzer` keeps the per-node results between runs: after a parameter edit only the
edited node is recomputed, and its successors only while its output shape or receptive field
actually changed (the GUI's live checking relies on that to stay well under a frame); adding or
removing a node or an edge is followed the same way (a 20,000-node graph pays no full pass for it).

Speed (DESIGN.md §10: 1,000 nodes in ≤ 5 ms, ≤ 1 ms after an edit; ``bench/analysis.py``): the
walk uses the graph's own adjacency and its cached Kahn order, never networkx; validated params
are cached on each node by revision; shape and window rules, pure functions of (type, params,
input shapes), are memoised, so a stack of identical blocks evaluates each rule once; per-node
results are named tuples; a full pass sums the totals once at its end and screens ids for clashes
without building every layer's names. A merge's fix is found up its branches by :mod:`core.repairs`;
fixes are applied by :func:`core.fixes.apply_fix`.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import operator
import weakref
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from core.analysis_result import DTYPE_BYTES, Analysis, MemoryEstimate, NodeResult
from core.analysis_structure import StructureLog, file_order_after, unsubscribe, update_reach
from core.diagnostics import Diagnostic, Severity, fold
from core.graph import Edge, Graph, Node, describe_cycle
from core.layers.registry import get_spec, suggest
from core.layers.spec import (
    GLOBAL,
    UNKNOWN_FIELD,
    Category,
    Fix,
    FixAction,
    Inferred,
    LayerError,
    LayerSpec,
    ParamError,
    SequenceRule,
    Shape,
    fmt_shape,
    insert_fix,
    numel,
    set_param_fix,
)
from core.memo_keys import params_key
from core.module_names import clashes_after, id_clashes, id_prefixes
from core.receptive_field import GLOBAL_RF, ReceptiveField, apply_rule, compile_rule, merge_fields, sequence_field
from core.repairs import merge_fix

_MEMO_LIMIT = 50_000
# Shape rules, receptive-field rules and parameter validation are pure functions of (type, params,
# input shapes): real networks repeat the same block many times, so one evaluation serves them all.
# Keys: (type, frozen params) for validation, ((type, frozen params), input shapes) for inference.
# The frozen (type, params) key is interned to a small int once per edit: hashing the nested key on
# every inference would cost more than the inference it saves.
_resolve_memo: dict[tuple[Any, ...], tuple[int, dict[str, Any] | ParamError]] = {}
_infer_memo: dict[int, dict[Any, tuple[Inferred, Any, int, Any] | LayerError]] = {}
_key_ids = itertools.count()
_CACHE_KEY = "analysis"  # Node.cache entry: (rev, interned key, resolved params or ParamError, spec)


def _infer(spec: LayerSpec, params: Mapping[str, Any],
           shapes: tuple[Shape, ...]) -> tuple[Inferred, Any, int, tuple[str, Any, Any] | None] | LayerError:
    """Run a declaration's shape and window rules; any failure becomes a :class:`LayerError`.

    Also returns the activation bytes and the first argument the user gave that disagrees with the
    inferred one (``in_channels=64`` on a 128-channel input) as ``(name, given, inferred)``.
    """
    try:
        inf = spec.infer(params, shapes)
        rule = compile_rule(spec.window(params, shapes)) if spec.window is not None else None
    except LayerError as exc:
        return exc
    except Exception as exc:  # a declaration's bug must not break analysis of the whole graph
        return LayerError(f"{spec.type} cannot take input{'s' if len(shapes) != 1 else ''} "
                          f"{', '.join(fmt_shape(s) for s in shapes)} ({type(exc).__name__}: {exc})")
    act = inf.saved  # attention weights kept for backward, besides the outputs
    for s in inf.out_shapes:
        act += numel(s)
    mismatch = next(((name, params[name], value) for name, value in inf.args.items()
                     if params.get(name) is not None and params[name] != value), None)
    if inf.args:  # one result serves many nodes (and graphs): hand out a read-only view of its args
        inf = dataclasses.replace(inf, args=MappingProxyType(dict(inf.args)))
    return inf, rule, act * DTYPE_BYTES, mismatch


# Layer families whose field rule (a SequenceRule) spans the whole sequence or its prefix.
_READS_EVERY_STEP = (Category.ATTENTION, Category.RECURRENT)

_ARG_WORDS = {"in_channels": "input channels", "in_features": "input features", "num_features": "features",
              "num_channels": "channels"}


class Analyzer:
    """Incremental analysis bound to one graph; :meth:`run` returns a fresh :class:`Analysis`.

    Parameter edits recompute the edited nodes and propagate only while a node's output shapes or
    receptive field change; from its second run on, added and removed nodes and edges are followed
    the same way (:meth:`_structural`). Several analyzers may watch the same graph: each keeps its
    own place in the graph's edit log and its own structure log.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._structure_version = -1
        self._param_version = -1
        self._results: dict[str, NodeResult] = {}
        self._diags: dict[str, list[Diagnostic]] = {}  # per node
        self._head_notes: dict[str, Diagnostic] = {}  # node -> its "field smaller than the input" note
        self._global: list[Diagnostic] = []
        self._unreached: list[str] = []  # nodes with no path to an Output (structure only)
        self._order: list[str] = []
        self._index: dict[str, int] = {}  # node -> a number that grows along self._order (gaps allowed)
        self._next_index = 0  # the number the next appended node gets
        self._file_ordered = False  # whether self._order is the file order (Kahn's fast path)
        self._blocked: set[str] = set()
        # node -> nodes whose result reads more than its inputs' shapes from it (a fix that looks
        # at an upstream conv's params, the head's RF note that reads the Input's size)
        self._deps: dict[str, set[str]] = {}
        self._first_input: str | None = None
        self._inputs: list[str] = []  # every Input node, in file order
        self._outputs: list[str] = []  # every Output node, in file order
        # params, trainable, buffers, macs, activation bytes; None while a full pass runs
        self._totals: list[int] | None = [0, 0, 0, 0, 0]
        self._snap: Analysis | None = None
        self._reach: set[str] | None = None  # nodes with a path to an Output (None: no Output)
        self._clashes: list[Diagnostic] = []  # ids that clash with torch's names (part of _global)
        self._prefixes: set[str] | None = None  # proper prefixes of all ids (built on the first structural edit)
        self._log: StructureLog | None = None  # structural edits since the last run (from the 2nd run on)
        self.recomputed = 0  # nodes recomputed by the last run (tests and benchmarks read it)

    # -- public -------------------------------------------------------------------------------
    def run(self) -> Analysis:
        g = self.graph
        if self._log is None and self._structure_version >= 0:
            # a second run: a long-lived analyzer (the editor's); analyze() runs once, never subscribes
            self._log = StructureLog(g, self._structure_version)
            weakref.finalize(self, unsubscribe, self._log.subscribe(g))
        dirty = g.params_changed_since(self._param_version)
        structural = g.structure_version != self._structure_version
        self._param_version = g.param_version
        if dirty is None or (structural and not self._structural(dirty)):
            self._full()
            self._snap = None
        elif structural:
            self._snap = None
        else:
            self.recomputed = 0
            if dirty:
                self._incremental(dirty)
                self._snap = None
        if self._log is not None:
            self._log.reset()
        if self._snap is None:
            self._snap = self._snapshot()
        return self._snap

    # -- passes -------------------------------------------------------------------------------
    def _full(self) -> None:
        g = self.graph
        self._structure_version = g.structure_version
        order, blocked = g.kahn()
        self._order = order + blocked
        self._set_index()
        self._blocked = set(blocked)
        self._results = {}
        self._diags = {}
        self._head_notes = {}
        self._deps = {}
        self._global = [self._cycle_diagnostic()] if blocked else []
        self._unreached = []
        self._totals = None
        inputs, outputs = self._inputs, self._outputs = [], []
        for node in g.nodes.values():
            if node.type == "Input":
                inputs.append(node.id)
            elif node.type == "Output":
                outputs.append(node.id)
        self._first_input = inputs[0] if inputs else None
        compute = self._compute
        for nid in order:
            compute(nid)
        for nid in blocked:
            self._results[nid] = NodeResult(nid, g.nodes[nid].type, None)
        self._totals = self._sum_totals()
        self._structural_checks()
        self.recomputed = len(order)

    def _structural(self, dirty: set[str]) -> bool:
        """Follow the structural edits in the log (and the param edits ``dirty``) without a full pass:
        the added nodes, the ends of added and removed edges and every node with an error (a merge's
        fix reads the branches above it) are recomputed, with their successors while their
        results change; the Output reachability and id clashes are updated from what changed.
        ``False`` when the log cannot say (a rename, a cycle, several Inputs, an Input added or
        removed): the caller makes a full pass."""
        log, g = self._log, self.graph
        nodes, changed = g.nodes, list(itertools.chain(log.nodes_added, log.nodes_removed)) if log else []
        if (log is None or not log.complete() or self._blocked or len(self._inputs) > 1 or not nodes
                or any(n.type == "Input" for n in changed)):
            return False
        gone = {n.id for n in log.nodes_removed if n.id not in nodes}
        index = self._index
        found = file_order_after(g, self._order, index, gone, log.edges_added, self._next_index) \
            if self._file_ordered else None
        if found is not None:
            self._order, self._next_index = found
        else:
            order, blocked = g.kahn()
            if blocked:
                return False
            self._order = order
            self._set_index()
            index = self._index
        for nid in gone:
            self._drop(nid)
        outputs_changed = any(n.type == "Output" for n in changed)
        if outputs_changed:
            self._outputs = [n.id for n in nodes.values() if n.type == "Output"]
        touched = {n.id for n in changed}
        touched.update(e.dst for e in itertools.chain(log.edges_added, log.edges_removed))
        # a merge's error reads the branches above it (core.repairs): errors are looked at again
        touched.update(nid for nid, ds in self._diags.items() if any(d.severity is Severity.ERROR for d in ds))
        touched.update(dirty)
        self._structure_version = g.structure_version
        self.recomputed = 0
        self._incremental({n for n in touched if n in nodes})
        if self._prefixes is None:
            self._prefixes = id_prefixes(nodes)
        self._clashes = clashes_after(g, self._clashes, self._prefixes, [n.id for n in log.nodes_added], dirty)
        self._global = []
        self._add_global_checks()
        reach, lost = self._reach, None
        if outputs_changed or reach is None or not self._outputs:
            self._reach = reach = g.upstream(self._outputs) if self._outputs else None
        else:
            reach.difference_update(gone)
            lost = update_reach(g, reach, index, set(self._outputs), (e.src for e in log.edges_removed),
                                log.edges_added)
        if reach is None or len(reach) == len(nodes):
            self._unreached = []
        elif lost is not None and self._file_ordered:
            # only the layers unreached before, those just cut off and the new ones can be unreached
            # now; the index follows the file order, so sorting by it gives what a scan would
            maybe = itertools.chain(self._unreached, lost, (n.id for n in log.nodes_added))
            self._unreached = sorted({n for n in maybe if n in nodes and n not in reach}, key=index.__getitem__)
        else:
            self._unreached = [nid for nid in nodes if nid not in reach]
        return True

    def _set_index(self) -> None:  # after self._order is replaced
        order = self._order
        self._index = dict(zip(order, range(len(order)), strict=True))
        self._next_index = len(order)
        self._file_ordered = len(order) == len(self.graph.nodes) and order == list(self.graph.nodes)

    def _drop(self, nid: str) -> None:
        """Forget a removed node: its result (and its share of the totals), diagnostics and dependants."""
        r = self._results.pop(nid, None)
        if r is not None:
            self._count(r, -1)
        self._diags.pop(nid, None)
        self._head_notes.pop(nid, None)
        self._deps.pop(nid, None)

    def _incremental(self, dirty: set[str]) -> None:
        index, blocked = self._index, self._blocked
        heap = [(index[n], n) for n in dirty if n in index and n not in blocked]
        heapq.heapify(heap)
        queued = {n for _, n in heap}
        outs = self.graph._out
        while heap:
            _, nid = heapq.heappop(heap)
            old = self._results.get(nid)
            self._compute(nid)
            self.recomputed += 1
            new = self._results[nid]
            nxt: list[str] = list(self._deps.get(nid, ()))
            if old is None or old.out_shapes != new.out_shapes or old.rf != new.rf:
                nxt += [e.dst for e in outs[nid]]
            for succ in nxt:
                if succ not in queued and succ in index and succ not in blocked:
                    queued.add(succ)
                    heapq.heappush(heap, (index[succ], succ))

    # -- one node -----------------------------------------------------------------------------
    @staticmethod
    def _resolve(node: Node, spec: LayerSpec) -> tuple[int, int, dict[str, Any] | ParamError, LayerSpec]:
        key = (spec.type, params_key(node.params))
        hit = _resolve_memo.get(key)
        if hit is None:
            resolved: dict[str, Any] | ParamError
            try:
                resolved = spec.resolve(node.params)
            except ParamError as exc:
                resolved = exc
            except Exception as exc:  # a declaration's bug: report it on the node, don't raise
                resolved = ParamError(f"params: could not be checked ({type(exc).__name__}: {exc})")
            if len(_resolve_memo) >= _MEMO_LIMIT:
                _resolve_memo.clear()
                _infer_memo.clear()  # its keys are interned ids handed out by _resolve_memo
            hit = (next(_key_ids), resolved)
            _resolve_memo[key] = hit
        entry = (node.rev, hit[0], hit[1], spec)
        node.cache[_CACHE_KEY] = entry
        return entry

    def _set(self, result: NodeResult, diags: list[Diagnostic] | None) -> None:
        rid = result.id
        if self._totals is not None:  # None during a full pass, which sums the totals once at its end
            old = self._results.get(rid)
            if old is not None:
                self._count(old, -1)
            self._count(result, 1)
        self._results[rid] = result
        if self._head_notes:
            note = self._head_notes.pop(rid, None)
            if note is not None and diags and any(d is note for d in diags):  # made by this computation
                self._head_notes[rid] = note
        if diags:
            self._diags[rid] = diags
        elif rid in self._diags:
            del self._diags[rid]

    def _count(self, r: NodeResult, sign: int) -> None:  # add (1) or take away (-1) a node's share
        t = self._totals
        if t is not None and r.out_shapes is not None:
            t[0] += sign * (r.params or 0)
            t[1] += sign * (r.trainable or 0)
            t[2] += sign * (r.buffers or 0)
            t[3] += sign * (r.macs or 0)
            t[4] += sign * (r.activation_bytes or 0)

    def _sum_totals(self) -> list[int]:
        """Params, trainable, buffers, MACs and activation bytes of every node with a known shape;
        each a C-level sum (a full pass sums once instead of updating five totals per node)."""
        known = [r for r in self._results.values() if r.out_shapes is not None]
        return [sum(filter(None, map(getter, known))) for getter in _TOTAL_FIELDS]  # filter: None counts 0

    def _fail(self, node: Node, diag: Diagnostic | None) -> None:
        self._set(NodeResult(node.id, node.type, None), [diag] if diag is not None else None)

    def _compute(self, nid: str) -> None:
        g = self.graph
        node = g.nodes[nid]
        entry = node.cache.get(_CACHE_KEY)
        if entry is None or entry[0] != node.rev:
            found = get_spec(node.type)
            if found is None:
                self._fail(node, self._unknown_type(node))
                return
            entry = self._resolve(node, found)
        _rev, key, params, spec = entry
        if isinstance(params, ParamError):
            self._fail(node, self._param_problem(node, spec, params))
            return
        ins = g._in[nid]
        n_in = len(ins)
        if n_in < spec.min_inputs or (spec.max_inputs is not None and n_in > spec.max_inputs):
            self._fail(node, self._input_count_problem(node, spec))
            return
        results = self._results
        rfs: list[ReceptiveField | None] | None = None
        if n_in == 1:  # the common case, without temporary lists (fewer allocations, fewer GC passes)
            for e in ins.values():
                src = results.get(e.src)
                src_shapes = src.out_shapes if src is not None else None
                if src_shapes is None:
                    self._fail(node, None)  # downstream of an error: unknown, silently
                    return
                if e.from_port >= len(src_shapes):
                    self._fail(node, self._port_problem(nid, e, src))  # type: ignore[arg-type]
                    return
                shape_key: Any = src_shapes[e.from_port]
                base_rf = src.rf  # type: ignore[union-attr]
                edges: tuple[Edge, ...] = (e,)
        else:
            edges = tuple(map(ins.__getitem__, sorted(ins)))
            shapes: list[Shape] = []
            rfs = []
            for e in edges:
                src = results.get(e.src)
                if src is None or src.out_shapes is None:
                    self._fail(node, None)
                    return
                if e.from_port >= len(src.out_shapes):
                    self._fail(node, self._port_problem(nid, e, src))
                    return
                shapes.append(src.out_shapes[e.from_port])
                rfs.append(src.rf)
            shape_key = tuple(shapes) if n_in else None  # None: no inputs (a () shape is a real one)
            base_rf = None
        # memo: interned (type, params) -> {input shape (one input) or tuple of shapes: result}
        by_shape = _infer_memo.get(key)
        if by_shape is None:
            if len(_infer_memo) >= _MEMO_LIMIT:
                _infer_memo.clear()
            by_shape = _infer_memo[key] = {}
        hit = by_shape.get(shape_key)
        if hit is None:
            if len(by_shape) >= 4096:
                by_shape.clear()
            hit = by_shape[shape_key] = _infer(spec, params, (shape_key,) if n_in == 1 else shape_key or ())
        if hit.__class__ is not tuple:
            assert isinstance(hit, LayerError)
            in_shapes = (shape_key,) if n_in == 1 else shape_key or ()
            self._fail(node, self._layer_problem(node, spec, hit, in_shapes, edges))
            return
        inf, rule, act, mismatch = hit  # type: ignore[misc]
        if mismatch is not None:  # an argument the user gave that disagrees with the input
            in_shapes = (shape_key,) if n_in == 1 else shape_key or ()
            name, given, value = mismatch
            self._fail(node, self._arg_mismatch(node, name, given, value, in_shapes, edges))
            return
        diags: list[Diagnostic] | None = None
        if inf.warnings:
            diags = [Diagnostic(Severity.WARNING, nid, f"{nid}: {msg}", fix.at(nid) if fix else None)
                     for msg, fix in inf.warnings]
        # -- receptive field (Araujo et al.; DESIGN.md §5)
        if n_in == 0:  # Input: a spatial sample starts with a 1-pixel field per axis
            nsp = len(inf.out_shapes[0]) - 1
            rf: ReceptiveField | None = ReceptiveField((1,) * nsp, (1,) * nsp, (0,) * nsp) if nsp > 0 else GLOBAL_RF
        else:
            if rfs is None:
                rf = base_rf
            else:
                if diags is None:
                    diags = []
                rf = self._merge_rf(nid, spec, rfs, diags)
            if rule is not None and rf is not None:
                if rule is GLOBAL:
                    if rf.size is not None:
                        if diags is None:
                            diags = []
                        self._head_note(nid, rf, shape_key if n_in == 1 else shape_key[0], diags)
                    rf = GLOBAL_RF
                elif rule is UNKNOWN_FIELD:  # a layer whose field is not computed
                    rf = None
                elif rule.__class__ is SequenceRule:  # along a sequence: whole, prefix, or 1 step
                    rf = sequence_field(rf, rule)
                elif rf.size is not None:
                    rf = apply_rule(rf, rule)
        # tuple.__new__ builds the named tuple without the Python-level __new__ that NodeResult(...) calls
        result = _new_tuple(NodeResult, (nid, spec.type, inf.out_shapes, inf.args, inf.params,
                                         0 if node.frozen else inf.params, inf.buffers, inf.macs, rf, act))
        if diags or self._totals is not None:
            self._set(result, diags)
        else:  # a full pass without news on this node: _set would only store it (totals are summed at the end)
            self._results[nid] = result

    # -- diagnostics for one node ---------------------------------------------------------------
    @staticmethod
    def _port_problem(nid: str, e: Edge, src: NodeResult) -> Diagnostic:
        n = len(src.out_shapes or ())
        return Diagnostic(
            Severity.ERROR, nid, f"{nid}: its input from {e.src} uses output {e.from_port}, but {e.src} has {n} "
            f"output{'s' if n != 1 else ''} — connect one of outputs 0 to {n - 1} instead",
            Fix(f"disconnect {e.src} → {nid}", FixAction.REMOVE_EDGE, nid, port=e.port))

    @staticmethod
    def _unknown_type(node: Node) -> Diagnostic:
        hint = suggest(node.type)
        if hint:
            return Diagnostic(Severity.ERROR, node.id, f"{node.id}: unknown layer type {node.type!r} — did you "
                              f"mean {hint}?", Fix(f"change the type to {hint}", FixAction.REPLACE_TYPE, node.id,
                                                   layer_type=hint))
        return Diagnostic(Severity.ERROR, node.id, f"{node.id}: unknown layer type {node.type!r} — pick a type "
                          f"from the palette (or update NetCanvas if the file comes from a newer version)")

    @staticmethod
    def _param_problem(node: Node, spec: LayerSpec, exc: ParamError) -> Diagnostic:
        text = str(exc)
        name, _, rest = text.partition(": ")
        if name not in spec.param_names and name not in node.params:
            return Diagnostic(Severity.ERROR, node.id, f"{node.id}: {text}")
        if name not in spec.param_names:  # a parameter this type does not have
            return Diagnostic(Severity.ERROR, node.id, f"{node.id}: {rest} — remove it",
                              set_param_fix(name, None, f"remove {name}").at(node.id), name)
        ps = spec.param(name)
        if ps.inferred:
            label, hint = f"let {name} be inferred", f"remove it and {name} is inferred from the input"
        else:
            shown = _show_default(ps.default)
            label, hint = f"set {name} to its default ({shown})", f"e.g. {name}={shown}, the default"
        return Diagnostic(Severity.ERROR, node.id, f"{node.id}: {name} {rest} — {hint}",
                          set_param_fix(name, None, label).at(node.id), name)

    def _input_count_problem(self, node: Node, spec: LayerSpec) -> Diagnostic:
        nid = node.id
        edges = self.graph.in_edges(nid)
        n_in = len(edges)
        srcs = ", ".join(e.src for e in edges)
        if n_in < spec.min_inputs:
            if spec.min_inputs == 1:
                msg = f"{nid} has no input — connect a layer's output to it"
            else:
                msg = (f"{nid} ({spec.type}) needs at least {spec.min_inputs} inputs, has {n_in}"
                       + (f" ({srcs})" if srcs else "") + " — connect another branch to it")
            return Diagnostic(Severity.ERROR, nid, msg)
        extra = edges[-1]
        fix = Fix(f"disconnect {extra.src} → {nid}", FixAction.REMOVE_EDGE, nid, port=extra.port)
        if spec.max_inputs == 0:
            msg = (f"{nid} ({spec.type}) takes no inputs, but has {n_in} ({srcs}) — disconnect "
                   f"{'it' if n_in == 1 else 'them'}")
        else:
            many = "input" if spec.max_inputs == 1 else "inputs"
            msg = (f"{nid} ({spec.type}) takes {spec.max_inputs} {many}, but has {n_in} ({srcs}) — merge them "
                   f"with Add or Concat first, or disconnect {extra.src}")
        return Diagnostic(Severity.ERROR, nid, msg, fix)

    def _layer_problem(self, node: Node, spec: LayerSpec, exc: LayerError, shapes: Sequence[Shape],
                       edges: Sequence[Edge]) -> Diagnostic:
        nid = node.id
        msg = exc.message
        fix = exc.fix.at(nid) if exc.fix is not None else None
        if len(edges) > 1:
            msg += " (" + ", ".join(f"{fmt_shape(s)} from {e.src}" for s, e in zip(shapes, edges, strict=True)) + ")"
            if fix is None:
                fix = merge_fix(self, nid, spec.type, shapes, edges)
                if fix is not None:
                    msg += f" — {fix.label}" + (f" on {fix.node}" if fix.node != nid else "")
        elif edges:
            src = edges[0].src
            if f" from {src}" not in msg:
                msg += f" (input {fmt_shape(shapes[0])} from {src})"
        return Diagnostic(Severity.ERROR, nid, f"{nid}: {msg}", fix, exc.param)

    @staticmethod
    def _arg_mismatch(node: Node, name: str, given: Any, value: Any, shapes: Sequence[Shape],
                      edges: Sequence[Edge]) -> Diagnostic:
        nid = node.id
        src = edges[0].src if edges else "its input"
        shape = shapes[0] if shapes else ()
        if name == "in_features" and len(shape) > 1:
            flat = numel(shape)
            return Diagnostic(
                Severity.ERROR, nid,
                f"{nid}: expects {given} input features (in_features={given}), gets a {fmt_shape(shape)} input "
                f"from {src} — insert Flatten ({flat} features) and set in_features to {flat}",
                insert_fix("Flatten", label=f"insert Flatten ({fmt_shape(shape)} → {flat})").at(nid), name)
        what = _ARG_WORDS.get(name, name)
        extra = " or insert a 1×1 Conv2d" if name == "in_channels" else ""
        return Diagnostic(
            Severity.ERROR, nid,
            f"{nid}: expects {given} {what} ({name}={given}), gets {value} from {src} — set {name} to {value}{extra}",
            set_param_fix(name, value, f"set {name} to {value}").at(nid), name)

    def _cycle_diagnostic(self) -> Diagnostic:
        cyc = self.graph.find_cycle()
        if not cyc:  # pragma: no cover - kahn() found blocked nodes, so there is a cycle
            return Diagnostic(Severity.ERROR, None, "the graph has a cycle — remove one of its connections")
        last, first = cyc[-1], cyc[0]
        port = next((e.port for e in self.graph.in_edges(first) if e.src == last), 0)
        return Diagnostic(
            Severity.ERROR, first,
            "the graph has a cycle: " + describe_cycle(cyc) + f" — remove one of these connections "
            f"(e.g. {last} → {first}); the layers on and after it have unknown shapes",
            Fix(f"disconnect {last} → {first}", FixAction.REMOVE_EDGE, first, port=port))

    def _head_note(self, nid: str, rf: ReceptiveField, shape: Shape, diags: list[Diagnostic]) -> None:
        """Info when a global layer (Flatten, Linear, global pooling) sees less than the whole input."""
        first = self._first_input
        if first is None or len(shape) < 2 or rf.size is None:
            return
        if len(self._inputs) > 1:  # several Inputs (a Siamese network): the one this layer sees
            for input_id in self._inputs:
                self._deps.setdefault(input_id, set()).add(nid)
            ancestors = self.graph.upstream([nid])
            first = next((i for i in self._inputs if i in ancestors), first)
        else:
            self._deps.setdefault(first, set()).add(nid)  # the note reads the Input's size
        r = self._results.get(first)
        inp = r.output_shape[1:] if r is not None and r.output_shape is not None else None
        if inp is None or len(inp) != len(rf.size) or not any(s < i for s, i in zip(rf.size, inp, strict=True)):
            return
        note = Diagnostic(
            Severity.INFO, nid,
            f"{nid}: the receptive field before this layer is {rf.short()}, smaller than the "
            f"{fmt_shape(inp)} input — each of the {fmt_shape(shape[1:])} positions sees only part "
            f"of the image; more layers or strides would let the head see all of it")
        diags.append(note)
        self._head_notes[nid] = note  # kept only if this is the head (see _squeeze_notes)

    def _squeeze_notes(self) -> set[int]:
        """The ids of head notes made on squeeze branches, to leave out of the snapshot.

        Every global layer whose input field is smaller than the image gets a note, but it matters
        only for the head: the layers whose global field flows into an Output. A squeeze-excitation
        (or ECA) branch's global pooling feeds a gate that a Multiply applies back to the feature
        map, whose field is local again, so its note is noise (EfficientNet-B0 had nine). Walked up
        from the Outputs through the global fields only, so it touches the head's few layers.
        """
        g, results = self.graph, self._results
        outputs = self._outputs
        if not outputs:  # nothing is the head yet while the network is being drawn
            return set()
        def passes(r: NodeResult | None) -> bool:
            # a global field, or one unknown after an error: a note stays while its head is being fixed
            return r is not None and (r.rf is None or r.rf.size is None)

        head: set[str] = set()
        stack = [o for o in outputs if passes(results.get(o))]
        while stack:
            nid = stack.pop()
            if nid in head:
                continue
            head.add(nid)
            r = results.get(nid)
            spec = get_spec(r.type) if r is not None else None
            if spec is not None and spec.window is not None and spec.category in _READS_EVERY_STEP:
                # attention or an RNN reads every token itself: a note before it (ViT's Flatten of the
                # 4×4 patches) is not about what the head sees
                continue
            for e in g._in[nid].values():
                if passes(results.get(e.src)):
                    stack.append(e.src)
        return {id(d) for nid, d in self._head_notes.items() if nid not in head}

    # -- receptive field ------------------------------------------------------------------------
    def _merge_rf(self, nid: str, spec: LayerSpec, rfs: Sequence[ReceptiveField | None],
                  diags: list[Diagnostic]) -> ReceptiveField | None:
        rf, note = merge_fields(rfs, keep_local=spec.type == "Multiply")
        if note:
            diags.append(Diagnostic(Severity.WARNING, nid, f"{nid}: {note}"))
        return rf

    # -- what the fix finders read (core.repairs.Context) and try (core.diagnostics.fold) -------
    def _holds_weights(self, node_id: str) -> bool:
        """Whether the compiled model keeps ``node_id`` although it may not run: a module with state."""
        r = self._results.get(node_id)
        spec = get_spec(r.type) if r is not None else None
        return r is not None and spec is not None and spec.is_module and bool(r.params or r.buffers)

    def output_shape(self, node_id: str) -> Shape | None:
        r = self._results.get(node_id)
        return r.output_shape if r is not None else None

    def resolved(self, node_id: str) -> dict[str, Any] | None:
        """``node_id``'s validated params with defaults, or ``None`` when they are invalid."""
        node = self.graph.nodes[node_id]
        entry = node.cache.get(_CACHE_KEY)
        if entry is None or entry[0] != node.rev:
            spec = get_spec(node.type)
            if spec is None:
                return None
            entry = self._resolve(node, spec)
        return None if isinstance(entry[2], ParamError) else entry[2]

    def depend(self, on: str, node_id: str) -> None:
        """``node_id``'s result reads ``on``'s params: recompute it when they change."""
        self._deps.setdefault(on, set()).add(node_id)

    def trial(self, src: str, dst: str) -> int:
        """How well connecting ``src``'s output 0 to ``dst`` would work, without changing the graph:
        0 when ``dst`` and every layer after it get a known shape, 1 when ``dst`` accepts the input
        but a later layer does not, 2 when ``dst`` refuses it (or the edge would close a cycle)."""
        g = self.graph
        first = self.output_shape(src)
        down = g.descendants(dst)
        if first is None or src in down or src == dst:
            return 2
        shapes: dict[str, tuple[Shape, ...]] = {}
        for nid in self._order:
            if nid != dst and nid not in down:
                continue
            bad = 2 if nid == dst else 1
            node = g.nodes[nid]
            spec = get_spec(node.type)
            params = self.resolved(nid) if spec is not None else None
            if spec is None or params is None:
                return bad
            ins: list[Shape] = [first] if nid == dst else []
            for port in sorted(g._in[nid]) if nid != dst else ():
                e = g._in[nid][port]
                known = shapes.get(e.src)
                if known is None:
                    r = self._results.get(e.src)
                    known = r.out_shapes if r is not None else None
                if known is None or e.from_port >= len(known):
                    return bad
                ins.append(known[e.from_port])
            if len(ins) < spec.min_inputs or (spec.max_inputs is not None and len(ins) > spec.max_inputs):
                return bad
            hit = _infer(spec, params, tuple(ins))
            if isinstance(hit, LayerError) or hit[3] is not None:
                return bad
            shapes[nid] = hit[0].out_shapes
        return 0

    # -- whole-graph checks -------------------------------------------------------------------
    def _structural_checks(self) -> None:
        g = self.graph
        self._reach = None
        self._clashes = []
        if not g.nodes:
            return
        self._clashes = id_clashes(g)
        self._add_global_checks()
        if self._outputs:
            reach = self._reach = g.upstream(self._outputs)
            self._unreached = [nid for nid in g.nodes if nid not in reach]  # folded by root cause in the snapshot

    def _add_global_checks(self) -> None:
        """The graph-wide errors after the cycle's: no Input, clashing ids, no Output."""
        if not self._inputs:
            self._global.append(Diagnostic(Severity.ERROR, None,
                                           "the network has no Input node — add one and set its shape",
                                           Fix("add an Input node", FixAction.ADD_INPUT)))
        self._global += self._clashes
        if not self._outputs:
            self._global.append(Diagnostic(
                Severity.ERROR, None, "the network has no Output node — connect the last layer to an Output",
                Fix("add an Output after the last layer", FixAction.ADD_OUTPUT)))

    # -- snapshot -----------------------------------------------------------------------------
    def _snapshot(self) -> Analysis:
        index = self._index
        per_node = sorted(self._diags.items(), key=lambda kv: index.get(kv[0], 0))
        diags: list[Diagnostic] = [d for _, ds in per_node for d in ds]
        if self._head_notes:
            squeeze = self._squeeze_notes()
            if squeeze:
                diags = [d for d in diags if id(d) not in squeeze]
        if diags or self._unreached:
            diags = fold(self.graph, diags, self._unreached, self.output_shape, self.trial, self._holds_weights)
        diags += self._global
        diags.sort(key=lambda d: _SEVERITY_ORDER[d.severity])
        results = self._results
        inputs: list[Shape | None] = [self.output_shape(nid) for nid in self._inputs]
        outputs: list[Shape | None] = [self.output_shape(nid) for nid in self._outputs]
        # Totals count what the compiled model holds and what it runs (issue 11, item 9; issue 12).
        # A layer that reaches no Output is left out of the forward by the compiler and export, but
        # one with weights stays in the model, idle, so an imported model's state_dict loads strictly:
        # its parameters and buffers count, its MACs and activations do not (it never runs). The
        # warning on it says so. While errors exist nothing compiles and the totals are a lower bound
        # of the network being built (an Output not yet wired would otherwise zero them), so every
        # layer counts.
        t = list(self._totals or self._sum_totals())
        compiles = not any(d.severity is Severity.ERROR for d in diags)
        for nid in self._unreached if compiles else ():
            r = results.get(nid)
            if r is not None:
                t[3] -= r.macs or 0
                t[4] -= r.activation_bytes or 0
        return Analysis(dict(results), tuple(self._order), tuple(diags), t[0], t[1], t[2], t[3], t[4],
                        inputs[0] if inputs else None, tuple(outputs), tuple(inputs))


_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_new_tuple = tuple.__new__
_TOTAL_FIELDS = tuple(operator.attrgetter(f) for f in ("params", "trainable", "buffers", "macs", "activation_bytes"))


def analyze(graph: Graph) -> Analysis:
    """One full, stateless analysis of ``graph``."""
    return Analyzer(graph).run()


def _show_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "×".join(str(v) for v in value)
    return str(value)


__all__ = ["DTYPE_BYTES", "GLOBAL_RF", "Analysis", "Analyzer", "Diagnostic", "MemoryEstimate", "NodeResult",
           "ReceptiveField", "Severity", "analyze"]
