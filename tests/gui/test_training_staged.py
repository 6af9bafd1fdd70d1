"""The Training panel is made a few parts per event-loop turn (issue 11: its first build held the window
~0.3 s): the steps run in slices with the event loop turning between them, ``dock.panel`` makes the
rest at once, the data opens and torch warms up only once the panel is whole, and the panel made in
slices is the same panel as one made at once."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from gui.document import Document
from gui.training.staged import Slicer, Steps, begin
from tests.gui.test_training_panel import make_doc

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    yield
    gc.collect()


def counting(log: list[str], n: int) -> Steps:
    for i in range(n):
        log.append(f"step {i}")
        yield
    log.append("end")


def test_begin_runs_the_steps_now_unless_staged():
    log: list[str] = []
    assert begin(counting(log, 3), staged=False) is None
    assert log == ["step 0", "step 1", "step 2", "end"]
    log.clear()
    steps = begin(counting(log, 3), staged=True)
    assert steps is not None and log == []


def test_a_slicer_lets_the_event_loop_turn_between_slices(qtbot):
    log: list[str] = []
    ticks: list[int] = []

    def slow_steps() -> Steps:
        for i in range(4):
            log.append(f"step {i}")
            yield

    slicer = Slicer(slow_steps(), slice_ms=0.0)  # one step per slice
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(len(log)))
    timer.start(1)
    with qtbot.waitSignal(slicer.done, timeout=5_000):
        slicer.start()
    timer.stop()
    assert log == [f"step {i}" for i in range(4)] and slicer.finished
    assert slicer.slices == 5  # four steps, then the one that found the end
    assert len(set(ticks)) > 1  # the timer fired between steps: the event loop turned


def test_finish_runs_what_is_left_and_a_step_may_not_ask_for_it(qtbot):
    log: list[str] = []
    slicer = Slicer(counting(log, 5), slice_ms=0.0)
    slicer._slice()  # one slice as the timer would run it
    assert log == ["step 0"] and not slicer.finished
    with qtbot.waitSignal(slicer.done, timeout=1_000):
        slicer.finish()
    assert log[-1] == "end" and slicer.finished

    def greedy() -> Steps:
        yield
        holder[0].finish()
        yield

    holder = [Slicer(greedy())]
    with pytest.raises(RuntimeError, match="still building"):
        holder[0].finish()


def _window(qtbot, tmp_path, doc: Document | None = None):  # type: ignore[no-untyped-def]
    from gui.main_window import MainWindow

    window = MainWindow(doc or make_doc(), restore_layout=False)
    qtbot.addWidget(window)
    window.resize(1600, 1000)
    window.show()
    window.training.set_runs_root(tmp_path / "runs")
    return window


def _show_dock_mid_build(qtbot, window, slices: int):  # type: ignore[no-untyped-def]
    """Show the window's Training dock and wait until its panel has made ``slices`` slices."""
    dock = window.training
    dock.show()
    dock.raise_()
    qtbot.waitUntil(lambda: dock._slicer is not None and dock._slicer.slices >= slices, timeout=20_000)
    return dock


def test_showing_the_dock_makes_the_panel_over_several_turns_then_opens_the_data(qtbot, tmp_path, monkeypatch):
    from gui.training import dock as dock_module

    made: list[bool] = []
    original = dock_module.TrainingPanel.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(bool(kwargs.get("staged")))
        original(self, *args, **kwargs)

    monkeypatch.setattr(dock_module.TrainingPanel, "__init__", spy)
    window = _window(qtbot, tmp_path)
    dock = _show_dock_mid_build(qtbot, window, 1)
    assert dock.built is None  # not whole yet: nobody gets half a panel
    qtbot.waitUntil(lambda: dock.built is not None, timeout=20_000)
    panel = dock.built
    assert made == [True] and dock._slicer.slices > 3  # several turns, each a slice
    # whole and shown: the plots (shown one per turn at the end), the maps, every tab
    plots = panel.plots
    assert all(p.isVisible() and not p.sizePolicy().retainSizeWhenHidden()
               for p in (plots.loss_plot, plots.acc_plot, plots.lr_plot))
    assert plots.loss_plot.width() > plots.acc_plot.width() > 0
    assert plots.acc_plot.geometry().bottom() < plots.lr_plot.geometry().top()
    assert panel.maps.isVisible() and panel.settings.isVisible()
    titles = [panel.tabs.tabText(i) for i in range(panel.tabs.count())]
    assert titles[:4] == ["Curves && feature maps", "Filters", "Predictions", "Runs"] and "Evaluation" in titles
    assert panel.maps.nodes  # the document is shown: its first convolution's maps are offered
    # the data opens once the panel is whole, as it does for a panel made at once
    panel.settings.wait_for_data()
    assert panel.settings.data is not None
    window.training.confirm_close()


