"""The training dock: settings, Start / Pause / Resume / Stop, progress, and the viewers in tabs.

:class:`TrainingPanel` is the widget; :class:`gui.training.TrainingDock` holds it in the window.
The panel observes the window's :class:`gui.document.Document` (analysis, selection) and never
writes to the graph except through undo commands (the data-fit fix). A run trains a copy of the
graph in a :class:`~gui.training.worker.TrainingWorker`; when the canvas changes during or after a
run, the panel says so ("graph changed since this run started"). :meth:`TrainingPanel.can_close`
and :meth:`TrainingPanel.shutdown` let a closing window stop a run cleanly (the last epoch
checkpoint stays in the run folder).

The probed nodes' statistics (mean, std, dead share, gradient norm) are also sent out as
:attr:`TrainingPanel.node_stats` (plain lists per node, at most once a second) for the canvas to
draw under the nodes' cards; the panel itself never touches the canvas.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from core.explain import conv_weights, diff_graphs
from core.layers.registry import get_spec
from core.project import Project, graph_from_dict, graph_to_dict
from core.training import BatchProgress, ConfigError, EpochMetrics, ProbeData, RunInfo, RunSummary
from core.training.runs import RunFolder, RunFolderError, default_run_dir
from core.units import fmt_duration
from gui.theme import Theme, current_theme
from gui.training.commands import SetTrainingCommand
from gui.training.images import ProgressLine
from gui.training.maps import MAX_FPS, FeatureMapView, FiltersView
from gui.training.node_stats import NodeStatsHistory
from gui.training.plots import MetricsPlots
from gui.training.predict import PredictionView
from gui.training.runs import RunsPanel, default_runs_root
from gui.training.settings import TrainingSettings, wait_for_loaders
from gui.training.staged import Steps, begin
from gui.training.tabs import BuiltViewer, TabViewer, ViewerTabs
from gui.training.task_views import TaskViews
from gui.training.worker import RunRequest, TrainingWorker, WarmUp, default_config, resume_request

LATER_MS = 80  # after the panel's first paint: the warm-up waits for it
PLOT_INTERVAL_MS = 400  # plots repaint at most 2.5 times a second (progress signals come at most 20 times)


def _shows_maps(type_name: str) -> bool:
    """Whether the Maps tab offers this layer's output first: its declaration says (``feature_maps``)."""
    spec = get_spec(type_name)
    return spec is not None and spec.feature_maps


