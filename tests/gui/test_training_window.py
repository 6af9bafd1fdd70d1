"""The training dock inside the editor window: Start records the settings as an undo step (so closing
offers to save them), closing asks "save?" before "stop training?", View ▸ theme restyles the open
dock, and a click on an edge shows its source node's feature maps."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QMessageBox

from gui.main_window import MainWindow
from gui.theme import DARK, LIGHT
from tests.conftest import restore_light_theme
from tests.gui.test_training_panel import make_doc

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """As in test_training_panel: Qt wrappers are collected here, on the GUI thread."""
    yield
    gc.collect()


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NETCANVAS_DATA_DIR", str(tmp_path / "data"))  # recovery files stay in the test's folder
    w = MainWindow(make_doc(), restore_layout=False)
    w.asked: list[str] = []  # the questions the window asked, in order
    w.ask_unsaved = lambda: w.asked.append("save") or QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.training.set_runs_root(tmp_path / "runs")
    panel = w.training.panel
    panel.settings.wait_for_data()
    yield w
    panel.shutdown()
    restore_light_theme()


def test_start_records_the_settings_as_one_undo_step_and_closing_offers_to_save(qtbot, window):
    panel, doc = window.training.panel, window.doc
    assert not doc.is_modified()
    panel.settings.epochs.setValue(2)  # an edit in the form
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as blocker:
        qtbot.mouseClick(panel.b_start, Qt.MouseButton.LeftButton)
    assert blocker.args[0].status == "completed"
    panel.worker.wait()
    assert doc.project.training["epochs"] == 2
    assert doc.is_modified() and window.isWindowModified()
    assert doc.undo_stack.undoText() == "Set training settings"
    doc.undo_stack.undo()  # Ctrl+Z: the old settings, in the project and in the form
    assert doc.project.training["epochs"] == 1 and panel.settings.epochs.value() == 1
    assert not doc.is_modified()
    doc.undo_stack.redo()
    assert doc.project.training["epochs"] == 2 and panel.settings.epochs.value() == 2
    window.ask_unsaved = lambda: window.asked.append("save") or QMessageBox.StandardButton.Cancel
    assert not window.close()  # the settings are not dropped silently
    assert window.asked == ["save"] and window.isVisible()
    window.ask_unsaved = lambda: QMessageBox.StandardButton.Discard


def test_start_with_the_projects_own_settings_leaves_the_document_unmodified(qtbot, window):
    panel, doc = window.training.panel, window.doc
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        assert panel.start()
    panel.worker.wait()
    assert not doc.is_modified() and doc.undo_stack.count() == 0


def test_closing_during_a_run_asks_save_first_then_stop_and_keeps_the_checkpoint(qtbot, window):
    window.set_document(make_doc(train_size=32 * 60, epochs=50))  # a run long enough to close during it
    panel, doc = window.training.panel, window.doc
    assert panel.doc is doc
    panel.settings.wait_for_data()
    panel.settings.epochs.setValue(60)  # an edit in the form: the document becomes modified at Start
    answers = {"save": QMessageBox.StandardButton.Cancel, "stop": False}
    window.ask_unsaved = lambda: window.asked.append("save") or answers["save"]
    panel.ask_stop = lambda: window.asked.append("stop") or answers["stop"]
    assert panel.start()
    assert doc.is_modified()
    qtbot.waitUntil(lambda: (panel.run_dir / "checkpoints" / "last.pt").is_file(), timeout=60_000)

    assert not window.close()  # cancel at "save changes?": nothing happens, training goes on
    assert window.asked == ["save"] and panel.running and window.isVisible()

    answers["save"] = QMessageBox.StandardButton.Discard
    assert not window.close()  # "no" at "stop training?": nothing happens either
    assert window.asked == ["save", "save", "stop"] and panel.running and window.isVisible()

    answers["stop"] = True
    assert window.close()
    assert window.asked == ["save", "save", "stop", "save", "stop"]
    assert not panel.running
    assert panel.last_summary is not None and panel.last_summary.status == "stopped"
    from core.training.runs import load_checkpoint

    ckpt = load_checkpoint(panel.run_dir)
    assert ckpt["epoch"] >= 1 and "conv.weight" in ckpt["model"]


def test_closing_hides_the_window_before_waiting_for_the_panels_threads(qtbot, window, monkeypatch):
    """A data set still loading (ImageNet-sized noise takes seconds) is waited for with the window gone,
    not with a window that looks frozen; cancelling "stop training?" keeps it shown."""
    panel = window.training.panel
    seen: list[bool] = []
    waits = panel.shutdown

    def shutdown(ms: int = 60_000) -> None:
        seen.append(window.isVisible())  # what the user sees while the panel waits for its threads
        waits(ms)

    monkeypatch.setattr(panel, "shutdown", shutdown)
    panel.can_close = lambda: False  # "no" at "stop training?"
    assert not window.close()
    assert seen == [] and window.isVisible()
    panel.can_close = lambda: True
    assert window.close()
    assert seen == [False] and not window.isVisible()


def test_switching_the_theme_restyles_the_open_training_dock(qtbot, window):
    panel = window.training.panel
    plots = panel.plots

    def looks(theme) -> bool:
        axis = plots.loss_plot.getPlotItem().getAxis("left")
        return (plots.loss_plot.backgroundBrush().color() == QColor(theme.panel)
                and axis.textPen().color() == QColor(theme.text_dim)
                and plots.c_smooth.opts["pen"].color() == QColor(theme.accent)
                and plots.c_lr.opts["pen"].color() == QColor(theme.ok)
                and theme.text in plots.loss_plot.getPlotItem().titleLabel.text
                and theme.text_dim in panel.detail.styleSheet()
                and theme.accent in panel.b_start.styleSheet())

    assert looks(LIGHT) and not looks(DARK)
    window.theme_actions["dark"].trigger()  # View ▸ Dark theme
    assert window.theme is DARK
    assert looks(DARK) and not looks(LIGHT)
    window.theme_actions["light"].trigger()
    assert looks(LIGHT)


def test_clicking_an_edge_shows_the_feature_maps_of_its_source_node(qtbot, window):
    panel, view, scene = window.training.panel, window.view, window.scene
    view.select_nodes(["fc"])
    assert panel.maps.nodes == ["fc"]
    edge = next(e for e in scene.edges if e.src == "conv" and e.dst == "relu")
    item = scene.edges[edge]
    view.centerOn(item)
    qtbot.wait(10)
    point = view.mapFromScene(item.mapToScene(item.path.pointAtPercent(0.3)))
    assert scene.itemAt(view.mapToScene(point), view.transform()) is item
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert scene.selected_edges() == [edge] and window.doc.selection == []
    assert panel.maps.nodes == ["conv"]


def test_after_opening_another_document_its_canvas_edges_show_their_feature_maps(qtbot, window):
    old_scene = window.scene
    other = make_doc()
    window.set_document(other)  # what File ▸ Open does: the dock follows, with the new canvas
    panel, view, scene = window.training.panel, window.view, window.scene
    assert scene is not old_scene and panel.doc is other
    view.select_nodes(["fc"])
    assert panel.maps.nodes == ["fc"]
    edge = next(e for e in scene.edges if e.src == "conv" and e.dst == "relu")
    item = scene.edges[edge]
    view.centerOn(item)
    qtbot.wait(10)
    point = view.mapFromScene(item.mapToScene(item.path.pointAtPercent(0.3)))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert scene.selected_edges() == [edge] and panel.maps.nodes == ["conv"]


def test_the_form_follows_the_documents_training_settings_whoever_changes_them(qtbot, window):
    from gui.training.commands import SetTrainingCommand

    panel, doc = window.training.panel, window.doc
    assert panel.settings.epochs.value() == 1
    changed: list[dict] = []
    doc.training_changed.connect(changed.append)
    # A settings step pushed by anything but the panel (the command knows no form): the form follows the
    # document's event, on the push, the undo and the redo.
    assert doc.push(SetTrainingCommand(doc, {**doc.project.training, "epochs": 3}))
    assert doc.project.training["epochs"] == 3 and panel.settings.epochs.value() == 3
    doc.undo_stack.undo()
    assert doc.project.training["epochs"] == 1 and panel.settings.epochs.value() == 1
    doc.undo_stack.redo()
    assert panel.settings.epochs.value() == 3 and window.isWindowModified()
    assert [c["epochs"] for c in changed] == [3, 1, 3]


def test_train_then_screenshot_saves_the_window_showing_the_finished_run(qtbot, window, tmp_path, capsys):
    from PySide6.QtGui import QImage

    from gui.training import screenshot_after_training

    out = tmp_path / "shots" / "trained.png"
    assert screenshot_after_training(window, 1, out) == 0  # main.py FILE --train --epochs 1 --screenshot OUT
    assert capsys.readouterr().out.strip() == f"saved {out}"
    panel = window.training.panel
    assert panel.progress_text.text().startswith("Finished · 1 epoch") and window.training.isVisible()
    assert QImage(str(out)).size() == window.grab().size()