def test_asking_for_the_panel_while_it_is_made_makes_the_rest_at_once(qtbot, tmp_path):
    window = _window(qtbot, tmp_path)
    dock = _show_dock_mid_build(qtbot, window, 2)
    assert dock.built is None
    other = make_doc()
    window.set_document(other)  # the window shows another document meanwhile
    panel = dock.panel  # what Train › Start does
    assert dock.built is panel and dock._slicer.finished
    assert dock.widget().widget() is panel  # in the dock's scroll area
    assert panel.doc is other and panel.runs_root == tmp_path / "runs"
    QApplication.processEvents()
    assert panel.plots.loss_plot.isVisible()
    panel.settings.wait_for_data()
    assert panel.settings.data is not None
    window.training.confirm_close()


def test_a_panel_made_in_slices_holds_the_same_as_one_made_at_once(qtbot, tmp_path):
    from gui.training import TrainingPanel

    doc = make_doc()
    whole = TrainingPanel(doc, runs_root=tmp_path / "runs")
    qtbot.addWidget(whole)
    sliced = TrainingPanel(None, runs_root=tmp_path / "runs", staged=True)
    qtbot.addWidget(sliced)
    assert whole.construction is None and sliced.construction is not None
    for _ in sliced.construction:
        pass
    sliced.settings.hold_loading(False)
    sliced.set_document(doc)

    def shape(panel: TrainingPanel) -> list[tuple[str, str]]:
        return sorted((type(w).__name__, w.objectName()) for w in panel.findChildren(QWidget))

    assert shape(whole) == shape(sliced)

    def menus(panel: TrainingPanel) -> list[list[str]]:  # each plot's right-click menu, as pyqtgraph makes it
        items = [p.getPlotItem() for p in (panel.plots.loss_plot, panel.plots.acc_plot, panel.plots.lr_plot)]
        assert all(item.menuEnabled() and item.vb.menu is not None for item in items)
        return [[a.text() for a in item.vb.menu.actions()] + [a.text() for a in item.ctrlMenu.actions()]
                for item in items]

    assert menus(sliced) == menus(whole) and "View All" in menus(whole)[0]
    assert sliced.maps.nodes == whole.maps.nodes
    assert sliced.settings.config() == whole.settings.config()
    for panel in (whole, sliced):
        panel.settings.wait_for_data()
        panel.shutdown()
    doc.dispose()


def test_closing_the_window_while_the_panel_is_made_starts_nothing_of_it(qtbot, tmp_path, monkeypatch):
    from gui.training import settings as settings_module

    opened: list[object] = []  # loaders made: a data set being opened

    class Loader(settings_module._Loader):  # type: ignore[name-defined,misc]
        def __init__(self, *args: object) -> None:
            opened.append(args)
            super().__init__(*args)

    # Not load_data itself: the half-made panel may ask for its data (a fast machine's slices get that far),
    # and is held (hold_loading) until it is whole; what must not happen is a loader starting.
    monkeypatch.setattr(settings_module, "_Loader", Loader)
    window = _window(qtbot, tmp_path)
    dock = _show_dock_mid_build(qtbot, window, 2)
    assert dock.confirm_close() and dock._slicer is None and dock.built is None
    qtbot.wait(600)  # longer than the data's 250 ms delay and the warm-up's
    assert dock.built is None and not opened
    assert dock.panel.settings is not None  # asked for again later, it is made anew, whole
    assert dock.built is dock.panel
    dock.confirm_close()


def test_a_theme_switch_while_the_panel_is_made_restyles_all_of_it(qtbot, tmp_path):
    from gui.theme import DARK, LIGHT, apply_theme

    window = _window(qtbot, tmp_path)
    dock = _show_dock_mid_build(qtbot, window, 3)
    try:
        apply_theme(DARK)
        dock.set_theme(DARK)  # what the window's View › theme switch calls
        panel = dock.built
        assert panel is not None
        plots = panel.plots
        assert all(p.theme is DARK for p in (plots.loss_plot, plots.acc_plot, plots.lr_plot))
    finally:
        apply_theme(LIGHT)
    dock.confirm_close()


def test_what_the_preload_made_goes_to_the_oldest_generation(qtbot):
    """Left in the young generations, what torch's import made was scanned by the first collections after
    it (~0.4 s each, in the middle of the panel's slices); moved to the oldest one, only full collections
    see it (and can still free it: nothing is frozen for good)."""
    from gui.training.preload import Preloader

    loader = Preloader()
    with qtbot.waitSignal(loader.warmed, timeout=120_000):
        loader.start()
        made_meanwhile = [[i] for i in range(300_000)]  # what an import makes while the collector is held

    def young_share() -> float:
        young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
        return young / max(1, len(gc.get_objects(generation=2)))

    qtbot.waitUntil(lambda: young_share() < 0.1, timeout=5_000)  # the release runs queued, on the GUI thread
    assert gc.get_freeze_count() == 0 and len(made_meanwhile) == 300_000
