"""Downloading a weights file into torch hub's cache, the way ``torch.hub`` does it, but cancellable.

torchvision fetches its weights with ``torch.hub.load_state_dict_from_url``: the file goes to
``torch.hub.get_dir()/checkpoints/<file name of the URL>`` and, when the name carries a hash
(``resnet18-f37072fd.pth``: the text between the last ``-`` and the ``.``, torch.hub's
``HASH_REGEX``), the file's sha256 must start with it. We keep that cache and that rule, so a
file fetched here is the file torchvision would use and the other way round, and add what
``torch.hub`` lacks: a progress callback, a cancel check between chunks, and atomicity — the
bytes go to a temporary file beside the target, which is renamed into place only once the hash
matched, so a cancel, a failure or a killed process never leaves a half-written weights file.

``NETCANVAS_WEIGHTS_MIRROR`` replaces ``https://download.pytorch.org/models/`` for users behind a
mirror (and the tests, which serve files from 127.0.0.1). No torch import here.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from core.project import remove_stale_temp_files, replace_file
from core.units import human_bytes

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]

PYTORCH_MODELS = "https://download.pytorch.org/models/"
MIRROR_ENV = "NETCANVAS_WEIGHTS_MIRROR"
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's rule: the sha256 prefix in the file name
CHUNK = 1 << 20
TIMEOUT_S = 30.0
TEMP_SUFFIX = ".part"


class WeightsError(Exception):
    """Weights that cannot be resolved, fetched or read: one line naming what and where (exit 2)."""


class WeightsCancelled(WeightsError):
    """The user cancelled a download; nothing was written."""


def mirrored(url: str) -> str:
    """``url`` with PyTorch's download base replaced by ``$NETCANVAS_WEIGHTS_MIRROR`` when set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror and url.startswith(PYTORCH_MODELS):
        return mirror.rstrip("/") + "/" + url[len(PYTORCH_MODELS):]
    return url


def expected_hash(file_name: str) -> str | None:
    """The sha256 prefix a file name promises (torch.hub's rule), or None when it carries none."""
    match = HASH_REGEX.search(file_name)
    return match.group(1) if match and match.group(1) else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def size_text(size: int | None) -> str:
    return human_bytes(size) if size else "size unknown"


def download(url: str, target: Path, *, size_hint: int | None = None, progress: Progress | None = None,
             cancel: Cancel | None = None, timeout: float = TIMEOUT_S) -> str:
    """Fetch ``url`` into ``target`` atomically, checking the hash its file name promises; returns the sha256.

    Raises :class:`WeightsCancelled` when ``cancel()`` turns true, :class:`WeightsError` when the
    network fails (naming the URL, ``target`` and the size, so the file can be put there by hand)
    or the hash does not match. In every failure ``target`` is untouched and no temporary file stays.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target, TEMP_SUFFIX)  # what an earlier, killed download left
    want = expected_hash(target.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as fh:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise WeightsError(_offline(url, target, size_hint, exc)) from None
            with response:
                total = int(response.headers.get("Content-Length") or 0) or (size_hint or 0)
                done = 0
                if progress is not None:
                    progress(0, total)
                while True:
                    if cancel is not None and cancel():
                        raise WeightsCancelled(f"download of {url} cancelled; nothing was saved")
                    try:
                        block = response.read(CHUNK)
                    except (http.client.HTTPException, OSError, ValueError) as exc:  # the connection dropped
                        raise WeightsError(_offline(url, target, total or size_hint, exc)) from None
                    if not block:
                        break
                    fh.write(block)
                    digest.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, max(total, done))
            if total and done < total:
                raise WeightsError(_offline(url, target, total, f"the connection closed after {done} of "
                                                                f"{total} bytes"))
            fh.flush()
            os.fsync(fh.fileno())
        sha = digest.hexdigest()
        if want is not None and not sha.startswith(want):
            raise WeightsError(f"{url}: the downloaded file's sha256 starts {sha[:len(want)]}, not {want} as its "
                               f"name says; it was not kept (a broken mirror or proxy?)")
        replace_file(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha


def _offline(url: str, target: Path, size: int | None, exc: object) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(exc, urllib.error.HTTPError):
        reason = f"HTTP {exc.code} {exc.reason}"
    text = (str(reason).strip().splitlines() or [type(exc).__name__])[0]
    return (f"cannot download {url} ({text}); without a network, put that file ({size_text(size)}) "
            f"at {target}")


__all__ = ["CHUNK", "MIRROR_ENV", "PYTORCH_MODELS", "Cancel", "Progress", "WeightsCancelled",
           "WeightsError", "download", "expected_hash", "file_sha256", "mirrored", "size_text"]
