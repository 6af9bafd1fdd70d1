"""A big project's canvas is drawn in slices (issue 11): the event loop runs between them and the
finished canvas is the one the usual folding and routing make (tests/journeys/test_open_big_journey.py:
the window while it is drawn)."""

from __future__ import annotations

from PySide6.QtCore import QTimer

from core.project import new_project
from gui.canvas import build_job
from gui.canvas.build_job import SceneBuild, progress_text, progress_value
from gui.canvas.scene import CanvasScene
from gui.document import Document


def residual_project(blocks: int, name: str = "Residual", collapsed_every: int = 3):
    """``blocks`` residual blocks (Linear, ReLU, Linear, Add with a skip wire), one group each;
    every ``collapsed_every``-th block folded, the others expanded with a frame."""
    project = new_project(name=name)
    g = project.graph
    g.add_node("Input", "input", {"shape": [16]})
    g.set_position("input", (0.0, 0.0))
    previous, row = "input", 1
    for b in range(blocks):
        ids = [f"b{b}_fc1", f"b{b}_relu", f"b{b}_fc2", f"b{b}_add"]
        for nid, kind in zip(ids, ("Linear", "ReLU", "Linear", "Add"), strict=True):
            g.add_node(kind, nid, {"out_features": 16} if kind == "Linear" else {})
            g.set_position(nid, (0.0 if kind != "ReLU" else 40.0, row * 110.0))
            row += 1
        for src, dst in ((previous, ids[0]), (ids[0], ids[1]), (ids[1], ids[2]), (ids[2], ids[3]), (previous, ids[3])):
            g.add_edge(src, dst)
        g.add_group(f"block{b}", f"Block {b}", ids, collapsed=b % collapsed_every == 0)
        previous = ids[3]
    g.add_node("Output", "output")
    g.set_position("output", (0.0, row * 110.0))
    g.add_edge(previous, "output")
    return project


def _picture(scene: CanvasScene) -> dict[str, object]:
    """What the user sees of a scene: every item, where, shown or not, each wire's course."""
    def where(item) -> tuple[float, float, bool]:  # type: ignore[no-untyped-def]
        return (round(item.pos().x(), 2), round(item.pos().y(), 2), item.isVisible())

    return {
        "nodes": {nid: where(it) for nid, it in scene.nodes.items()},
        "edges": {e: (it.isVisible(), it.path.boundingRect().getCoords() if it.isVisible() else None)
                  for e, it in scene.edges.items()},
        "cards": {gid: (where(it), it.toolTip()) for gid, it in scene.cards.items()},
        "frames": {gid: (it.isVisible(), it.sceneBoundingRect().getCoords()) for gid, it in scene.frames.items()},
        "content": scene.content_rect().getCoords(),
    }


def test_a_sliced_build_lets_the_event_loop_run_and_draws_what_a_one_go_build_draws(qtbot, monkeypatch):
    monkeypatch.setattr(build_job, "SLICE_S", 0.0)  # one item a turn: many turns for a small graph
    project = residual_project(12)
    whole = CanvasScene(Document.from_project(project))
    whole.refresh_folding()  # the reference: folded, its cards' texts and every wire routed the usual way
    scene = CanvasScene(Document.from_project(load_copy(project)), build=False)
    assert not scene.nodes and not scene.edges
    build = SceneBuild(scene)
    ticks: list[int] = []
    timer = QTimer(interval=0)
    timer.timeout.connect(lambda: ticks.append(len(scene.nodes)))
    progress: list[tuple[str, int, int]] = []
    build.progress.connect(lambda *step: progress.append(step))
    timer.start()
    build.start()
    with qtbot.waitSignal(build.finished, timeout=20000):
        pass
    timer.stop()
    assert not build.running() and build.slices > 100
    # the GUI thread's other timers ran while the cards were being made, not only before or after
    assert any(0 < n < len(whole.nodes) for n in ticks)
    assert progress and progress[0][0] == "cards"
    assert len(scene.nodes) == 50 and len(scene.edges) == 61
    assert _picture(scene) == _picture(whole)


def load_copy(project):  # type: ignore[no-untyped-def]
    """The same project as a fresh object (a document owns its graph)."""
    from core.project import project_from_dict, project_to_dict

    return project_from_dict(project_to_dict(project))


def test_progress_reads_as_counts_and_one_bar_across_the_phases():
    assert progress_text("big.json", "cards", 12000, 100000) == "Opening big.json: 12,000 of 100,000 nodes drawn…"
    assert progress_text("big.json", "routes", 5, 9) == "Opening big.json: routing 5 of 9 wires…"
    values = [progress_value("cards", 0, 10), progress_value("cards", 10, 10), progress_value("wires", 5, 10),
              progress_value("blocks", 0, 0), progress_value("routes", 10, 10)]
    assert values == sorted(values) and values[0] == 0 and values[-1] == 1000
