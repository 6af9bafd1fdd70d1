"""``main.py sample``: a PNG grid from a GAN run's generator; exit codes 0/1/2 and one-line errors.

The run folder is made the way the GAN engine writes one (graph.json = the project, and
checkpoints/last.pt in the checkpoint format with the generator's and discriminator's state_dicts).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.compiler import compile_graph
from core.gan_graph import split_gan
from core.project import project_to_dict
from core.training.gan_sample import GAP, grid_image, load_generator, to_uint8
from core.training.runs import CHECKPOINT_FORMAT, RunFolder
from templates import build_template
from tests.conftest import ROOT


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_gan_run(path: Path, template: str = "dcgan-mnist", seed: int = 0, **extra: object) -> Path:
    project = build_template(template)
    nets = split_gan(project.graph)
    g = compile_graph(nets.generator, seed=seed)
    d = compile_graph(nets.discriminator, seed=seed)
    with torch.no_grad():  # running statistics a trained generator would have (not the fresh 0/1)
        for name, buf in g.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-0.1, 0.1)
    folder = RunFolder(path)
    folder.create()
    folder.write_json("graph.json", project_to_dict(project))
    payload = {"format": CHECKPOINT_FORMAT, "epoch": 1, "task": "gan", "generator": g.state_dict(),
               "discriminator": d.state_dict(), "fixed_noise": torch.randn(4, *nets.noise_shape), **extra}
    folder.save_checkpoint("last.pt", payload)
    return path


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_gan_run(tmp_path_factory.mktemp("gan") / "run")


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB"
        return np.array(im)


def test_sample_writes_a_seeded_grid_of_the_generators_images(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "grid.png"
    assert main(["sample", str(gan_run), "-n", "10", "--nrow", "5", "-o", str(out), "--seed", "7"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (10 images of 1×28×28)"
    grid = _png(out)
    assert grid.shape == (2 * 28 + GAP, 5 * 28 + 4 * GAP, 3)
    # the same images by hand: z ~ N(0, 1) from a generator seeded 7, through the run's generator
    model, noise_shape = load_generator(gan_run)
    assert noise_shape == (100, 1, 1) and not model.training
    z = torch.randn((10, *noise_shape), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = grid_image(to_uint8(model(z)), 5).numpy()
    assert np.array_equal(grid, expected)
    again = tmp_path / "again.png"
    assert main(["sample", str(gan_run), "-n", "10", "--nrow", "5", "-o", str(again), "--seed", "7"]) == 0
    assert np.array_equal(_png(again), grid)
    other = tmp_path / "other.png"
    assert main(["sample", str(gan_run), "-n", "10", "--nrow", "5", "-o", str(other), "--seed", "8"]) == 0
    assert not np.array_equal(_png(other), grid)


def test_loaded_generator_holds_the_checkpoints_weights(gan_run) -> None:  # type: ignore[no-untyped-def]
    model, _ = load_generator(gan_run)
    saved = torch.load(gan_run / "checkpoints" / "last.pt", weights_only=True)["generator"]
    assert model.state_dict().keys() == saved.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())


def test_default_grid_is_square(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "g.png"
    assert main(["sample", str(gan_run), "-n", "9", "-o", str(out)]) == 0
    assert _png(out).shape == (3 * 28 + 2 * GAP, 3 * 28 + 2 * GAP, 3)


def test_through_the_real_entry_point(gan_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "grid.png"
    proc = subprocess.run([sys.executable, "main.py", "sample", str(gan_run), "-n", "4", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _png(out).shape == (2 * 28 + GAP, 2 * 28 + GAP, 3)


@pytest.mark.parametrize("args, message", [
    (["-n", "0"], "-n must be between 1 and 10,000, got 0"),
    (["-n", "20000"], "-n must be between 1 and 10,000"),
    (["--nrow", "0"], "--nrow must be at least 1"),
])
def test_bad_numbers_are_usage_errors(gan_run, tmp_path, capsys, args, message) -> None:  # type: ignore[no-untyped-def]
    assert main(["sample", str(gan_run), "-o", str(tmp_path / "g.png"), *args]) == 2
    assert message in _one_line_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs_are_usage_errors(gan_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["sample", str(gan_run), "-o", str(tmp_path / "g.jpg")]) == 2
    assert "must end in .png" in _one_line_error(capsys.readouterr().err)
    assert main(["sample", str(gan_run), "-o", str(tmp_path / "no" / "g.png")]) == 2
    assert "does not exist" in _one_line_error(capsys.readouterr().err)
    (tmp_path / "dir.png").mkdir()
    assert main(["sample", str(gan_run), "-o", str(tmp_path / "dir.png")]) == 2
    assert "is a folder" in _one_line_error(capsys.readouterr().err)


def test_unwritable_output_is_a_usage_error(gan_run, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a read-only folder cannot stop root (CI's containers), so the write itself is refused
    def refuse(target: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("core.training.gan_sample.atomic_write_bytes", refuse)
    assert main(["sample", str(gan_run), "-n", "4", "-o", str(tmp_path / "g.png")]) == 2
    assert _one_line_error(capsys.readouterr().err) == f"error: {tmp_path / 'g.png'}: cannot write: Permission denied"


def test_missing_and_foreign_folders(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "g.png")
    assert main(["sample", str(tmp_path / "nowhere"), "-o", out]) == 2
    assert "no such run folder" in _one_line_error(capsys.readouterr().err)
    assert main(["sample", str(tmp_path), "-o", out]) == 2
    assert "graph.json is missing" in _one_line_error(capsys.readouterr().err)


def test_a_classifier_run_is_not_a_gan_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_json("graph.json", project_to_dict(build_template("lenet5")))
    assert main(["sample", str(folder.path), "-o", str(tmp_path / "g.png")]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "is not a GAN run" in line and "exactly two separate networks" in line


def test_a_run_without_a_checkpoint_or_generator_weights(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = RunFolder(tmp_path / "run")
    folder.create()
    folder.write_json("graph.json", project_to_dict(build_template("dcgan-mnist")))
    assert main(["sample", str(folder.path), "-o", str(tmp_path / "g.png")]) == 2
    assert "no checkpoint at" in _one_line_error(capsys.readouterr().err)
    folder.save_checkpoint("last.pt", {"format": CHECKPOINT_FORMAT, "epoch": 1, "model": {}})
    assert main(["sample", str(folder.path), "-o", str(tmp_path / "g.png")]) == 2
    assert "holds no generator weights" in _one_line_error(capsys.readouterr().err)


def test_weights_of_another_generator_exit_1(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = make_gan_run(tmp_path / "run", template="dcgan")  # 3×32×32 weights …
    RunFolder(run).write_json("graph.json", project_to_dict(build_template("dcgan-mnist")))  # … 28×28 graph
    assert main(["sample", str(run), "-o", str(tmp_path / "g.png")]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "the generator weights in" in line and "do not fit the generator in" in line
    assert not (tmp_path / "g.png").exists()


def test_the_sample_parser_does_not_import_torch() -> None:
    code = ("import argparse, sys, core.cli.sample as s; s.add_parser(argparse.ArgumentParser().add_subparsers()); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
