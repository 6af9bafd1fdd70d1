"""Fine-tuning edits as undo commands: freeze a set of layers, set learning-rate multipliers,
replace the head for N classes (issue 13 §2; the edits themselves are :mod:`core.finetune`'s).

Like :mod:`gui.commands`, each command checks its edit in the constructor and raises a
``ValueError`` / ``KeyError`` with a readable message before anything changes
(:func:`gui.commands.try_push` turns it into the status-bar text), and ``redo``/``undo`` run inside
one :meth:`gui.document.Document.batch`. An edit that replaces weights loaded into the document
(the head, when it was pretrained) names that in its undo text, before it happens:
"Replace head for 4 classes (drops pretrained fc weights)".
"""

from __future__ import annotations

from collections.abc import Iterable

from core.graph import GraphError
from gui.canvas.weight_map import drops_text, weight_map
from gui.commands import _Command
from gui.document import Document


def trainable_nodes(doc: Document, node_ids: Iterable[str]) -> list[str]:
    """The nodes among ``node_ids`` that hold state (:func:`core.finetune.module_nodes`, as
    ``main.py train --freeze`` freezes them)."""
    from core.finetune import module_nodes

    return module_nodes(doc.graph, node_ids, doc.analysis)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class FreezeNodesCommand(_Command):
    """Freeze (no gradient) or unfreeze several layers at once; ``what`` names them in the undo text
    (``layer1``, ``everything up to layer2``)."""

    def __init__(self, doc: Document, node_ids: Iterable[str], frozen: bool, what: str) -> None:
        nodes = trainable_nodes(doc, node_ids)
        if not nodes:
            raise GraphError(f"{what} has no layers to {'freeze' if frozen else 'unfreeze'}")
        g = doc.graph
        self.frozen = bool(frozen)
        self.old = {n: g.nodes[n].frozen for n in nodes}
        changed = [n for n, was in self.old.items() if was != self.frozen]
        verb = "Freeze" if frozen else "Unfreeze"
        text = f"{verb} {what}"
        if (len(nodes) > 1 or what != nodes[0]) and not what.endswith("selected layers"):
            text += f" ({_plural(len(nodes), 'layer')})"
        super().__init__(doc, text)
        self.nodes = nodes
        self.noop = not changed

    def _redo(self) -> None:
        for n in self.nodes:
            self.graph.set_frozen(n, self.frozen)

    def _undo(self) -> None:
        for n, was in self.old.items():
            self.graph.set_frozen(n, was)


class SetLrMultCommand(_Command):
    """Set the learning-rate multiplier of several layers (1 = the run's learning rate)."""

    def __init__(self, doc: Document, node_ids: Iterable[str], value: float, what: str) -> None:
        from core.graph import lr_mult_problem

        problem = lr_mult_problem(value)
        if problem:
            raise GraphError(f"learning-rate multiplier of {what}: {problem}")
        nodes = trainable_nodes(doc, node_ids)
        if not nodes:
            raise GraphError(f"{what} has no layers to train")
        g = doc.graph
        self.value = float(value)
        self.old = {n: g.nodes[n].lr_mult for n in nodes}
        text = f"Set learning rate ×{self.value:g} on {what}"
        if (len(nodes) > 1 or what != nodes[0]) and not what.endswith("selected layers"):
            text += f" ({_plural(len(nodes), 'layer')})"
        super().__init__(doc, text)
        self.noop = all(v == self.value for v in self.old.values())

    def _redo(self) -> None:
        for n in self.old:
            self.graph.set_lr_mult(n, self.value)

    def _undo(self) -> None:
        for n, was in self.old.items():
            self.graph.set_lr_mult(n, was)


class ReplaceHeadCommand(_Command):
    """Give the network's head (the last Linear or 1×1 Conv2d before the Output) ``num_classes``
    outputs; everything else keeps its weights."""

    def __init__(self, doc: Document, num_classes: int) -> None:
        from core.finetune import head_of, replace_head

        found = head_of(doc.graph)
        trial = doc.graph.copy()
        edit = replace_head(trial, num_classes)  # refuses a bad count or a graph with no head, changing nothing
        self.edit = edit
        node = doc.graph.nodes[edit.node_id]
        text = f"Replace head for {num_classes} classes"
        wmap = weight_map(doc)
        self.drops = wmap.would_drop([edit.node_id]) if wmap is not None else []
        if self.drops and edit.old_out != edit.new_out:
            text += f" ({drops_text(self.drops)})"
        super().__init__(doc, text)
        self.noop = found is None or node.params.get(edit.param) == num_classes

    def _redo(self) -> None:
        self.edit.apply(self.graph)

    def _undo(self) -> None:
        self.edit.undo(self.graph)


__all__ = ["FreezeNodesCommand", "ReplaceHeadCommand", "SetLrMultCommand", "trainable_nodes"]
