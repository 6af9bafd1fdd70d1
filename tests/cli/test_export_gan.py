"""``main.py export --network``: one network of a GAN as Python or ONNX that loads the run's weights;
a GAN without ``--network`` is refused in one line (.py/.onnx) or saved whole (.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.cli import main
from core.compiler import compile_graph
from core.gan_graph import split_gan
from core.project import load_project, project_to_dict
from core.training.gan_sample import load_generator
from core.training.runs import CHECKPOINT_FORMAT, RunFolder
from templates import build_template
from tests.cli.test_sample import make_gan_run


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gan_run(tmp_path_factory.mktemp("gan") / "run", template="dcgan")


def _exported_class(path: Path) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # our own generated file
    classes = [v for k, v in namespace.items() if k.startswith("DCGAN")]  # the model, not its block classes
    assert len(classes) == 1, list(namespace)
    return classes[0]


def test_exported_generator_loads_the_runs_generator_weights(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "generator.py"
    assert main(["export", str(gan_run / "graph.json"), "--network", "generator", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    text = out.read_text()
    assert "Generator: a network exported by NetCanvas" in text and "discriminator" not in text
    model = _exported_class(out)()
    ckpt = torch.load(gan_run / "checkpoints" / "last.pt", weights_only=True)
    model.load_state_dict(ckpt["generator"], strict=True)
    model.eval()
    ours, noise_shape = load_generator(gan_run)
    z = torch.randn(3, *noise_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(z), ours(z))


def test_exported_discriminator_loads_the_runs_discriminator_weights(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "discriminator.py"
    assert main(["export", str(gan_run / "graph.json"), "--network", "discriminator", "-o", str(out)]) == 0
    model = _exported_class(out)()
    model.load_state_dict(torch.load(gan_run / "checkpoints" / "last.pt", weights_only=True)["discriminator"],
                          strict=True)
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


@pytest.mark.parametrize("ext", [".py", ".onnx"])
def test_a_gan_without_network_is_refused_in_one_line(tmp_path, capsys, ext) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", "template:dcgan-mnist", "-o", str(tmp_path / f"gan{ext}")]) == 2
    assert _one_line_error(capsys.readouterr().err) == (
        "error: template:dcgan-mnist is a GAN (a generator and a discriminator): export one network with "
        "--network generator or --network discriminator")
    assert list(tmp_path.iterdir()) == []


def test_json_saves_the_whole_gan_or_one_network(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    whole = tmp_path / "gan.json"
    assert main(["export", "template:dcgan-mnist", "-o", str(whole)]) == 0
    assert json.loads(whole.read_text())["training"]["task"] == "gan"
    assert {g for g in load_project(whole).graph.groups if "." not in g} == {"generator", "discriminator"}
    one = tmp_path / "disc.json"
    assert main(["export", "template:dcgan-mnist", "--network", "discriminator", "-o", str(one)]) == 0
    project = load_project(one)
    assert project.name == "DCGAN 28×28 (MNIST) Discriminator" and project.training == {}
    assert all(n == "image" or n == "logit" or n.startswith("discriminator.") for n in project.graph.nodes)


def test_network_on_a_project_that_is_not_a_gan(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", "template:lenet5", "--network", "generator", "-o", str(tmp_path / "g.py")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert line.startswith("error: template:lenet5: --network applies to a GAN project, and this is not one: ")
    assert list(tmp_path.iterdir()) == []


def test_ordinary_projects_export_as_before(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", "template:lenet5", "-o", str(tmp_path / "lenet.py")]) == 0


@pytest.mark.slow  # torch's ONNX exporter takes a few seconds on its first use
def test_generator_onnx_matches_the_compiled_generator(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    out = tmp_path / "g.onnx"
    assert main(["export", "template:dcgan-mnist", "--network", "generator", "-o", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert len(session.get_inputs()) == 1
    z = torch.randn(5, 100, 1, 1, generator=torch.Generator().manual_seed(1))
    (got,) = session.run(None, {session.get_inputs()[0].name: z.numpy()})
    model = compile_graph(split_gan(build_template("dcgan-mnist").graph).generator, seed=0).eval()
    with torch.no_grad():
        np.testing.assert_allclose(got, model(z).numpy(), atol=1e-5, rtol=1e-4)


def _onnx_out(path: Path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return got


@pytest.mark.slow  # torch's ONNX exporter
def test_onnx_from_a_run_folder_holds_the_trained_generator(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "g.onnx"
    assert main(["export", str(gan_run), "--network", "generator", "-o", str(out)]) == 0
    model, noise_shape = load_generator(gan_run)
    z = torch.randn(3, *noise_shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        np.testing.assert_allclose(_onnx_out(out, z), model(z).numpy(), atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # torch's ONNX exporter
def test_onnx_from_a_classifier_run_holds_its_model_weights(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    project = build_template("lenet5")
    model = compile_graph(project.graph, seed=5).eval()
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_json("graph.json", project_to_dict(project))
    folder.save_checkpoint("last.pt", {"format": CHECKPOINT_FORMAT, "epoch": 1, "model": model.state_dict()})
    out = tmp_path / "lenet.onnx"
    assert main(["export", str(folder.path), "-o", str(out)]) == 0
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(_onnx_out(out, x), model(x).numpy(), atol=1e-5, rtol=1e-4)


def test_python_from_a_run_folder_says_where_the_weights_are(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "d.py"
    assert main(["export", str(gan_run), "--network", "discriminator", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    ckpt = gan_run / "checkpoints" / "last.pt"
    assert lines == [f"wrote {out}", f"its trained weights: model.load_state_dict(torch.load({str(ckpt)!r}, "
                                     "weights_only=True)['discriminator'])"]


def test_run_folder_errors(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["export", str(gan_run), "-o", str(tmp_path / "g.onnx")]) == 2
    assert "is a GAN" in _one_line_error(capsys.readouterr().err)
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "g.py")]) == 2
    assert "graph.json is missing" in _one_line_error(capsys.readouterr().err)
    mismatched = make_gan_run(tmp_path / "bad", template="dcgan")  # 32×32 weights, a 28×28 graph
    RunFolder(mismatched).write_json("graph.json", project_to_dict(build_template("dcgan-mnist")))
    assert main(["export", str(mismatched), "--network", "generator", "-o", str(tmp_path / "g.onnx")]) == 1
    assert "do not fit the generator" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "g.onnx").exists()
