"""One open project in the editor, and the only bridge from the core model to Qt signals.

:class:`Document` subscribes to the plain :class:`core.events.Event`\\ s of its
:class:`core.graph.Graph` and re-emits them as Qt signals; no other module of ``gui`` subscribes
to core directly (STYLE.md: "one gui bridge"). After every model change it re-runs the
incremental :class:`core.analysis.Analyzer` synchronously and emits ``analysis_updated``.

Undo commands wrap their work in :meth:`Document.batch`: inside a batch, analysis and
``groups_changed`` are deferred to the end, so a paste of 200 nodes analyses once, not 200 times.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.analysis import Analysis, Analyzer
from core.graph import Graph, GraphError, Node
from core.layout import LAYER_GAP, NODE_H, free_spot, lay_out
from core.project import Project, new_project


class Document(QObject):
    """One project being edited: model, analysis, undo stack, selection and file path."""

    node_added = Signal(str)
    node_removed = Signal(str)
    node_changed = Signal(str)
    node_renamed = Signal(str, str)
    node_moved = Signal(str)
    edge_added = Signal(object)
    edge_removed = Signal(object)
    groups_changed = Signal()
    analysis_updated = Signal(object)
    modified_changed = Signal(bool)
    selection_changed = Signal(list)
    path_changed = Signal()
    batch_finished = Signal()  # an edit (one command's redo/undo) is complete: observers may flush
    training_changed = Signal(dict)  # the project's training settings were replaced (a copy of them)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = project
        self.graph: Graph = project.graph
        self.analyzer = Analyzer(self.graph)
        self.analysis: Analysis = self.analyzer.run()
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self.selection: list[str] = []
        self._depth = 0
        self._analysis_dirty = False
        self._groups_dirty = False
        self._subscriptions = [
            (self.graph.node_added, self._on_node_added),
            (self.graph.node_removed, self._on_node_removed),
            (self.graph.node_changed, self.node_changed.emit),
            (self.graph.node_renamed, self._on_node_renamed),
            (self.graph.node_moved, self._on_node_moved),
            (self.graph.edge_added, self.edge_added.emit),
            (self.graph.edge_removed, self.edge_removed.emit),
            (self.graph.groups_changed, self._on_groups_changed),
            (self.graph.changed, self._on_changed),
        ]
        for event, callback in self._subscriptions:
            event.sub(callback)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_project(cls, project: Project, *, collapse_blocks: bool = False,
                     parent: QObject | None = None) -> Document:
        """Open ``project``. Nodes without a position are laid out (before the undo history starts,
        so the document opens unmodified). ``collapse_blocks`` collapses the top-level groups
        first: templates open reading as stem → stages → head.
        """
        g = project.graph
        missing = [n.id for n in g.nodes.values() if n.pos is None]
        if missing and len(missing) == len(g.nodes):
            lay_out(g)
        elif missing:  # a few nodes without a place: put each under its input, where there is room
            try:
                order = g.topo_order()
            except GraphError:
                order = list(g.nodes)
            for nid in (n for n in order if g.nodes[n].pos is None):
                above = next((g.nodes[p].pos for p in g.predecessors(nid) if g.nodes[p].pos is not None), None)
                start = (above[0], above[1] + NODE_H + LAYER_GAP) if above is not None else (0.0, 0.0)
                g.set_position(nid, free_spot(g, start))
        if collapse_blocks:
            nested = {m for grp in g.groups.values() for m in grp.members}
            folded = [gid for gid, grp in g.groups.items() if gid not in nested and not grp.collapsed]
            for gid in folded:
                g.set_group(gid, collapsed=True)
            if folded:
                # one column of cards, centred, each block's inside kept as the template drew it
                lay_out(g, keep_inner=True)
        return cls(project, parent)

    @classmethod
    def new(cls, name: str = "Untitled", parent: QObject | None = None) -> Document:
        """A new project holding an Input (3×32×32 images) connected to an Output."""
        project = new_project(name=name)
        g = project.graph
        g.add_node("Input", "input", {"shape": [3, 32, 32]})
        g.add_node("Output", "output")
        g.add_edge("input", "output")
        return cls.from_project(project, parent=parent)

    def dispose(self) -> None:
        """Stop observing the model (a closed window's document must not keep reacting), and drop the undo
        history now, while every command is alive: left to a later garbage collection of the document's
        cycles, Qt's stack deleted a command PySide had already freed (a crash in ``~QUndoStack``)."""
        for event, callback in self._subscriptions:
            event.unsub(callback)
        self._subscriptions = []
        self.undo_stack.clear()

    # -- file state ---------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.project.path

    @path.setter
    def path(self, value: Path | str | None) -> None:
        self.set_path(value)

    def set_path(self, value: Path | str | None) -> None:
        new = Path(value) if value is not None else None
        if new != self.project.path:
            self.project.path = new
            self.path_changed.emit()

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        self.undo_stack.setClean()

    def _clean_changed(self, clean: bool) -> None:
        self.modified_changed.emit(not clean)

    # -- editing ------------------------------------------------------------------------------
    def push(self, command: QUndoCommand) -> bool:
        """Run ``command`` and put it on the undo stack; commands marked ``noop`` are skipped."""
        if getattr(command, "noop", False):
            return False
        self.undo_stack.push(command)
        return True

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Defer analysis and ``groups_changed`` until the outermost batch ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    @property
    def in_batch(self) -> bool:
        """True inside :meth:`batch`: observers may defer per-item work to ``batch_finished``."""
        return self._depth > 0

    def _flush(self) -> None:
        self.batch_finished.emit()
        if self._groups_dirty:
            self._groups_dirty = False
            self.groups_changed.emit()
        if self._analysis_dirty:
            self._analysis_dirty = False
            self.refresh_analysis()

    def refresh_analysis(self) -> Analysis:
        """Re-run analysis now and tell the observers."""
        self.analysis = self.analyzer.run()
        self.analysis_updated.emit(self.analysis)
        return self.analysis

    def set_training(self, training: dict[str, Any]) -> None:
        """Replace the project's training settings (an undo command's work) and tell the observers."""
        self.project.training = copy.deepcopy(dict(training))
        self.training_changed.emit(copy.deepcopy(dict(training)))

    # -- selection (view state: lives here, never in the model) --------------------------------
    def set_selection(self, ids: Sequence[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i in self.graph.nodes]
        if ids != self.selection:
            self.selection = ids
            self.selection_changed.emit(list(ids))

    # -- helpers for observers ----------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        return self.graph.node(node_id)

    def result(self, node_id: str) -> Any:
        """The latest :class:`core.analysis.NodeResult` of a node, or ``None``."""
        return self.analysis.nodes.get(node_id)

    # -- core events -> Qt signals --------------------------------------------------------------
    def _on_node_added(self, node: Node) -> None:
        self.node_added.emit(node.id)

    def _on_node_removed(self, node: Node) -> None:
        if node.id in self.selection:
            self.selection = [i for i in self.selection if i != node.id]
            self.selection_changed.emit(list(self.selection))
        self.node_removed.emit(node.id)

    def _on_node_renamed(self, old: str, new: str) -> None:
        self.node_renamed.emit(old, new)
        if old in self.selection:
            self.selection = [new if i == old else i for i in self.selection]
            self.selection_changed.emit(list(self.selection))

    def _on_node_moved(self, node_id: str, _pos: Any) -> None:
        self.node_moved.emit(node_id)

    def _on_groups_changed(self) -> None:
        if self._depth:
            self._groups_dirty = True
        else:
            self.groups_changed.emit()

    def _on_changed(self) -> None:
        if self._depth:
            self._analysis_dirty = True
        else:
            self.refresh_analysis()


__all__ = ["Document"]
