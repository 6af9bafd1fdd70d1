"""What the runs list knows of each run folder, read from disk without Qt: the record of one run
(:class:`RunRecord`), the scan of a runs folder (cached per run folder), and the label that tells each
run apart from the others (:func:`run_labels`).

The runs list (:mod:`gui.training.runs`) rescans at every run's start and end, on the GUI thread and
with a run training beside it; what it costs there is what this module keeps small.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.explain import diff_configs, diff_graphs
from core.layers import get_spec
from core.training.config import ConfigError, TrainConfig
from core.training.runs import RUNNING, RunFolder, RunFolderError, run_status
from core.training.tasks import task_option
from gui.training.plots import short_label

MAX_LABEL_PARTS = 3  # a label names at most this many differences; Compare shows them all


@dataclass
class RunRecord:
    """What the runs list knows about one run folder."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)  # the training section
    dataset: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)  # the project's "graph" object
    metrics: list[dict[str, float | None]] = field(default_factory=list)
    status: str = "running"
    started: float = 0.0
    custom_label: str = ""  # the name the user gave the run (label.json), "" when none
    _content: bytes = field(default=b"", repr=False, compare=False)

    @property
    def content_key(self) -> bytes:
        """A digest of the run's settings and graph: runs with the same key differ in nothing a label
        names (the labels compare each distinct pair once: a folder of 170 runs of one project is one)."""
        if not self._content:
            text = json.dumps([self.config, self.graph], sort_keys=True, default=str)
            self._content = hashlib.blake2b(text.encode(), digest_size=16).digest()
        return self._content

    @property
    def name(self) -> str:
        return self.path.name

    def _values(self, key: str) -> list[float]:
        """The epochs' values of one metric, the epochs without it left out."""
        return [v for r in self.metrics if (v := r.get(key)) is not None]

    @property
    def best_val_acc(self) -> float | None:
        values = self._values("val_acc")
        return max(values) if values else None

    @property
    def best_val_perplexity(self) -> float | None:
        values = self._values("val_perplexity")
        return min(values) if values else None

    @property
    def task_target(self) -> str:
        """What the run's task trains towards (``class``, ``mask``, ``gan`` …; ``""`` for an unknown task)."""
        try:
            return task_option(self.config.get("task")).target
        except KeyError:
            return ""

    @property
    def best_val_miou(self) -> float | None:
        values = self._values("val_miou")
        return max(values) if values else None

    @property
    def best_text(self) -> str:
        """The run's best validation figure as the list shows it: perplexity for a language model
        (lower is better; its token accuracy says little), mean IoU for segmentation (its pixel
        accuracy is mostly background), for a GAN the last epoch's G loss (it has no validation
        figure, and no loss of a GAN is "best"), accuracy otherwise."""
        ppl = self.best_val_perplexity
        if ppl is not None:
            return f"ppl {ppl:.2f}"
        miou = self.best_val_miou
        if miou is not None:
            return f"mIoU {miou:.2f}"
        if self.task_target == "gan" or any("g_loss" in r for r in self.metrics):
            last = next((r.get("g_loss") for r in reversed(self.metrics) if r.get("g_loss") is not None), None)
            return "–" if last is None else f"G loss {last:.3f}"
        acc = self.best_val_acc
        return "–" if acc is None else f"{acc:.1%}"

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / "checkpoints" / "last.pt").is_file()

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        folder = RunFolder(path)
        rec = cls(path=path)
        try:
            cfg = folder.read_json("config.json")
            rec.config = _settings(cfg.get("training", {}))
            rec.dataset = dict(cfg.get("dataset", {}))
        except (RunFolderError, AttributeError, TypeError, ValueError):  # not a run's config: left empty
            pass
        try:
            project = folder.read_json("graph.json")
            rec.graph = dict(project.get("graph", {})) if isinstance(project, dict) else {}
        except RunFolderError:
            pass
        try:
            rec.metrics = folder.read_metrics()
        except RunFolderError:
            rec.metrics = []
        rec.status = run_status(folder)  # "interrupted" when no process is writing it any more
        try:
            rec.started = (path / "config.json").stat().st_mtime
        except OSError:
            rec.started = 0.0
        rec.custom_label = folder.read_label()
        return rec


