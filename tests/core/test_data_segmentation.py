"""Segmentation data: shapes-seg, the joint image+mask augmentation, the segfolder and VOC readers
with each refusal, and the mask-target fit check whose fixes, applied, make the graph fit."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.analysis import analyze
from core.fixes import apply_fix
from core.graph import Graph
from core.training.data import DatasetError, InMemorySource, Split, check_fit, open_dataset, parse_spec
from core.training.data import seg_files as sf
from core.training.data.base import Augment
from core.training.data.segmentation import (
    IGNORE_INDEX,
    SHAPES_SEG_CLASSES,
    SegmentationSource,
    SegSplit,
    generate_scenes,
    shapes_seg_source,
    voc_colormap,
)

CPU = torch.device("cpu")


def unnormalize(x: torch.Tensor, source: SegmentationSource) -> torch.Tensor:
    """A normalised batch back to its uint8 pixels."""
    mean = torch.tensor(source.mean).view(1, -1, 1, 1)
    std = torch.tensor(source.std).view(1, -1, 1, 1)
    return ((x * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------ shapes-seg


def test_shapes_seg_scenes_deterministic_and_labelled() -> None:
    x1, m1, a1 = generate_scenes(64, seed=5)
    x2, m2, a2 = generate_scenes(64, seed=5)
    x3, m3, _ = generate_scenes(64, seed=6)
    assert x1.shape == (64, 3, 64, 64) and x1.dtype == torch.uint8
    assert m1.shape == (64, 64, 64) and m1.dtype == torch.uint8
    assert torch.equal(x1, x2) and torch.equal(m1, m2) and torch.equal(a1, a2)
    assert not torch.equal(x1, x3) and not torch.equal(m1, m3)
    assert int(m1.max()) < len(SHAPES_SEG_CLASSES)
    # every scene holds 1–3 shapes: some labelled pixels, mostly background
    labelled = (m1 > 0).flatten(1).float().mean(dim=1)
    assert bool((labelled > 0.02).all()) and bool((labelled < 0.6).all())
    # every shape kind occurs; objects are 14–40 px across (√area)
    assert set(torch.unique(m1).tolist()) == set(range(len(SHAPES_SEG_CLASSES)))
    assert 3 * 64 >= a1.numel() >= 64
    side = a1.sqrt()
    assert float(side.min()) >= 10 and float(side.max()) <= 40


def test_shapes_seg_colour_does_not_decide_the_class() -> None:
    """The mean colour of a kind's pixels is about the same for every kind (random colours)."""
    x, m, _ = generate_scenes(400, seed=1)
    means = []
    for k in range(1, len(SHAPES_SEG_CLASSES)):
        sel = (m == k).unsqueeze(1).expand_as(x)
        means.append(x[sel].float().mean().item())
    assert max(means) - min(means) < 20


def test_shapes_seg_source_metadata() -> None:
    source = open_dataset("shapes-seg", seed=2, train_size=40, val_size=12, task="segmentation")
    assert isinstance(source, SegmentationSource)
    assert source.target == "mask" and source.modality == "image"
    assert source.classes == SHAPES_SEG_CLASSES and source.num_classes == len(SHAPES_SEG_CLASSES)
    assert source.classes[0] == "background"
    assert len(source.palette) == source.num_classes and len(set(source.palette)) == source.num_classes
    assert source.ignore_index == IGNORE_INDEX == 255
    assert source.sample_shape == (3, 64, 64) and (source.train_count, source.val_count) == (40, 12)
    assert source.typical_object_px is not None and 14 <= source.typical_object_px <= 40
    counts = source.class_counts("train")
    assert len(counts) == source.num_classes and sum(counts) == 40 * 64 * 64
    d = source.describe()
    assert d["classes"] == list(SHAPES_SEG_CLASSES) and d["target"] == "mask"
    assert d["train_count"] == 40 and d["val_count"] == 12 and d["ignore_index"] == 255
    assert d["typical_object_px"] == round(source.typical_object_px, 2) and len(d["palette"]) == source.num_classes
    # train and val are different scenes
    assert not torch.equal(source.train.images[:12], source.val.images)


def test_preview_masks_match_preview() -> None:
    source = shapes_seg_source(0, 30, 10)
    images, labels = source.preview(6, "val")
    masks = source.preview_masks(6, "val")
    assert images.shape == (6, 3, 64, 64) and masks.shape == (6, 64, 64) and masks.dtype == torch.uint8
    idx = torch.linspace(0, 9, 6).round().long()
    assert torch.equal(images, source.val.images[idx]) and torch.equal(masks, source.val.masks[idx])
    for mask, label in zip(masks, labels, strict=True):
        counts = torch.bincount(mask.flatten().long(), minlength=256)[1:source.num_classes]
        assert label == int(counts.argmax()) + 1 and counts[label - 1] > 0


