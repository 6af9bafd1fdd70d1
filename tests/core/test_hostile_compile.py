"""Hostile sizes at compile time (issue 11, item 8): a three-line file asking for 12 GB of weights
is refused in one sentence naming the biggest layer before anything is allocated, by the compiler
(and so Verify and the training engine) and by ``main.py train``."""

from __future__ import annotations

from pathlib import Path

import pytest

import core.compiler as compiler
import core.memory_guard as memory_guard
from core.analysis import analyze
from core.cli import main
from core.compiler import CompileError, TooBigError, compile_graph
from core.graph import Graph
from core.project import new_project, save_project

GIB = 1 << 30


def huge_graph() -> Graph:
    """Conv2d 3 → 100,000 channels with a kernel of 100: 3.0 G parameters, 12 GB of float32."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 128, 128]})
    g.add_node("Conv2d", "conv1", {"out_channels": 100_000, "kernel_size": 100})
    g.add_node("Output", "output")
    g.add_edge("input", "conv1")
    g.add_edge("conv1", "output")
    return g


@pytest.fixture
def nothing_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Free RAM reads 8 GiB, and building any layer fails the test (so nothing was allocated)."""
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 8 * GIB)

    def refuse(node: object) -> None:
        raise AssertionError(f"a layer was built: {node}")

    monkeypatch.setattr(compiler, "build_module", refuse)


def test_weights_over_the_free_memory_are_refused_in_one_sentence(nothing_built: None) -> None:
    with pytest.raises(TooBigError) as info:
        compile_graph(huge_graph())
    message = str(info.value)
    assert message == ("The network's weights need 11.18 GiB, but this machine has 8.00 GiB free: "
                       "make the layers smaller (conv1 has 3.00 G parameters).")
    assert isinstance(info.value, CompileError) and info.value.diagnostics[0].node == "conv1"


def test_the_meta_device_is_never_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # the meta device holds shapes only, no memory: export's check builds there
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 8 * GIB)
    model = compile_graph(huge_graph(), device="meta")
    assert sum(p.numel() for p in model.parameters()) == analyze(huge_graph()).total_params


def test_a_network_that_fits_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 8 * GIB)
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv1", {"out_channels": 4, "kernel_size": 3})
    g.add_node("Output", "output")
    g.add_edge("input", "conv1")
    g.add_edge("conv1", "output")
    assert sum(p.numel() for p in compile_graph(g).parameters()) == 3 * 4 * 9 + 4


def test_unknown_free_memory_refuses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_guard, "available_ram", lambda: None)
    assert memory_guard.weights_problem(analyze(huge_graph())) is None


def test_the_free_ram_is_read() -> None:
    free = memory_guard.available_ram()
    assert free is None or free > 0


def test_training_that_does_not_fit_names_the_batch_and_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 64 * GIB)
    a = analyze(huge_graph())
    assert memory_guard.weights_problem(a, "cpu") is None  # the weights alone fit in 64 GiB
    message = memory_guard.training_problem(a, "cpu", 32, "adam")
    assert message is not None and "\n" not in message
    assert message.startswith("Training needs about ")
    assert "a batch of 32" in message and "make the layers smaller or the batch smaller" in message
    assert "(conv1 has 3.00 G parameters)" in message


def test_cli_train_refuses_before_touching_anything(nothing_built: None, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.netcanvas.json"
    save_project(new_project(huge_graph(), name="huge"), path)
    out = tmp_path / "run"
    code = main(["train", str(path), "--dataset", "synthetic:3,128,128,4", "--train-size", "8", "--val-size",
                 "4", "--epochs", "1", "--device", "cpu", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: Training needs about ") and "this machine has 8.00 GiB free" in err
    assert "(conv1 has 3.00 G parameters)" in err
    assert not out.exists()
