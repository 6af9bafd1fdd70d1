"""Run folders and checkpoints.

A run folder holds everything needed to look at, compare and resume a run::

    RUN_DIR/config.json        the training settings and the dataset's description
    RUN_DIR/graph.json         the project (graph) that was trained, in the project format
    RUN_DIR/metrics.csv        one row per epoch (language models add their perplexity columns)
    RUN_DIR/run.json           status, best epoch, timing (rewritten as the run goes)
    RUN_DIR/label.json         the name the user gave the run (optional; only the user writes it)
    RUN_DIR/checkpoints/last.pt, best.pt

The label lives in its own file because the engine rewrites run.json as the run goes (and again
when it is resumed): a label kept there would be lost.

Every file is written atomically (temporary file + rename), so a crash leaves the previous
version. Checkpoints hold only tensors and plain Python values and load with
``torch.load(weights_only=True)``: a run folder from elsewhere cannot run code.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import random
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.project import atomic_write_bytes, atomic_write_text

CHECKPOINT_FORMAT = "netcanvas-checkpoint"
LABEL_FILE = "label.json"
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "lr", "images_per_s",
                  "seconds", "data_wait")
PERPLEXITY_COLUMNS = ("train_perplexity", "val_perplexity")  # language models only
SEGMENTATION_COLUMNS = ("val_miou", "val_pixel_acc")  # segmentation only


class RunFolderError(Exception):
    """A run folder or checkpoint that cannot be used; ``str()`` says which file and why."""


def default_run_dir(name: str, base: str | Path = "runs") -> Path:
    """``runs/<name>-YYYYmmdd-HHMMSS`` (a suffix keeps it unique)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-") or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(base) / f"{safe}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(base) / f"{safe}-{stamp}-{n}"
    return path


class RunFolder:
    """Writes (and reads back) one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def create(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2, default=_json_default) + "\n")

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"cannot read {self.path / name}: {exc}") from None

    def write_metrics(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """metrics.csv: :data:`METRIC_COLUMNS`, and a language model's perplexity columns
        (:data:`PERPLEXITY_COLUMNS`) or a segmentation's mean IoU and pixel accuracy
        (:data:`SEGMENTATION_COLUMNS`) when its rows have them."""
        columns: tuple[str, ...] = METRIC_COLUMNS
        for extra in (PERPLEXITY_COLUMNS, SEGMENTATION_COLUMNS):
            if any(row.get(k) is not None for row in rows for k in extra):
                columns = (*columns, *extra)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
        atomic_write_text(self.path / "metrics.csv", buf.getvalue())

    def read_metrics(self) -> list[dict[str, float | None]]:
        """metrics.csv as a list of rows (numbers, ``None`` for empty cells); a file that is not
        UTF-8 CSV of numbers (a foreign or damaged one) raises :class:`RunFolderError` naming the cell."""
        where = self.path / "metrics.csv"
        try:
            text = where.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunFolderError(f"cannot read {where}: {exc}") from None
        rows = []
        try:
            for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
                values: dict[str, float | None] = {}
                for k, v in row.items():
                    if k is None or not isinstance(v, str):  # cells beyond the header's columns
                        continue
                    try:
                        values[k] = float(v) if v.strip() else None
                    except ValueError:
                        raise RunFolderError(f"{where}, line {line}, column {k}: {v!r} is not a number") from None
                rows.append(values)
        except csv.Error as exc:
            raise RunFolderError(f"cannot read {where}: {exc}") from None
        return rows

    def save_checkpoint(self, name: str, payload: Mapping[str, Any]) -> Path:
        buf = io.BytesIO()
        torch.save(dict(payload), buf)
        target = self.checkpoints / name
        atomic_write_bytes(target, buf.getvalue())
        return target

    def checkpoint_path(self, name: str = "last.pt") -> Path:
        return self.checkpoints / name

    def read_label(self) -> str:
        """The name the user gave the run, or ``""`` (none given, or label.json unreadable)."""
        try:
            data = self.read_json(LABEL_FILE)
        except RunFolderError:
            return ""
        label = data.get("label") if isinstance(data, dict) else None
        return label.strip() if isinstance(label, str) else ""

    def write_label(self, label: str) -> None:
        """Name the run ``label``; an empty label removes the name (the list labels it again by what differs)."""
        label = label.strip()
        try:
            if label:
                self.write_json(LABEL_FILE, {"label": label})
            else:
                (self.path / LABEL_FILE).unlink(missing_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot save the run's name in {self.path / LABEL_FILE}: {exc}") from None


def holds_run(path: str | Path) -> bool:
    """Whether ``path`` already holds a run (any file the engine writes): a new run must not write
    there, or it would wipe the old one's metrics and replace its settings, graph and status."""
    p = Path(path)
    return any((p / name).exists() for name in ("config.json", "run.json", "metrics.csv", "checkpoints/last.pt"))


