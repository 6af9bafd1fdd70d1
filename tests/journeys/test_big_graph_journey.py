"""Journey e (part): a 500+ node graph zoomed out, and Arrange on a big graph.

ResNet-152 with every block expanded is one column of 517 layers, about 68,000 units tall. Fit
used to zoom out to 0.04 and leave a 1-px stripe; Arrange on a big graph froze the window with
no word of progress. Here the user opens it at 1600×1000, presses Ctrl+0, reads the top of the
graph as blocks of colour with a minimap in the corner, clicks the minimap to jump down the
graph, and presses Ctrl+L: the window keeps handling events while the layout computes, the
status bar says what is going on, and the result is one undoable step. Opening a big project
file counts the nodes drawn in the status bar while the previous project stays on screen, then
shows every card.
"""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog

import templates
from gui.canvas import arrange_job
from gui.canvas.view import ZOOM_FLOOR
from gui.document import Document
from tests.journeys.conftest import SIZES, open_window, settle, trigger


def _expanded_resnet152() -> Document:
    doc = Document.from_project(templates.build_template("resnet152"))
    assert len(doc.graph.nodes) > 500 and not any(g.collapsed for g in doc.graph.groups.values())
    return doc


def _cards_on_screen(window) -> list[str]:  # type: ignore[no-untyped-def]
    view = window.view
    shown = view.viewport().rect()
    return [nid for nid, item in view.canvas.nodes.items()
            if item.isVisible() and shown.contains(view.mapFromScene(item.sceneBoundingRect().center()))]