def test_batches_types_and_no_augment_identity() -> None:
    source = shapes_seg_source(0, 20, 8)
    x, y = next(iter(source.batches("val", 8, CPU, None)))
    assert x.dtype == torch.float32 and x.shape == (8, 3, 64, 64)
    assert y.dtype == torch.int64 and y.shape == (8, 64, 64)
    assert torch.equal(y, source.val.masks.long())
    assert torch.equal(unnormalize(x, source), source.val.images)


# --------------------------------------------------------------------------- joint augmentation


def _derived_source(n: int = 24, size: int = 16) -> SegmentationSource:
    """Random images whose mask is derivable from the pixels: class 1 where red > 127, else 0."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
    masks = (images[:, 0] > 127).to(torch.uint8)
    return SegmentationSource("derived", ("background", "red"), SegSplit(images, masks),
                              SegSplit(images[:4], masks[:4]), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def test_image_and_mask_stay_aligned_under_crop_and_flip() -> None:
    source = _derived_source()
    gen = torch.Generator().manual_seed(3)
    padded_pixels = flipped = 0
    for x, y in source.batches("train", 8, CPU, gen, Augment(crop_padding=4, hflip=True)):
        pixels = unnormalize(x, source)
        pad = y == IGNORE_INDEX
        # the padding: zero pixels in the image exactly where the mask says "ignore" (the
        # images themselves hold no zero pixel)
        assert torch.equal(pad, (pixels == 0).all(dim=1))
        assert torch.equal(y[~pad], (pixels[:, 0] > 127).long()[~pad])
        padded_pixels += int(pad.sum())
        flipped += int(sum(not any(torch.equal(p, o) for o in source.train.images) for p in pixels))
    assert padded_pixels > 0 and flipped > 0  # augmentation happened, and the masks moved with it


def test_joint_augment_draws_like_the_classification_sources() -> None:
    """The same generator gives the same order and the same crops/flips as an InMemorySource on
    the same images: the run's generator advances alike whichever task trains."""
    seg = _derived_source()
    cls = InMemorySource("cls", ("a", "b"), Split(seg.train.images, torch.zeros(24, dtype=torch.long)),
                         Split(seg.val.images, torch.zeros(4, dtype=torch.long)), mean=seg.mean, std=seg.std)
    aug = Augment(crop_padding=3, hflip=True)
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    for (xs, _), (xc, _) in zip(seg.batches("train", 8, CPU, g1, aug), cls.batches("train", 8, CPU, g2, aug),
                                strict=True):
        assert torch.equal(xs, xc)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_ddp_ranks_see_their_slice_of_one_plan() -> None:
    source = _derived_source()
    aug = Augment(crop_padding=2, hflip=True)
    whole = list(source.batches("train", 8, CPU, torch.Generator().manual_seed(5), aug))
    for rank in (0, 1):
        part = list(source.batches("train", 8, CPU, torch.Generator().manual_seed(5), aug, rank=rank, world=2))
        assert len(part) == len(whole)
        for (xp, yp), (xw, yw) in zip(part, whole, strict=True):
            assert torch.equal(xp, xw[rank::2]) and torch.equal(yp, yw[rank::2])


# ------------------------------------------------------------------------------------- segfolder


