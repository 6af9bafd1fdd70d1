"""Block classes for the Python export: one ``nn.Module`` class per repeated block structure.

torchvision writes ResNet-50 as a ``Bottleneck`` class built 16 times, not as 150 unrolled
layers; :func:`structured_model` does the same from the graph's groups (DESIGN.md §6–7).

A *block* is a module path prefix (``layer1.0``: the live nodes ``layer1.0.conv1`` … under it)
that reads one value from outside and hands one value on; the graph's group of that id, if
any, gives its label. Two blocks have the same *structure* when their nodes have the same
relative ids, layer types and edges, their stateless ops the same parameters, and their
sub-blocks the same structures; constructor arguments may differ. Every structure used twice
or more becomes a class. A constructor argument that differs between the instances becomes an
``__init__`` argument of the class, one per set of arguments equal in every instance (a
bottleneck's ``conv1.out_channels``, ``bn1.num_features`` and ``conv2.in_channels`` are one
``channels``); named ``in_channels``/``out_channels`` when they are the block's input/output
channel count, else after the argument, else after the layer and the argument. A structure that
is another one plus a sub-block on one path (a bottleneck with a ``downsample`` shortcut)
joins that class as an optional sub-module (``downsample=None``), as in torchvision.

Module paths are kept: a class instance sits at the block's id, so ``state_dict`` keys do not
change (``layer1.0.conv1.weight``). A container whose children are numbered ``0 … n-1`` and
pass one value down a chain is written as an ``nn.Sequential`` and called once; a class whose
body is such a chain subclasses ``nn.Sequential``. Identifiers come only from validated ids and
declared argument names (checked by :func:`core.export_code.safe_name`); class names take only the
ASCII letters of group labels, docstrings go through :func:`core.export.doc_text`.
"""

from __future__ import annotations

import builtins
import inspect
import json
import keyword
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from core.compiler import Plan, var_name
from core.export_code import (
    CtorArg,
    ExportError,
    LayerClasses,
    constructor_args,
    safe_name,
    same_value,
    value_source,
)
from core.export_scope import INPUT, Call, ScopeItem, ScopeWriter
from core.graph import Graph

EMPTY = inspect.Parameter.empty
_CHANNEL_ARGS = frozenset({"in_channels", "out_channels", "num_features", "in_features", "out_features", "groups",
                           "channels", "num_channels", "embed_dim"})
# Label words that name a place in the network rather than what a block is.
_PLACE_WORDS = frozenset({"stem", "head", "stage", "block", "layer"})
_NN_NAMES = frozenset(dir(nn))
_CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict", "Module"})
# Names an ``__init__`` argument may not take: the body uses them (``nn.Conv2d``, ``super()``).
_RESERVED_ARGS = frozenset({"self", "x", "torch", "nn", "F", "super"})
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*", re.ASCII)
SlotKey = tuple[str, str]  # (path of a layer or block in the class body, argument name)


@dataclass(eq=False)
class _Block:
    """A group that owns a module path and reads/writes one value each."""

    id: str
    label: str
    nodes: list[str]  # live node ids inside, in topological order
    source: tuple[str, int]  # the outside value it reads
    output: str  # the inner node whose value leaves the block
    parent: _Block | None = None
    children: list[_Block] = field(default_factory=list)
    sig: int = -1
    height: int = 0
    cls: _Class | None = None

    def rel(self, nid: str) -> str:
        return nid[len(self.id) + 1:]

    def child_at(self, rel: str) -> _Block | None:
        return next((c for c in self.children if self.rel(c.id) == rel), None)


@dataclass
class _Param:
    name: str
    slots: list[SlotKey]
    default: Any = EMPTY
    choices: tuple[str, ...] = ()
    annotation: str = ""


