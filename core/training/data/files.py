"""MNIST, Fashion-MNIST and CIFAR-10 in torchvision's file layouts, read by our own code.

- MNIST / Fashion-MNIST: the four idx files (``train-images-idx3-ubyte`` …), raw or ``.gz``, in
  ``ROOT/MNIST/raw/`` (``ROOT/FashionMNIST/raw/``), ``ROOT/MNIST/`` or ``ROOT`` itself.
- CIFAR-10: the pickled batches in ``ROOT/cifar-10-batches-py/`` (or ``ROOT`` itself), or the
  ``cifar-10-python.tar.gz`` archive next to them.

No checksums are insisted on, so any copy in the right format loads. When the files are missing
and downloads are allowed, they are fetched from torchvision's own mirror list; offline, the
error says exactly which files to put where. The CIFAR pickles are read with an unpickler that
only rebuilds numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from core.training.data.base import DatasetError, InMemorySource, Split

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_IDX = {
    "mnist": ("MNIST", ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")),
    "fashion-mnist": ("FashionMNIST", ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                       "Sneaker", "Bag", "Ankle boot")),
}
_TIMEOUT_S = 20


def default_root() -> Path:
    """Where datasets go when no folder is given: ``$NETCANVAS_DATA`` or ``~/.cache/netcanvas/data``."""
    env = os.environ.get("NETCANVAS_DATA")
    return Path(env) if env else Path.home() / ".cache" / "netcanvas" / "data"


# --------------------------------------------------------------------------------------------- idx


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (``.gz`` or raw): big-endian header, then unsigned bytes."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path} is not an idx file (bad magic number); replace it with a fresh copy")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: only unsigned-byte idx files are supported (type code {raw[2]:#x})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims)) if dims else 0
    if len(raw) - header != expected:
        raise DatasetError(f"{path} is truncated or corrupt: expected {expected:,} bytes of data for shape "
                           f"{list(dims)}, found {len(raw) - header:,}; replace it with a fresh copy")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; replace it with a fresh copy") from None


def _find_idx(candidates: Sequence[Path], name: str) -> Path | None:
    for folder in candidates:
        for fname in (name, name + ".gz"):
            if (folder / fname).is_file():
                return folder / fname
    return None


def load_idx_dataset(kind: str, root: Path | None, download: bool, log: Any = None) -> InMemorySource:
    """MNIST (``kind="mnist"``) or Fashion-MNIST (``"fashion-mnist"``) as an in-memory source."""
    folder_name, classes = _IDX[kind]
    root = Path(root) if root is not None else default_root()
    raw = root / folder_name / "raw"
    candidates = [raw, root / folder_name, root]
    found = {name: _find_idx(candidates, name) for name in IDX_FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        if download:
            _download_idx(kind, raw, missing, log)
            found = {name: _find_idx(candidates, name) for name in IDX_FILES}
        else:
            raise DatasetError(_missing_message(kind, raw, [f"{m}.gz" for m in missing], None))
    arrays = [read_idx(found[name]) for name in IDX_FILES]  # type: ignore[arg-type]
    train_x, train_y, test_x, test_y = arrays
    for images, labels, which in ((train_x, train_y, "train"), (test_x, test_y, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise DatasetError(f"{kind} {which} files disagree: {images.shape[0]:,} images of shape "
                               f"{list(images.shape[1:])} but {labels.shape[0]:,} labels; replace them")
    train = Split(torch.from_numpy(train_x.copy()).unsqueeze(1), torch.from_numpy(train_y.astype(np.int64)))
    val = Split(torch.from_numpy(test_x.copy()).unsqueeze(1), torch.from_numpy(test_y.astype(np.int64)))
    return InMemorySource(name=kind, classes=classes, train=train, val=val)


def _download_idx(kind: str, raw: Path, missing: Sequence[str], log: Any) -> None:
    import torchvision.datasets as tvd

    cls = tvd.MNIST if kind == "mnist" else tvd.FashionMNIST
    mirrors: list[str] = list(getattr(cls, "mirrors", []))
    raw.mkdir(parents=True, exist_ok=True)
    for name in missing:
        fname = name + ".gz"
        errors = []
        for mirror in mirrors:
            try:
                _fetch(mirror + fname, raw / fname, log)
                break
            except (OSError, urllib.error.URLError) as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise DatasetError(_missing_message(kind, raw, [f"{m}.gz" for m in missing], errors))


def _missing_message(kind: str, raw: Path, files: Sequence[str], errors: Sequence[str] | None) -> str:
    where = "could not be downloaded" if errors else "were not found (downloading is off)"
    msg = (f"{kind}: the files {', '.join(files)} {where}. Put them (gzipped or not) in {raw}"
           f" — or pass the folder that holds them, e.g. --dataset {kind}:DIR")
    if errors:
        msg += f". Download errors: {errors[0]}"
    return msg


def _fetch(url: str, target: Path, log: Any) -> None:
    if log is not None:
        log(f"downloading {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "netcanvas"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        data = response.read()
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)


# ------------------------------------------------------------------------------------------- CIFAR


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: refuses any other global."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, origin: str) -> dict[str, Any]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:
        raise DatasetError(f"{origin} is not a CIFAR-10 batch file ({exc}); replace it with a fresh copy") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{origin} is not a CIFAR-10 batch file (no dictionary inside)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(data: bytes, origin: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(data, origin)
    if "data" not in d or "labels" not in d:
        raise DatasetError(f"{origin} is not a CIFAR-10 batch file (needs 'data' and 'labels')")
    images = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{origin}: expected N×3072 images and N labels, got {list(images.shape)} "
                           f"and {labels.shape[0]} labels")
    return images.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: Path | None, download: bool, log: Any = None) -> InMemorySource:
    """CIFAR-10 (50,000 train / 10,000 test) as an in-memory source."""
    root = Path(root) if root is not None else default_root()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    folder = next((f for f in (root / CIFAR_FOLDER, root) if all((f / n).is_file() for n in names)), None)
    files: dict[str, bytes] = {}
    if folder is not None:
        files = {n: _read_bytes(folder / n) for n in names}
        meta = folder / "batches.meta"
        if meta.is_file():
            files["batches.meta"] = _read_bytes(meta)
    else:
        archive = root / CIFAR_ARCHIVE
        if not archive.is_file():
            if not download:
                raise DatasetError(_cifar_missing(root, None))
            import torchvision.datasets as tvd

            root.mkdir(parents=True, exist_ok=True)
            try:
                _fetch(tvd.CIFAR10.url, archive, log)
            except (OSError, urllib.error.URLError) as exc:
                raise DatasetError(_cifar_missing(root, f"{tvd.CIFAR10.url}: {exc}")) from None
        files = _read_archive(archive, [*names, "batches.meta"])
        missing = [n for n in names if n not in files]
        if missing:
            raise DatasetError(f"{archive} lacks {', '.join(missing)}; replace it with a fresh copy")
    parts = [_cifar_batch(files[n], n) for n in names[:5]]
    test_x, test_y = _cifar_batch(files["test_batch"], "test_batch")
    classes: Sequence[str] = CIFAR_CLASSES
    if "batches.meta" in files:
        label_names = _unpickle(files["batches.meta"], "batches.meta").get("label_names")
        if isinstance(label_names, list) and len(label_names) == 10:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in label_names)
    train = Split(torch.from_numpy(np.concatenate([p[0] for p in parts])),
                  torch.from_numpy(np.concatenate([p[1] for p in parts])))
    val = Split(torch.from_numpy(test_x.copy()), torch.from_numpy(test_y))
    return InMemorySource(name="cifar10", classes=classes, train=train, val=val)


def _read_archive(archive: Path, names: Sequence[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names:
                    fh = tar.extractfile(member)
                    if fh is not None:
                        out[base] = fh.read()
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"cannot read {archive}: {exc}; delete it and download again") from None
    return out


def _cifar_missing(root: Path, error: str | None) -> str:
    where = f"could not be downloaded ({error})" if error else "was not found (downloading is off)"
    return (f"cifar10: the dataset {where}. Put the extracted folder {CIFAR_FOLDER}/ (data_batch_1…5, "
            f"test_batch, batches.meta) or the archive {CIFAR_ARCHIVE} in {root}"
            f" — or pass the folder that holds them, e.g. --dataset cifar10:DIR")
