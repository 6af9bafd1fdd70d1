"""The QThread adapter around :class:`core.training.session.TrainingSession` (DESIGN.md §3).

:class:`TrainingWorker` is a ``QObject`` that stays on the GUI thread and runs one
:class:`~core.training.session.TrainingSession` — the class ``main.py train`` runs too — on its own
``QThread``. The session does the work (compiles a COPY of the graph taken on the GUI thread when
the run is requested, opens the data, carries weights the user loaded from an earlier run, resumes
a run folder, trains); this module only turns its callbacks into Qt signals, which Qt queues to
the GUI thread because the receivers live there, and adds the GUI's own snapshots (a CPU copy of
the model for predictions, of the weights at every epoch end, of the watched convolutions' kernels).

Throttling (:class:`ProgressThrottle`): the engine reports batches at most every 50 ms; the adapter
coalesces them further (merging the per-step losses, so no plot point is lost) to at most 10
signals per second — the plots repaint 2.5 times a second, and every Python call on the GUI thread
holds the interpreter the training loop also needs — and flushes what is pending before an epoch
end, a pause and the end of the run, so the last update is never missed. A GAN's fixed-noise grids
(:class:`SamplesThrottle`) likewise: at most two a second, the latest kept, and the last of every
epoch always delivered.

Control (:meth:`pause`, :meth:`resume`, :meth:`stop`, :meth:`set_probes`) may be called from the
GUI thread at any time, also before the engine exists (a stop while the data loads ends the run
before its first batch).

The window first (:func:`yield_cpu_to_window`): the training thread lowers its own scheduling
priority when it starts (on Linux by :data:`TRAINING_NICENESS` steps of nice, which the torch worker
threads and DataLoader processes it starts inherit; elsewhere Qt's low thread priority). On a
machine whose cores training fills, the GUI thread then gets a core the moment it has work, instead
of waiting its turn behind torch's threads — the soak's stalls with no Python frame on the GUI
thread were that wait.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal, Slot

from core.graph import Graph
from core.native_libs import release_free_memory
from core.project import Project
from core.training import (
    BatchProgress,
    Callbacks,
    ConfigError,
    DataSource,
    EpochMetrics,
    RunSummary,
    TrainConfig,
    Trainer,
)
from core.training.events import GanSamples
from core.training.session import TrainingSession, open_data
from gui.gc_pause import hold_gc, release_gc, release_gc_after_imports
from gui.idle_gate import IdleGate, polite_imports, shared_gate

TRAINING_NICENESS = 10  # how much less CPU priority the training thread takes (0: the same as the window)
MIN_INTERVAL_S = 0.1  # ≤ 10 progress signals per second (the plots repaint 2.5 times a second)
SAMPLES_INTERVAL_S = 0.5  # ≤ 2 GAN sample grids per second (each is a picture the GUI thread lays out)
GC_INTERVAL_MS = 1000  # while a run holds the cyclic collector, the GUI thread collects the young generations
GC_FULL_EVERY = 600  # … and every this many ticks (10 minutes) all of them, so a long run's old cycles are freed


@dataclass
class RunRequest:
    """Everything one run needs, snapshotted on the GUI thread when the user presses Start.

    For a new run, ``project`` holds a private copy of the graph (``graph.copy()``) and ``config``
    the settings. To resume, ``resume_from`` names the run folder: its own graph and settings are
    used, with ``overrides`` (more epochs, another device) applied. ``data``: a source already
    opened for these settings, trained on instead of opening it again.
    """

    project: Project | None = None
    config: TrainConfig | None = None
    run_dir: Path | None = None
    resume_from: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    weights: tuple[Any, Graph] | None = None  # (module, its graph) to carry unchanged nodes' weights from
    weights_spec: str | None = None  # pretrained weights to load before the first batch (the project's record)
    probes: Sequence[str] = ()
    data: DataSource | None = None

    @classmethod
    def for_graph(cls, graph: Graph, config: TrainConfig, name: str = "run", **kw: Any) -> RunRequest:
        """A request for training ``graph`` (copied) with ``config``."""
        return cls(project=Project(graph=graph.copy(), name=name, training=config.to_dict(only_changed=True)),
                   config=config, **kw)

    def session(self, callbacks: Callbacks, status: Callable[[str], None] | None = None,
                built: Callable[[Trainer], None] | None = None) -> TrainingSession:
        """The :class:`TrainingSession` this request describes, reporting through ``callbacks`` (and its
        setup steps and the data source's messages through ``status``)."""
        session = TrainingSession(self.project, self.config, callbacks, run_dir=self.run_dir,
                                  resume_from=self.resume_from, overrides=self.overrides, data=self.data,
                                  weights=self.weights, step=status, log=status, built=built,
                                  weights_spec=self.weights_spec)
        session.set_probes(self.probes)
        return session


E = TypeVar("E")  # the event a throttle holds back


class _Held(Generic[E]):
    """What the throttles share: the one event held back, sent by :meth:`flush` or when due."""

    def __init__(self, emit: Callable[[E], None], last: float) -> None:
        self._emit = emit
        self._pending: E | None = None
        self._last = last
        self.sent = 0  # for the throttles' tests and the benchmark

    def flush(self) -> None:
        if self._pending is not None:
            event, self._pending = self._pending, None
            self._send(event, time.perf_counter())

    def _send(self, event: E, now: float) -> None:
        self._last = now
        self.sent += 1
        self._emit(event)


class ProgressThrottle(_Held[BatchProgress]):
    """Coalesces batch reports to at most one ``emit`` per :data:`MIN_INTERVAL_S` (and the last step of
    every epoch), merging the losses of the steps in between so none is lost; :meth:`flush` sends
    what is pending."""

    def __init__(self, emit: Callable[[BatchProgress], None]) -> None:
        super().__init__(emit, 0.0)

    def batch(self, event: BatchProgress) -> None:
        pending = self._pending
        if pending is not None:  # merge: keep every step's loss, report the latest state
            event = dataclasses.replace(event, losses=pending.losses + event.losses, first_step=pending.first_step)
        now = time.perf_counter()
        if now - self._last >= MIN_INTERVAL_S or event.step == event.steps:
            self._pending = None
            self._send(event, now)
        else:
            self._pending = event



class SamplesThrottle(_Held[GanSamples]):
    """Passes a GAN's sample grids on at most once per :data:`SAMPLES_INTERVAL_S`, holding back only the
    latest; a grid of a new epoch first sends the previous epoch's held one (the grid that epoch ends
    with), and :meth:`flush` sends what is held (before an epoch's figures, a pause, the run's end)."""

    def __init__(self, emit: Callable[[GanSamples], None], interval: float = SAMPLES_INTERVAL_S) -> None:
        super().__init__(emit, -math.inf)
        self._interval = interval

    def samples(self, event: GanSamples) -> None:
        if self._pending is not None and self._pending.epoch != event.epoch:
            self.flush()
        now = time.perf_counter()
        if now - self._last >= self._interval:
            self._pending = None
            self._send(event, now)
        else:
            self._pending = event



def yield_cpu_to_window(niceness: int) -> bool:
    """Lower the calling thread's CPU priority by ``niceness`` (see the module docstring); ``True``
    when it was lowered. Linux nices threads one by one; elsewhere Qt's low priority for the thread."""
    if niceness <= 0:
        return False
    if sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
        except OSError:  # a sandbox that forbids it: train at the window's priority
            return False
        return True
    thread = QThread.currentThread()
    if thread is None or thread is QCoreApplication.instance().thread():  # type: ignore[union-attr]
        return False
    thread.setPriority(QThread.Priority.LowPriority)
    return True


class _SessionSignals(QObject):
    """The training thread's side: runs the session there and emits its events as signals (the
    worker, on the GUI thread, re-emits them through queued connections)."""

    run_started = Signal(object)  # core.training.RunInfo
    progress = Signal(object)  # BatchProgress (losses of every step since the previous signal)
    epoch_ended = Signal(object)  # EpochMetrics
    probed = Signal(object)  # ProbeData
    samples = Signal(object)  # GanSamples: a GAN generator's grid for the run's fixed noise
    checkpoint_saved = Signal(str)
    warned = Signal(str)
    paused_changed = Signal(bool)
    status_changed = Signal(str)  # setup steps: "Opening shapes and compiling…", "Training…"
    model_ready = Signal(object)  # an independent CPU copy of the compiled model (for predictions)
    weights_snapshot = Signal(object)  # CPU state_dict clone: at every epoch end and when the run ends
    filters_snapshot = Signal(object)  # {node id: CPU weight clone} of the watched convolutions, per probe
    failed = Signal(str)
    finished = Signal(object)  # RunSummary (always the last signal)

    NAMES = ("run_started", "progress", "epoch_ended", "probed", "samples", "checkpoint_saved", "warned",
             "paused_changed", "status_changed", "model_ready", "weights_snapshot", "filters_snapshot", "failed",
             "finished")

    def __init__(self, request: RunRequest) -> None:
        super().__init__()
        self.throttle = ProgressThrottle(self.progress.emit)
        self.samples_throttle = SamplesThrottle(self.samples.emit)
        self.model: Any = None  # the trained model, once built (and not stopped before its first batch)
        self._lock = threading.Lock()
        self._filter_nodes: tuple[str, ...] = ()
        callbacks = Callbacks(
            run_started=self.run_started.emit, batch=self.throttle.batch, epoch_end=self._on_epoch,
            probe=self._on_probe, checkpoint_saved=self.checkpoint_saved.emit, warning=self.warned.emit,
            paused=self._on_paused, failed=self._on_failed, finished=None,  # ``finished`` follows the last snapshot
            samples=self.samples_throttle.samples)
        self.session = request.session(callbacks, status=self.status_changed.emit, built=self._on_built)

    def set_filter_nodes(self, node_ids: Sequence[str]) -> None:
        with self._lock:
            self._filter_nodes = tuple(node_ids)

    @Slot()
    def run(self) -> None:
        yield_cpu_to_window(TRAINING_NICENESS)
        try:
            summary = self.session.run()
        except Exception as exc:  # a bug below us: one plain line for the user, never a traceback
            message = f"Training could not run: {type(exc).__name__}: {exc}"
            summary = RunSummary(status="failed", epochs_done=0, best_epoch=None, best_val_acc=None, last=None,
                                 run_dir=str(self.session.run_dir) if self.session.run_dir else None, seconds=0.0,
                                 message=message)
            self.failed.emit(message)
        self.throttle.flush()
        self.samples_throttle.flush()
        if self.model is not None:
            self.weights_snapshot.emit(_cpu_state(self.model))
        self.finished.emit(summary)
        release_free_memory()  # the run's freed tensors: their pages back to the system (after finished: not delayed)
        thread = self.thread()
        if thread is not None:
            thread.quit()

    def _on_built(self, trainer: Trainer) -> None:
        self.model = trainer.model
        self.model_ready.emit(copy.deepcopy(trainer.model).eval())  # still on the CPU: run() moves it later

    def _on_epoch(self, metrics: EpochMetrics) -> None:
        self.throttle.flush()
        self.samples_throttle.flush()
        self.epoch_ended.emit(metrics)
        self.weights_snapshot.emit(_cpu_state(self.model))
        self._send_filters()

    def _on_probe(self, data: Any) -> None:
        self.probed.emit(data)
        self._send_filters()

    def _send_filters(self) -> None:
        with self._lock:
            wanted = self._filter_nodes
        if not wanted or self.model is None:
            return
        modules = dict(self.model.named_modules())
        out = {nid: modules[nid].weight.detach().float().cpu().clone() for nid in wanted
               if nid in modules and isinstance(getattr(modules[nid], "weight", None), torch.Tensor)}
        if out:
            self.filters_snapshot.emit(out)

    def _on_paused(self, paused: bool) -> None:
        self.throttle.flush()
        self.samples_throttle.flush()
        self.paused_changed.emit(paused)

    def _on_failed(self, message: str) -> None:
        self.throttle.flush()
        self.failed.emit(message)


class TrainingWorker(QObject):
    """One training run on its own ``QThread``; every session event arrives as a signal on the GUI thread.

    The worker object itself stays on the thread that made it (the GUI thread), so whatever is
    connected to its signals — widgets, plain functions, pytest-qt's ``waitSignal`` — runs there.
    ``thread_side`` (on the training thread) emits first; connect to its signals with a direct
    connection to act on the training thread, between two batches.
    """

    run_started = Signal(object)
    progress = Signal(object)
    epoch_ended = Signal(object)
    probed = Signal(object)
    samples = Signal(object)
    checkpoint_saved = Signal(str)
    warned = Signal(str)
    paused_changed = Signal(bool)
    status_changed = Signal(str)
    model_ready = Signal(object)
    weights_snapshot = Signal(object)
    filters_snapshot = Signal(object)
    failed = Signal(str)
    finished = Signal(object)

    def __init__(self, request: RunRequest, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.summary: RunSummary | None = None
        self._started = False
        self._done = False
        self.thread_side = _SessionSignals(request)
        self.session = self.thread_side.session
        self._thread = QThread()
        self._thread.setObjectName("netcanvas-training")
        self.thread_side.moveToThread(self._thread)
        self._thread.started.connect(self.thread_side.run)
        for name in _SessionSignals.NAMES:
            getattr(self.thread_side, name).connect(getattr(self, name))  # queued: the receiver lives here
        self.finished.connect(self._on_finished)
        # The run's allocations (events, the end-of-run evaluation compiling the graph again) would
        # start cyclic collections on the training thread, which finalize the GUI's dropped Qt
        # wrappers there ("Timers cannot be started from another thread", or a crash): the collector
        # is held for the run, and the young generations are collected here, on the GUI thread.
        self._gc_held = False
        self._gc_timer = QTimer(self)
        self._gc_timer.setInterval(GC_INTERVAL_MS)
        self._gc_timer.timeout.connect(_GcTicker())  # no reference to self: no cycle through the connection

    def start(self) -> None:
        self._started = True
        hold_gc()
        self._gc_held = True
        self._gc_timer.start()
        self._thread.start()

    def _release_gc(self) -> None:
        """End the run's hold on the collector (once; from the thread's end or from ``wait``)."""
        if self._gc_held:
            self._gc_held = False
            self._gc_timer.stop()
            release_gc()
            # Collect what the run left now, at a safe point: left to the next allocation, the
            # collection could fall inside Qt code that holds a lock a dropped QObject's
            # destructor needs (a connect() in the next worker's constructor deadlocked so).
            _collect_young()

    @property
    def running(self) -> bool:
        """Started and its ``finished`` not yet delivered here."""
        return self._started and not self._done

    @property
    def model(self) -> Any:
        return self.thread_side.model

    @property
    def trainer(self) -> Trainer | None:
        return self.session.trainer

    def _on_finished(self, summary: RunSummary) -> None:
        self.summary = summary
        self._done = True
        self._release_gc()

    def pause(self) -> None:
        self.session.pause()

    def resume(self) -> None:
        self.session.resume()

    def stop(self) -> None:
        """End the run before its next batch (the last epoch checkpoint is kept)."""
        self.session.stop()

    def set_probes(self, node_ids: Sequence[str]) -> None:
        self.session.set_probes(node_ids)

    def set_filter_nodes(self, node_ids: Sequence[str]) -> None:
        """Convolutions whose kernels are sent (``filters_snapshot``) with every probe and epoch end."""
        self.thread_side.set_filter_nodes(node_ids)

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the thread has ended (``True``) or ``ms`` passed; queued signals are then delivered."""
        if self._thread.isRunning() and not self._thread.wait(ms):
            return False
        if self._started and not self._done:
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.sendPostedEvents(self)  # deliver the queued finished (and what came before)
        if not self._thread.isRunning():
            self._release_gc()
        return True

    def shutdown(self, ms: int = 30_000) -> bool:
        """Stop and wait for the thread: what a closing window calls."""
        self.stop()
        return self.wait(ms)


def _collect_young() -> None:
    """Collect the young generations (what a run's allocations leave): cheap, on the GUI thread."""
    gc.collect(1)


class _GcTicker:
    """The held collector's stand-in on the GUI thread: the young generations each tick, and every
    ``GC_FULL_EVERY`` ticks the old one too (a full pass holds the interpreter ~0.2 s with torch
    loaded, as the automatic one would have; cycles that grew old during an hours-long run are
    freed instead of waiting for its end)."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> None:
        self.ticks += 1
        if self.ticks % GC_FULL_EVERY == 0:
            gc.collect()
        else:
            _collect_young()


def warm_up() -> None:
    """One tiny optimizer step and checkpoint write, to import what a first run would import.

    torch's optimizers pull in ``torch._dynamo`` (~900 modules) on their first step; imported on the
    training thread in the middle of a run, that holds the interpreter long enough to stall the GUI.
    The dock runs this once on a background thread shortly after it opens.
    """
    import io

    from torch import nn

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    x, y = torch.zeros(2, 1, 3, 3), torch.zeros(2, dtype=torch.long)
    for opt in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), torch.optim.Adam(model.parameters())):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.save({"model": model.state_dict()}, io.BytesIO())
    copy.deepcopy(model)


class WarmUp(QThread):
    """Runs :func:`warm_up` once per process on its own thread (unless another thread does:
    :meth:`run_once`). The panel starts it once its viewers are built (:meth:`begin`)."""

    done = False
    _claimed = False
    _lock = threading.Lock()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gate: IdleGate | None = None  # its imports give way to the GUI thread (gui.idle_gate)
        self._held = False  # our hold_gc() is on (begin, until end)

    def begin(self) -> None:
        """Start it (on the GUI thread), with the collector held until :meth:`end`: its imports would start
        collections on its thread (see :func:`~gui.gc_pause.hold_gc`)."""
        hold_gc()
        self._held = True
        self.gate = shared_gate()
        self.finished.connect(self.end, Qt.ConnectionType.SingleShotConnection)
        self.start()

    def end(self) -> None:
        """Once, from ``finished`` or from the panel's shutdown (a closed panel gets no signal)."""
        if self._held:
            self._held = False
            release_gc_after_imports()

    def run(self) -> None:
        with polite_imports(self.gate):
            WarmUp.run_once()

    @staticmethod
    def run_once() -> None:
        """Warm up on the calling thread, if no thread has done or is doing it."""
        with WarmUp._lock:
            if WarmUp._claimed:
                return
            WarmUp._claimed = True
        warm_up()
        WarmUp.done = True


def resume_request(run_dir: Path, cfg: TrainConfig, probes: Sequence[str] = ()) -> tuple[RunRequest, Graph] | str:
    """The request continuing ``run_dir`` from its last checkpoint and the graph it trains, or why it can't.

    An unfinished run goes on to its planned epochs (or ``cfg.epochs``, the Epochs field, if more); a
    finished one is extended to ``cfg.epochs``, which must then be more than the epochs it has done.
    """
    from core.project import graph_from_dict
    from core.training.runs import RunFolder, RunFolderError

    folder = RunFolder(run_dir)
    try:
        graph = graph_from_dict(folder.read_json("graph.json").get("graph", {}))
        planned = int(folder.read_json("config.json").get("training", {}).get("epochs", 0))
    except (RunFolderError, ValueError, TypeError, AttributeError) as exc:
        return f"Cannot resume {run_dir.name}: {exc}"
    try:
        record = folder.read_json("run.json")
        status, done = str(record.get("status", "")), int(record.get("epochs_done") or 0)
    except (RunFolderError, ValueError, TypeError, AttributeError):
        status, done = "running", 0  # no summary: the run ended without one (a crash), so it is unfinished
    if status in ("completed", "early_stopped"):
        if cfg.epochs <= done:
            return (f"Run {run_dir.name} is finished: it trained {done} epoch{'s' * (done != 1)}. "
                    f"Set Epochs above {done} (now {cfg.epochs}) and press Resume again to extend it.")
        target = cfg.epochs
    else:
        target = max(planned, cfg.epochs)
    request = RunRequest(run_dir=run_dir, resume_from=run_dir, probes=tuple(probes),
                         overrides={"epochs": target, "device": cfg.device})
    return request, graph


def _cpu_state(model: Any) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights, taken on the training thread between steps (never torn)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def default_config(training: dict[str, Any] | None) -> TrainConfig:
    """The project's training section as a config (falling back to the defaults on a bad value)."""
    try:
        return TrainConfig.from_dict(training or {})
    except ConfigError:
        return TrainConfig()


__all__ = ["MIN_INTERVAL_S", "SAMPLES_INTERVAL_S", "ProgressThrottle", "RunRequest", "SamplesThrottle",
           "TrainingWorker", "WarmUp", "default_config", "open_data", "resume_request", "warm_up"]