class TrainingPanel(QWidget):
    """Everything about training one document's graph."""

    run_finished = Signal(object)  # RunSummary
    message = Signal(str)  # status-bar text for the window
    # {node id: {"mean"|"std"|"dead"|"grad": [values, oldest first]}} of this run's probed nodes, for the
    # canvas (the Training dock draws them under the cards of the window's canvas); an empty dict clears them.
    node_stats = Signal(object)

    def __init__(self, doc: Any = None, runs_root: Path | None = None, parent: QWidget | None = None,
                 staged: bool = False) -> None:
        super().__init__(parent)
        self.doc: Any = None
        self.fixed_runs_root = runs_root
        self.worker: TrainingWorker | None = None
        self.last_summary: RunSummary | None = None
        self.run_graph: dict[str, Any] | None = None  # the graph (file form) the current/last run trained
        self.run_doc: Any = None  # the document that run was started from (the "graph changed" chip compares)
        self.run_dir: Path | None = None
        self.run_info: RunInfo | None = None
        self.loaded_weights: tuple[Any, Any] | None = None  # (module, graph) from "Load weights"
        self.highlight: Any = None  # callable(list of ids) selecting nodes on the canvas (the window sets it)
        self._snapshot: dict[str, Any] | None = None
        self._samples: tuple[Any, ...] | None = None  # the data's preview, until Predictions is made
        self._latest: BatchProgress | None = None
        self._classes: list[str] = []
        self._norm: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())
        self._plot_timer = QTimer(self)
        self._plot_timer.setInterval(PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._refresh_plots)
        self._stats = NodeStatsHistory()
        self._stats_doc: Any = None  # the document whose graph the run trains: only its canvas gets the stats
        self._stats_sent = 0.0
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.timeout.connect(self._send_node_stats)
        self._runs_stale = False  # a run started while the runs list was hidden: it reads the folder when shown
        self._closing = False
        # Made at once it held the GUI thread ~0.3 s: staged (the dock), its parts are made a few per
        # event-loop turn (gui.training.staged); ``construction`` holds the steps left, None when whole.
        self.construction = begin(self._build(doc, staged), staged)

    def _build(self, doc: Any, staged: bool) -> Steps:
        t = current_theme()
        # Top-down: each part joins the panel's tree when it is made. Made apart and put together at the
        # end, every part was polished again (the window's style sheet) each time its tree got a parent.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        split = QSplitter()
        layout.addWidget(split)
        settings_scroll = QScrollArea()
        settings_scroll.setWidgetResizable(True)
        settings_scroll.setFrameShape(QFrame.Shape.NoFrame)
        settings_scroll.setMinimumWidth(250)
        settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        split.addWidget(settings_scroll)
        right = QWidget()
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([340, 1260])
        self.settings = TrainingSettings(self.apply_fixes, settings_scroll.viewport(), staged=True)  # no move in
        assert self.settings.construction is not None
        yield from self.settings.construction
        # staged: the data opens once the panel is in place (its loader's thread slowed every slice)
        self.settings.hold_loading(staged)
        self.settings.data_changed.connect(self._data_changed)
        settings_scroll.setWidget(self.settings)

        self.b_start = QPushButton("▶  Start")
        self.b_start.setObjectName("primary")
        self.b_start.setToolTip("Train a copy of the graph with these settings (the canvas stays editable)")
        self.b_pause = QPushButton("Pause")
        self.b_stop = QPushButton("■  Stop")
        self.b_stop.setToolTip("Stop before the next batch; the last epoch checkpoint is kept")
        self.b_start.clicked.connect(lambda: self.start())
        self.b_pause.clicked.connect(self.toggle_pause)
        self.b_stop.clicked.connect(self.stop)
        self.progress = ProgressLine(1000)
        self.progress_text = QLabel("Ready")
        self.progress_text.setStyleSheet("font-weight: 600;")
        self.detail = QLabel("")
        self.changed_chip = QLabel("Graph changed since this run started")
        self.changed_chip.hide()
        self.banner = QFrame()
        self.banner.setObjectName("failBanner")
        self.banner_text = QLabel("")
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.banner.hide)
        bl = QHBoxLayout(self.banner)
        bl.setContentsMargins(8, 4, 4, 4)
        bl.addWidget(self.banner_text, 1)
        bl.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()

        controls = QHBoxLayout()
        controls.setSpacing(6)
        for b in (self.b_start, self.b_pause, self.b_stop):
            controls.addWidget(b)
        controls.addSpacing(10)
        text_col = QVBoxLayout()
        text_col.setSpacing(2)
        row = QHBoxLayout()
        row.addWidget(self.progress_text)
        row.addWidget(self.detail, 1)
        row.addWidget(self.changed_chip)
        text_col.addLayout(row)
        text_col.addWidget(self.progress)
        controls.addLayout(text_col, 1)

        rv = QVBoxLayout(right)
        rv.setContentsMargins(6, 6, 6, 0)
        rv.setSpacing(6)
        rv.addLayout(controls)
        rv.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        rv.addWidget(self.tabs, 1)
        self.live = QSplitter()
        self.tabs.addTab(self.live, "Curves && feature maps")
        yield
        self.plots = MetricsPlots(staged=True)
        assert self.plots.construction is not None
        yield from self.plots.construction
        self.live.addWidget(self.plots)
        self.maps = FeatureMapView()
        self.maps.probes_wanted.connect(self._probes_wanted)
        self.live.addWidget(self.maps)
        self.live.setStretchFactor(0, 3)
        self.live.setStretchFactor(1, 2)
        self.live.setSizes([640, 460])
        # The other tabs' viewers are built when first opened or asked for: built with the rest, the first
        # open held the window ~0.4 s, and built one by one after it, the runs list alone held it 0.15 s.
        self.viewer_tabs = ViewerTabs(self, self.tabs)
        self.viewer_tabs.add("filters", "Filters", TrainingPanel._make_filters)
        self.viewer_tabs.add("predict", "Predictions", TrainingPanel._make_predict, "predictions")
        self.viewer_tabs.add("runs", "Runs", TrainingPanel._make_runs)
        self.task_views = TaskViews(self)
        self.tabs.currentChanged.connect(self._tab_changed)
        yield
        self._style(t)
        self._sync_buttons()
        if doc is not None:
            self.set_document(doc)
        self._warm = WarmUp(self)
        # torch's first-run warm-up on its thread, after the first paint: started with the panel's
        # construction, it held the interpreter while the GUI thread built the panel, each Qt call waiting.
        if not staged:  # else the dock starts it once the panel is in place (start_warm_up)
            QTimer.singleShot(LATER_MS, self.start_warm_up)

    # ------------------------------------------------------------------------------ deferred tabs

    # the viewers of the deferred tabs: made when read; the underscored ones are None until then
    filters, _filters = TabViewer[FiltersView]("filters"), BuiltViewer[FiltersView]("filters")
    predict, _predict = TabViewer[PredictionView]("predict"), BuiltViewer[PredictionView]("predict")
    runs, _runs = TabViewer[RunsPanel]("runs"), BuiltViewer[RunsPanel]("runs")

    def _make_filters(self) -> FiltersView:
        view = FiltersView()
        view.node_wanted.connect(self._filter_wanted)
        if self.doc is not None:
            self._sync_filters(list(self.doc.selection), view)
        return view

    def _make_predict(self) -> PredictionView:
        view = PredictionView()
        view.message.connect(self.show_problem)
        if self._samples is not None:  # the data came before the tab was first needed
            view.set_samples(*self._samples)
            self._samples = None
        return view

    def _make_runs(self) -> RunsPanel:
        view = RunsPanel()
        view.overlays_changed.connect(self.plots.set_overlays)
        view.resume_requested.connect(lambda p: self.start(resume_from=Path(p)))
        view.load_weights_requested.connect(lambda p: self.load_weights(Path(p)))
        view.highlight_requested.connect(self._highlight)
        if self.doc is not None:
            view.set_root(self.runs_root)
        return view

    # ------------------------------------------------------------------------------------- theme

    def set_theme(self, theme: Theme) -> None:
        """Restyle the open panel for ``theme`` (the window's View ▸ theme switch): buttons and labels,
        the plots' background, axes and curves, the feature-map sections, the settings form."""
        self._style(theme)
        self.plots.set_theme(theme)
        self.maps.set_theme(theme)
        if self._filters is not None:  # one built later takes the current theme
            self._filters.set_theme(theme)
        self.settings.set_theme(theme)
        self.task_views.set_theme(theme)
        if self.last_summary is not None and not self.running:
            self.detail.setText(self._finished_detail(self.last_summary, theme))
        for widget in (w for w in (self._predict, self._runs) if w is not None):
            for child in [widget, *widget.findChildren(QWidget)]:
                child.update()  # they paint with current_theme()

    def _style(self, t: Theme) -> None:
        self.b_start.setStyleSheet(
            f"#primary {{ background: {t.accent}; color: {t.accent_text}; border-color: {t.accent}; "
            "font-weight: 600; padding: 4px 14px; } "
            f"#primary:disabled {{ background: {t.panel_alt}; color: {t.text_dim}; border-color: {t.border}; }}")
        self.detail.setStyleSheet(f"color: {t.text_dim};")
        self.changed_chip.setStyleSheet(f"color: {t.warning}; border: 1px solid {t.warning}; border-radius: 8px; "
                                        "padding: 1px 8px;")
        self.banner.setStyleSheet(f"#failBanner {{ border: 1px solid {t.error}; border-radius: 4px; }}")
        if not self.banner.isHidden():  # the message's heading is coloured in its text
            body = self.banner_text.text().split("<br>", 1)[-1]
            self.banner_text.setText(f"<span style='color:{t.error}'><b>Training problem</b></span><br>{body}")

    # ---------------------------------------------------------------------------------- document

    def _recorded_weights(self) -> str | None:
        """The project's recorded pretrained weights for a new run (None: the editor's are carried instead)."""
        if self.loaded_weights is not None or self.doc is None or "weights" not in self.doc.project.extra:
            return None
        from core.project import ProjectError
        from core.training.weights import recorded_source

        try:
            return recorded_source(self.doc.project)
        except ProjectError:
            return None

    def set_document(self, doc: Any) -> None:
        """Observe ``doc`` (the window calls this whenever it shows another document)."""
        if doc is not self.doc:  # another project's loaded weights and last run do not carry over here
            self.loaded_weights, self.run_doc = None, self.run_doc if self.running else None
        if self.doc is not None:
            for signal, slot in self._doc_connections():
                try:
                    signal.disconnect(slot)
                except (RuntimeError, TypeError):
                    pass
        self.doc = doc
        for signal, slot in self._doc_connections():
            signal.connect(slot)
        self.settings.set_config(default_config(doc.project.training))
        self.settings.set_document(doc)  # the recorded weights' input pipeline for the preview and the run
        if self._runs is not None:
            self._runs.set_root(self.runs_root)
        self._analysis(doc.analysis)
        self._selection(list(doc.selection))

    def _training_changed(self, training: dict[str, Any]) -> None:
        """The document's training settings changed (Start's undo step, its undo or redo): the form shows
        them, unless a run is going on or the form already says the same (the Start that wrote them)."""
        if self.running:
            return
        try:
            shown = self.settings.config().to_dict(only_changed=True)
        except ConfigError:
            shown = None
        if shown != default_config(training).to_dict(only_changed=True):
            self.settings.set_config(default_config(training))

    def _doc_connections(self) -> list[tuple[Any, Any]]:
        return [(self.doc.analysis_updated, self._analysis), (self.doc.selection_changed, self._selection),
                (self.doc.path_changed, self._path_changed), (self.doc.training_changed, self._training_changed)]

    @property
    def runs_root(self) -> Path:
        return self.fixed_runs_root or default_runs_root(self.doc)

    def _path_changed(self) -> None:
        if self.fixed_runs_root is None and self._runs is not None:
            self._runs.set_root(self.runs_root)

    def _analysis(self, analysis: Any) -> None:
        self.settings.set_analysis(analysis, self.doc.graph)
        self.maps.set_analysis(analysis)
        if not self.maps.nodes:
            self._selection(list(self.doc.selection))
        self._update_changed_chip()
        self._sync_buttons()

    def _selection(self, ids: list[str]) -> None:
        analysis = self.doc.analysis
        picked = [i for i in ids if _mappable(analysis, i)]
        if picked:
            self.maps.set_nodes(picked)
        elif not self.maps.nodes:
            defaults = [i for i in analysis.order if _mappable(analysis, i)
                        and _shows_maps(analysis.nodes[i].type)][:2]
            self.maps.set_nodes(defaults, "Select nodes on the canvas to choose." if defaults else "")
        if self._filters is not None:
            self._sync_filters(ids)

    def _sync_filters(self, ids: list[str], view: FiltersView | None = None) -> None:
        """The Filters tab offers the graph's convolutions, the first selected one shown."""
        analysis = self.doc.analysis
        filters = view or self.filters
        convs = [i for i in analysis.order if "Conv" in analysis.nodes[i].type]
        filters.set_convs(convs)
        selected_convs = [i for i in ids if i in convs]
        if selected_convs and filters.current != selected_convs[0]:
            filters.combo.setCurrentText(selected_convs[0])

    def show_edges(self, edges: list[Any]) -> None:
        """Edges clicked on the canvas: show the feature maps of their source nodes (what flows along them)."""
        if self.doc is None:
            return
        sources = [e.src for e in edges if _mappable(self.doc.analysis, e.src)]
        if sources:
            self.maps.set_nodes(sources)

    def _update_changed_chip(self) -> None:
        if self.run_graph is None or self.doc is None or self.run_doc is not self.doc:  # another project's run
            self.changed_chip.hide()
            return
        diff = diff_graphs(self.run_graph, graph_to_dict(self.doc.graph))
        if diff.empty:
            self.changed_chip.hide()
            return
        n = len(diff.added) + len(diff.removed) + len(diff.changed)
        self.changed_chip.setText(f"Graph changed since this run started ({n} node{'s' * (n != 1)})")
        lines = [f"+ {i}" for i in diff.added] + [f"− {i}" for i in diff.removed] + \
                [f"~ {i}: {'; '.join(notes)}" for i, notes in diff.changed.items()]
        self.changed_chip.setToolTip("The running model is not affected. Changes:\n" + "\n".join(lines[:20]))
        self.changed_chip.show()

    # --------------------------------------------------------------------------------- run control

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def start(self, resume_from: Path | None = None, epochs: int | None = None) -> bool:
        """Start a run (or resume one from its folder); returns False with the reason shown when it can't."""
        if self.running or self.doc is None:
            return False
        self.banner.hide()
        try:
            form = self.settings.config()  # what the user set (saved with the project when it changed)
            cfg = form.updated(epochs=epochs) if epochs is not None else form  # this run only
        except ConfigError as exc:
            self.show_problem(str(exc))
            return False
        if resume_from is not None:
            resumed = resume_request(resume_from, cfg, self.maps.nodes)
            if isinstance(resumed, str):
                self.show_problem(resumed)
                return False
            request, graph = resumed
        elif not self.doc.analysis.ok:
            first = self.doc.analysis.errors[0]
            self.show_problem(f"The graph has {len(self.doc.analysis.errors)} error(s): fix them first "
                              f"({(first.node + ': ') if first.node else ''}{first.message}).")
            return False
        elif self.settings.mismatch is not None and self.settings.data is not None \
                and self.settings.cached(cfg, self.doc.analysis.input_shape) is self.settings.data:
            fix = " — the Fix button in the settings applies it" if self.settings.mismatch.fixes else ""
            self.show_problem(f"The data doesn't fit the network: {self.settings.mismatch.message}{fix}.")
            return False
        else:
            # Settings the user changed are saved with the project, as an undo step: the document becomes
            # modified, so closing offers to save them. The project's own settings are no edit (the
            # command is then a no-op that Document.push skips): training is not editing.
            self.doc.push(SetTrainingCommand(self.doc, form.to_dict(only_changed=True)))
            name = self.doc.project.name or "run"
            graph = self.doc.graph.copy()
            request = RunRequest(project=Project(graph=graph, name=name, training=cfg.to_dict(only_changed=True),
                                                 extra=dict(self.doc.project.extra)),
                                 config=cfg, run_dir=default_run_dir(name, self.runs_root),
                                 weights=self.loaded_weights, probes=self.task_views.probes(self.maps.nodes),
                                 data=self._opened_data(cfg),
                                 weights_spec=self._recorded_weights())
        from core.analysis import analyze
        from core.memory_guard import training_device_problem

        analysis = self.doc.analysis if resume_from is None else analyze(graph)
        run_cfg = request.config or cfg
        too_big = training_device_problem(analysis, run_cfg.device, run_cfg.batch_size, run_cfg.optimizer)
        if too_big is not None:  # before the worker allocates anything
            self.show_problem(too_big)
            return False
        run_dir = request.run_dir
        self.run_graph, self.run_doc = graph_to_dict(graph), self.doc
        self.run_dir = run_dir
        self.task_views.run_started(run_cfg)
        self.plots.clear()
        self.maps.clear()
        self.clear_node_stats()
        self._stats_doc = self.doc
        if resume_from is not None:
            try:
                self.plots.load_history(RunFolder(resume_from).read_metrics())
            except RunFolderError:
                pass
        worker = TrainingWorker(request)
        worker.run_started.connect(self._started)
        worker.progress.connect(self._progress)
        worker.epoch_ended.connect(self._epoch)
        worker.probed.connect(self.maps.show_probe)
        worker.probed.connect(self._collect_node_stats)
        worker.probed.connect(self.task_views.show_probe)
        worker.samples.connect(self.task_views.show_samples)  # a GAN's fixed-noise grids
        worker.warned.connect(self._warned)
        worker.paused_changed.connect(self._paused)
        worker.status_changed.connect(self.progress_text.setText)
        worker.model_ready.connect(self._model_ready)
        worker.weights_snapshot.connect(self._weights_snapshot)
        worker.filters_snapshot.connect(self.filters.set_weights)
        worker.failed.connect(self.show_problem)
        worker.finished.connect(self._finished)
        worker.set_filter_nodes([self.filters.current] if self.filters.current else [])
        if self.worker is not None:  # its thread ends just after its ``finished``: dropped while it ran, Qt aborts
            self.worker.wait(10_000)
        self.worker = worker
        self.progress.setValue(0)
        self.progress_text.setText("Starting…")
        self.detail.setText("")
        worker.start()
        self._plot_timer.start()
        self._sync_buttons()
        self._update_changed_chip()
        return True

    def _opened_data(self, cfg: Any) -> Any:
        """The in-memory source the preview already opened for ``cfg``, for the run to train on: opened
        again on the training thread (shapes draws 9,000 images in Python), it held the interpreter
        the window needs for a second at every start. A folder source is opened afresh (its loaders
        and worker processes belong to one run)."""
        data = self.settings.cached(cfg, self.doc.analysis.input_shape)
        return data if data is not None and data.in_memory else None

    # ------------------------------------------------------------------------- canvas statistics

    def _collect_node_stats(self, data: ProbeData) -> None:
        self._stats.add(data)
        # Coalesced like the feature maps: at most MAX_FPS sends whatever the probe rate.
        wait = 1.0 / MAX_FPS - (time.perf_counter() - self._stats_sent)
        if wait <= 0:
            self._send_node_stats()
        elif not self._stats_timer.isActive():
            self._stats_timer.start(int(wait * 1000) + 1)

    def _send_node_stats(self) -> None:
        self._stats_sent = time.perf_counter()
        if self.doc is None or self.doc is not self._stats_doc:
            return  # another document is shown: the run's statistics are not about its nodes
        self.node_stats.emit(self._stats.series())

    def clear_node_stats(self) -> None:
        """Forget the run's statistics and take them off the canvas."""
        self._stats_timer.stop()
        self._stats.clear()
        self.node_stats.emit({})

    def toggle_pause(self) -> None:
        if self.worker is None:
            return
        if self.b_pause.text() == "Resume":
            self.resume()
        else:
            self.pause()

    def pause(self) -> None:
        if self.running and self.worker is not None:
            self.worker.pause()
            self.b_pause.setText("Resume")
            self.progress_text.setText("Pausing…")

    def resume(self) -> None:
        if self.running and self.worker is not None:
            self.worker.resume()
            self.b_pause.setText("Pause")

    def stop(self) -> None:
        if self.running and self.worker is not None:
            self.worker.stop()
            self.progress_text.setText("Stopping…")
            self.b_stop.setEnabled(False)

    def can_close(self) -> bool:
        """Ask whether to stop a running training (then stop it); True when the window may close."""
        if not self.running:
            return True
        if not self.ask_stop():
            return False
        self.shutdown()
        return True

    def ask_stop(self) -> bool:
        """The question a closing window asks while training runs (tests replace it)."""
        answer = QMessageBox.question(
            self, "Training is running",
            "Stop the training and close? The run keeps its last epoch checkpoint and can be resumed later.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self, ms: int = 60_000) -> None:
        """Stop any run and wait for its threads (the last checkpoint stays on disk)."""
        self._plot_timer.stop()
        if self.worker is not None:
            self.worker.shutdown(ms)
        self._closing = True
        self.settings.wait_for_data(ms)
        # Also a data loader the form replaced by a later one (wait_for_data waits for the latest):
        # destroyed with the panel while it runs, its QThread would abort the process.
        for thread in self.settings.findChildren(QThread):
            thread.wait(ms)
        wait_for_loaders(ms)  # and those without a parent, replaced by a later choice
        self._warm.wait(ms)
        self._warm.end()

    def start_warm_up(self) -> None:
        """Start torch's first-run warm-up on its thread (once per process)."""
        if not self._closing and not WarmUp.done and not self._warm.isRunning():
            self._warm.begin()

    # ------------------------------------------------------------------------------ worker events

    def _started(self, info: RunInfo) -> None:
        self.run_info = info
        self.plots.set_epochs(info.epochs)
        amp = f" · {info.amp}" if info.amp != "off" else ""
        self.detail.setText(f"{info.device_name}{amp} · {info.dataset.get('name')} · {info.params:,} params")
        self._classes = list(info.dataset.get("classes", []))
        self._norm = (tuple(info.dataset.get("mean", ())), tuple(info.dataset.get("std", ())))
        self.maps.set_classes(self._classes)
        # The runs list shows the new run when it is opened (it reads every run's folder; built later,
        # it reads them then): read at every start while hidden, it held the window 0.1 s with 20 runs.
        if self._runs is not None and self.tabs.currentWidget() is self._runs:
            self._runs.refresh()
        else:
            self._runs_stale = True

    def _progress(self, ev: BatchProgress) -> None:
        self.plots.add_batch(ev)
        self._latest = ev  # the labels follow at the plots' pace (_refresh_plots)

    def _show_progress(self, ev: BatchProgress) -> None:
        done = ((ev.epoch - 1) * ev.steps + ev.step) / max(ev.epochs * ev.steps, 1)
        self.progress.setValue(int(done * 1000))
        if self.b_pause.text() != "Resume":
            self.progress_text.setText(f"Epoch {ev.epoch}/{ev.epochs} · batch {ev.step}/{ev.steps}")
        info = self.run_info
        where = f"{info.device_name} · " if info else ""
        self.detail.setText(f"{where}loss {ev.loss:.4f} · {ev.images_per_s:,.0f} {self.task_views.rate_unit} · ETA "
                            f"{fmt_duration(ev.eta_s)}")

    def _epoch(self, m: EpochMetrics) -> None:
        self.plots.add_epoch(m)
        self.task_views.add_epoch(m)
        if self.plots.isVisible():  # hidden, they catch up when shown (MetricsPlots.showEvent)
            self.plots.refresh()
        val = self.task_views.epoch_headline(m)
        self.message.emit(f"Epoch {m.epoch}/{m.epochs}: train loss {m.train_loss:.4f}{' · ' * bool(val)}{val}")
        if self.run_dir is not None and self._runs is not None and self.tabs.currentWidget() is self._runs:
            self._runs.update_run(self.run_dir)

    def _warned(self, text: str) -> None:
        t = current_theme()
        self.detail.setText(f"<span style='color:{t.warning}'>{text}</span>")
        self.detail.setToolTip(text)
        self.message.emit(text)

    def _paused(self, paused: bool) -> None:
        self.b_pause.setText("Resume" if paused else "Pause")
        if paused:
            self.progress_text.setText("Paused")

    def _model_ready(self, model: Any) -> None:
        self.predict_model = model
        self.filters.set_weights({k: v.detach().clone() for k, v in conv_weights(model).items()})

    def _weights_snapshot(self, state: dict[str, Any]) -> None:
        self._snapshot = state
        if self._predict is not None and self.tabs.currentWidget() is self._predict:
            self._apply_snapshot()

    def _apply_snapshot(self) -> None:
        model = getattr(self, "predict_model", None)
        if model is None or self.doc is None:
            return
        state, self._snapshot = self._snapshot, None  # the view loads it where it computes
        from core.analysis import analyze

        graph = graph_from_dict(self.run_graph) if self.run_graph is not None else self.doc.graph
        self.predict.set_model(model, analyze(graph), self._classes, *self._norm, state=state)

    def _finished(self, summary: RunSummary) -> None:
        self._plot_timer.stop()
        self._refresh_plots()
        self.last_summary = summary
        t = current_theme()
        text = {"completed": "Finished", "early_stopped": "Stopped early", "stopped": "Stopped",
                "failed": "Failed"}.get(summary.status, summary.status)
        if summary.last is not None:
            best = self.task_views.summary_headline(summary)
            text += f" · {summary.epochs_done} epoch{'s' * (summary.epochs_done != 1)}{' · ' * bool(best)}{best}"
        self.progress_text.setText(text)
        self.detail.setText(self._finished_detail(summary, t))
        self.detail.setToolTip(f"Run folder: {summary.run_dir}" if summary.run_dir else "")
        if summary.status == "completed":
            self.progress.setValue(1000)
        self.b_pause.setText("Pause")
        self._sync_buttons()
        self.task_views.run_ended()
        if self._runs is not None:
            self._runs.refresh()
        if self._predict is not None and self.tabs.currentWidget() is self._predict:
            self._apply_snapshot()
        self.run_finished.emit(summary)

    @staticmethod
    def _finished_detail(summary: RunSummary, t: Theme) -> str:
        folder = Path(summary.run_dir).name if summary.run_dir else ""
        return f"<span style='color:{t.text_dim}'>{fmt_duration(summary.seconds)} · run {folder}</span>"

    def _refresh_plots(self) -> None:
        if self.plots.dirty and self.plots.isVisible():  # hidden: caught up when shown (showEvent)
            self.plots.refresh()
        if self._latest is not None:
            self._show_progress(self._latest)
            self._latest = None

    # ------------------------------------------------------------------------------------ helpers

    def show_problem(self, text: str) -> bool:
        """Show a plain-language failure in the panel (never a traceback)."""
        t = current_theme()
        self.banner_text.setText(f"<span style='color:{t.error}'><b>Training problem</b></span><br>{text}")
        self.banner.show()
        self.message.emit(text)
        return True

    @property
    def problem_text(self) -> str:
        """The failure message on show (empty when none)."""
        return "" if self.banner.isHidden() else self.banner_text.text()

    def apply_fixes(self, fixes: list[Any], label: str) -> None:
        """Apply data-fit fixes (set_param) as ONE undoable edit on the document."""
        from gui.commands import SetParamCommand

        stack = self.doc.undo_stack
        stack.beginMacro(label)
        try:
            for fix in fixes:
                self.doc.push(SetParamCommand(self.doc, fix.node, fix.param, fix.value))
        finally:
            stack.endMacro()
        self.message.emit(f"{label} (Ctrl+Z undoes it)")

    def load_weights(self, run_dir: Path) -> bool:
        """Keep a run's trained weights for the next start (unchanged layers) and for predictions."""
        from core.analysis import analyze
        from core.training.evaluate import EvaluationError, load_run_model

        try:
            project, _config, model, _ckpt = load_run_model(run_dir)
            dataset = RunFolder(run_dir).read_json("config.json").get("dataset", {})
        except (EvaluationError, RunFolderError, AttributeError) as exc:  # each names the folder or its file
            self.show_problem(f"Cannot load the weights: {exc}")
            return False
        model.eval()
        self.loaded_weights = (model, graph := project.graph)
        self.predict_model = model
        self._classes = list(dataset.get("classes", []))
        self._norm = (tuple(dataset.get("mean", ())), tuple(dataset.get("std", ())))
        if self.viewer_tabs.shown("predict"):  # a mask or GAN model has no class predictions to show
            self.predict.set_model(model, analyze(graph), self._classes, *self._norm)
        self.filters.set_weights({k: v.detach().clone() for k, v in conv_weights(model).items()})
        self.message.emit(f"Loaded the weights of {run_dir.name}: predictions use them, and the next run starts "
                          "from them (layers you changed start fresh).")
        return True

    def _data_changed(self, data: Any) -> None:
        if data is None or data.modality != "image":  # Predictions shows images (token tasks hide it)
            return
        images, labels = data.preview(16, "val" if data.val_count else "train")
        if not self._classes:
            self._classes = list(data.classes)
            self._norm = (tuple(data.mean), tuple(data.std))
        # The dataset's names and normalisation read the samples until a model brings its own. A Predictions tab
        # not made yet takes them when made (made here, beside torch's warm-up, it held the GUI thread 120 ms).
        self._samples = (images, labels, data.classes, data.mean, data.std)
        if self._predict is not None:
            self._predict.set_samples(*self._samples)
            self._samples = None

    def _probes_wanted(self, ids: list[str]) -> None:
        if self.worker is not None:
            self.worker.set_probes(self.task_views.probes(ids))

    def _filter_wanted(self, node_id: str) -> None:
        if self.worker is not None:
            self.worker.set_filter_nodes([node_id])

    def _highlight(self, ids: list[str]) -> None:
        present = [i for i in ids if self.doc is not None and i in self.doc.graph.nodes]
        if self.highlight is not None:
            self.highlight(present)
        elif self.doc is not None:
            self.doc.set_selection(present)

    def _tab_changed(self, index: int) -> None:
        if self._predict is not None and self.tabs.currentWidget() is self._predict:
            self._apply_snapshot()
        if self._runs is not None and self._runs_stale and self.tabs.currentWidget() is self._runs:
            self._runs_stale = False
            self._runs.refresh()

    def _sync_buttons(self) -> None:
        running = self.running
        self.b_start.setEnabled(not running and self.doc is not None)
        self.b_pause.setEnabled(running)
        self.b_stop.setEnabled(running)
        self.settings.setEnabled(not running)


def _mappable(analysis: Any, node_id: str) -> bool:
    r = analysis.nodes.get(node_id)
    return r is not None and r.output_shape is not None and r.type not in ("Input", "Output")


__all__ = ["PLOT_INTERVAL_MS", "TrainingPanel"]
