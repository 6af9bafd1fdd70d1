"""Writing one scope of the structured Python export: a block class's body, or the model's.

A scope is a list of :class:`ScopeItem` in topological order: layers, stateless ops, block
instances (already written as ``Bottleneck(64, 64, 256)``), and at the model's level its Input
and Output nodes. :class:`ScopeWriter` places the modules at their paths relative to the scope
(``self.conv1``, ``self.layer1``), writes a numbered chain (``0 … n-1`` passing one value on) as
an ``nn.Sequential`` that ``forward`` calls once, and names variables the way torchvision does:
``x`` runs down the trunk, ``out`` through a block's main path, a branch after its first path
segment (``downsample``, ``branch2``).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.compiler import PlannedNode, input_names, var_name
from core.export_code import is_split, op_statements, safe_name

INPUT = ""  # an item input that reads the scope's input value (``x``)


@dataclass(frozen=True)
class Call:
    """A block class's constructor call: the class and its (argument, expression, keyword?) list."""

    cls: str
    args: tuple[tuple[str, str, bool], ...]

    def __str__(self) -> str:
        return f"{self.cls}({', '.join(f'{name}={expr}' if kw else expr for name, expr, kw in self.args)})"


@dataclass
class ScopeItem:
    """One statement's worth of a scope: a layer, a stateless op, a block instance, an Input/Output."""

    rel: str  # the path in the scope (``conv1``, ``downsample``; the node id at the model's level)
    kind: str  # "module" | "instance" | "op" | "input" | "output"
    inputs: list[tuple[str, int]]  # (item rel or INPUT, output index), by input port
    node: PlannedNode | None = None
    ctor: str = ""  # the constructor expression (an optional sub-block: the argument's name)
    optional: bool = False
    n_outputs: int = 1
    call: Call | None = None  # a block instance's constructor call, by argument


@dataclass
class _Tree:
    """A module path prefix within the scope: an item, a plain container, or a chain (Sequential)."""

    item: ScopeItem | None = None
    children: dict[str, _Tree] = field(default_factory=dict)
    seq: bool = False
    first: ScopeItem | None = None
    last: ScopeItem | None = None
    access: str = ""  # the expression that reaches it from ``self``
    path: str = ""  # its path in the scope

    @property
    def is_list(self) -> bool:
        return self.item is None and bool(self.children) and set(self.children) == {
            str(i) for i in range(len(self.children))}