def test_fit_on_a_500_node_graph_keeps_cards_readable_and_the_minimap_navigates(qtbot, isolated):
    window = open_window(qtbot, SIZES[0], _expanded_resnet152())
    view = window.view
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # Fit
    settle(200)

    # not a 1-px stripe: the floor zoom, the graph's top on screen, dozens of cards as colour blocks
    assert view.zoom() >= ZOOM_FLOOR - 1e-9
    content = view.canvas.content_rect()
    seen = view.mapToScene(view.viewport().rect()).boundingRect()
    assert seen.top() <= content.top() and seen.left() <= content.left() and content.right() <= seen.right()
    on_screen = _cards_on_screen(window)
    assert "input" in on_screen and len(on_screen) > 40
    card = view.canvas.nodes[on_screen[len(on_screen) // 2]]
    assert card.sceneBoundingRect().width() * view.zoom() >= 19  # a block of colour, not a dot

    # the minimap: in the canvas's corner, the view's rectangle inside it
    mm = view.minimap
    assert mm.isVisible()
    vp = view.viewport()
    corner = QRect(mm.mapTo(window, QPoint(0, 0)), mm.size())
    canvas = QRect(vp.mapTo(window, QPoint(0, 0)), vp.size())
    assert canvas.contains(corner) and corner.right() > canvas.center().x() and corner.bottom() > canvas.center().y()
    rect = mm.viewport_rect()
    assert not rect.isEmpty() and QRectF(mm.rect()).contains(rect)
    assert rect.height() < mm.height() / 4  # the view shows the top part of a long graph

    # a click near the bottom of the map moves the view there
    before = view.mapToScene(vp.rect().center())
    target = QPoint(mm.width() // 2, mm.height() - 15)
    QTest.mouseClick(mm, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target)
    settle()
    after = view.mapToScene(vp.rect().center())
    wanted = mm.scene_at(QPointF(target))
    assert after.y() > before.y() + 20000
    assert abs(after.y() - wanted.y()) < 20  # the clicked place is the view's centre
    seen = view.mapToScene(vp.rect()).boundingRect()  # (across, the whole narrow graph stays in view)
    assert seen.left() <= content.left() and content.right() <= seen.right()
    assert "fc" in _cards_on_screen(window) or "output" in _cards_on_screen(window)  # the head of the graph
    assert mm.viewport_rect().center().y() == pytest.approx(target.y(), abs=3)

    # View › Minimap hides it, and brings it back
    trigger(window, "View", "Minimap")
    assert not mm.isVisible() and not window.act_minimap.isChecked()
    trigger(window, "View", "Minimap")
    assert mm.isVisible()


def test_arrange_on_a_big_graph_keeps_the_window_responsive_and_is_one_undo_step(qtbot, isolated, monkeypatch):
    window = open_window(qtbot, SIZES[0], _expanded_resnet152())
    view, doc = window.view, window.doc
    before = {n: doc.graph.nodes[n].pos for n in doc.graph.nodes}
    steps = doc.undo_stack.count()

    # A layout that takes as long as the test wants: it waits for the GUI thread's timer to open
    # the gate, which only happens if the window returned to its event loop while it computes.
    gate = threading.Event()
    real = arrange_job.arrange

    def slow_arrange(graph, **kwargs):  # type: ignore[no-untyped-def]
        gate.wait(5)
        return real(graph, **kwargs)

    monkeypatch.setattr(arrange_job, "arrange", slow_arrange)
    seen_while_computing: list[tuple[bool, str]] = []

    def tick() -> None:
        seen_while_computing.append((view.arranger.running(), window.statusBar().currentMessage()))
        gate.set()

    shown: list[str] = []  # every status-bar message (a 6 s message may be gone by the time a loaded machine looks)
    window.statusBar().messageChanged.connect(shown.append)
    QTimer.singleShot(50, tick)
    trigger(window, "View", "Auto-arrange")  # Ctrl+L
    qtbot.waitUntil(lambda: bool(seen_while_computing), timeout=3000)
    running, status = seen_while_computing[0]
    assert running, "the timer only fired after the layout was done: the window was frozen"
    assert status.startswith(f"Arranging {len(doc.graph.nodes)} nodes")
    assert doc.undo_stack.count() == steps  # nothing changed yet

    qtbot.waitUntil(lambda: not view.arranger.running(), timeout=10000)
    settle()
    assert doc.undo_stack.count() == steps + 1 and doc.undo_stack.undoText() == "Auto-arrange"
    assert f"Arranged {len(doc.graph.nodes)} nodes (Ctrl+Z undoes it)" in shown
    assert {n: doc.graph.nodes[n].pos for n in doc.graph.nodes} != before
    assert view.zoom() >= ZOOM_FLOOR - 1e-9 and "input" in _cards_on_screen(window)  # fitted, top shown
    trigger(window, "Edit", "Undo Auto-arrange")
    assert {n: doc.graph.nodes[n].pos for n in doc.graph.nodes} == before


def test_opening_a_big_project_counts_what_is_drawn_then_shows_every_card(qtbot, isolated, monkeypatch):
    import gui.files
    from core.project import save_project
    from gui.canvas import build_job
    from tests.gui.test_canvas_build import residual_project

    # the file counts as big, and its canvas is drawn one item per event-loop turn, as a
    # 100,000-node file is drawn over thousands of turns
    monkeypatch.setattr(gui.files, "BIG_PROJECT_BYTES", 100)
    monkeypatch.setattr(build_job, "SLICE_S", 0.0)
    path = isolated / "big.json"
    save_project(residual_project(60, name="Big"), path)
    window = open_window(qtbot, SIZES[0])
    before = window.doc.project.name
    shown: list[str] = []
    window.statusBar().messageChanged.connect(shown.append)
    seen_meanwhile: list[str] = []  # what the window showed while the canvas was drawn
    timer = QTimer(interval=0)
    timer.timeout.connect(lambda: seen_meanwhile.append(window.doc.project.name)
                          if window.files.building is not None else None)
    timer.start()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    trigger(window, "File", "Open")
    qtbot.waitUntil(lambda: window.files.opening is None, timeout=30000)
    timer.stop()
    settle(100)

    counts = [m for m in shown if m.startswith("Opening big.json: ") and m.endswith(" of 242 nodes drawn…")]
    assert counts, shown
    assert seen_meanwhile and set(seen_meanwhile) == {before}  # the previous project stayed on screen, answering
    assert window.statusBar().currentMessage() == "Opened big.json"
    assert window.totals_label.text().endswith("242 nodes")
    assert window.doc.project.name == "Big" and not window.isWindowModified()
    canvas = window.view.canvas
    assert len(canvas.nodes) == 242 and len(canvas.edges) == 301 and len(canvas.cards) == 20
    on_screen = _cards_on_screen(window)
    assert "input" in on_screen and len(on_screen) > 3
