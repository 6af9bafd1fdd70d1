"""Fine-tuning edits on a graph: replace the head, freeze, learning-rate multipliers (no torch).

The practitioner's recipe (d2l's hot-dog example): keep the pretrained feature extractor, give
the network a new output layer for my classes, freeze the early stages, and let the new head
learn faster than the rest. Each step here is one plain edit through :class:`core.graph.Graph`'s
methods, so the GUI wraps each in one undo command and the CLI (``main.py train --replace-head
--freeze … --lr-mult …``) applies the same functions.

Ids the user types (``--freeze layer1,layer2``) may name a node or a block (group); a block stands
for every node inside it, nested blocks included. An unknown id raises :class:`UnknownIdError`
(a ``KeyError``) whose message lists the closest ids.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core.graph import Graph, lr_mult_problem
from core.layers.registry import get_spec
from core.layers.spec import FitRole

# The walk back from the Output to the head gives up after this many pass-through layers (a
# Dropout → ReLU → … chain that long is no classifier's).
_MAX_WALK = 64


class UnknownIdError(KeyError):
    """An id that is neither a node nor a block; ``str()`` is the sentence (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0])


class FineTuneError(ValueError):
    """A fine-tuning edit that cannot be made here (no head to replace, a bad multiplier)."""


@dataclass(frozen=True)
class HeadEdit:
    """The head's width change made by :func:`replace_head`: ``param`` of ``node_id`` went from
    ``old_out`` (``None``: it was not set) to ``new_out``."""

    node_id: str
    old_out: int | None
    new_out: int
    param: str = "out_features"

    def apply(self, graph: Graph) -> None:
        graph.set_param(self.node_id, self.param, self.new_out)

    def undo(self, graph: Graph) -> None:
        graph.set_param(self.node_id, self.param, self.old_out)


def main_output(graph: Graph) -> str | None:
    """The main Output: the first in file order (the model returns the outputs in file order, and
    the loss and the metrics read the first)."""
    return next((nid for nid, node in graph.nodes.items() if node.type == "Output"), None)


def head_of(graph: Graph) -> tuple[str, str] | None:
    """``(node id, width parameter)`` of the layer whose width sets the main Output's size.

    Walks back from the main Output through the layers whose declaration says they pass the width
    through (``fit_role``: ReLU, Dropout, Softmax, Flatten …) to one that declares itself a head
    (Linear's ``out_features``, a 1×1 Conv2d's ``out_channels``). ``None`` when the walk meets a
    merge, a fork or any other layer first: no one parameter sets the output size there.
    """
    node = main_output(graph)
    if node is None:
        return None
    for _ in range(_MAX_WALK):
        preds = graph.predecessors(node)
        if len(preds) != 1:
            return None
        node = preds[0]
        spec = get_spec(graph.nodes[node].type)
        role = spec.fit_role if spec is not None else FitRole.OTHER
        if role is FitRole.HEAD and spec is not None and spec.width_param:
            return node, spec.width_param
        if role is not FitRole.PASS_THROUGH:
            return None
    return None


def head_node(graph: Graph) -> str | None:
    """The id of the last Linear (or 1×1 Conv2d) before the main Output (see :func:`head_of`)."""
    found = head_of(graph)
    return found[0] if found is not None else None


