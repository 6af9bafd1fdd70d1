"""The QThread training worker: a two-batch run finishes; pause/resume/stop act within one batch;
progress is throttled but loses no step; setup failures are plain messages."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import Qt

from core.graph import Graph
from core.training import TrainConfig
from gui.training.worker import RunRequest, TrainingWorker

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread():
    """Collect the Qt wrappers a test leaves behind here, on the GUI thread: Python's cyclic GC would
    otherwise run their finalizers on whichever thread allocates next, possibly the training thread."""
    yield
    gc.collect()


def tiny_graph(init: str = "default") -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3, "padding": 1}, init=init)
    g.add_node("ReLU", "relu")
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": 4}, init=init)
    g.add_node("Output", "output")
    for a, b in (("input", "conv"), ("conv", "relu"), ("relu", "flat"), ("flat", "fc"), ("fc", "output")):
        g.add_edge(a, b)
    return g


def tiny_config(**changes) -> TrainConfig:
    base = dict(dataset="synthetic:3,8,8,4", train_size=64, val_size=32, batch_size=32, epochs=1, device="cpu",
                lr=0.05, probe_interval=0.0)
    base.update(changes)
    return TrainConfig(**base)


def run_worker(qtbot, request: RunRequest, timeout: int = 60_000):
    worker = TrainingWorker(request)
    with qtbot.waitSignal(worker.finished, timeout=timeout) as blocker:
        worker.start()
    assert worker.wait(10_000)
    return worker, blocker.args[0]


def test_two_batch_run_finishes_with_every_step_reported(qtbot, tmp_path):
    steps: list[int] = []
    epochs = []
    probes = []
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config(), run_dir=tmp_path / "run",
                                       probes=["conv", "relu"]))
    worker.progress.connect(lambda ev: steps.extend(range(ev.first_step, ev.first_step + len(ev.losses))))
    worker.epoch_ended.connect(epochs.append)
    worker.probed.connect(probes.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    summary = blocker.args[0]
    assert summary.status == "completed" and summary.epochs_done == 1
    assert steps == [1, 2]  # two batches, each step's loss delivered exactly once
    assert len(epochs) == 1 and epochs[0].val_acc is not None
    assert probes and probes[-1].activations["conv"].shape[1:] == (4, 8, 8)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    assert not worker.running


def test_throttle_merges_bursts_without_losing_steps(qtbot):
    from core.training import BatchProgress

    runner = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config())).runner
    got = []
    runner.progress.connect(got.append, Qt.ConnectionType.DirectConnection)

    def ev(step: int, steps: int = 10) -> BatchProgress:
        return BatchProgress(epoch=1, epochs=1, step=step, steps=steps, global_step=step, loss=float(step),
                             losses=(float(step),), first_step=step, lr=0.1, images_per_s=1.0, eta_s=0.0)

    for step in range(1, 11):  # a burst far faster than 20 per second
        runner._on_batch(ev(step))
    runner._flush()
    assert len(got) <= 3  # the first, the last step of the epoch, nothing pending in between
    losses = [v for e in got for v in e.losses]
    assert losses == [float(s) for s in range(1, 11)]
    assert got[-1].step == 10 and got[1].first_step == 2


def test_pause_resume_and_stop_act_within_one_batch(qtbot):
    # 32 steps per epoch; the test's handler runs on the training thread inside the engine's batch
    # report (between two batches), like a click that lands right after that batch.
    cfg = tiny_config(train_size=32 * 32, batch_size=32, epochs=2, val_size=32)
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=cfg))
    seen: list[int] = []
    paused_at: list[int] = []
    state = {"paused": False, "stopped_at": None}

    def on_progress(ev) -> None:
        seen.append(ev.global_step)
        if not state["paused"] and ev.global_step >= 3:
            state["paused"] = True
            worker.pause()
        elif state["paused"] and state["stopped_at"] is None and ev.global_step >= 8:
            state["stopped_at"] = ev.global_step
            worker.stop()

    def on_paused(paused: bool) -> None:
        if paused:
            paused_at.append(seen[-1])

    worker.runner.progress.connect(on_progress, Qt.ConnectionType.DirectConnection)
    worker.runner.paused_changed.connect(on_paused, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(worker.paused_changed, timeout=60_000, check_params_cb=lambda p: p is True):
        worker.start()
    steps_when_paused = list(seen)
    qtbot.wait(300)  # paused: nothing may happen
    assert seen == steps_when_paused
    assert paused_at == [seen[-1]]  # paused right after the batch that was running
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.resume()
    worker.wait()
    summary = blocker.args[0]
    assert summary.status == "stopped"
    assert seen[-1] == state["stopped_at"]  # not one batch after the stop request
    assert seen[-1] < 64


def test_stop_before_the_first_batch(qtbot):
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config()))
    worker.stop()
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "stopped"


def test_setup_failures_are_plain_messages(qtbot):
    g = tiny_graph()
    g.set_param("fc", "out_features", 7)  # the data has 4 classes
    failures: list[str] = []
    worker = TrainingWorker(RunRequest.for_graph(g, config=tiny_config()))
    worker.failed.connect(failures.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "failed"
    assert failures and "4 classes" in failures[0] and "Traceback" not in failures[0]
    bad = tiny_config(dataset="mnist:/nonexistent/folder", download=False)
    worker, summary = run_worker(qtbot, RunRequest.for_graph(tiny_graph(), config=bad))
    assert summary.status == "failed" and summary.message and "Traceback" not in summary.message