def _settings(training: Any) -> dict[str, Any]:
    """A run's training settings with each one it does not name at its default, as the engine read
    them: a run written before a setting existed (or by hand) trained with that default, and its
    label and Compare would otherwise show ``smoothing default`` against ``smoothing 0``. Settings
    this version cannot read are kept as written."""
    if not isinstance(training, dict):
        return {}
    raw = dict(training)
    try:
        return TrainConfig.from_dict(raw).to_dict()
    except (ConfigError, TypeError, ValueError):
        return raw


# One stat per run folder tells whether any of its files changed: every file of a run is written
# atomically (a temporary file renamed into place, core.training.runs), and a rename changes the
# folder's own modification time. Stat'ing each run's five files instead made ~1,000 system calls for
# 170 runs at every run's start and end, each one letting go of the interpreter lock: 3 ms idle, 41 ms
# with a run training beside the window (issue 11's soak). A folder read within RACY_NS of its last
# change may change again within the same tick of a coarse clock (FAT: 2 s), so such a reading is not
# trusted. A file edited in place by another program leaves the folder's time as it was: Refresh
# (``fresh=True``) reads every folder again.
RACY_NS = 2_000_000_000


@dataclass
class _Cached:
    stamp: tuple[int, int]  # the folder's (mtime_ns, inode) when read
    record: RunRecord | None  # None: not a run folder (no config.json)
    trusted: bool  # read long enough after the folder's last change


_records: dict[str, _Cached] = {}


def _stamp(folder: str) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def _read(folder: str, stamp: tuple[int, int] | None, may_read: bool = True) -> tuple[RunRecord | None, str]:
    """The record of ``folder`` (``None`` if it holds no config.json) and where it came from:
    ``"cached"`` while the folder's stamp is unchanged (a run still shown as running has its status
    asked again: its process may have ended without a word), else ``"read"`` now, or, when not
    ``may_read``, ``"left"``: what the cache has (``None`` if nothing), for a later call to read. A
    reading too recent to trust is read again only when ``may_read``."""
    cached = _records.get(folder)
    if cached is not None and cached.stamp == stamp and (cached.trusted or not may_read):
        rec = cached.record
        if rec is not None and rec.status == RUNNING:
            rec.status = run_status(RunFolder(rec.path))
        return rec, "cached"
    if not may_read:
        return (cached.record if cached is not None else None), "left"
    rec = RunRecord.read(Path(folder)) if os.path.isfile(os.path.join(folder, "config.json")) else None
    if stamp is None:
        _records.pop(folder, None)
    else:
        _records[folder] = _Cached(stamp, rec, time.time_ns() - stamp[0] > RACY_NS)
    return rec, "read"


def read_run(path: Path) -> RunRecord:
    """The run folder's record, read again only when one of its files changed."""
    folder = os.fspath(path)
    rec, _ = _read(folder, _stamp(folder))
    return rec if rec is not None else RunRecord.read(path)  # not (or no longer) a run: what is left of it


@dataclass
class Scan:
    """A runs folder as far as it was read: its runs, newest first, and how many folders are left to read."""

    records: list[RunRecord]
    unread: int = 0


