"""Folder images through the pretrained weights' input pipeline equal torchvision's own transforms.

The reference is ``ResNet18_Weights.IMAGENET1K_V1.transforms()`` applied to the PIL image (what a
hand-written torchvision fine-tuning loop feeds). Both sides go through Pillow's resize with the
same sizes and crop offsets, so the uint8 images before normalisation are compared exactly
(tolerance 0). After normalisation the only difference is float32 arithmetic order (our
``Normalizer`` is one multiply-add ``x·1/(255·std) − mean/std``; torchvision divides by 255, then
subtracts and divides): values of magnitude ≤ 2.7 agree within 1e-5, far below one uint8 level
(1/(255·0.225) ≈ 0.017). Large JPEGs are decoded at a reduced scale (JPEG draft) for speed, which
is not bit-identical: there the test bounds the difference in uint8 levels.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from core.training.data import FolderSource, check_fit, check_pipeline, open_dataset
from core.training.data.folder import decode_image, pipeline_resize
from core.training.weights import InputPipeline, resolve

torchvision = pytest.importorskip("torchvision")

RESNET = "ResNet18_Weights.IMAGENET1K_V1"
CPU = torch.device("cpu")


def _reference(path: Path, weights_name: str = RESNET) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's transform of the file: (uint8 before normalisation, the normalised float tensor)."""
    import torchvision.transforms.functional as F

    enum_name, member = weights_name.split(".")
    preset = getattr(getattr(torchvision.models, enum_name), member).transforms()
    with Image.open(path) as opened:
        rgb = opened.convert("RGB")
        normalised = preset(rgb)
        interpolation = preset.interpolation
        uint8 = F.pil_to_tensor(F.center_crop(F.resize(rgb, preset.resize_size, interpolation=interpolation),
                                              preset.crop_size))
    return uint8, normalised


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """A photo-like RGB image: smooth gradients, a few edges and some sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x * 255 / width, y * 255 / height, 128 + 100 * np.sin((x + 2 * y) / 37)], axis=-1)
    img[(x // 53 + y // 41) % 2 == 0] *= 0.6  # hard edges, like object boundaries
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


# Odd sizes: landscape and portrait with odd/even margins (CenterCrop's rounding), smaller than the
# resize (upscaled), an extreme aspect ratio, and modes converted to RGB (grey, RGBA, palette)
ODD = [((300, 257), "RGB"), ((257, 300), "RGB"), ((231, 225), "RGB"), ((181, 190), "RGB"),
       ((1001, 200), "RGB"), ((345, 283), "L"), ((287, 402), "RGBA"), ((333, 260), "P")]


@pytest.fixture
def odd_images(tmp_path: Path) -> list[Path]:
    paths = []
    for i, ((w, h), mode) in enumerate(ODD):
        img = Image.fromarray(_photo(w, h, i))
        img = img.convert(mode) if mode != "P" else img.quantize(64)
        path = tmp_path / "imgs" / f"{i}_{w}x{h}_{mode}.png"
        path.parent.mkdir(exist_ok=True)
        img.save(path)
        paths.append(path)
    return paths


def test_resnet18_pipeline_is_torchvisions() -> None:
    pipeline = resolve(RESNET, None).transforms()
    assert pipeline == InputPipeline(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")


def test_decode_equals_torchvision_transforms_exactly(odd_images: list[Path]) -> None:
    pipeline = resolve(RESNET, None).transforms()
    assert pipeline is not None
    for path in odd_images:
        ours = torch.from_numpy(decode_image(str(path), (3, 224, 224), pipeline.resize, pipeline.interpolation))
        uint8, _ = _reference(path)
        assert ours.shape == uint8.shape == (3, 224, 224), path.name
        assert torch.equal(ours, uint8), f"{path.name}: {int((ours.int() - uint8.int()).abs().max())} levels off"


def test_bicubic_weights_use_bicubic(tmp_path: Path) -> None:
    name = "EfficientNet_B0_Weights.IMAGENET1K_V1"  # resize 256, crop 224, bicubic
    pipeline = resolve(name, None).transforms()
    assert pipeline is not None and pipeline.interpolation == "bicubic"
    path = tmp_path / "x.png"
    Image.fromarray(_photo(411, 299, 9)).save(path)
    ours = torch.from_numpy(decode_image(str(path), (3, pipeline.crop, pipeline.crop), pipeline.resize,
                                         pipeline.interpolation))
    assert torch.equal(ours, _reference(path, name)[0])
    bilinear = torch.from_numpy(decode_image(str(path), (3, pipeline.crop, pipeline.crop), pipeline.resize))
    assert not torch.equal(ours, bilinear)  # the interpolation did matter


def test_folder_batches_equal_torchvision_normalised(tmp_path: Path, odd_images: list[Path]) -> None:
    root = tmp_path / "data"
    for i, path in enumerate(odd_images):
        (root / ("ab"[i % 2])).mkdir(parents=True, exist_ok=True)
        path.rename(root / "ab"[i % 2] / path.name)
    pipeline = resolve(RESNET, None).transforms()
    assert pipeline is not None
    src = open_dataset(f"folder:{root}", image_shape=(3, 224, 224), val_fraction=0.0, workers=0, pipeline=pipeline)
    assert isinstance(src, FolderSource)
    assert (src.mean, src.std, src.resize) == (pipeline.mean, pipeline.std, 256)
    order = [p for p, _ in src._items["train"]]
    got = torch.cat([x for x, _ in src.batches("train", 3, CPU, None)])
    want = torch.stack([_reference(Path(p))[1] for p in order])
    assert got.shape == want.shape == (len(odd_images), 3, 224, 224)
    assert float((got - want).abs().max()) < 1e-5
    # the preview (the GUI's dataset panel) is the same uint8 images the batches come from
    images, _labels = src.preview(2)
    assert torch.equal(images[0], torch.from_numpy(src.decode(order[0])))
    assert src.describe()["pipeline"]["crop"] == 224 and src.describe()["resize"] == 256


def test_large_jpeg_decoded_at_reduced_scale_stays_close(tmp_path: Path) -> None:
    # JPEG draft decodes at 1/2 … 1/8 scale (still ≥ 2× the resize) and resizes from the full image's
    # box: not bit-identical to decoding whole. Measured on these (scale 1/2 and 1/4): mean 0.35 and 0.64,
    # max 4 and 5 levels (a pure-noise image: mean 0.46, max 8); the bounds leave room for other libjpeg builds.
    pipeline = resolve(RESNET, None).transforms()
    assert pipeline is not None
    for i, (w, h) in enumerate([(1999, 1500), (3001, 2049)]):
        path = tmp_path / f"big{i}.jpg"
        Image.fromarray(_photo(w, h, 20 + i)).save(path, quality=92)
        ours = torch.from_numpy(decode_image(str(path), (3, 224, 224), pipeline.resize)).int()
        diff = (ours - _reference(path)[0].int()).abs().float()
        assert float(diff.mean()) < 1.5 and float(diff.max()) <= 16, (path.name, diff.mean(), diff.max())


def test_input_smaller_than_the_weights_keeps_the_crop_share(tmp_path: Path) -> None:
    pipeline = resolve(RESNET, None).transforms()
    assert pipeline is not None
    assert pipeline_resize(pipeline, (3, 224, 224)) == 256
    assert pipeline_resize(pipeline, (3, 160, 160)) == 183  # 256·160/224
    assert pipeline_resize(pipeline, (3, 160, 200)) == 229  # the larger side decides
    path = tmp_path / "x.png"
    Image.fromarray(_photo(500, 375, 3)).save(path)
    assert decode_image(str(path), (3, 160, 200), 229).shape == (3, 160, 200)
    # a crop larger than the resize still comes out whole (scaled to cover it)
    assert decode_image(str(path), (3, 300, 300), 256).shape == (3, 300, 300)


def _analysis(shape: tuple[int, ...], classes: int = 2) -> SimpleNamespace:
    return SimpleNamespace(input_shape=shape, output_shapes=[(classes,)])


def _two_class_folder(root: Path) -> Path:
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        Image.fromarray(_photo(300, 240, len(name))).save(root / name / "0.png")
    return root


def test_check_pipeline_warns_about_the_input_size_without_failing_the_fit(tmp_path: Path) -> None:
    pipeline = resolve(RESNET, None).transforms()
    root = _two_class_folder(tmp_path / "pets")
    small = open_dataset(f"folder:{root}", image_shape=(3, 160, 160), workers=0, pipeline=pipeline)
    assert check_fit(small, _analysis((3, 160, 160))) is None  # it fits: training is not refused
    note = check_pipeline(small, _analysis((3, 160, 160)))
    assert note is not None
    assert note.message == ("the weights were trained at 224×224; your Input is 160×160 — accuracy may drop; "
                            "set the Input to 3×224×224")
    assert [(f.param, f.value) for f in note.fixes] == [("shape", [3, 224, 224])]
    right = open_dataset(f"folder:{root}", image_shape=(3, 224, 224), workers=0, pipeline=pipeline)
    assert check_pipeline(right, _analysis((3, 224, 224))) is None
    plain = open_dataset(f"folder:{root}", image_shape=(3, 160, 160), workers=0)
    assert check_pipeline(plain, _analysis((3, 160, 160))) is None  # no weights, nothing to say
    # a source that does not apply a pipeline (CIFAR in memory) can still be checked against one
    assert check_pipeline(plain, _analysis((3, 32, 32)), pipeline=pipeline) is not None


def test_without_a_pipeline_folders_behave_as_before(tmp_path: Path) -> None:
    root = _two_class_folder(tmp_path / "pets")
    src = open_dataset(f"folder:{root}", image_shape=(3, 64, 64), workers=0)
    assert isinstance(src, FolderSource)
    assert src.pipeline is None and src.resize is None
    assert src.mean == (0.485, 0.456, 0.406) and src.std == (0.229, 0.224, 0.225)
    # the shorter side (240) is scaled to just cover 64, not resized to the weights' 256/224 share
    with Image.open(root / "cats" / "0.png") as opened:
        covered = np.array(opened.convert("RGB").resize((80, 64), Image.Resampling.BILINEAR))
    assert np.array_equal(src.decode(str(root / "cats" / "0.png")), covered[:, 8:72].transpose(2, 0, 1))
    assert "pipeline" not in src.describe()


def test_grey_input_keeps_its_own_statistics(tmp_path: Path) -> None:
    pipeline = resolve(RESNET, None).transforms()
    root = _two_class_folder(tmp_path / "pets")
    src = open_dataset(f"folder:{root}", image_shape=(1, 224, 224), workers=0, pipeline=pipeline)
    assert isinstance(src, FolderSource)
    assert (src.mean, src.std, src.resize) == ((0.5,), (0.25,), 256)
    assert src.preview(1)[0].shape == (1, 1, 224, 224)


def test_session_opens_folders_through_the_projects_weights_pipeline(tmp_path: Path) -> None:
    from core.project import load_project
    from core.training import TrainConfig, TrainingSession
    from tests.conftest import ROOT

    root = tmp_path / "digits"
    for k in range(10):  # the demo LeNet: 3×32×32 in, 10 classes out
        (root / f"c{k}").mkdir(parents=True)
        for i in range(2):
            Image.fromarray(_photo(60 + 7 * i, 45, k * 2 + i)).save(root / f"c{k}" / f"{i}.png")
    config = TrainConfig(dataset=f"folder:{root}", epochs=1, batch_size=4, device="cpu", workers=0,
                         val_fraction=0.5, probe_interval=0.0)
    project = load_project(ROOT / "resources" / "demo_lenet.json")
    plain = TrainingSession(project, config).build().data
    assert isinstance(plain, FolderSource) and plain.pipeline is None
    project.extra["weights"] = {"source": RESNET}  # what loading ResNet-18's ImageNet weights records
    data = TrainingSession(project, config).build().data
    assert isinstance(data, FolderSource) and data.pipeline == resolve(RESNET, None).transforms()
    assert data.resize == 37  # 256·32/224: a 32×32 Input keeps the weights' crop share
