"""Segmentation data on disk: ``segfolder:DIR`` (your images and masks) and Pascal VOC 2012, read
by our own code into a :class:`~core.training.data.segmentation.SegmentationSource`.

``segfolder:DIR``::

    DIR/images/<stem>.jpg|png|…     DIR/masks/<stem>.png      DIR/classes.txt (optional)
    DIR/val/images/…                DIR/val/masks/…           (optional: the validation split)

A mask is a palette PNG (``P`` mode: the index is the class) or a grey one (``L``: the value is the
class); 255 marks pixels without a label (ignored by the loss and the metrics). ``classes.txt``
names the classes, one per line, the first being the background; without it the classes are
``background``, ``class_1`` … up to the largest label any mask holds. Validation comes from
``DIR/val/`` when it exists (or a folder given apart), otherwise ``val_fraction`` of the pairs are
held out, drawn with the seed.

``voc[:DIR]``: ``VOCdevkit/VOC2012/`` (or ``VOC2012/``, or ``DIR`` itself) with ``JPEGImages/``,
``SegmentationClass/`` (palette PNGs) and ``ImageSets/Segmentation/train.txt``, ``val.txt``; the 21
VOC classes with VOC's colours; the 255 borders are ignored. When it is missing and downloads are
allowed, torchvision's VOC2012 archive is fetched and unpacked there (about 2 GB).

Every image is converted to the graph's channels and scaled so it just covers the Input's H×W,
then centre-cropped (as ``folder:`` data is): images bilinear, masks nearest, with the same
geometry so they stay aligned. The sets are decoded once, in threads, and held in memory as uint8.
"""

from __future__ import annotations

import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from core.training.data.base import DatasetError
from core.training.data.files import default_root
from core.training.data.folder import IMAGE_EXTENSIONS
from core.training.data.segmentation import (
    IGNORE_INDEX,
    SegmentationSource,
    SegSplit,
    typical_object_px,
    voc_colormap,
)

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOC_PALETTE = voc_colormap(len(VOC_CLASSES))
VOC_URL_FALLBACK = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
DEFAULT_SHAPE = (3, 224, 224)  # when no graph says otherwise, as folder data
_TIMEOUT_S = 20
_CHUNK_BYTES = 1 << 20

Pair = tuple[str, str]  # (image path, mask path)
Log = Callable[[str], None] | None
Stats = tuple[Sequence[float], Sequence[float]] | None  # (mean, std) of pretrained weights, or None


# ------------------------------------------------------------------------------------ decoding