def scan(root: Path, fresh: bool = False, deadline: float | None = None, least: int = 8) -> Scan:
    """Every run folder (one holding config.json) directly under ``root``.

    ``fresh`` reads every folder again, changed or not. Past ``deadline`` (a ``time.perf_counter``
    value), once ``least`` folders were read, the folders left to read are counted in ``unread``
    and given as the cache has them (left out if it has nothing): a call that follows reads on. A
    list first opened on 170 runs read them all at once, 0.25 s with a run training beside it.
    """
    try:
        with os.scandir(root) as entries:
            folders = [e.path for e in entries if e.is_dir()]  # is_dir: no system call on most systems
    except OSError:
        return Scan([])
    stamps = {folder: _stamp(folder) for folder in folders}
    parent = os.fspath(root)
    for gone in [f for f in _records if f not in stamps and os.path.dirname(f) == parent]:
        del _records[gone]  # a run folder deleted (or moved): its record goes with it
    if fresh:
        for folder in folders:
            if (cached := _records.get(folder)) is not None:
                cached.stamp = (-1, -1)  # kept (its row stays until it is read again) but never current
    # Folders that changed first, then those read too recently to trust: each call reads on.
    folders.sort(key=lambda f: (c := _records.get(f)) is not None and c.stamp == stamps[f])
    found: list[RunRecord] = []
    read = unread = 0
    for folder in folders:
        may_read = deadline is None or read < least or time.perf_counter() < deadline
        rec, how = _read(folder, stamps[folder], may_read)
        read += how == "read"
        unread += how == "left"
        if rec is not None:
            found.append(rec)
    found.sort(key=lambda r: (r.started, r.name), reverse=True)
    return Scan(found, unread)


def scan_runs(root: Path, fresh: bool = False) -> list[RunRecord]:
    """Every run folder (one holding config.json) directly under ``root``, newest first; ``fresh``
    reads every folder again, changed or not."""
    return scan(root, fresh).records


# ------------------------------------------------------------------------------------ run labels

# Settings that change how a run is watched or stored, not what it learns: never what tells runs apart.
_NOT_RESULTS = frozenset({"probe_interval", "probe_samples", "checkpoint_every", "workers", "download",
                          "data_root"})
# The settings a user changes to try something, named before graph changes and the other settings.
_FIRST = ("dataset", "optimizer", "lr", "batch_size", "schedule", "weight_decay", "momentum", "loss", "augment")
# Settings whose value names itself ("adam", "cosine"); the others read "name value" ("lr 0.02").
_SELF_NAMED = frozenset({"dataset", "optimizer", "schedule", "loss", "device"})
_SETTING_NAMES = {"batch_size": "batch", "weight_decay": "wd", "label_smoothing": "smoothing",
                  "warmup_epochs": "warm-up", "early_stopping": "early stop", "grad_clip": "clip",
                  "train_size": "train size", "val_size": "val size"}


def row_of(rec: RunRecord, label: str, t: Any) -> tuple[tuple[str, ...], bool, str | None]:
    """What a run's row shows: its column texts, whether the label is the user's own (italic), the
    status colour."""
    started = _dt.datetime.fromtimestamp(rec.started).strftime("%d %b %Y %H:%M") if rec.started else ""
    epochs = f"{len(rec.metrics)}/{rec.config.get('epochs', '?')}"
    texts = (label, rec.status, epochs, rec.best_text, str(rec.dataset.get("name", rec.config.get("dataset", ""))),
             started)
    colour = {"failed": t.error, "completed": t.ok, "early_stopped": t.ok, "running": t.accent}.get(rec.status)
    return texts, bool(rec.custom_label), colour


