"""The QThread training worker: a two-batch run finishes; pause/resume/stop act within one batch;
progress is throttled but loses no step; setup failures are plain messages."""

from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import Qt

from core.graph import Graph
from core.training import TrainConfig
from gui.training.worker import ProgressThrottle, RunRequest, TrainingWorker

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

    got = []
    throttle = ProgressThrottle(got.append)

    def ev(step: int, steps: int = 10) -> BatchProgress:
        return BatchProgress(epoch=1, epochs=1, step=step, steps=steps, global_step=step, loss=float(step),
                             losses=(float(step),), first_step=step, lr=0.1, images_per_s=1.0, eta_s=0.0)

    for step in range(1, 11):  # a burst far faster than 20 per second
        throttle.batch(ev(step))
    throttle.flush()
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

    worker.thread_side.progress.connect(on_progress, Qt.ConnectionType.DirectConnection)
    worker.thread_side.paused_changed.connect(on_paused, Qt.ConnectionType.DirectConnection)
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


def test_stop_before_the_first_batch_leaves_no_run_folder(qtbot, tmp_path):
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config(), run_dir=tmp_path / "run"))
    built: list[object] = []
    worker.model_ready.connect(built.append)
    worker.stop()
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "stopped" and blocker.args[0].epochs_done == 0
    assert not (tmp_path / "run").exists() and built == []  # a run that never ran leaves nothing behind


def test_loaded_weights_carry_over_and_say_what_was_kept(qtbot):
    from core.compiler import compile_graph

    old_graph = tiny_graph()
    edge = next(e for e in old_graph.edges if e.src == "fc")
    old_graph.remove_edge(edge)
    old_graph.add_node("Linear", "extra", {"out_features": 4})  # only in the loaded run: dropped
    old_graph.add_edge("fc", "extra")
    old_graph.add_edge("extra", "output")
    loaded = compile_graph(old_graph, seed=7)
    new_graph = tiny_graph()
    new_graph.set_param("conv", "kernel_size", 5)  # changed since that run: starts fresh
    new_graph.set_param("conv", "padding", 2)
    warned: list[str] = []
    ready: list = []
    request = RunRequest.for_graph(new_graph, config=tiny_config(), weights=(loaded, old_graph))
    worker = TrainingWorker(request)
    worker.warned.connect(warned.append)
    worker.model_ready.connect(ready.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "completed"
    carried = worker.session.carried
    assert (carried.kept, carried.reinitialized, carried.removed) == (["fc"], ["conv"], ["extra"])
    assert "Starting from the loaded weights: 1 layer kept their weights; conv starts fresh (changed since that " \
           "run)." in warned
    assert ready and ready[0].fc.weight.equal(loaded.fc.weight)  # the model before its first step


def test_resume_and_extend_a_finished_run_through_the_worker(qtbot, tmp_path):
    import os

    from gui.training.worker import resume_request

    run = tmp_path / "run"
    _, first = run_worker(qtbot, RunRequest.for_graph(tiny_graph(), config=tiny_config(), run_dir=run))
    assert first.status == "completed" and first.epochs_done == 1
    os.utime(run / "config.json", (1_000_000_000, 1_000_000_000))
    refused = resume_request(run, tiny_config(epochs=1))
    assert isinstance(refused, str) and "Set Epochs above 1 (now 1)" in refused
    resumed = resume_request(run, tiny_config(epochs=2), probes=["conv"])
    assert not isinstance(resumed, str)
    request, graph = resumed
    assert sorted(graph.nodes) == sorted(tiny_graph().nodes)
    started = []
    worker = TrainingWorker(request)
    worker.run_started.connect(started.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "completed" and blocker.args[0].epochs_done == 2
    assert started and started[0].start_epoch == 2 and started[0].epochs == 2
    assert (run / "config.json").stat().st_mtime == 1_000_000_000  # the run keeps the time it was first started


def test_a_failing_torch_compile_falls_back_to_eager_training(qtbot, monkeypatch):
    import torch

    def broken(*_a, **_k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    warned: list[str] = []
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config(compile=True)))
    worker.warned.connect(warned.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "completed"
    assert any("torch.compile is not available here (no compiler here)" in w for w in warned)


def test_early_stopping_ends_the_run_with_its_status(qtbot):
    warned: list[str] = []
    cfg = tiny_config(epochs=6, lr=1e-9, early_stopping=1)  # nothing learns: no epoch beats the first
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=cfg))
    worker.warned.connect(warned.append)
    with qtbot.waitSignal(worker.finished, timeout=60_000) as blocker:
        worker.start()
    worker.wait()
    assert blocker.args[0].status == "early_stopped" and blocker.args[0].epochs_done == 2
    assert any(w.startswith("Early stopping: validation accuracy has not improved for 1 epochs") for w in warned)


def test_an_opened_data_source_is_trained_on_not_opened_again(qtbot):
    from core.training.data import synthetic_source

    data = synthetic_source((3, 8, 8), 4, train=64, val=32)
    worker, summary = run_worker(qtbot, RunRequest.for_graph(tiny_graph(), config=tiny_config(), data=data))
    assert summary.status == "completed"
    assert worker.session.data is data and worker.trainer is not None and worker.trainer.data is data


def test_a_run_holds_the_cyclic_collector_off_its_thread_and_gives_it_back(qtbot, tmp_path):
    """Collections started by the training thread's allocations would finalize the GUI's dropped Qt
    wrappers on that thread ('Timers cannot be started from another thread', or a crash): the run
    holds the collector, the GUI thread collects the young generations meanwhile, and the end of
    the run gives the collector back."""
    import gc

    assert gc.isenabled()
    seen_during: list[bool] = []
    worker = TrainingWorker(RunRequest.for_graph(tiny_graph(), config=tiny_config(), run_dir=tmp_path / "run"))
    worker.epoch_ended.connect(lambda _m: seen_during.append(gc.isenabled()))
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        worker.start()
        assert not gc.isenabled() and worker._gc_timer.isActive()
    worker.wait()
    assert seen_during == [False]
    assert gc.isenabled() and not worker._gc_timer.isActive()


def test_the_held_collectors_ticks_collect_the_old_generation_now_and_then(monkeypatch):
    """While a run holds the collector, the GUI thread's ticks collect the young generations, and
    every GC_FULL_EVERY ticks all of them, so cycles that grew old during a long run are freed."""
    import gc

    from gui.training import worker as worker_module

    calls: list[tuple] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(args) or 0)
    monkeypatch.setattr(worker_module, "GC_FULL_EVERY", 3)
    ticker = worker_module._GcTicker()
    for _ in range(6):
        ticker()
    assert calls == [(1,), (1,), (), (1,), (1,), ()]


def test_the_end_of_a_run_hands_the_freed_heap_back_on_the_training_thread(qtbot, tmp_path, monkeypatch):
    """A soak of 300 runs grew the process ~2 MB a run (glibc kept the freed tensors' pages): each run ends
    with ``malloc_trim`` on its own thread, after ``finished`` is sent (issue 11)."""
    import threading

    import gui.training.worker as worker_module
    from core.native_libs import release_free_memory

    calls: list[str] = []
    monkeypatch.setattr(worker_module, "release_free_memory",
                        lambda: calls.append(threading.current_thread().name) or release_free_memory())
    _worker, summary = run_worker(qtbot, RunRequest.for_graph(tiny_graph(), config=tiny_config(),
                                                             run_dir=tmp_path / "run"))
    assert summary.status == "completed"
    assert len(calls) == 1 and calls[0] != threading.main_thread().name
    assert release_free_memory() >= 0.0  # glibc's malloc_trim here; elsewhere nothing, never an error