def _save_pair(root: Path, stem: str, size: tuple[int, int] = (40, 40), left_class: int = 1,
               mode: str = "P", image_size: tuple[int, int] | None = None, sub: str = "") -> None:
    """An image red on its left half, black on the right, and its mask: ``left_class`` on the left."""
    w, h = size
    base = root / sub if sub else root
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "masks").mkdir(parents=True, exist_ok=True)
    iw, ih = image_size or size
    img = np.zeros((ih, iw, 3), dtype=np.uint8)
    img[:, : iw // 2, 0] = 255
    Image.fromarray(img).save(base / "images" / f"{stem}.png")
    labels = np.zeros((h, w), dtype=np.uint8)
    labels[:, : w // 2] = left_class
    mask = Image.fromarray(labels, mode="L")
    if mode == "P":
        mask = mask.convert("P")
        mask.putpalette([c for rgb in voc_colormap(256) for c in rgb])
        mask.putdata(labels.flatten().tolist())
    elif mode == "RGB":
        mask = mask.convert("RGB")
    mask.save(base / "masks" / f"{stem}.png")


def test_segfolder_reads_pairs_resizes_and_holds_out(tmp_path: Path) -> None:
    for i in range(10):
        _save_pair(tmp_path, f"img{i}", left_class=1 + i % 2)
    source = open_dataset(f"segfolder:{tmp_path}", image_shape=(3, 20, 20), val_fraction=0.2, seed=1,
                          task="segmentation")
    assert isinstance(source, SegmentationSource)
    assert source.classes == ("background", "class_1", "class_2")
    assert (source.train_count, source.val_count) == (8, 2)
    assert source.sample_shape == (3, 20, 20) and source.train.masks.shape == (8, 20, 20)
    # resized together: the mask's labelled half is the image's red half
    assert torch.equal(source.train.masks > 0, source.train.images[:, 0] > 127)
    assert source.palette[1] == voc_colormap(3)[1]  # the masks' own palette
    assert source.class_counts("train")[0] == 8 * 20 * 10
    assert source.typical_object_px == pytest.approx((20 * 10) ** 0.5)
    # pretrained weights' statistics normalise the images when they match the channels
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    weighted = sf.load_segfolder(tmp_path, (3, 20, 20), val_fraction=0.2, seed=1, stats=imagenet)
    assert (weighted.mean, weighted.std) == imagenet
    grey = sf.load_segfolder(tmp_path, (1, 20, 20), val_fraction=0.2, seed=1, stats=imagenet)
    assert len(grey.mean) == 1 and grey.mean != imagenet[0][:1]


def test_segfolder_grey_masks_classes_txt_and_val_folder(tmp_path: Path) -> None:
    for i in range(3):
        _save_pair(tmp_path, f"a{i}", mode="L", left_class=1)
        _save_pair(tmp_path, f"v{i}", mode="L", left_class=2, sub="val")
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\ntree\n", encoding="utf-8")
    source = open_dataset(f"segfolder:{tmp_path}", image_shape=(1, 16, 16), task="segmentation")
    assert source.classes == ("sky", "road", "car", "tree")
    assert (source.train_count, source.val_count) == (3, 3) and source.sample_shape == (1, 16, 16)
    assert source.class_counts("val")[2] == 3 * 16 * 8 and source.class_counts("train")[2] == 0


@pytest.mark.parametrize("case, words", [
    ("no_masks", ["no masks/ folder", "masks"]),
    ("unpaired", ["b.png has no mask", "masks"]),
    ("size", ["the mask", "a.png is 30×30 but its image", "is 40×40"]),
    ("beyond", ["holds the value 3", "only 3 classes", "classes.txt"]),
    ("rgb", ["is a RGB image", "palette ('P') or grey ('L')"]),
    ("background", ["only background (0)"]),
])
def test_segfolder_refusals(tmp_path: Path, case: str, words: list[str]) -> None:
    if case == "no_masks":
        _save_pair(tmp_path, "a")
        for f in (tmp_path / "masks").iterdir():
            f.unlink()
        (tmp_path / "masks").rmdir()
    elif case == "unpaired":
        _save_pair(tmp_path, "a")
        _save_pair(tmp_path, "b")
        (tmp_path / "masks" / "b.png").unlink()
    elif case == "size":
        _save_pair(tmp_path, "a", size=(30, 30), image_size=(40, 40))
    elif case == "beyond":
        _save_pair(tmp_path, "a", left_class=3)
        (tmp_path / "classes.txt").write_text("background\ncat\ndog\n", encoding="utf-8")
    elif case == "rgb":
        _save_pair(tmp_path, "a", mode="RGB")
    else:
        _save_pair(tmp_path, "a", left_class=0)
    with pytest.raises(DatasetError) as err:
        open_dataset(f"segfolder:{tmp_path}", image_shape=(3, 16, 16), val_fraction=0.0, task="segmentation")
    message = str(err.value)
    assert all(w in message for w in words), message
    assert "\n" not in message and "Traceback" not in message


def test_segfolder_spec_needs_a_path_and_the_task() -> None:
    with pytest.raises(DatasetError, match="segfolder needs a path"):
        parse_spec("segfolder")
    with pytest.raises(DatasetError, match="shapes-seg takes no argument"):
        parse_spec("shapes-seg:3")
    with pytest.raises(DatasetError, match="shapes-seg is images with masks"):
        open_dataset("shapes-seg", task="classification")
    with pytest.raises(DatasetError, match=r"The segmentation task needs images with masks \(shapes-seg, "
                                           r"segfolder:DIR, voc\[:DIR\]\); shapes is images with a class each"):
        open_dataset("shapes", task="segmentation")


# ------------------------------------------------------------------------------------------- VOC


def _voc_tree(root: Path, stems: dict[str, list[str]], value: int = 15) -> Path:
    folder = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    palette = [c for rgb in voc_colormap(256) for c in rgb]
    for which, names in stems.items():
        (folder / "ImageSets" / "Segmentation" / f"{which}.txt").write_text("\n".join(names) + "\n")
        for stem in names:
            img = np.zeros((24, 32, 3), dtype=np.uint8)
            img[4:20, 8:24] = 200
            Image.fromarray(img).save(folder / "JPEGImages" / f"{stem}.jpg", quality=95)
            labels = np.zeros((24, 32), dtype=np.uint8)
            labels[4:20, 8:24] = value
            labels[4, 8:24] = 255  # VOC's border: ignored
            mask = Image.fromarray(labels, mode="P")
            mask.putpalette(palette)
            mask.save(folder / "SegmentationClass" / f"{stem}.png")
    return folder


def test_voc_reads_its_layout(tmp_path: Path) -> None:
    _voc_tree(tmp_path, {"train": ["2007_000001", "2007_000002"], "val": ["2007_000003"]})
    source = open_dataset(f"voc:{tmp_path}", image_shape=(3, 24, 32), download=False, task="segmentation")
    assert isinstance(source, SegmentationSource) and source.name == "voc"
    assert len(source.classes) == 21 and source.classes[15] == "person" and source.classes[0] == "background"
    assert source.palette[15] == (192, 128, 128) and source.palette[1] == (128, 0, 0)
    assert (source.train_count, source.val_count) == (2, 1)
    counts = source.class_counts("train")
    assert counts[15] == 2 * 15 * 16 and counts[0] == 2 * (24 * 32 - 16 * 16)
    y = next(iter(source.batches("train", 2, CPU, None)))[1]
    assert int((y == 255).sum()) == 2 * 16  # the border row stays "ignore"
    # the folder itself works as well as its parent
    again = open_dataset(f"voc:{tmp_path / 'VOCdevkit' / 'VOC2012'}", image_shape=(3, 24, 32), download=False,
                         task="segmentation")
    assert torch.equal(again.train.masks, source.train.masks)


def test_voc_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError) as err:
        open_dataset(f"voc:{tmp_path}", image_shape=(3, 24, 32), download=False, task="segmentation")
    assert "downloading is off" in str(err.value) and str(tmp_path) in str(err.value)

    def offline(url: str, target: Path, log: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sf, "_fetch_stream", offline)
    with pytest.raises(DatasetError) as err:
        open_dataset(f"voc:{tmp_path}", image_shape=(3, 24, 32), download=True, task="segmentation")
    message = str(err.value)
    assert sf.voc_url() in message and str(tmp_path) in message and "no network" in message
    assert "\n" not in message

    folder = _voc_tree(tmp_path / "bad", {"train": ["a"], "val": ["b"]}, value=30)
    with pytest.raises(DatasetError, match=r"a\.png holds the value 30 but there are only 21 classes"):
        open_dataset(f"voc:{tmp_path / 'bad'}", image_shape=(3, 24, 32), download=False, task="segmentation")
    (folder / "SegmentationClass" / "b.png").unlink()  # listed in val.txt: refused before any decoding
    with pytest.raises(DatasetError, match=r"b\.jpg has no mask"):
        sf.load_voc(tmp_path / "bad", (3, 24, 32), download=False)


# ------------------------------------------------------------------------------------- fit check


def _seg_graph(head_channels: int, upsample: bool) -> Graph:
    """Input 3×64×64 → a stride-4 conv → 1×1 conv head (→ ×4 Upsample) → Output."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 64, 64]})
    g.add_node("Conv2d", "body", {"out_channels": 8, "kernel_size": 4, "stride": 4})
    g.add_node("Conv2d", "head", {"out_channels": head_channels, "kernel_size": 1})
    g.add_edge("input", "body")
    g.add_edge("body", "head")
    last = "head"
    if upsample:
        g.add_node("Upsample", "up", {"scale_factor": [4.0, 4.0], "mode": "bilinear"})
        g.add_edge("head", "up")
        last = "up"
    g.add_node("Output", "output")
    g.add_edge(last, "output")
    return g


def test_check_fit_for_masks_and_its_fix_makes_the_graph_fit() -> None:
    source = shapes_seg_source(0, 8, 4)
    k = source.num_classes
    assert check_fit(source, analyze(_seg_graph(k, True)), _seg_graph(k, True)) is None

    graph = _seg_graph(3, False)
    problem = check_fit(source, analyze(graph), graph)
    assert problem is not None
    assert f"has {k} classes but the network's output has 3 channels: set head.out_channels to {k}" in problem.message
    assert "the masks of shapes-seg are 64×64 but the network predicts 16×16" in problem.message
    assert "Upsample ×4" in problem.message and "ConvTranspose2d with stride 4" in problem.message
    for fix in problem.fixes:
        apply_fix(graph, fix)
    analysis = analyze(graph)
    assert analysis.ok and tuple(analysis.output_shapes[0]) == (k, 64, 64)
    assert check_fit(source, analysis, graph) is None


def test_check_fit_for_masks_without_an_integer_factor_and_a_classifier() -> None:
    source = shapes_seg_source(0, 8, 4)
    graph = Graph()
    graph.add_node("Input", "input", {"shape": [3, 64, 64]})
    graph.add_node("Conv2d", "head", {"out_channels": source.num_classes, "kernel_size": 5})
    graph.add_node("Output", "output")
    graph.add_edge("input", "head")
    graph.add_edge("head", "output")
    problem = check_fit(source, analyze(graph), graph)
    assert problem is not None and "predicts 60×60" in problem.message and "Upsample to 64×64" in problem.message
    for fix in problem.fixes:
        apply_fix(graph, fix)
    assert check_fit(source, analyze(graph), graph) is None

    flat = Graph()
    flat.add_node("Input", "input", {"shape": [3, 64, 64]})
    flat.add_node("Flatten", "flat", {})
    flat.add_node("Linear", "fc", {"out_features": 6})
    flat.add_node("Output", "output")
    for a, b in (("input", "flat"), ("flat", "fc"), ("fc", "output")):
        flat.add_edge(a, b)
    problem = check_fit(source, analyze(flat), flat)
    assert problem is not None and "classes×H×W (6×64×64), got 6" in problem.message
    assert "\n" not in problem.message


def test_check_fit_for_masks_input_shape() -> None:
    source = shapes_seg_source(0, 8, 4)
    graph = _seg_graph(source.num_classes, True)
    graph.set_param("input", "shape", [3, 32, 32])
    problem = check_fit(source, analyze(graph), graph)
    assert problem is not None and "gives 3×64×64 images but the graph's Input is 3×32×32" in problem.message
    assert "predicts" not in problem.message  # the output follows the Input: setting it is the whole fix
    for fix in problem.fixes:
        apply_fix(graph, fix)
    assert check_fit(source, analyze(graph), graph) is None
    # a wrong Input and a head that shrinks: both fixes together give the masks' size
    graph = _seg_graph(source.num_classes, False)
    graph.set_param("input", "shape", [3, 32, 32])
    problem = check_fit(source, analyze(graph), graph)
    assert problem is not None and "predicts 8×8 per class from its 32×32 Input" in problem.message
    for fix in problem.fixes:
        apply_fix(graph, fix)
    assert tuple(analyze(graph).output_shapes[0]) == (source.num_classes, 64, 64)
    assert check_fit(source, analyze(graph), graph) is None


def test_check_fit_for_masks_fixes_both_layers_of_an_fcn_head() -> None:
    """d2l's FCN ends 1×1 conv (class scores) → ConvTranspose2d: a new class count sets both."""
    source = shapes_seg_source(0, 8, 4)
    k = source.num_classes
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 64, 64]})
    g.add_node("Conv2d", "body", {"out_channels": 8, "kernel_size": 4, "stride": 4})
    g.add_node("Conv2d", "score", {"out_channels": 21, "kernel_size": 1})
    g.add_node("ConvTranspose2d", "deconv", {"in_channels": 21, "out_channels": 21, "kernel_size": 8, "stride": 4,
                                             "padding": 2})
    g.add_node("Output", "output")
    for a, b in (("input", "body"), ("body", "score"), ("score", "deconv"), ("deconv", "output")):
        g.add_edge(a, b)
    assert tuple(analyze(g).output_shapes[0]) == (21, 64, 64)
    problem = check_fit(source, analyze(g), g)
    assert problem is not None
    assert (f"output has 21 channels: set score.out_channels to {k} and set deconv.out_channels to {k} and "
            f"set deconv.in_channels to {k}") in problem.message
    for fix in problem.fixes:
        apply_fix(g, fix)
    assert analyze(g).ok and check_fit(source, analyze(g), g) is None