class ScopeWriter:
    """``__init__`` statements and ``forward`` lines of one scope."""

    def __init__(self, items: Sequence[ScopeItem], reserved: frozenset[str], *, top: bool) -> None:
        self.items = list(items)
        self.reserved = reserved
        self.top = top
        self.count: Counter[tuple[str, int]] = Counter(ref for it in self.items for ref in it.inputs)
        self.root = _Tree()
        for it in self.items:
            if it.kind in ("module", "instance"):
                t = self.root
                for seg in it.rel.split("."):
                    t = t.children.setdefault(seg, _Tree())
                t.item = it
        for child in self.root.children.values():
            self._mark_chains(child)
        self.lines: list[str] = []
        self.access: dict[str, str] = {}
        # item rel → (the chain's access, its path in the scope, its first and last item)
        self.chain_of: dict[str, tuple[str, str, ScopeItem, ScopeItem]] = {}
        self.containers = False
        self.named_chains = False

    # -- module tree -------------------------------------------------------------------------------
    def _link(self, t: _Tree) -> tuple[ScopeItem, ScopeItem] | None:
        """(first, last) item when ``t`` can be one link of a chain: one value in, one out."""
        if t.seq:
            assert t.first is not None and t.last is not None
            return t.first, t.last
        it = t.item
        if (it is not None and not t.children and not it.optional and len(it.inputs) == 1 and it.n_outputs == 1):
            return it, it
        return None

    def _mark_chains(self, t: _Tree) -> None:
        """Mark containers whose children, in order, pass one value down a chain (``nn.Sequential``).

        Numbered children (``layer1.0``, ``layer1.1``) go into the ``nn.Sequential(...)`` call;
        named ones (``denselayer1``) are added one by one, in order, like any container's.
        """
        for child in t.children.values():
            self._mark_chains(child)
        if t.item is not None or not t.children:
            return
        keys = [str(i) for i in range(len(t.children))] if t.is_list else list(t.children)
        links = [self._link(t.children[k]) for k in keys]
        if any(link is None for link in links):
            return
        pairs = [link for link in links if link is not None]
        for (_f0, last), (first, _l1) in itertools.pairwise(pairs):
            if first.inputs[0] != (last.rel, 0) or self.count[(last.rel, 0)] != 1:
                return
        t.seq, t.first, t.last = True, pairs[0][0], pairs[-1][1]

    def _literal(self, t: _Tree, indent: int) -> str:
        if t.item is not None:
            return t.item.ctor
        pad = " " * (indent + 4)
        if t.seq and t.is_list:
            items = "".join(f"{pad}{self._literal(t.children[str(i)], indent + 4)},\n" for i in range(len(t.children)))
            return "nn.Sequential(\n" + items + " " * indent + ")"
        if t.seq:
            self.named_chains = True
            return "nn.Sequential()"
        self.containers = True
        if t.is_list:
            items = "".join(f"{pad}{self._literal(t.children[str(i)], indent + 4)},\n" for i in range(len(t.children)))
            return "nn.ModuleList([\n" + items + " " * indent + "])"
        return "nn.Module()"

    def _fill(self, t: _Tree, expr: str, path: str = "") -> None:
        """Statements creating ``t``'s children (those its literal did not create already)."""
        t.access, t.path = expr, path
        if t.item is not None:
            self.access[t.item.rel] = expr
        if t.is_list and t is not self.root:  # the root is ``self``: no literal made its children
            for i in range(len(t.children)):
                self._fill(t.children[str(i)], f"{expr}[{i}]", f"{path}.{i}".lstrip("."))
            return
        if self._loop(t):
            return
        for seg, child in t.children.items():
            if seg.isdigit():
                self.lines.append(f'{expr}.add_module("{int(seg)}", {self._literal(child, 8)})')
                sub = f'{expr}.get_submodule("{int(seg)}")'
            else:
                sub = f"{expr}.{safe_name(seg)}"
                self.lines.append(f"{sub} = {self._literal(child, 8)}")
            self._fill(child, sub, f"{path}.{seg}".lstrip("."))

    def _loop(self, t: _Tree) -> bool:
        """Write ``denselayer1 … denselayerN`` of one class, differing in one argument, as a loop.

        As torchvision's ``_DenseBlock`` does: ``for i, in_channels in enumerate((64, 96, …), start=1):``.
        """
        kids = list(t.children.items())
        items = [c.item for _seg, c in kids]
        if t is self.root or len(kids) < 3 or any(c.children for _seg, c in kids):
            return False
        calls = [it.call if it is not None and not it.optional else None for it in items]
        names = [re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*?)([1-9][0-9]*|0)", seg, re.ASCII) for seg, _c in kids]
        if any(c is None for c in calls) or any(m is None for m in names):
            return False
        stems = {m.group(1) for m in names if m is not None}
        numbers = [int(m.group(2)) for m in names if m is not None]
        shapes = {(c.cls, tuple((a, kw) for a, _e, kw in c.args)) for c in calls if c is not None}
        if len(stems) != 1 or numbers != list(range(numbers[0], numbers[0] + len(numbers))) or len(shapes) != 1:
            return False
        first = calls[0]
        assert first is not None
        columns = list(zip(*[[e for _a, e, _kw in c.args] for c in calls if c is not None], strict=True))
        varying = [i for i, col in enumerate(columns) if len(set(col)) > 1]
        if len(varying) != 1:
            return False
        (at,) = varying
        name = first.args[at][0]
        var = name if name not in ("i", "self") else "value"
        args = [(var if j == at else e) if not kw else f"{a}={var if j == at else e}"
                for j, (a, e, kw) in enumerate(first.args)]
        stem = safe_name(stems.pop())
        head = f"for i, {safe_name(var)} in enumerate(("
        values = [f"{v}," for v in columns[at]]
        rows, row = [], ""
        for v in values:
            if row and len(head) + len(row) + len(v) > 100:
                rows.append(row.rstrip())
                row = ""
            row += v + " "
        rows.append(row.rstrip().rstrip(",") if len(values) > 1 else row.rstrip())
        pad = " " * len(head)
        self.lines.append(head + ("\n" + " " * 8 + pad).join(rows) + f"), start={numbers[0]}):")
        self.lines.append(f'    {t.access}.add_module(f"{stem}{{i}}", {first.cls}({", ".join(args)}))')
        for seg, child in kids:
            child.access, child.path = f"{t.access}.{safe_name(seg)}", f"{t.path}.{seg}".lstrip(".")
            assert child.item is not None
            self.access[child.item.rel] = child.access
        return True

    def _register_chains(self, t: _Tree, outer: _Tree | None = None) -> None:
        """Map every item of an outermost chain to it: ``forward`` calls the chain once."""
        if t.seq and outer is None and t is not self.root:
            outer = t
        if t.item is not None and outer is not None:
            assert outer.first is not None and outer.last is not None
            self.chain_of[t.item.rel] = (outer.access, outer.path, outer.first, outer.last)
        for child in t.children.values():
            self._register_chains(child, outer)

    # -- forward -----------------------------------------------------------------------------------
    def _forward(self) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """Forward statements, the variable of every item, and each Output item's value."""
        names: dict[str, str] = {}
        used = set(self.reserved) | {"x"}
        produces: dict[str, ScopeItem] = {it.rel: it for it in self.items}
        if self.top:  # the model's Inputs are its forward's arguments, named as the compiler names them
            names = input_names([it.rel for it in self.items if it.kind == "input"])
            used |= set(names.values())

        def base(rel: str) -> str:
            if self.top:
                segments = rel.split(".")[:-1] or [rel]
                while len(segments) > 2 and segments[-1].isdigit():
                    segments.pop()
                return safe_name(var_name(".".join(segments)))
            head = rel.split(".")[0]
            return safe_name(head) if not head.isdigit() else "y"

        def fresh(stem: str) -> str:
            cand, i = stem, 2
            while cand in used:
                cand = f"{stem}_{i}"
                i += 1
            used.add(cand)
            return cand

        def value(ref: tuple[str, int]) -> str:
            rel, port = ref
            if rel == INPUT:
                return "x"
            if produces[rel].n_outputs > 1:
                return f"{names[rel]}[{int(port)}]"
            return names[rel]

        lines: list[str] = []
        results: dict[str, str] = {}
        for it in self.items:
            if it.kind == "input":
                if it.rel not in names:  # a block's input (only the top scope has Input nodes)
                    names[it.rel] = "x" if "x" not in names.values() else fresh(base(it.rel))
                continue
            if it.kind == "output":
                results[it.rel] = value(it.inputs[0])
                continue
            reads = it.inputs
            out = it
            op_node: PlannedNode | None = None
            ins: list[str] = []
            if it.rel in self.chain_of:
                expr_access, path, first, last = self.chain_of[it.rel]
                if it is not last:
                    continue
                reads, out = first.inputs, last
                expr = f"{expr_access}({value(reads[0])})"
                stem = base(first.rel) if self.top else base(path)
            elif it.optional:
                src = value(it.inputs[0])
                expr = f"{src} if {self.access[it.rel]} is None else {self.access[it.rel]}({src})"
                stem = base(it.rel)
            elif it.kind in ("module", "instance"):
                expr = f"{self.access[it.rel]}({', '.join(value(r) for r in it.inputs)})"
                stem = base(it.rel) if self.top or it.kind == "instance" else "out"
            else:
                assert it.node is not None
                op_node, ins = it.node, [value(r) for r in it.inputs]
                expr = ""
                stem = base(it.rel) if self.top else "out"
            allowed = ("x", stem) if self.top else ("x", "out")
            reusable = [names[r[0]] for r in reads if r[0] != INPUT and self.count[r] == 1
                        and produces[r[0]].n_outputs == 1 and names[r[0]] in allowed]
            if not reusable and not self.top and any(r[0] == INPUT for r in reads) and self.count[(INPUT, 0)] == 1:
                reusable = ["x"]
            split = op_node is not None and is_split(op_node, ins)  # reads its inputs over several lines
            if reusable and out.n_outputs == 1 and not split:
                name = reusable[0]
            elif not self.top and stem == "out" and "out" not in used:
                name = fresh("out")
            else:
                name = fresh(stem)
            names[out.rel] = name
            lines += op_statements(op_node, ins, name) if op_node is not None else [f"{name} = {expr}"]
        return lines, names, results

    # -- results -----------------------------------------------------------------------------------
    def model_body(self, outputs: Sequence[str]) -> tuple[list[str], list[str]]:
        """The model class's ``__init__`` statements and ``forward`` body (with its return)."""
        self._fill(self.root, "self")
        self._register_chains(self.root)
        init = list(self.lines)
        if self.named_chains:
            init[:0] = ["# An nn.Sequential runs its layers in the order they are added."]
        if self.containers:
            init[:0] = ["# Containers (nn.ModuleList, nn.Module) only give the layers their module paths,",
                        "# so the state_dict keys match NetCanvas's; forward calls the layers themselves."]
        lines, _names, results = self._forward()
        lines.append("return " + ", ".join(results[o] for o in outputs))
        return init, lines

    def class_source(self, name: str, params: Sequence[str], doc: str, result: tuple[str, int]) -> str:
        """A block class: an ``nn.Sequential`` subclass when its body is one chain, else a module."""
        head = ", ".join(["self", *params])
        signature = f"    def __init__({head}) -> None:"
        if len(signature) > 110:
            signature = "    def __init__(\n" + "".join(f"        {p},\n" for p in ["self", *params]) + "    ) -> None:"
        root = self.root
        self._mark_chains(root)
        whole = (root.seq and root.first is not None and root.last is not None
                 and root.first.inputs == [(INPUT, 0)] and root.last.rel == result[0]
                 and all(it.kind in ("module", "instance") for it in self.items))
        if whole and root.is_list:
            items = "".join(f"            {self._literal(root.children[str(i)], 12)},\n"
                            for i in range(len(root.children)))
            return "\n".join([f"class {name}(nn.Sequential):", f'    """{doc}"""', "", signature,
                              "        super().__init__(\n" + items + "        )"]) + "\n"
        if whole:  # a named chain: nn.Sequential runs the layers in the order they are added
            self._fill(root, "self")
            return "\n".join([f"class {name}(nn.Sequential):", f'    """{doc} Runs its layers in order."""', "",
                              signature, "        super().__init__()",
                              *(f"        {line}" for line in self.lines)]) + "\n"
        root.seq = False  # the class's own body is not one chain: its statements are written out
        self._fill(root, "self")
        self._register_chains(root)
        lines, names, _results = self._forward()
        ret = "x" if result[0] == INPUT else names[result[0]]
        body = [f"class {name}(nn.Module):", f'    """{doc}"""', "", signature, "        super().__init__()",
                *(f"        {line}" for line in self.lines), "",
                "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
                *(f"        {line}" for line in lines), f"        return {ret}"]
        return "\n".join(body) + "\n"


__all__ = ["INPUT", "Call", "ScopeItem", "ScopeWriter"]