@dataclass(eq=False)
class _Class:
    name: str
    instances: list[_Block]
    rep: _Block  # an instance that has the optional sub-block, if the class has one
    optional: str | None = None  # relative id of the optional sub-block
    params: list[_Param] = field(default_factory=list)
    mapping: dict[SlotKey, str] = field(default_factory=dict)
    values: dict[_Block, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Slot:
    value: Any
    default: Any
    positional: bool
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Structured:
    """What :func:`core.export.python_source` writes: the model's body and the block classes."""

    init: list[str]
    forward: list[str]
    classes: list[str]  # the classes' source, parts before the blocks that use them
    names: frozenset[str]  # the classes' names


def structured_model(graph: Graph, plan: Plan, classes: LayerClasses,
                     reserved: frozenset[str]) -> Structured | None:
    """The model written with block classes, or ``None`` when no block structure repeats."""
    return _Writer(graph, plan, classes, reserved).run()


def _vkey(value: Any) -> str:
    """Equality of argument values, where ``True`` is not ``1`` and lists equal tuples."""
    def norm(v: Any) -> Any:
        return [norm(x) for x in v] if isinstance(v, (list, tuple)) else [type(v).__name__, v]
    return json.dumps(norm(value), default=str)


def _annotation(values: Iterable[Any]) -> str:
    names: list[str] = []
    for v in values:
        if v is None:
            name = "None"
        elif isinstance(v, (list, tuple)):
            name = "tuple[int, ...]" if all(isinstance(x, int) and not isinstance(x, bool) for x in v) else "tuple"
        else:
            name = type(v).__name__ if type(v) in (bool, int, float, str) else "object"
        if name not in names:
            names.append(name)
    return " | ".join(n for n in names if n != "None") + (" | None" if "None" in names and len(names) > 1 else "") \
        if names != ["None"] else "None"


def _camel(words: Sequence[str]) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words)


def _label_name(label: str) -> str:
    """``Dense layer: BN-ReLU …`` → ``DenseLayer``; ``1×1 · 96 → 3×3 · 128`` → ``""``.

    The first run of ASCII words starting with a letter (hyphenated words split), before a colon;
    torch's container names (an imported ``Sequential``) say nothing and give ``""``.
    """
    head = label.split(":", 1)[0]
    run: list[str] = []
    for word in head.split():
        parts = word.split("-")
        if all(_WORD_RE.fullmatch(p) for p in parts):
            run += parts
        elif run:
            break
    name = _camel(run)[:40]
    return "" if name in _CONTAINERS else name