def head_width(graph: Graph) -> int | None:
    """The head's current output width as the user set it (``None``: no head, or not set)."""
    found = head_of(graph)
    if found is None:
        return None
    value = graph.nodes[found[0]].params.get(found[1])
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def replace_head(graph: Graph, num_classes: int) -> HeadEdit:
    """Give the head ``num_classes`` outputs, keeping every other layer; returns the edit (for undo).

    The head's weights no longer fit the old ones (their shape changed), so a weights load or a
    carry of trained weights re-initializes exactly that layer. Raises :class:`FineTuneError` when
    the graph has no head to replace or ``num_classes`` is not a positive integer.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise FineTuneError(f"the number of classes must be a positive integer, got {num_classes!r}")
    found = head_of(graph)
    if found is None:
        raise FineTuneError("no head to replace: the main Output is not fed by a Linear or 1×1 Conv2d layer "
                            "(through activations, dropout or flatten only)")
    node_id, param = found
    old = graph.nodes[node_id].params.get(param)
    edit = HeadEdit(node_id, old if isinstance(old, int) and not isinstance(old, bool) else None,
                    num_classes, param)
    edit.apply(graph)
    return edit


def _unknown(graph: Graph, item_id: str, what: str = "node or block") -> UnknownIdError:
    known = [*graph.nodes, *graph.groups]
    close = difflib.get_close_matches(item_id, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownIdError(f"no {what} {item_id!r}{hint}")


def nodes_of(graph: Graph, item_id: str) -> list[str]:
    """A node id → ``[it]``; a block (group) id → every node inside it, nested blocks included, in
    member order. Raises :class:`UnknownIdError` (a ``KeyError``) naming the closest ids."""
    if item_id in graph.nodes:
        return [item_id]
    if item_id in graph.groups:
        return graph.group_nodes(item_id)
    raise _unknown(graph, item_id)


def nodes_up_to(graph: Graph, node_id: str) -> list[str]:
    """"Everything up to here": ``node_id`` and every node it depends on, in topological order
    (file order breaks ties; on a graph with a cycle, the part before it, then the rest)."""
    if node_id not in graph.nodes:
        raise _unknown(graph, node_id, "node")
    upstream = graph.upstream([node_id])
    order, blocked = graph.kahn()
    return [n for n in (*order, *blocked) if n in upstream]


def expand(graph: Graph, item_ids: Iterable[str]) -> list[str]:
    """The nodes of several node/block ids (:func:`nodes_of`), each once, in the order given."""
    out: dict[str, None] = {}
    for item in item_ids:
        out.update(dict.fromkeys(nodes_of(graph, item)))
    return list(out)


def module_nodes(graph: Graph, node_ids: Iterable[str], analysis: Any = None) -> list[str]:
    """The nodes among ``node_ids`` that hold state, each once: the ones freezing means anything for
    (parameters, or BatchNorm's running statistics, which a frozen node keeps in eval mode). An Input,
    an Output, a functional Add, a ReLU or a pool has nothing to freeze. A node whose counts are
    unknown (an error upstream) counts as holding state when it is a module. ``analysis``: the
    graph's, when the caller has it (else it is computed)."""
    ids = list(dict.fromkeys(node_ids))
    if analysis is None:
        from core.analysis import analyze

        analysis = analyze(graph)
    out = []
    for n in ids:
        spec = get_spec(graph.nodes[n].type) if n in graph.nodes else None
        if spec is None or not spec.is_module:
            continue
        r = analysis.nodes.get(n)
        if r is None or r.params is None or (r.params or 0) + (r.buffers or 0) > 0:
            out.append(n)
    return out


def freeze(graph: Graph, item_ids: Iterable[str], frozen: bool = True) -> list[str]:
    """Freeze (or unfreeze) the module nodes of ``item_ids`` (nodes or blocks); returns the node ids
    whose flag changed. Every id is checked before any node changes: an unknown one changes nothing."""
    nodes = module_nodes(graph, expand(graph, item_ids))
    changed = [n for n in nodes if graph.nodes[n].frozen != frozen]
    for n in changed:
        graph.set_frozen(n, frozen)
    return changed


def set_lr_mults(graph: Graph, mults: Mapping[str, float]) -> dict[str, float]:
    """Set the learning-rate multiplier of each node or block in ``mults``; returns ``{node: old}``
    of the nodes that changed (for undo). Everything is checked before anything changes; a later
    entry wins over an earlier one for a node in both (``layer4=2,layer4.1.conv2=5``)."""
    targets: dict[str, float] = {}
    for item, value in mults.items():
        problem = lr_mult_problem(value)
        if problem:
            raise FineTuneError(f"learning-rate multiplier of {item}: {problem}")
        for n in nodes_of(graph, item):
            targets[n] = float(value)
    old = {n: graph.nodes[n].lr_mult for n, v in targets.items() if graph.nodes[n].lr_mult != v}
    for n in old:
        graph.set_lr_mult(n, targets[n])
    return old


def parse_ids(text: str) -> list[str]:
    """``layer1,layer2`` → ``["layer1", "layer2"]`` (spaces around the commas allowed)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_lr_mults(text: str) -> dict[str, float]:
    """``fc=10,layer4=2`` → ``{"fc": 10.0, "layer4": 2.0}``; raises :class:`FineTuneError` naming the
    entry that is not ``ID=NUMBER`` with a positive finite number."""
    out: dict[str, float] = {}
    for part in parse_ids(text):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise FineTuneError(f"{part!r} is not ID=NUMBER (e.g. fc=10)")
        try:
            number = float(value)
        except ValueError:
            raise FineTuneError(f"{part!r}: {value!r} is not a number") from None
        if not math.isfinite(number) or number <= 0:
            raise FineTuneError(f"{part!r}: the multiplier must be a positive finite number")
        out[name] = number
    if not out:
        raise FineTuneError("expected ID=NUMBER pairs separated by commas (e.g. fc=10,layer4=2)")
    return out


__all__ = [
    "FineTuneError", "HeadEdit", "UnknownIdError", "expand", "freeze", "head_node", "head_of", "head_width",
    "main_output", "module_nodes", "nodes_of", "nodes_up_to", "parse_ids", "parse_lr_mults", "replace_head",
    "set_lr_mults",
]
