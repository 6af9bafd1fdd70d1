"""``main.py train`` fine-tuning options: ``--weights`` (the report first, JSON or a line on stderr),
``--replace-head`` (the opened dataset's class count), ``--freeze`` and ``--lr-mult`` with node and
block ids, ``--train-frozen-bn``, and one-line usage errors (exit 2) for unknown ids, bad values,
bad weights and fine-tuning options with ``--resume``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.cli.train import overrides
from core.compiler import compile_graph
from core.graph import Graph
from core.project import Project, save_project
from core.training.runs import load_checkpoint

DATA = ["--dataset", "synthetic:3,8,8,3", "--train-size", "48", "--val-size", "12", "--batch-size", "16",
        "--device", "cpu", "--epochs", "1", "--quiet"]


def _graph(classes: int = 5) -> Graph:
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 6, "kernel_size": 3, "padding": 1})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("ReLU", "relu")
    g.add_node("Conv2d", "conv2", {"out_channels": 6, "kernel_size": 3, "padding": 1})
    g.add_node("AdaptiveAvgPool2d", "pool", {"output_size": 1})
    g.add_node("Flatten", "flat")
    g.add_node("Linear", "fc", {"out_features": classes})
    g.add_node("Output", "output")
    for src, dst in itertools.pairwise(list(g.nodes)):
        g.add_edge(src, dst)
    g.add_group("stem", "Stem", ["conv", "bn", "relu"])
    return g


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    """A project (a 5-class head) and a weights file saved from the same network with other values."""
    project = str(save_project(Project(graph=_graph(), name="ft"), tmp_path / "ft.json"))
    weights = tmp_path / "pretrained.pth"
    torch.save({"state_dict": compile_graph(_graph(), seed=7).state_dict()}, weights)
    return project, str(weights)


def test_json_weights_line_first_then_epochs(tmp_path: Path, files: tuple[str, str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    project, weights = files
    run = tmp_path / "run"
    code = main(["train", project, *DATA, "--json", "--out", str(run), "--weights", weights, "--replace-head",
                 "--freeze", "stem", "--lr-mult", "fc=10"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    assert list(lines[0]) == ["weights"]
    report = lines[0]["weights"]
    assert report["source"] == weights and report["kept"] == 9  # conv ×2, bn ×5, conv2 ×2
    assert sorted(report["reinitialized"]) == ["fc.bias", "fc.weight"]
    assert report["missing"] == [] and report["unexpected"] == []
    assert [line["epoch"] for line in lines[1:]] == [1]
    assert "replaced the head: fc.out_features 5 → 3" in captured.err

    pretrained = torch.load(weights, weights_only=True)["state_dict"]
    trained = load_checkpoint(run)["model"]
    for key in ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
        assert torch.equal(trained[key], pretrained[key]), key  # frozen: exactly the loaded tensors
    assert not torch.equal(trained["conv2.weight"], pretrained["conv2.weight"])
    assert trained["fc.weight"].shape == (3, 6)
    graph = json.loads((run / "graph.json").read_text())
    nodes = {n["id"]: n for n in graph["graph"]["nodes"]}
    assert nodes["fc"]["params"]["out_features"] == 3 and nodes["fc"]["lr_mult"] == 10
    assert nodes["conv"]["frozen"] and nodes["bn"]["frozen"] and "frozen" not in nodes["conv2"]
    assert graph["weights"]["source"] == weights
    assert json.loads((run / "config.json").read_text())["weights"] == report
    assert (run / "evaluation.json").is_file()


def test_without_json_the_summary_goes_to_stderr(tmp_path: Path, files: tuple[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project, weights = files
    code = main(["train", project, *DATA, "--out", str(tmp_path / "r"), "--weights", weights, "--replace-head"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"Loaded 9 tensors from {weights}; fc.weight, fc.bias reinitialized" in captured.err
    assert "Loaded" not in captured.out


def test_a_class_count_mismatch_hints_at_replace_head(tmp_path: Path, files: tuple[str, str],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = files
    assert main(["train", project, *DATA, "--out", str(tmp_path / "r")]) == 1
    assert "hint: --replace-head" in capsys.readouterr().err


@pytest.mark.parametrize(("more", "expected"), [
    (["--freeze", "stm"], "error: --freeze: no node or block 'stm'; did you mean stem?"),
    (["--freeze", "conv,nope"], "error: --freeze: no node or block 'nope'"),
    (["--freeze", ","], "error: --freeze: expected node or block ids"),
    (["--lr-mult", "fcc=10"], "error: --lr-mult: no node or block 'fcc'; did you mean fc?"),
    (["--lr-mult", "fc=-1"], "error: --lr-mult: 'fc=-1': the multiplier must be a positive finite number"),
    (["--lr-mult", "fc"], "error: --lr-mult: 'fc' is not ID=NUMBER (e.g. fc=10)"),
    (["--weights", "IMAGENET1K_V1"], "error: --weights: "),
])
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, files: tuple[str, str], capsys: pytest.CaptureFixture[str],
                                          more: list[str], expected: str) -> None:
    project, _ = files
    assert main(["train", project, *DATA, "--out", str(tmp_path / "r"), *more]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_unreadable_weights_file_is_exit_2(tmp_path: Path, files: tuple[str, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = files
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["train", project, *DATA, "--out", str(tmp_path / "r"), "--weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "broken.pt" in err and err.count("\n") == 1


def test_fine_tuning_options_with_resume_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", str(tmp_path), "--freeze", "stem", "--replace-head"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: --freeze, --replace-head cannot be combined with --resume: the run continues with the "
                   "network and weights of its checkpoint\n")


def test_train_frozen_bn_turns_the_setting_off() -> None:
    from core.cli import build_parser

    args = build_parser().parse_args(["train", "x.json", "--train-frozen-bn"])
    assert overrides(args) == {"frozen_bn_eval": False}
    assert overrides(build_parser().parse_args(["train", "x.json"])) == {}


def test_a_project_that_records_weights_trains_from_them_unless_told_not_to(
        tmp_path: Path, files: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """The project file's ``weights`` entry is loaded again (a path relative to the project file is
    read from its folder); --no-weights starts fresh."""
    project_path, weights = files
    from core.project import load_project

    project = load_project(project_path)
    project.extra["weights"] = {"source": Path(weights).name}  # relative: beside the project file
    save_project(project, project_path)
    code = main(["train", project_path, *DATA, "--json", "--replace-head", "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    first = json.loads(captured.out.splitlines()[0])
    assert first["weights"]["source"] == weights and first["weights"]["kept"] > 0
    assert f"starting from the weights the project records: {weights} (--no-weights starts fresh)" in captured.err

    code = main(["train", project_path, *DATA, "--json", "--replace-head", "--no-weights",
                 "--out", str(tmp_path / "fresh")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "weights" not in json.loads(captured.out.splitlines()[0])
    assert main(["train", project_path, *DATA, "--weights", weights, "--no-weights"]) == 2
    assert "contradict" in capsys.readouterr().err