def decode_pair(image_path: str, mask_path: str, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One image and its mask at ``shape`` (C, H, W): uint8 CHW and uint8 HW, with the same scale
    and crop. Raises :class:`DatasetError` naming the file when they cannot be used."""
    from PIL import Image

    c, h, w = shape
    try:
        with Image.open(image_path) as opened:
            img = opened.convert("L" if c == 1 else "RGB")
    except Exception as exc:  # any decoder error: the file is not an image we can read
        raise DatasetError(f"cannot read the image {image_path}: {exc}") from None
    try:
        with Image.open(mask_path) as opened:
            mode = opened.mode
            if mode not in ("P", "L"):
                raise DatasetError(f"the mask {mask_path} is a {mode} image; masks must be palette ('P') or grey "
                                   "('L') PNGs whose pixel values are the class ids")
            mask = opened.copy()
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"cannot read the mask {mask_path}: {exc}") from None
    if mask.size != img.size:
        raise DatasetError(f"the mask {mask_path} is {mask.size[0]}×{mask.size[1]} but its image {image_path} is "
                           f"{img.size[0]}×{img.size[1]}; a mask must have its image's size")
    scale = max(w / img.width, h / img.height)
    size = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
    left, top = (size[0] - w) // 2, (size[1] - h) // 2
    box = (left, top, left + w, top + h)
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR)
        mask = mask.resize(size, Image.Resampling.NEAREST)  # class ids are not blended
    arr = np.array(img.crop(box), dtype=np.uint8)
    labels = np.array(mask.crop(box), dtype=np.uint8)  # 'P' gives the palette indices, 'L' the grey values
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), labels


def _decode_all(pairs: Sequence[Pair], shape: tuple[int, int, int], log: Log, what: str) -> SegSplit:
    if log is not None and pairs:
        log(f"decoding {len(pairs):,} {what} images and masks at {shape[1]}×{shape[2]}")
    images = torch.empty((len(pairs), *shape), dtype=torch.uint8)
    masks = torch.empty((len(pairs), shape[1], shape[2]), dtype=torch.uint8)

    def one(i: int) -> None:
        x, m = decode_pair(pairs[i][0], pairs[i][1], shape)
        images[i] = torch.from_numpy(x)
        masks[i] = torch.from_numpy(m)

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow decodes with the GIL released
        for _ in pool.map(one, range(len(pairs))):
            pass
    return SegSplit(images, masks)


def _check_labels(split: SegSplit, pairs: Sequence[Pair], num_classes: int, name: str, hint: str) -> None:
    """Every mask value is a class id or the ignore index; the first file that breaks it is named."""
    ok = torch.zeros(256, dtype=torch.bool)
    ok[:num_classes] = True
    ok[IGNORE_INDEX] = True
    bad = (~ok[split.masks.long()]).flatten(1).any(dim=1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        values = torch.unique(split.masks[i].long())
        wrong = [int(v) for v in values if not bool(ok[v])]
        raise DatasetError(f"{name}: the mask {pairs[i][1]} holds the value {wrong[0]} but there are only "
                           f"{num_classes} classes (0–{num_classes - 1}, and {IGNORE_INDEX} = ignore); {hint}")


def _region_sizes(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Area of each (image, class) region, a class's pixels in one image counting as one object
    (masks say classes, not instances); background excluded."""
    if masks.numel() == 0:
        return torch.zeros(0)
    flat = masks.flatten(1).long()
    counts = torch.zeros((flat.shape[0], 256), dtype=torch.int64)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    regions = counts[:, 1:num_classes]
    return regions[regions > 0].to(torch.float32)


def _source(name: str, classes: Sequence[str], train: SegSplit, val: SegSplit, palette: Sequence[tuple[int, int, int]],
            stats: Stats) -> SegmentationSource:
    """The source; normalised with ``stats`` (pretrained weights' mean/std) when they match the
    channels, else with the training images' own statistics."""
    typical = typical_object_px(_region_sizes(train.masks, len(classes)))
    channels = int(train.images.shape[1])
    mean, std = stats if stats is not None and len(stats[0]) == len(stats[1]) == channels else ((), ())
    return SegmentationSource(name, classes, train, val, palette=palette, typical_px=typical, mean=mean, std=std)


def _shape(image_shape: Sequence[int] | None, name: str) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in image_shape) if image_shape is not None else DEFAULT_SHAPE
    if len(shape) != 3:
        raise DatasetError(f"{name} holds images: the graph's Input shape must be C,H,W, got {list(shape)}")
    if shape[0] not in (1, 3):
        raise DatasetError(f"{name}: images can be loaded with 1 (grey) or 3 (RGB) channels, but the graph's Input "
                           f"asks for {shape[0]}; set the Input shape's first value to 1 or 3")
    return shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------------- segfolder


