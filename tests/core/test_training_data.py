"""Data sources: shapes, synthetic, MNIST idx / CIFAR pickles / image folders written by the test in
the real formats, augmentation, batch plans (incl. DDP sharding) and the data/graph fit check."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.training.data import (
    DatasetError,
    check_fit,
    open_dataset,
    parse_spec,
    shapes_source,
    synthetic_source,
)
from core.training.data import shapes as shapes_mod
from core.training.data.base import Augment, apply_augment, draw_augment, shard_plan

CPU = torch.device("cpu")


# ----------------------------------------------------------------------------------------- shapes


def test_shapes_deterministic_balanced_uint8() -> None:
    x1, y1 = shapes_mod.generate(200, seed=3)
    x2, y2 = shapes_mod.generate(200, seed=3)
    x3, _ = shapes_mod.generate(200, seed=4)
    assert x1.dtype == torch.uint8 and x1.shape == (200, 3, 32, 32)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert torch.bincount(y1, minlength=10).tolist() == [20] * 10
    # every image shows something: the shape differs from the background
    assert (x1.float().std(dim=(1, 2, 3)) > 10).all()


def test_the_gan_task_gets_plain_shapes_one_colour_on_black() -> None:
    # the same shapes (same labels, same outlines) without the background, its gradient and the noise
    gan = open_dataset("shapes", task="gan", train_size=60, val_size=10)
    natural = open_dataset("shapes", task="classification", train_size=60, val_size=10)
    plain_x, natural_x = gan.train.images, natural.train.images  # type: ignore[attr-defined]
    assert torch.equal(gan.train.labels, natural.train.labels)  # type: ignore[attr-defined]
    for image in plain_x:
        pixels = image.reshape(3, -1).T.float()
        black = (pixels == 0).all(dim=1)
        assert 0.3 < black.float().mean() < 0.97  # background, and a shape on it
        inside = pixels[pixels.amin(dim=1) > 0]
        colour = inside.amax(dim=0)  # the shape's colour: every shape pixel is a share of it (anti-aliased edge)
        assert colour.min() >= 0.5 * 255 and torch.allclose(inside / colour, (inside / colour)[:, :1], atol=0.03)
    corners = natural_x[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners.float().std(dim=2) > 0).all(dim=1).float().mean() > 0.9  # there: gradient and noise


def test_shapes_source_metadata_and_preview() -> None:
    src = shapes_source(seed=0, train=100, val=40)
    assert src.classes == shapes_mod.CLASSES and src.num_classes == 10
    assert src.sample_shape == (3, 32, 32)
    assert (src.train_count, src.val_count) == (100, 40)
    assert len(src.mean) == 3 and all(0.0 < s < 1.0 for s in src.std)
    images, labels = src.preview(8)
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8 and len(labels) == 8
    assert sum(src.class_counts("val")) == 40
    assert src.describe()["train_count"] == 100


def test_spec_parsing() -> None:
    assert parse_spec("shapes").kind == "shapes"
    assert parse_spec("Fashion_MNIST:/d").kind == "fashion-mnist"
    assert parse_spec("cifar-10").kind == "cifar10"
    assert parse_spec("synthetic:1,8,8,3").arg == "1,8,8,3"
    for bad, words in [("imagenet", "unknown dataset"), ("folder", "folder needs a path"),
                       ("synthetic:3,32", "four positive integers"), ("synthetic:3,8,8,1", "CLASSES")]:
        with pytest.raises(DatasetError, match=words):
            parse_spec(bad)


def test_synthetic_any_shape() -> None:
    src = open_dataset("synthetic:1,5,7,3", train_size=30, val_size=6)
    assert src.sample_shape == (1, 5, 7) and src.num_classes == 3
    assert (src.train_count, src.val_count) == (30, 6)


# ------------------------------------------------------------------------------------ batches


def test_batches_cover_every_sample_once_and_normalise() -> None:
    src = synthetic_source((2, 4, 4), 3, train=50, val=10)
    gen = torch.Generator().manual_seed(0)
    stream = src.batches("train", 16, CPU, gen)
    assert len(stream) == 4
    ys, xs = [], []
    for x, y in stream:
        assert x.dtype == torch.float32
        xs.append(x)
        ys.append(y)
    assert sum(len(y) for y in ys) == 50
    x_all = torch.cat(xs)
    assert abs(float(x_all.mean())) < 0.2 and abs(float(x_all.std()) - 1) < 0.2
    assert sorted(torch.cat(ys).tolist()) == sorted(src.train.labels.tolist())


def test_same_generator_state_same_batches() -> None:
    src = synthetic_source((1, 6, 6), 2, train=40, val=8)
    aug = Augment(crop_padding=2, hflip=True)
    runs = []
    for _ in range(2):
        gen = torch.Generator().manual_seed(5)
        runs.append([x for x, _ in src.batches("train", 8, CPU, gen, aug)])
    assert all(torch.equal(a, b) for a, b in zip(*runs, strict=True))


def test_augment_crop_and_flip_per_sample() -> None:
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.uint8).view(2, 1, 3, 3)
    aug = Augment(crop_padding=1, hflip=True)
    # shift (1, 1) is the identity window; (0, 0) moves the image down-right with zero fill
    draws = {"shift": torch.tensor([[1, 1], [0, 0]]), "flip": torch.tensor([True, False])}
    out = apply_augment(x, aug, draws)
    assert torch.equal(out[0], x[0].flip(2))
    expected = torch.zeros(1, 3, 3, dtype=torch.uint8)
    expected[:, 1:, 1:] = x[1, :, :2, :2]
    assert torch.equal(out[1], expected)
    drawn = draw_augment(aug, 5, torch.Generator().manual_seed(0))
    assert drawn["shift"].shape == (5, 2) and int(drawn["shift"].max()) <= 2


def test_ddp_shards_union_is_the_global_batch() -> None:
    src = synthetic_source((1, 4, 4), 2, train=64, val=8)
    single = list(src.batches("train", 16, CPU, torch.Generator().manual_seed(1), Augment(hflip=True)))
    shards = [list(src.batches("train", 16, CPU, torch.Generator().manual_seed(1), Augment(hflip=True),
                               rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(single) == 4
    for step, (x, y) in enumerate(single):
        merged_x = torch.empty_like(x)
        merged_y = torch.empty_like(y)
        for r in range(2):
            merged_x[r::2], merged_y[r::2] = shards[r][step]
        assert torch.equal(merged_x, x) and torch.equal(merged_y, y)


def test_shard_plan_pads_evenly_and_needs_divisible_batch() -> None:
    plan = shard_plan(torch.arange(10), 4, world=2, drop_last=False)
    assert plan.order.numel() == 10 and plan.steps == 3
    assert shard_plan(torch.arange(11), 4, world=2, drop_last=False).order.numel() == 12
    with pytest.raises(DatasetError, match="multiple of the number of processes"):
        shard_plan(torch.arange(10), 5, world=2, drop_last=False)


# ------------------------------------------------------------------------------------ MNIST idx


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    files = {"train-images-idx3-ubyte": train_x,
             "train-labels-idx1-ubyte": np.arange(n_train) % 10,
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             "t10k-labels-idx1-ubyte": np.arange(n_test) % 10}
    for name, arr in files.items():
        data = _idx_bytes(arr)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return train_x


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_torchvision_layout(tmp_path: Path, gz: bool) -> None:
    train_x = _write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    src = open_dataset(f"mnist:{tmp_path}", download=False)
    assert src.sample_shape == (1, 28, 28) and src.num_classes == 10
    assert (src.train_count, src.val_count) == (12, 5)
    assert torch.equal(src.train.images[:, 0], torch.from_numpy(train_x))
    assert src.train.labels.tolist()[:3] == [0, 1, 2]


def test_fashion_mnist_flat_folder_and_class_names(tmp_path: Path) -> None:
    _write_mnist(tmp_path)  # the files directly in DIR also load
    src = open_dataset(f"fashion-mnist:{tmp_path}", download=False)
    assert src.classes[0] == "T-shirt/top" and src.classes[9] == "Ankle boot"


def test_mnist_missing_offline_says_where(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        open_dataset(f"mnist:{tmp_path}", download=False)
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte.gz" in msg


def test_mnist_truncated_file_is_named(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    _write_mnist(raw, gz=False)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        open_dataset(f"mnist:{tmp_path}", download=False)


# ---------------------------------------------------------------------------------------- CIFAR


def _write_cifar(folder: Path, per_batch: int = 4) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, per_batch)], b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))


def test_cifar10_pickled_batches(tmp_path: Path) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py")
    src = open_dataset(f"cifar10:{tmp_path}", download=False)
    assert src.sample_shape == (3, 32, 32)
    assert (src.train_count, src.val_count) == (20, 4)
    assert src.classes[1] == "automobile"


def test_cifar10_refuses_code_in_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Path("x")}))
    with pytest.raises(DatasetError, match="not a CIFAR-10 batch"):
        open_dataset(f"cifar10:{tmp_path}", download=False)


def test_cifar10_missing_offline(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        open_dataset(f"cifar10:{tmp_path}", download=False)


# -------------------------------------------------------------------------------------- folders


def _write_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (20, 12)) -> None:
    rng = np.random.default_rng(2)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")


def test_folder_split_corrupt_image_skipped_and_reported(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"cats": 6, "dogs": 4})
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"not an image at all")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    src = open_dataset(f"folder:{tmp_path}", image_shape=(3, 8, 8), val_fraction=0.25, workers=0)
    assert src.classes == ("cats", "dogs") and not src.in_memory
    assert src.class_to_idx == {"cats": 0, "dogs": 1}
    assert src.train_count + src.val_count == 11
    assert src.val_count >= 2  # every class keeps validation images
    for _ in range(2):  # two epochs: the same bad file is counted once
        seen = 0
        for split in ("train", "val"):
            for x, y in src.batches(split, 4, CPU, torch.Generator().manual_seed(0), Augment(hflip=True)):
                assert x.shape[1:] == (3, 8, 8) and x.dtype == torch.float32
                seen += len(y)
        assert seen == 10  # every readable image, once
    assert src.report() == f"skipped 1 unreadable image: {Path(tmp_path.name) / 'dogs' / 'broken.jpg'}"


def test_folder_train_val_subfolders_and_grey(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train", {"a": 3, "b": 2})
    _write_folder(tmp_path / "val", {"b": 1})
    src = open_dataset(f"folder:{tmp_path}", image_shape=(1, 6, 6), workers=0)
    assert src.classes == ("a", "b")
    assert (src.train_count, src.val_count) == (5, 1)
    images, labels = src.preview(4, "val")
    assert images.shape == (1, 1, 6, 6) and labels == [1]


def test_folder_without_classes_explains(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no class subfolders"):
        open_dataset(f"folder:{tmp_path}", image_shape=(3, 8, 8))


# ------------------------------------------------------------------------------------ fit check


def test_check_fit_messages_and_fixes() -> None:
    from core.analysis import analyze
    from core.project import load_project
    from tests.conftest import ROOT

    project = load_project(ROOT / "resources" / "demo_lenet.json")
    analysis = analyze(project.graph)
    assert check_fit(shapes_source(0, 20, 10), analysis, project.graph) is None
    mnist_like = synthetic_source((1, 28, 28), 5, train=10, val=2)
    problem = check_fit(mnist_like, analysis, project.graph)
    assert problem is not None
    assert "1×28×28" in problem.message and "3×32×32" in problem.message and "fc3.out_features to 5" in problem.message
    fixes = {(f.node, f.param): f.value for f in problem.fixes}
    assert fixes == {("input", "shape"): [1, 28, 28], ("fc3", "out_features"): 5}