def taken_message(path: str | Path) -> str:
    """The one line that refuses to start a new run in a folder that already holds one."""
    return (f"{path} already holds a run, which was left as it is: give a new folder for this run, "
            f"or continue that one with --resume {path}")


# ----------------------------------------------------------------------------------- run status

RUNNING = "running"
INTERRUPTED = "interrupted"  # no process is writing the run any more: resumable from its last checkpoint


def mark_running(folder: RunFolder) -> None:
    """Write run.json saying this process (pid, host) is writing the run; the engine replaces it
    with the run's summary when it ends. Written before config.json, so a folder the runs list can
    see (it holds config.json) already names its owner."""
    folder.write_json("run.json", {"status": RUNNING, "pid": os.getpid(), "host": socket.gethostname()})


def run_status(folder: RunFolder) -> str:
    """The run's status from run.json, with ``interrupted`` for a run that no process is writing.

    The rule: a run is ``running`` only while run.json says so *and* names an owner that may still
    be alive: a live pid on this host, or any pid on another host (a shared folder: we cannot look,
    so we believe it). A "running" run.json without a pid, a run.json that cannot be read, or no
    run.json at all (the process was killed before writing one, or an older version wrote the run)
    has no owner to wait for: ``interrupted``. A pid is asked rather than the age of a file because
    an epoch may take hours without writing anything; the cost is that a pid reused by another
    process keeps a killed run "running" until that process ends.
    """
    try:
        data = folder.read_json("run.json")
    except RunFolderError:
        return INTERRUPTED
    if not isinstance(data, dict):
        return INTERRUPTED
    status = str(data.get("status", RUNNING))
    if status != RUNNING:
        return status
    pid, host = data.get("pid"), data.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return INTERRUPTED
    if host != socket.gethostname():
        return RUNNING
    return RUNNING if _alive(pid) else INTERRUPTED


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (never signals it)."""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        import ctypes

        kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            return bool(kernel.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
        finally:
            kernel.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (a file, or a run folder → its ``checkpoints/last.pt``) onto the CPU."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.pt"
    if not p.is_file():
        raise RunFolderError(f"no checkpoint at {p}: the run has not finished an epoch yet, or the folder is "
                             "not a run folder")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused an object it would have to run code to build; torch's own message is
        # six lines of advice to turn the safety off, which is the one thing not to do here
        raise RunFolderError(f"{p} is not a NetCanvas checkpoint or contains code; it was not loaded") from None
    except Exception as exc:  # corrupt, truncated or foreign file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RunFolderError(f"cannot read the checkpoint {p} (damaged or not a checkpoint): {reason}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise RunFolderError(f"{p} is not a NetCanvas checkpoint")
    return data


# ------------------------------------------------------------------------------------ RNG states


def rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a run uses, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state: Any = np.random.get_state()  # the legacy tuple (name, keys, pos, has_gauss, cached)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": _plain(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1]).astype(np.int64)), *map(_plain,
                                                                                                  np_state[2:])],
        "data": data_generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any], data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state((npst[0], npst[1].numpy().astype(np.uint32), *npst[2:]))
    data_generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
