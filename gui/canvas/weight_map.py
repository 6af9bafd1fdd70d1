"""The weight map: which cards hold pretrained weights, new ones, or weights kept from a run.

After "Load Pretrained Weights…" (:mod:`gui.dialogs.weights`) every card that owns tensors
carries a small pill on its top edge: **pretrained** (all its tensors came from the file),
**partly loaded**, **from run** (a run folder's checkpoint was the source), or **new** (fresh
initialisation: the head after "Replace head", a layer added or reshaped since). Frozen cards
wear a **frozen** pill and an icy tint; a learning-rate multiplier other than 1 shows as
**lr ×10**. Painting these is :func:`paint_badges`, called by :class:`gui.canvas.items.NodeItem`.

:class:`WeightMap` keeps, per document, the statuses the weights report gave at load time and
the node signatures of the graph then (:func:`core.compiler.signatures`: type, parameters, the
inputs' ranks and channels — exactly what :func:`core.compiler.carry_weights` compares when training starts). After
every edit a node keeps its loaded status only while its signature is unchanged; otherwise it
is **new**. When an edit turns pretrained cards new, the map says so in the status bar and
appends "(drops pretrained … weights)" to that edit's undo text, so the Edit menu and the undo
history name what was lost; Ctrl+Z brings the weights back (the module still holds them).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen

from core.layers.registry import get_spec
from gui.canvas.metrics import NODE_H, NODE_W

if TYPE_CHECKING:
    from core.graph import Graph
    from gui.canvas.items import NodeItem
    from gui.canvas.scene import CanvasScene
    from gui.canvas.style import CanvasStyle
    from gui.document import Document

# What a status reads on the card (the weights report's node_status values, plus "run").
STATUS_TEXT = {"pretrained": "pretrained", "partial": "partly loaded", "new": "new", "run": "from run"}
FROZEN_TEXT = "frozen"
_PILL_H = 15.0
_PILL_PAD = 6.0
_ICE = "#7fb8e6"  # the frozen tint: the same in both themes, drawn translucent over the card


def lr_text(lr_mult: float) -> str:
    """``10`` → ``lr ×10``, ``0.5`` → ``lr ×0.5`` (what the card's pill reads)."""
    return f"lr ×{lr_mult:g}"


def _status_colour(style: CanvasStyle, status: str) -> QColor:
    t = style.theme
    return QColor({"pretrained": t.ok, "run": t.info, "partial": t.warning}.get(status, t.warning))


def _pill(painter: QPainter, style: CanvasStyle, x: float, text: str, colour: QColor, *, right: bool) -> float:
    """A rounded pill straddling the card's top edge; ``right``: ``x`` is its right end. Returns
    the x of its other end."""
    w = style.advance(style.m_badge, text) + 2 * _PILL_PAD
    left = x - w if right else x
    rect = QRectF(left, -_PILL_H / 2, w, _PILL_H)
    fill = QColor(style.node_fill.color())
    painter.setPen(QPen(colour, 1.2))
    painter.setBrush(fill)
    painter.drawRoundedRect(rect, _PILL_H / 2, _PILL_H / 2)
    painter.setFont(style.f_badge)
    painter.setPen(colour.darker(125) if not style.theme.dark else colour.lighter(115))
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    return left if right else left + w


def badge_texts(item: NodeItem) -> list[str]:
    """The pills a card shows, left to right (what a user reads; tests assert on it)."""
    out: list[str] = []
    if item.frozen:
        out.append(FROZEN_TEXT)
    elif abs(item.lr_mult - 1.0) > 1e-12:
        out.append(lr_text(item.lr_mult))  # a frozen layer is not trained: its multiplier does not apply
    if item.weight_status is not None:
        out.append(STATUS_TEXT.get(item.weight_status, item.weight_status))
    return out


def paint_frozen_tint(painter: QPainter, style: CanvasStyle) -> None:
    """An icy wash and a dashed icy border over a frozen card (drawn after the card's fill)."""
    ice = QColor(_ICE)
    ice.setAlpha(70 if style.theme.dark else 55)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(ice)
    painter.drawRoundedRect(QRectF(0, 0, NODE_W, NODE_H), 7.0, 7.0)
    pen = QPen(QColor(_ICE), 1.4, Qt.PenStyle.DashLine)
    painter.setPen(pen)
    painter.setBrush(style.no_brush)
    painter.drawRoundedRect(QRectF(1.5, 1.5, NODE_W - 3, NODE_H - 3), 6.0, 6.0)


def paint_badges(painter: QPainter, style: CanvasStyle, item: NodeItem) -> None:
    """The frozen / lr pill at the top-left, the weight status pill at the top-right (left of the
    severity badge's corner)."""
    x = 14.0
    if item.frozen:
        ice = QColor(_ICE) if style.theme.dark else QColor(_ICE).darker(135)  # readable on either fill
        x = _pill(painter, style, x, FROZEN_TEXT, ice, right=False) + 4
    elif abs(item.lr_mult - 1.0) > 1e-12:
        x = _pill(painter, style, x, lr_text(item.lr_mult), QColor(style.theme.accent), right=False) + 4
    if item.weight_status is not None:
        text = STATUS_TEXT.get(item.weight_status, item.weight_status)
        _pill(painter, style, NODE_W - 16, text, _status_colour(style, item.weight_status), right=True)


def pill_rects(item: NodeItem) -> list[QRectF]:
    """Where the pills of ``item`` are, in its coordinates (for tests checking they do not overlap)."""
    st = item.style
    rects: list[QRectF] = []
    texts = badge_texts(item)
    x = 14.0
    for text in texts[:-1] if item.weight_status is not None else texts:
        w = st.advance(st.m_badge, text) + 2 * _PILL_PAD
        rects.append(QRectF(x, -_PILL_H / 2, w, _PILL_H))
        x += w + 4
    if item.weight_status is not None:
        w = st.advance(st.m_badge, texts[-1]) + 2 * _PILL_PAD
        rects.append(QRectF(NODE_W - 16 - w, -_PILL_H / 2, w, _PILL_H))
    return rects


class WeightMap(QObject):
    """The weight statuses of one document's nodes, kept current across edits (see the module doc).

    ``message`` carries the status-bar text when an edit drops pretrained weights.
    """

    message = Signal(str)

    def __init__(self, doc: Document, statuses: Mapping[str, str], graph: Graph, source: str) -> None:
        super().__init__(doc)  # goes with its document
        self.doc = doc
        self.source = source
        self.base_status = dict(statuses)
        self.base_sigs = _signatures(graph, None)
        self.status: dict[str, str] = {}
        self._scene: Any = _dead
        self._lost: list[str] = []
        stack = doc.undo_stack
        self._seen = {id(stack.command(i)) for i in range(stack.count())}  # an edit redone is not new
        self.refresh(announce=False)
        doc.analysis_updated.connect(self._analysis_updated)
        stack.indexChanged.connect(self._index_changed)

    # -- state ------------------------------------------------------------------------------------
    def refresh(self, announce: bool = True) -> list[str]:
        """Recompute the statuses from the current graph; return the nodes that just lost loaded
        weights (and, with ``announce``, say so)."""
        g = self.doc.graph
        new_status: dict[str, str] = {}
        for nid, sig in _signatures(g, self.doc.analysis).items():
            r = self.doc.analysis.nodes.get(nid)
            if nid not in self.base_status and not (r is not None and r.params):
                continue  # holds no weights
            if sig is None:  # its shapes are unknown (an error): it keeps the status it had
                if nid in self.status:
                    new_status[nid] = self.status[nid]
                continue
            same = nid in self.base_status and self.base_sigs.get(nid) == sig
            new_status[nid] = self.base_status[nid] if same else "new"
        lost = [n for n, s in self.status.items() if s in ("pretrained", "partial", "run")
                and new_status.get(n, "new") == "new"]
        self.status = new_status
        self._paint()
        if announce and lost:
            self._announce(lost)
        return lost

    def loaded(self, node_id: str) -> bool:
        """Whether ``node_id`` holds loaded (pretrained or run) weights now."""
        return self.status.get(node_id) in ("pretrained", "partial", "run")

    def would_drop(self, node_ids: list[str]) -> list[str]:
        """Which of ``node_ids`` hold loaded weights (that an edit reshaping or deleting them drops)."""
        return [n for n in node_ids if self.loaded(n)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.status.values():
            out[s] = out.get(s, 0) + 1
        return out

    # -- canvas -----------------------------------------------------------------------------------
    def attach(self, scene: CanvasScene | None) -> None:
        """Show the map on ``scene`` (the document's canvas; a new one after the window switches)."""
        self._scene = weakref.ref(scene) if scene is not None else _dead
        self._paint()

    def detach(self) -> None:
        """Remove the map (another source replaces it, or the user cleared it)."""
        self.doc.analysis_updated.disconnect(self._analysis_updated)
        self.doc.undo_stack.indexChanged.disconnect(self._index_changed)
        self.status = {}
        self._paint()
        self._scene = _dead

    def _paint(self) -> None:
        scene = self._scene()
        if scene is None or not shiboken6.isValid(scene):
            return
        for nid, item in scene.nodes.items():
            item.set_weight_status(self.status.get(nid))

    # -- edits that drop weights -----------------------------------------------------------------
    def _analysis_updated(self, _analysis: object) -> None:
        lost = self.refresh(announce=False)
        if lost:
            self._announce(lost)
            self._lost = lost  # the undo stack's index moves after the edit's redo: name it there

    def _index_changed(self, index: int) -> None:
        lost, self._lost = self._lost, []
        stack = self.doc.undo_stack
        if not shiboken6.isValid(stack) or not shiboken6.isValid(self):
            return  # the document is going away
        cmd = stack.command(index - 1) if index > 0 else None
        if not lost or cmd is None or id(cmd) in self._seen or "drops pretrained" in cmd.text():
            self._seen.update(id(stack.command(i)) for i in range(stack.count()))
            return
        cmd.setText(f"{cmd.text()} ({drops_text(lost)})")
        self._seen.update(id(stack.command(i)) for i in range(stack.count()))

    def _announce(self, lost: list[str]) -> None:
        gone = [n for n in lost if n not in self.doc.graph.nodes]
        kept = [n for n in lost if n in self.doc.graph.nodes]
        parts = []
        if kept:  # a node id is never capitalised: the sentence starts with words of ours
            one = len(kept) == 1
            parts.append(f"{_names(kept)} no longer {'fits' if one else 'fit'} them and "
                         f"{'starts' if one else 'start'} fresh")
        if gone:
            parts.append(f"{_names(gone)} {'is' if len(gone) == 1 else 'are'} deleted")
        self.message.emit(f"Loaded weights dropped: {'; '.join(parts)} (Ctrl+Z brings them back)")


def drops_text(node_ids: list[str]) -> str:
    """``drops pretrained fc weights`` — what an undo text adds for the nodes an edit reshapes."""
    return f"drops pretrained {_names(node_ids)} weights"


def _names(ids: list[str], most: int = 3) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _signatures(graph: Graph, analysis: Any) -> dict[str, str | None]:
    """Per module node its carry signature (:attr:`core.compiler.PlannedNode.carry_signature`, what
    :func:`core.compiler.carry_weights` compares), ``None`` where its shapes are unknown (an error
    here or upstream: its status stays as it was). torch is loaded already: weights were."""
    from core.analysis import analyze
    from core.compiler import PlannedNode
    from core.layers.spec import ParamError

    a = analysis if analysis is not None else analyze(graph)
    out: dict[str, str | None] = {}
    for nid, node in graph.nodes.items():
        spec = get_spec(node.type)
        if spec is None or not spec.is_module:
            continue
        r = a.nodes.get(nid)
        ins = [a.nodes.get(e.src) for e in graph.in_edges(nid)]
        if r is None or r.out_shapes is None or any(s is None or s.out_shapes is None for s in ins):
            out[nid] = None
            continue
        in_shapes = tuple(tuple(s.out_shapes[e.from_port]) for s, e in zip(ins, graph.in_edges(nid), strict=True)
                          if s is not None and s.out_shapes is not None)
        try:
            params = spec.resolve(node.params)
        except ParamError:
            out[nid] = None
            continue
        out[nid] = PlannedNode(nid, spec, params, dict(r.args), in_shapes, tuple(tuple(s) for s in r.out_shapes),
                               ()).carry_signature
    return out


_maps: weakref.WeakKeyDictionary[Document, WeightMap] = weakref.WeakKeyDictionary()


def weight_map(doc: Document) -> WeightMap | None:
    """The document's weight map, if weights were loaded into it."""
    m = _maps.get(doc)
    return m if m is not None and shiboken6.isValid(m) else None


def set_weight_map(doc: Document, statuses: Mapping[str, str], graph: Graph, source: str,
                   scene: CanvasScene | None) -> WeightMap:
    """Start (or replace) the document's weight map from a weights report's node statuses."""
    old = weight_map(doc)
    if old is not None:
        old.detach()
        old.deleteLater()
    m = WeightMap(doc, statuses, graph, source)
    _maps[doc] = m
    m.attach(scene)
    return m


def _dead() -> None:
    return None


__all__ = ["FROZEN_TEXT", "STATUS_TEXT", "WeightMap", "badge_texts", "drops_text", "lr_text", "paint_badges",
           "paint_frozen_tint", "pill_rects", "set_weight_map", "weight_map"]
