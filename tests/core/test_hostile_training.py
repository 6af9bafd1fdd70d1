"""Hostile training input (issue 11): settings out of torch's range or not finite, bad files in a
run or image folder. Each is refused with one sentence naming what and where, never a traceback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.training.config import ConfigError, TrainConfig
from core.training.data import synthetic_source
from core.training.options import SEED, all_params
from core.training.runs import RunFolder, RunFolderError, load_checkpoint


def test_seed_range_is_torchs() -> None:
    assert SEED.problem(2**64 - 1) is None and SEED.problem(0) is None
    message = SEED.problem(2**70)
    assert message == ("must be below 18446744073709551616 (torch accepts seeds from 0 to 2**64 - 1), "
                       "got 1180591620717411303424")
    with pytest.raises(ConfigError, match=r"^training\.seed: must be below"):
        TrainConfig(seed=2**64)


def test_the_largest_seed_generates_data() -> None:
    # derived seeds (seed + offset) wrap instead of overflowing torch's generator
    source = synthetic_source((1, 4, 4), 2, train=4, val=2, seed=2**64 - 1)
    assert len(source.train.labels) == 4


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_every_float_setting_refuses_non_finite_numbers(bad: float) -> None:
    floats = [p for p in all_params() if p.kind in (float, tuple)]
    assert {"lr", "momentum", "weight_decay", "warmup_epochs", "gamma", "label_smoothing", "betas"} <= {
        p.key for p in floats}
    for p in floats:
        value = (bad, 0.5) if p.kind is tuple else bad
        with pytest.raises(ConfigError, match=rf"^training\.{p.key}: must be ") as caught:
            TrainConfig(**{p.key: value})
        assert "\n" not in str(caught.value)
    for name in ("grad_clip", "probe_interval"):
        with pytest.raises(ConfigError, match=rf"^training\.{name}: must be a finite number"):
            TrainConfig(**{name: bad})
    with pytest.raises(ConfigError, match=r"^training\.aux_weights: must be a list of finite numbers"):
        TrainConfig(aux_weights=[0.3, bad])


class _Payload:
    """An object whose unpickling would run code (``os.getcwd`` stands in for anything worse)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        import os

        return os.getcwd, ()


def test_a_checkpoint_with_code_is_refused_in_one_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "run" / "checkpoints" / "last.pt"
    bad.parent.mkdir(parents=True)
    torch.save({"format": "netcanvas-checkpoint", "model": _Payload()}, bad)
    with pytest.raises(RunFolderError) as caught:
        load_checkpoint(tmp_path / "run")
    assert str(caught.value) == f"{bad} is not a NetCanvas checkpoint or contains code; it was not loaded"


def test_a_truncated_checkpoint_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "last.pt"
    torch.save({"format": "netcanvas-checkpoint", "x": torch.zeros(100)}, bad)
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(RunFolderError) as caught:
        load_checkpoint(bad)
    message = str(caught.value)
    assert message.startswith(f"cannot read the checkpoint {bad} (damaged or not a checkpoint): ")
    assert "\n" not in message


def test_resuming_from_a_checkpoint_with_code_exits_2_in_one_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "run" / "checkpoints" / "last.pt"
    bad.parent.mkdir(parents=True)
    torch.save({"format": "netcanvas-checkpoint", "model": _Payload()}, bad)
    assert main(["train", "--resume", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{bad} is not a NetCanvas checkpoint or contains code; it was not loaded")
    assert len(err.splitlines()) == 1


def test_a_word_in_metrics_csv_is_named_by_line_and_column(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.create()
    (folder.path / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n2,oops\n", encoding="utf-8")
    with pytest.raises(RunFolderError) as caught:
        folder.read_metrics()
    assert str(caught.value) == f"{folder.path / 'metrics.csv'}, line 3, column train_loss: 'oops' is not a number"


def test_a_run_says_running_from_its_first_file_until_it_ends(tmp_path: Path) -> None:
    from core.training.runs import run_status

    run = tmp_path / "run"
    seen: list[str] = []

    def epoch_end(_m: object) -> None:
        seen.append(run_status(RunFolder(run)))

    source = synthetic_source((1, 4, 4), 2, train=4, val=2)
    from core.training.engine import Trainer
    from core.training.events import Callbacks

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    trainer = Trainer(model, source, TrainConfig(epochs=1, batch_size=4, device="cpu"), Callbacks(epoch_end=epoch_end),
                      run_dir=run)
    assert trainer.run().status == "completed"
    assert seen == ["running"] and run_status(RunFolder(run)) == "completed"


def _image_folder(root: Path, per_class: int = 21) -> None:
    """Two classes of tiny PNGs, the very first and very last file unreadable, and an empty class."""
    from PIL import Image

    for c, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (200 * c, 40 + i, 90)).save(root / name / f"{i:02d}.png")
    (root / "a" / "00.png").write_bytes(b"not an image")
    (root / "b" / f"{per_class - 1:02d}.png").write_bytes(b"not an image")
    (root / "c").mkdir()  # a class folder with nothing in it yet


def test_a_folder_whose_end_files_are_unreadable_still_trains_and_says_what_it_left_out(tmp_path: Path) -> None:
    from core.training.data.folder import FolderSource
    from core.training.engine import Trainer
    from core.training.events import Callbacks

    _image_folder(tmp_path / "data")
    source = FolderSource(tmp_path / "data", shape=(3, 8, 8), val_fraction=0.0, workers=0)
    assert source.classes == ("a", "b") and source.count("train") == 42
    warnings: list[str] = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    trainer = Trainer(model, source, TrainConfig(epochs=1, batch_size=16, device="cpu", val_fraction=0.0),
                      Callbacks(warning=warnings.append))
    summary = trainer.run()
    assert summary.status == "completed", summary.message  # was "has no training images"
    said = " ".join(warnings)
    assert "left out the class folder c (no images in it)" in said
    assert "skipped 2 unreadable images" in said and "a/00.png" in said.replace("\\", "/")
    assert source.describe()["empty_classes"] == ["c"]


def test_a_folder_of_unreadable_files_is_refused_after_looking_past_the_first_few(tmp_path: Path) -> None:
    from core.training.data.folder import PREVIEW_TRIES, FolderSource

    _image_folder(tmp_path / "data", per_class=3)
    for f in (tmp_path / "data").rglob("*.png"):
        f.write_bytes(b"not an image")
    source = FolderSource(tmp_path / "data", shape=(3, 8, 8), val_fraction=0.0, workers=0)
    images, _ = source.preview(2)
    assert images.shape[0] == 0 and len(source.skipped) == 6 <= PREVIEW_TRIES  # every file was tried
