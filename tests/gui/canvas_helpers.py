"""Helpers of the canvas tests (test_canvas.py, test_canvas_big.py): a shown view of a document,
mouse and key events as a user makes them, and the overlap check of cards."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from gui.canvas import CanvasScene, CanvasView
from gui.canvas.items import NodeItem
from gui.canvas.metrics import NODE_H, NODE_W
from gui.document import Document

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo_lenet.json"


def make_view(qtbot, doc: Document) -> CanvasView:
    view = CanvasView(CanvasScene(doc))
    qtbot.addWidget(view)
    view.resize(1200, 1000)
    view.show()
    view.resetTransform()
    return view


# -- event helpers (move events carry the held buttons, like a real drag) ---------------------------

def send_mouse(view: CanvasView, kind: str, scene_pt: QPointF, buttons=Qt.MouseButton.LeftButton,
               button=Qt.MouseButton.LeftButton, mods=Qt.KeyboardModifier.NoModifier) -> None:
    vp = view.viewport()
    local = QPointF(view.mapFromScene(scene_pt))
    glob = QPointF(vp.mapToGlobal(local.toPoint()))
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease, "double": QEvent.Type.MouseButtonDblClick}
    if kind == "move":
        button = Qt.MouseButton.NoButton
    QApplication.sendEvent(vp, QMouseEvent(types[kind], local, glob, button, buttons, mods))


def drag(view: CanvasView, a: QPointF, b: QPointF, mods=Qt.KeyboardModifier.NoModifier, steps: int = 6) -> None:
    view.centerOn((a + b) / 2)
    send_mouse(view, "press", a, mods=mods)
    for i in range(1, steps + 1):
        send_mouse(view, "move", a + (b - a) * (i / steps), mods=mods)
    send_mouse(view, "release", b, buttons=Qt.MouseButton.NoButton, mods=mods)


def key(view: CanvasView, k: Qt.Key, mods=Qt.KeyboardModifier.NoModifier) -> None:
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyPress, k, mods))
    QApplication.sendEvent(view, QKeyEvent(QEvent.Type.KeyRelease, k, mods))


def body(view: CanvasView, node_id: str) -> QPointF:
    return view.canvas.nodes[node_id].mapToScene(QPointF(NODE_W * 0.3, NODE_H * 0.5))


def card_rect(item: NodeItem) -> QRectF:
    return item.mapRectToScene(QRectF(0, 0, NODE_W, NODE_H))


def assert_no_overlaps(sc: CanvasScene) -> None:
    rects = [card_rect(it) for it in sc.nodes.values() if it.isVisible()]
    rects += [c.mapRectToScene(c.shape().boundingRect()) for c in sc.cards.values()]
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)