def _pairs(folder: Path, name: str) -> list[Pair]:
    """(image, mask) paths of ``folder/images`` and ``folder/masks``, matched by file stem."""
    images_dir, masks_dir = folder / "images", folder / "masks"
    if not images_dir.is_dir():
        raise DatasetError(f"{name}: there is no images/ folder in {folder}; put the images in {images_dir} and "
                           f"their masks in {masks_dir}")
    if not masks_dir.is_dir():
        raise DatasetError(f"{name}: there is no masks/ folder in {folder}; put one mask per image in {masks_dir} "
                           "with the image's file name (as a PNG)")
    masks: dict[str, str] = {}
    for f in sorted(masks_dir.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
            masks.setdefault(f.stem, str(f))
    pairs = []
    for f in sorted(images_dir.iterdir()):
        if not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if f.stem not in masks:
            raise DatasetError(f"{name}: the image {f} has no mask; add {masks_dir / (f.stem + '.png')} or remove "
                               "the image")
        pairs.append((str(f), masks[f.stem]))
    if not pairs:
        raise DatasetError(f"{name}: no images found in {images_dir}")
    return pairs


def _read_classes(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if len(names) < 2:
        raise DatasetError(f"{path} names {len(names)} class; it needs one name per line, the background first, "
                           "and at least one more")
    return names


def _hold_out(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {fraction}")
    k = min(len(pairs) - 1, max(1, round(fraction * len(pairs)))) if fraction > 0 and len(pairs) > 1 else 0
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(int(seed))).tolist()
    return [pairs[i] for i in sorted(perm[k:])], [pairs[i] for i in sorted(perm[:k])]


def _palette_of(mask_path: str, count: int) -> tuple[tuple[int, int, int], ...] | None:
    """The colours a palette mask gives its class ids (what an annotation tool showed), or None."""
    from PIL import Image

    with Image.open(mask_path) as opened:
        raw = opened.getpalette() if opened.mode == "P" else None
    if not raw or len(raw) < 3 * count:
        return None
    return tuple((raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]) for i in range(count))


def load_segfolder(root: Path, image_shape: Sequence[int] | None = None, val_root: Path | None = None,
                   val_fraction: float = 0.1, seed: int = 0, train_size: int | None = None,
                   val_size: int | None = None, log: Log = None, stats: Stats = None) -> SegmentationSource:
    """``segfolder:DIR`` (see the module docstring) as a :class:`SegmentationSource`."""
    root = Path(root)
    name = f"segfolder:{root}"
    if not root.is_dir():
        raise DatasetError(f"{name}: no such folder; give a folder with images/ and masks/ subfolders")
    shape = _shape(image_shape, name)
    train_pairs = _pairs(root, name)
    if val_root is None and (root / "val").is_dir():
        val_root = root / "val"
    if val_root is not None:
        val_pairs = _pairs(Path(val_root), name)
    else:
        train_pairs, val_pairs = _hold_out(train_pairs, val_fraction, seed)
    train_pairs, val_pairs = train_pairs[:train_size], val_pairs[:val_size]
    train = _decode_all(train_pairs, shape, log, "training")
    val = _decode_all(val_pairs, shape, log, "validation")
    classes = _read_classes(root / "classes.txt")
    if classes is None:
        labels = torch.cat([train.masks.flatten(), val.masks.flatten()]).long()
        present = torch.bincount(labels, minlength=256)[:IGNORE_INDEX].nonzero().flatten()
        top = int(present.max()) if present.numel() else 0
        if top == 0:
            raise DatasetError(f"{name}: every mask holds only background (0) or ignored (255) pixels; label the "
                               "objects with class ids 1, 2, …")
        classes = ["background", *(f"class_{i}" for i in range(1, top + 1))]
    hint = (f"fix the mask or add the class to {root / 'classes.txt'}" if (root / "classes.txt").is_file()
            else "fix the mask")
    for split, pairs in ((train, train_pairs), (val, val_pairs)):
        _check_labels(split, pairs, len(classes), name, hint)
    palette = _palette_of(train_pairs[0][1], len(classes)) or voc_colormap(len(classes))
    return _source(name, classes, train, val, palette, stats)


# ----------------------------------------------------------------------------------------- VOC


def voc_url() -> str:
    """torchvision's VOC2012 train/val archive URL (ours when torchvision's table moved)."""
    try:
        from torchvision.datasets.voc import DATASET_YEAR_DICT

        return str(DATASET_YEAR_DICT["2012"]["url"])
    except (ImportError, KeyError):
        return VOC_URL_FALLBACK


def find_voc(root: Path) -> Path | None:
    """The VOC2012 folder under ``root`` (``VOCdevkit/VOC2012``, ``VOC2012`` or ``root`` itself)."""
    for folder in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        sets = folder / "ImageSets" / "Segmentation"
        if ((folder / "JPEGImages").is_dir() and (folder / "SegmentationClass").is_dir()
                and (sets / "train.txt").is_file() and (sets / "val.txt").is_file()):
            return folder
    return None


def load_voc(root: Path | None, image_shape: Sequence[int] | None = None, download: bool = True, log: Log = None,
             train_size: int | None = None, val_size: int | None = None, stats: Stats = None) -> SegmentationSource:
    """Pascal VOC 2012 segmentation (1,464 train / 1,449 val) as a :class:`SegmentationSource`."""
    root = Path(root) if root is not None else default_root()
    shape = _shape(image_shape, "voc")
    folder = find_voc(root)
    if folder is None:
        if not download:
            raise DatasetError(_voc_missing(root, None))
        _download_voc(root, log)
        folder = find_voc(root)
        if folder is None:
            raise DatasetError(f"voc: the archive from {voc_url()} did not hold VOCdevkit/VOC2012 with "
                               f"JPEGImages, SegmentationClass and ImageSets/Segmentation; delete {root} and retry")
    listed = [(which, _voc_pairs(folder, which)[:cap]) for which, cap in (("train", train_size), ("val", val_size))]
    splits = []
    for which, pairs in listed:  # every listed file is there before the slow part starts
        split = _decode_all(pairs, shape, log, which)
        _check_labels(split, pairs, len(VOC_CLASSES), "voc", "VOC masks hold 0–20 and 255; replace the file")
        splits.append(split)
    return _source("voc", VOC_CLASSES, splits[0], splits[1], VOC_PALETTE, stats)


def _voc_pairs(folder: Path, which: str) -> list[Pair]:
    listing = folder / "ImageSets" / "Segmentation" / f"{which}.txt"
    try:
        stems = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {listing}: {exc}") from None
    pairs = []
    for stem in stems:
        image = folder / "JPEGImages" / f"{stem}.jpg"
        mask = folder / "SegmentationClass" / f"{stem}.png"
        if not image.is_file():
            raise DatasetError(f"voc: {listing} lists {stem} but {image} is missing; replace the dataset")
        if not mask.is_file():
            raise DatasetError(f"voc: the image {image} has no mask {mask}; replace the dataset")
        pairs.append((str(image), str(mask)))
    if not pairs:
        raise DatasetError(f"voc: {listing} lists no images")
    return pairs


def _voc_missing(root: Path, error: str | None) -> str:
    where = f"could not be downloaded from {voc_url()} ({error})" if error else "was not found (downloading is off)"
    return (f"voc: the dataset {where}. Put VOCdevkit/VOC2012/ (JPEGImages, SegmentationClass, "
            f"ImageSets/Segmentation) or the archive {voc_url().rsplit('/', 1)[-1]} in {root}"
            " — or pass the folder that holds them, e.g. --dataset voc:DIR")


def _download_voc(root: Path, log: Log) -> None:
    url = voc_url()
    archive = root / url.rsplit("/", 1)[-1]
    if not archive.is_file():
        root.mkdir(parents=True, exist_ok=True)
        try:
            _fetch_stream(url, archive, log)
        except (OSError, urllib.error.URLError) as exc:
            raise DatasetError(_voc_missing(root, str(exc))) from None
    if log is not None:
        log(f"unpacking {archive}")
    wanted = ("/JPEGImages/", "/SegmentationClass/", "/ImageSets/Segmentation/")
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and any(w in "/" + m.name for w in wanted)]
            tar.extractall(root, members=members, filter="data")  # "data": no paths outside root, no links
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"cannot read {archive}: {exc}; delete it and download again") from None


def _fetch_stream(url: str, target: Path, log: Log) -> None:
    """Download ``url`` to ``target`` in chunks (the VOC archive is 2 GB), replacing it only when complete."""
    if log is not None:
        log(f"downloading {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "netcanvas"})
    tmp = target.with_name(target.name + ".part")
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(tmp, "wb") as fh:
        while chunk := response.read(_CHUNK_BYTES):
            fh.write(chunk)
    os.replace(tmp, target)


__all__ = ["VOC_CLASSES", "VOC_PALETTE", "decode_pair", "find_voc", "load_segfolder", "load_voc", "voc_url"]