class _Writer:
    def __init__(self, graph: Graph, plan: Plan, classes: LayerClasses, reserved: frozenset[str]) -> None:
        self.graph = graph
        self.plan = plan
        self.layer_classes = classes
        self.reserved = set(reserved)
        self.index = {nid: i for i, nid in enumerate(plan.nodes)}
        self.consumers: Counter[tuple[str, int]] = Counter()
        for node in plan.nodes.values():
            for src, port in node.inputs:
                self.consumers[(src, port)] += 1
        # Equal layers (same type, arguments and input shapes) have equal constructors: write each once.
        by_signature: dict[str, tuple[str, list[CtorArg]]] = {}
        self.ctors: dict[str, tuple[str, list[CtorArg]]] = {}
        for n in plan.module_nodes:
            key = n.signature
            if key not in by_signature:
                by_signature[key] = constructor_args(n, classes)
            self.ctors[n.id] = by_signature[key]
        self.readers: dict[str, list[str]] = {}
        for node in plan.nodes.values():
            for src, _port in node.inputs:
                self.readers.setdefault(src, []).append(node.id)
        self.sigs: dict[Any, int] = {}
        self.classes: list[_Class] = []

    # -- finding blocks and their structures -------------------------------------------------------
    def _blocks(self) -> list[_Block]:
        """Every group, and every module path prefix, that is a block.

        A prefix with no group (``inception3a.branch2.0``, three layers of a conv unit) counts
        too: templates group what a reader collapses, not every unit torchvision makes a class.
        """
        plan, graph = self.plan, self.graph
        under: dict[str, list[str]] = {}
        for nid in plan.nodes:
            segs = nid.split(".")
            for cut in range(1, len(segs)):
                under.setdefault(".".join(segs[:cut]), []).append(nid)
        found: list[_Block] = []
        for prefix, nodes in under.items():
            group = graph.groups.get(prefix)
            if prefix in plan.nodes:
                continue
            inside = set(nodes)
            if any(plan.nodes[n].type in ("Input", "Output") for n in nodes):
                continue
            sources = {(s, p) for n in nodes for s, p in plan.nodes[n].inputs if s not in inside}
            leaving = {n for n in nodes if any(r not in inside for r in self.readers.get(n, ()))}
            if len(sources) != 1 or len(leaving) != 1:
                continue
            out = next(iter(leaving))
            if plan.nodes[out].spec.outputs(plan.nodes[out].params) != 1:
                continue
            found.append(_Block(prefix, group.label if group is not None else "", nodes, next(iter(sources)), out))
        found.sort(key=lambda b: b.id)
        by_id = {b.id: b for b in found}
        for b in found:
            segs = b.id.split(".")
            for cut in range(len(segs) - 1, 0, -1):
                parent = by_id.get(".".join(segs[:cut]))
                if parent is not None:
                    b.parent = parent
                    parent.children.append(b)
                    break
        return found

    def _signature(self, b: _Block, without: _Block | None = None) -> int:
        """An id for ``b``'s structure (optionally with sub-block ``without`` replaced by a wire)."""
        skip = set(without.nodes) if without is not None else set()
        alias = {without.output: without.source} if without is not None else {}
        inside = set(b.nodes)

        def ref(src: str, port: int) -> tuple[str, int]:
            src, port = alias.get(src, (src, port))
            return (INPUT, 0) if src not in inside else (b.rel(src), port)

        entries = []
        for nid in b.nodes:
            if nid in skip:
                continue
            n = self.plan.nodes[nid]
            what = self.ctors[nid][0] if n.spec.is_module else json.dumps(n.params, sort_keys=True, default=str)
            entries.append((b.rel(nid), n.type, what, n.spec.outputs(n.params),
                            tuple(ref(s, p) for s, p in n.inputs)))
        entries.sort()
        children = tuple(sorted((b.rel(c.id), c.sig) for c in b.children if c is not without))
        key = (tuple(entries), children, b.rel(b.output))
        return self.sigs.setdefault(key, len(self.sigs))

    def _decide(self, blocks: list[_Block]) -> None:
        """Group the blocks by structure, merge optional sub-blocks, make a class per repeated one."""
        for b in sorted(blocks, key=lambda b: -b.id.count(".")):  # children first
            b.height = 1 + max((c.height for c in b.children), default=-1)
        for b in sorted(blocks, key=lambda b: b.height):
            b.sig = self._signature(b)
        by_sig: dict[int, list[_Block]] = {}
        for b in blocks:
            by_sig.setdefault(b.sig, []).append(b)
        merges: dict[int, tuple[int, str]] = {}
        for sig, group in by_sig.items():
            rep = group[0]
            for child in rep.children:
                rel = rep.rel(child.id)
                if ("." in rel or not rel.isidentifier() or keyword.iskeyword(rel) or child.output == rep.output
                        or self._is_sequence(child)):
                    continue
                bare = self._signature(rep, without=child)
                if bare != sig and bare in by_sig:
                    merges[sig] = (bare, rel)
                    break
        # One optional sub-block per class: a target that is merged itself, or that another
        # structure joins with a different optional part, takes no (further) merge.
        optional: dict[int, str] = {}
        for sig, (target, rel) in list(merges.items()):
            if target in merges or optional.setdefault(target, rel) != rel:
                del merges[sig]
        optional = {t: rel for t, rel in merges.values()}
        members: dict[int, list[_Block]] = {}
        for sig, group in by_sig.items():
            members.setdefault(merges.get(sig, (sig, ""))[0], []).extend(group)
        forced = {c.sig for s, (_t, rel) in merges.items() for b in by_sig[s] for c in b.children
                  if b.rel(c.id) == rel}
        for sig, group in sorted(members.items(), key=lambda kv: max(b.height for b in kv[1])):
            if (len(group) < 2 and sig not in forced) or self._is_sequence(group[0]):
                continue
            optional_rel = optional.get(sig)
            group.sort(key=lambda b: self.index[b.output])
            rep = next((b for b in group if optional_rel is None or b.child_at(optional_rel) is not None), group[0])
            cls = _Class("", group, rep, optional_rel)
            for b in group:
                b.cls = cls
            self.classes.append(cls)

    @staticmethod
    def _is_sequence(b: _Block) -> bool:
        """A stage: nothing but numbered sub-blocks. Written as an ``nn.Sequential`` of them, not a class."""
        covered = {n for c in b.children if b.rel(c.id).isdigit() for n in c.nodes}
        return len(b.children) > 1 and covered == set(b.nodes)

    # -- classes: names and arguments ------------------------------------------------------------
    def _name_classes(self) -> None:
        taken = set(self.reserved) | set(self.layer_classes.sources)
        for cls in self.classes:
            votes = Counter(_label_name(b.label) for b in cls.instances)
            ranked = sorted((n for n in votes if n), key=lambda n: (n.lower() in _PLACE_WORDS, -votes[n]))
            name = ranked[0] if ranked else ""
            if not name:  # no label: after the id's last name (``conv``), or its block's label and it
                tails = Counter(re.sub(r"[0-9_]+$", "", b.id.split(".")[-1]) for b in cls.instances)
                tail = next((t for t, _n in tails.most_common() if t and not t[0].isdigit()), "block")
                name = _camel(re.findall(r"[A-Za-z0-9]+", tail, re.ASCII)) or "Block"
                parents = Counter(_label_name(b.parent.label) for b in cls.instances if b.parent is not None)
                outer = next((n for n, _c in parents.most_common() if n and n.lower() not in _PLACE_WORDS), "")
                if outer and (name in taken or name.lower() in _PLACE_WORDS
                              or any(n.startswith(name) for n in _NN_NAMES)):
                    name = outer + name
            if (any(n.startswith(name) for n in _NN_NAMES) or name.lower() in _PLACE_WORDS) and name != "Block":
                name += "Block"
            if name[0].isdigit():
                name = "Block" + name
            base, i = name, 2
            while name in taken or keyword.iskeyword(name) or hasattr(builtins, name):
                name = f"{base}{i}"
                i += 1
            taken.add(name)
            cls.name = safe_name(name)

    def _top_instances(self, nodes: Iterable[str], scope: _Block | None) -> list[_Block]:
        """The class instances directly in a scope (inside no other instance of the scope)."""
        seen: dict[str, _Block] = {}
        owner = self._owner
        for nid in nodes:
            b = owner.get(nid)
            top = None
            while b is not None and b is not scope:
                if b.cls is not None:
                    top = b
                b = b.parent
            if top is not None:
                seen.setdefault(top.id, top)
        return list(seen.values())

    def _instance_slots(self, inst: _Block, rel: str) -> list[tuple[SlotKey, _Slot]]:
        """The arguments ``inst`` is built with, keyed by (its path, argument), its optional part's too."""
        cls = inst.cls
        assert cls is not None
        out = [((rel, p.name), _Slot(cls.values[inst][p.name], p.default, p.default is EMPTY, p.choices))
               for p in cls.params]
        child = inst.child_at(cls.optional) if cls.optional else None
        if child is not None:
            out += self._instance_slots(child, f"{rel}.{cls.optional}")
        return out

    def _body_slots(self, inst: _Block) -> dict[SlotKey, _Slot]:
        """Every constructor argument written in the class body, from instance ``inst``."""
        cls = inst.cls
        assert cls is not None
        tops = [t for t in self._top_instances(inst.nodes, inst) if inst.rel(t.id) != cls.optional]
        covered = {n for t in tops for n in t.nodes}
        optional = inst.child_at(cls.optional) if cls.optional else None
        covered |= set(optional.nodes) if optional is not None else set()
        slots: dict[SlotKey, _Slot] = {}
        order: list[tuple[int, list[tuple[SlotKey, _Slot]]]] = []
        for nid in inst.nodes:
            if nid in covered or nid not in self.ctors:
                continue
            order.append((self.index[nid], [((inst.rel(nid), a.name), _Slot(a.value, a.default, a.positional,
                                                                          a.choices)) for a in self.ctors[nid][1]]))
        for t in tops:
            order.append((self.index[t.output], self._instance_slots(t, inst.rel(t.id))))
        for _i, pairs in sorted(order, key=lambda p: p[0]):
            slots.update(pairs)
        return slots

    def _params(self, cls: _Class) -> None:
        per = [self._body_slots(b) for b in cls.instances]
        keys = list(self._body_slots(cls.rep))
        for b, s in zip(cls.instances, per, strict=True):
            if set(s) != set(keys):  # pragma: no cover - same structure, same slots
                raise ExportError(f"{b.id}: internal error, its arguments differ from {cls.rep.id}'s")
        vectors = {k: [s[k].value for s in per] for k in keys}
        groups: dict[tuple[str, tuple[str, ...]], list[SlotKey]] = {}
        for k in keys:
            vk = tuple(_vkey(v) for v in vectors[k])
            if len(set(vk)) < 2:
                continue
            name = k[1]
            family = "ch" if name in _CHANNEL_ARGS or name.endswith(("channels", "features")) \
                else name.rsplit("_", 1)[-1]
            groups.setdefault((family, vk), []).append(k)
        in_vec = tuple(_vkey(self._channels(b.source)) for b in cls.instances)
        out_vec = tuple(_vkey(self._channels((b.output, 0))) for b in cls.instances)
        taken = set(_RESERVED_ARGS) | ({cls.optional} if cls.optional else set())
        plain = [g for (fam, vk), g in groups.items() if fam == "ch" and vk not in (in_vec, out_vec)]
        arg_names = Counter(g[0][1] for g in groups.values())
        params: list[_Param] = []
        for (fam, vk), slots in groups.items():
            rel, arg = slots[0]
            if fam == "ch" and vk == in_vec:
                name = "in_channels"
            elif fam == "ch" and vk == out_vec:
                name = "out_channels"
            elif (len({a for _r, a in slots}) == 1 and arg_names[arg] == 1
                  and arg not in ("in_channels", "out_channels", "channels")):
                name = arg
            elif fam == "ch" and len(plain) == 1:
                name = "channels"
            else:
                name = f"{var_name(rel)}_{arg}" if rel else arg
            if not name.isidentifier():  # a numbered layer: ``0_out_channels``
                name = "arg_" + re.sub(r"[^A-Za-z0-9_]", "_", name, flags=re.ASCII)
            base, i = name, 2
            while name in taken or keyword.iskeyword(name):
                name = f"{base}_{i}"
                i += 1
            taken.add(name)
            first = [per[0][k] for k in slots]
            defaults = {_vkey(s.default) for s in first}
            default = first[0].default if (not any(s.positional for s in first) and len(defaults) == 1
                                           and first[0].default is not EMPTY) else EMPTY
            if default is not EMPTY:
                try:
                    value_source(default, first[0].choices)
                except ExportError:
                    default = EMPTY
            choices = tuple(sorted({c for s in first for c in s.choices}))
            params.append(_Param(safe_name(name), slots, default, choices, _annotation(vectors[slots[0]])))
        params.sort(key=lambda p: (p.default is not EMPTY, p.name != "in_channels"))
        cls.params = params
        cls.mapping = {k: p.name for p in params for k in p.slots}
        cls.values = {b: {p.name: s[p.slots[0]].value for p in params} for b, s in zip(cls.instances, per,
                                                                                        strict=True)}

    def _channels(self, value: tuple[str, int]) -> Any:
        shapes = self.plan.nodes[value[0]].out_shapes
        shape = shapes[value[1]] if value[1] < len(shapes) else ()
        return shape[0] if shape else None

    # -- expressions -------------------------------------------------------------------------------
    def _layer_ctor(self, nid: str, rel: str, mapping: Mapping[SlotKey, str]) -> str:
        ref, args = self.ctors[nid]
        parts = []
        for a in args:
            given = mapping.get((rel, a.name))
            if given is None and a.omitted:
                continue
            expr = given if given is not None else a.literal()
            parts.append(expr if a.positional else f"{safe_name(a.name)}={expr}")
        return f"{ref}({', '.join(parts)})"

    def _call(self, inst: _Block, rel: str, mapping: Mapping[SlotKey, str]) -> Call:
        """``Bottleneck(256, 128, 512, stride=2, downsample=Shortcut(256, 512, stride=2))`` for ``inst``."""
        cls = inst.cls
        assert cls is not None
        args: list[tuple[str, str, bool]] = []
        for p in cls.params:
            given = mapping.get((rel, p.name))
            value = cls.values[inst][p.name]
            if given is None and p.default is not EMPTY and same_value(value, p.default):
                continue
            expr = given if given is not None else value_source(value, p.choices)
            args.append((p.name, expr, p.default is not EMPTY))
        child = inst.child_at(cls.optional) if cls.optional else None
        if child is not None and cls.optional:
            args.append((cls.optional, str(self._call(child, f"{rel}.{cls.optional}", mapping)), True))
        return Call(cls.name, tuple(args))

    # -- scopes ------------------------------------------------------------------------------------
    def _items(self, nodes: list[str], scope: _Block | None, mapping: Mapping[SlotKey, str]) -> list[ScopeItem]:
        """The statements of a scope (the model, or a class body from its representative)."""
        rel = scope.rel if scope is not None else (lambda nid: nid)
        cls = scope.cls if scope is not None else None
        tops = self._top_instances(nodes, scope)
        owner: dict[str, _Block] = {n: t for t in tops for n in t.nodes}
        inside = set(nodes)

        def ref(src: str, port: int) -> tuple[str, int]:
            if src not in inside:
                return (INPUT, 0)
            t = owner.get(src)
            return (rel(t.id), 0) if t is not None else (rel(src), port)

        items: list[ScopeItem] = []
        for nid in nodes:
            node = self.plan.nodes[nid]
            t = owner.get(nid)
            if t is not None:
                if nid != t.output:
                    continue
                r = rel(t.id)
                optional = cls is not None and r == cls.optional
                call = None if optional else self._call(t, r, mapping)
                items.append(ScopeItem(r, "instance", [ref(*t.source)], ctor=r if call is None else str(call),
                                       optional=optional, call=call))
                continue
            kind = ("input" if node.type == "Input" else "output" if node.type == "Output"
                    else "module" if node.spec.is_module else "op")
            items.append(ScopeItem(rel(nid), kind, [ref(s, p) for s, p in node.inputs], node=node,
                               ctor=self._layer_ctor(nid, rel(nid), mapping) if kind == "module" else "",
                               n_outputs=node.spec.outputs(node.params)))
        return items

    def run(self) -> Structured | None:
        blocks = self._blocks()
        self._owner: dict[str, _Block] = {}
        for b in sorted(blocks, key=lambda b: b.id.count(".")):  # deepest block last: it owns its nodes
            for nid in b.nodes:
                self._owner[nid] = b
        self._decide(blocks)
        if not self.classes:
            return None
        self._name_classes()
        for cls in self.classes:  # in height order: a class's parts are known before it
            self._params(cls)
        names = {c.name for c in self.classes} | set(self.layer_classes.sources)
        reserved = frozenset(self.reserved | names)
        sources = []
        for cls in self.classes:
            rep = cls.rep
            owner = next((t for t in self._top_instances([rep.output], rep)), None)
            result = (rep.rel(owner.id) if owner is not None else rep.rel(rep.output), 0)
            writer = ScopeWriter(self._items(rep.nodes, rep, cls.mapping), reserved, top=False)
            sources.append(writer.class_source(cls.name, self._init_params(cls), self._doc(cls), result))
        writer = ScopeWriter(self._items(list(self.plan.nodes), None, {}), reserved, top=True)
        init, forward = writer.model_body(self.plan.outputs)
        frozen = [n.id for n in self.plan.module_nodes if n.frozen]
        if frozen:
            init.append("# Frozen in NetCanvas: no gradient updates.")
            init += [f"{writer.access[nid]}.requires_grad_(False)" if nid in writer.access
                     else f'self.get_submodule("{nid}").requires_grad_(False)' for nid in frozen]
        return Structured(init, forward, sources, frozenset(c.name for c in self.classes))

    def _init_params(self, cls: _Class) -> list[str]:
        """``in_channels: int``, ``stride: int = 1``, ``downsample: nn.Module | None = None``."""
        out = []
        for p in cls.params:
            text = f"{p.name}: {p.annotation}" if p.annotation else p.name
            if p.default is not EMPTY:
                text += f" = {value_source(p.default, p.choices)}"
            out.append(text)
        if cls.optional:
            out.append(f"{safe_name(cls.optional)}: nn.Module | None = None")
        return out

    @staticmethod
    def _doc(cls: _Class) -> str:
        ids = [b.id for b in cls.instances]
        where = ", ".join(ids) if len(ids) <= 2 else f"{ids[0]} … {ids[-1]}"
        return f"Used by {len(ids)} block{'s' if len(ids) != 1 else ''}: {where}."


__all__ = ["Structured", "structured_model"]
