"""Hostile sizes at compile time (issue 11, item 8): a three-line file asking for 12 GB of weights
is refused in one sentence naming the biggest layer before anything is allocated, by the compiler
(and so Verify and the training engine) and by ``main.py train``. And (item 9, revised by issue 12) a
weighted branch that reaches no Output is held, idle, by the compiled model and the exported file,
and analysis counts its weights but not its MACs: the three agree."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

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


def test_a_gpu_run_is_measured_against_the_gpus_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * GIB, 80 * GIB))
    message = memory_guard.training_problem(analyze(huge_graph()), "cuda:0", 8, "sgd")
    assert message is not None and "but the GPU (cuda:0) has 2.00 GiB free" in message


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


# -- 9. a weighted branch that reaches no Output ---------------------------------------------------
# The rule (issue 12): the forward of the compiled model and of the exported file leaves out every
# layer that reaches no Output, but those with weights stay in the model, idle, so an imported
# model's state_dict loads strictly. Analysis counts their parameters and buffers, not their MACs,
# and the warning says their weights are kept but do not run.

def dead_branch_graph() -> Graph:
    """Input 10 → fc (110 params) → Output, plus fc → dead (a Linear of 22) → dead_bn (4 params,
    5 buffers) → relu, with no Output."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [10]})
    g.add_node("Linear", "fc", {"out_features": 10})
    g.add_node("Linear", "dead", {"out_features": 2})
    g.add_node("BatchNorm1d", "dead_bn")
    g.add_node("ReLU", "dead_relu")
    g.add_node("Output", "output")
    for a, b in (("input", "fc"), ("fc", "output"), ("fc", "dead"), ("dead", "dead_bn"), ("dead_bn", "dead_relu")):
        g.add_edge(a, b)
    return g


def _load_class(path: Path, cls: str) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model: torch.nn.Module = getattr(mod, cls)()
    return model


def test_totals_agree_with_the_compiled_and_the_exported_model(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    g = dead_branch_graph()
    a = analyze(g)
    compiled = compile_graph(g)
    src = save_project(new_project(g, name="Dead"), tmp_path / "dead.json")
    out = tmp_path / "dead.py"
    assert main(["export", str(src), "-o", str(out)]) == 0
    exported = _load_class(out, "Dead")
    for model in (compiled, exported):
        assert a.total_params == sum(p.numel() for p in model.parameters()) == 136
        assert a.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert a.buffers == sum(b.numel() for b in model.buffers()) == 5
        assert list(model.state_dict()) == list(compiled.state_dict())
    exported.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(3, 10)
    compiled.eval()
    exported.eval()
    assert torch.equal(compiled(x), exported(x))
    assert a.macs == 100  # fc only: dead's 20 are not run
    assert [d.message for d in a.diagnostics] == [
        "dead_relu does not reach an Output, nor do the 2 layers before it (from dead) — their results are unused, "
        "and the weights of dead and dead_bn are kept but do not run; connect dead_relu onward or delete them"]
    assert a.nodes["dead"].params == 22  # its own row keeps its numbers
    capsys.readouterr()


def test_while_errors_remain_every_layer_counts() -> None:
    # nothing compiles yet: the totals are the lower bound of what is being built
    g = dead_branch_graph()
    g.add_node("Linear", "fc2", {"out_features": 3})  # an error: a Linear with no input
    a = analyze(g)
    assert not a.ok and a.total_params == 110 + 26


def test_without_the_dead_branch_nothing_changes() -> None:
    g = dead_branch_graph()
    for nid in ("dead", "dead_bn", "dead_relu"):
        g.remove_node(nid)
    a = analyze(g)
    assert a.ok and not a.diagnostics and a.total_params == 110