def run_labels(records: Sequence[RunRecord]) -> dict[str, str]:
    """Run folder → its label in the list: the user's name for it, else what sets it apart.

    What sets a run apart is found by comparing every run with the first (the comparison Compare
    shows): a setting or a node parameter that differs anywhere is one part of every run's label,
    with that run's own value (``lr 0.02 · conv1 12 ch``); nodes only some runs have read
    ``+bn1`` / ``−bn1``. Runs that nothing sets apart, or whose labels collide, also show their
    start time.
    """
    if not records:
        return {}
    ref = records[0]
    settings: dict[str, None] = {}  # ordered sets
    params: dict[tuple[str, str], None] = {}
    present: dict[str, None] = {}
    compared = {ref.content_key}
    for rec in records[1:]:
        if rec.content_key in compared:
            continue  # the same settings and graph as a run already compared: nothing new to find
        compared.add(rec.content_key)
        for key, _a, _b in diff_configs(ref.config, rec.config):
            if key not in _NOT_RESULTS:
                settings[key] = None
        diff = diff_graphs(ref.graph, rec.graph)
        for nid in (*diff.added, *diff.removed):
            present[nid] = None
        for nid, notes in diff.changed.items():
            for note in notes:  # "out_channels 4 → 6": the key is the note's first word
                params[(nid, note.split(" ", 1)[0])] = None
    first = [k for k in _FIRST if k in settings]  # what a user changes to try something, before the rest
    rest = [k for k in settings if k not in _FIRST]
    labels: dict[str, str] = {}
    for rec in records:
        nodes = {n["id"]: n for n in rec.graph.get("nodes", [])} if params or present else {}
        parts = [_setting_part(key, rec.config.get(key)) for key in first]
        parts += [_node_part(nid, key, nodes[nid]) for nid, key in params if nid in nodes]
        parts += [("+" if nid in nodes else "−") + nid for nid in present]
        parts += [_setting_part(key, rec.config.get(key)) for key in rest]
        if len(parts) > MAX_LABEL_PARTS:
            parts = [*parts[:MAX_LABEL_PARTS], f"+{len(parts) - MAX_LABEL_PARTS} more"]
        labels[str(rec.path)] = rec.custom_label or " · ".join(parts)
    return _unique(records, labels)


def _unique(records: Sequence[RunRecord], labels: dict[str, str]) -> dict[str, str]:
    """Give empty or repeated labels the run's start time (and a number if that still repeats)."""
    counts = Counter(labels.values())
    for rec in records:
        key = str(rec.path)
        if not labels[key]:
            labels[key] = short_label(rec.name)
        elif counts[labels[key]] > 1:
            stamp = _dt.datetime.fromtimestamp(rec.started).strftime("%H:%M:%S") if rec.started else rec.name
            labels[key] = f"{labels[key]} · {stamp}"
    seen: Counter[str] = Counter()
    for key, label in labels.items():
        seen[label] += 1
        if seen[label] > 1:
            labels[key] = f"{label} ({seen[label]})"
    return labels


def _value(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    return str(value)


def _setting_part(key: str, value: Any) -> str:
    if key in _SELF_NAMED and value is not None:
        return _value(value)
    return f"{_SETTING_NAMES.get(key, key.replace('_', ' '))} {_value(value)}"


def _node_part(nid: str, key: str, node: dict[str, Any]) -> str:
    """One node's difference in a card's short form: ``conv1 12 ch``, ``fc1 → 84``, ``conv2 s2``."""
    if key == "type":
        return f"{nid} {node.get('type')}"
    if key == "inputs":
        return f"{nid} rewired"
    if key in ("frozen", "init"):
        value = node.get(key)
        return f"{nid} {'frozen' if value else 'trainable'}" if key == "frozen" else f"{nid} init {_value(value)}"
    value = _param_in_effect(node, key)
    if key == "out_channels":
        return f"{nid} {value} ch"
    if key == "out_features":
        return f"{nid} → {value}"
    if key == "kernel_size":
        size = value if isinstance(value, list | tuple) else (value, value)
        return f"{nid} {'×'.join(map(str, size))}"
    if key == "shape" and isinstance(value, list | tuple):
        return f"{nid} {'×'.join(map(str, value))}"
    if key == "stride":
        return f"{nid} s{value if not isinstance(value, list | tuple) else '×'.join(map(str, value))}"
    return f"{nid} {key} {_value(value)}"


def _param_in_effect(node: dict[str, Any], key: str) -> Any:
    """A node's parameter as torch uses it: the given value, else the layer's default."""
    given = node.get("params") or {}
    if given.get(key) is not None:
        return given[key]
    spec = get_spec(str(node.get("type")))
    if spec is None:
        return None
    try:
        return spec.in_effect(spec.resolve(given)).get(key)
    except Exception:  # a graph from another version: its parameters may not validate here
        return None
