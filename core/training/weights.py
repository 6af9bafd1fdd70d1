"""Weights in: resolve a weights source, fetch its tensors, load what fits, report what happened (DESIGN.md §11).

A source ``W`` is one of:

- ``DEFAULT`` or a member name (``IMAGENET1K_V2``) of the torchvision weights enum of the model
  the graph mirrors (``arch``, e.g. ``"resnet18"``), or a qualified enum
  (``ResNet18_Weights.IMAGENET1K_V1``): downloaded with torchvision's URL into torch hub's cache,
  hash-checked, with progress and cancel (:mod:`core.training.weights_download`);
- a file: ``.pth``/``.pt`` holding a bare ``state_dict``, ``{"model": …}``, ``{"state_dict": …}``
  or a NetCanvas checkpoint (a run folder means its ``checkpoints/last.pt``), always read with
  ``weights_only=True``; or ``.safetensors``, read by :mod:`core.training.safetensors_read`.

:func:`load_weights` copies every tensor whose name and shape match, strips a common key prefix
(``module.`` from DataParallel, ``model.``, ``backbone.`` …) when that makes more names match,
leaves tensors whose shape changed (a new head) at their fresh initialisation, and never raises
on a mismatch: the :class:`WeightsReport` says what was kept, reinitialised, missing and
unexpected, per key and per node (the canvas's weight map).

The project file remembers the source and its hash (``"weights": {"source", "sha256"}``), and
which torchvision model the graph mirrors (``"torchvision": "resnet18"``, written by the templates
and ``torchvision:NAME`` imports): :func:`project_weights`, :func:`set_project_weights`,
:func:`project_arch`.
"""

from __future__ import annotations

import difflib
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from core.project import Project, ProjectError
from core.training.safetensors_read import SafetensorsError, read_safetensors
from core.training.weights_download import (
    Cancel,
    Progress,
    WeightsCancelled,
    WeightsError,
    download,
    expected_hash,
    file_sha256,
    mirrored,
    size_text,
)

WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".safetensors", ".bin", ".ckpt")
# Wrappers that prefix every key: DataParallel/DDP (module.), Lightning and timm-style holders
# (model.), detection/segmentation backbones (backbone.), torch.compile (_orig_mod.).
KNOWN_PREFIXES = ("module.", "model.", "backbone.", "_orig_mod.", "encoder.", "net.")
# The keys under which training scripts commonly save the state_dict inside a bigger dict.
STATE_KEYS = ("state_dict", "model", "model_state_dict")
_HEX = re.compile(r"[0-9a-f]{8,64}")
_QUALIFIED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*_Weights\.[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class InputPipeline:
    """What the weights were trained to see: resize the shorter side, centre-crop, normalise.

    From torchvision's ``weights.transforms()`` (``ImageClassification``): images are resized to
    ``resize`` (shorter side), centre-cropped to ``crop``×``crop``, scaled to [0, 1] and
    normalised with ``mean``/``std`` per channel.
    """

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict[str, Any]:
        return {"resize": self.resize, "crop": self.crop, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}


@dataclass(frozen=True)
class WeightsSpec:
    """A resolved weights source: a torchvision enum (``url``, ``file_size``) or a file (``path``)."""

    label: str  # the qualified enum name, or the file path as given
    url: str | None = None  # where it downloads from ($NETCANVAS_WEIGHTS_MIRROR applied)
    file_size: int | None = None  # bytes, from the enum's metadata
    path: Path | None = None
    arch: str | None = None  # the torchvision model the enum belongs to
    pipeline: InputPipeline | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.path is not None

    @property
    def cache_path(self) -> Path | None:
        """Where a download goes: torch hub's ``checkpoints`` folder, under the URL's file name."""
        if self.url is None:
            return None
        from urllib.parse import urlparse

        return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(self.url).path).name

    def transforms(self) -> InputPipeline | None:
        """The input pipeline the weights expect (None for files: a file does not say)."""
        return self.pipeline


class _Nodes(Protocol):
    @property
    def nodes(self) -> Mapping[str, Any]: ...


@dataclass
class WeightsReport:
    """What loading weights into a network did, key by key (DESIGN.md §7's JSON, the canvas's weight map)."""

    source: str
    sha256: str | None
    kept: list[str]
    reinitialized: list[str]
    missing: list[str]
    unexpected: list[str]
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)  # key → (file, net)
    prefix: str = ""  # the key prefix stripped from the file's names, if any
    last_key: str = ""  # the network's last state key: a change there is the head's class count

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kept": len(self.kept), "reinitialized": list(self.reinitialized),
                "missing": list(self.missing), "unexpected": list(self.unexpected)}

    def node_status(self, graph: _Nodes) -> dict[str, str]:
        """``node id → "pretrained" | "new" | "partial"`` for every node that owns tensors."""
        kept = set(self.kept)
        owned: dict[str, list[bool]] = {}
        for key in [*self.kept, *self.reinitialized, *self.missing]:
            node = owner(key, graph.nodes)
            if node is not None:
                owned.setdefault(node, []).append(key in kept)
        return {nid: "pretrained" if all(flags) else "new" if not any(flags) else "partial"
                for nid, flags in owned.items()}

    def summary(self) -> str:
        """One line, e.g. ``Loaded 120 tensors from ResNet18_Weights.IMAGENET1K_V1; fc.weight, fc.bias
        reinitialized (shape changed: 1000→10 classes)``."""
        n = len(self.kept)
        parts = [f"Loaded {n} tensor{'s' * (n != 1)} from {self.source}"]
        if self.reinitialized:
            parts.append(f"{_names(self.reinitialized)} reinitialized (shape changed: {self._change()})")
        if self.missing:
            parts.append(f"{len(self.missing)} missing, left at their initial values ({_names(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} in the file unused ({_names(self.unexpected)})")
        return "; ".join(parts)

    def _change(self) -> str:
        changes = [self.shapes[k] for k in self.reinitialized if k in self.shapes]
        # A head whose class count changed: every changed tensor differs in its first dimension only,
        # by the same two numbers (weight [1000, 512] → [10, 512], bias [1000] → [10]).
        firsts = {(a[0], b[0]) for a, b in changes if a and b and a[1:] == b[1:] and a[0] != b[0]}
        if changes and len(firsts) == 1 and all(a[1:] == b[1:] for a, b in changes):
            (old, new), = firsts
            return f"{old}→{new} {'classes' if self.last_key in self.reinitialized else 'outputs'}"
        return ", ".join(f"{_shape(a)}→{_shape(b)}" for a, b in changes[:3]) + ("…" if len(changes) > 3 else "")


def _shape(s: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, s)) + "]"


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def owner(key: str, nodes: Mapping[str, Any]) -> str | None:
    """The node that owns state key ``key``: the longest node id that is a dotted prefix of it."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in nodes:
            return candidate
    return None


# ------------------------------------------------------------------------------------------ resolve


def resolve(spec: str, arch: str | None) -> WeightsSpec:
    """Turn ``spec`` (``DEFAULT``, ``IMAGENET1K_V2``, ``ResNet18_Weights.IMAGENET1K_V1`` or a path) into a
    :class:`WeightsSpec`; ``arch`` is the torchvision model the graph mirrors (needed for bare names)."""
    text = spec.strip()
    if not text:
        raise WeightsError("no weights source given: say DEFAULT, a torchvision weights name or a file")
    # A name (DEFAULT, IMAGENET1K_V2, ResNet18_Weights.IMAGENET1K_V1) is a name even where a file of
    # that name happens to exist in the working folder: ./DEFAULT says the file
    if _QUALIFIED.fullmatch(text):
        return _enum_spec(_qualified(text), text)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        path = Path(text).expanduser()
        if path.exists():
            return WeightsSpec(label=text, path=path)
        if path.suffix.lower() in WEIGHT_FILE_SUFFIXES or "/" in text or "\\" in text:
            raise WeightsError(f"no weights file at {text}")
        raise WeightsError(f"{text!r} is neither a file nor a torchvision weights name "
                           "(DEFAULT, IMAGENET1K_V1, ResNet18_Weights.IMAGENET1K_V1)")
    as_file = f" (for the file {text}, say ./{text})" if Path(text).exists() else ""
    if arch is None:
        raise WeightsError(f"{text} names weights of the torchvision model this network mirrors, but it mirrors "
                           f"none; give a qualified name (ResNet18_Weights.IMAGENET1K_V1) or a file{as_file}")
    enum = _model_weights(arch)
    members = list(dict.fromkeys(m.name for m in enum))
    try:
        weights = enum[text.upper()]
    except KeyError:
        raise WeightsError(f"{arch} has no weights {text!r}; its weights: DEFAULT, {', '.join(members)}"
                           f"{as_file}") from None
    return _enum_spec(weights, text)


def _model_weights(arch: str) -> Any:
    import torchvision

    try:
        return torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):
        names = torchvision.models.list_models(module=torchvision.models)
        close = difflib.get_close_matches(arch, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise WeightsError(f"torchvision has no pretrained weights for {arch!r}{hint}") from None


def _qualified(text: str) -> Any:
    import torchvision

    enum_name, member = text.split(".")
    try:
        return torchvision.models.get_weight(text)
    except (ValueError, KeyError, AttributeError):
        pass
    try:  # the enum exists but not this member: list its members
        enum = torchvision.models.get_weight(f"{enum_name}.DEFAULT").__class__
    except (ValueError, KeyError, AttributeError):
        raise WeightsError(f"torchvision has no weights enum {enum_name!r}") from None
    members = ", ".join(dict.fromkeys(m.name for m in enum))
    raise WeightsError(f"{enum_name} has no member {member!r}; its members: DEFAULT, {members}")


def _enum_spec(weights: Any, given: str) -> WeightsSpec:
    label = f"{type(weights).__name__}.{weights.name}"
    size_mb = weights.meta.get("_file_size")  # torchvision records it in MiB
    size = round(float(size_mb) * (1 << 20)) if isinstance(size_mb, int | float) else None
    return WeightsSpec(label=label, url=mirrored(weights.url), file_size=size, arch=_arch_of_enum(type(weights)),
                       pipeline=_pipeline(weights), meta=dict(weights.meta))


def _pipeline(weights: Any) -> InputPipeline | None:
    """resize/crop/mean/std from the weights' preset (only ``ImageClassification`` carries all four)."""
    try:
        preset = weights.transforms()
        resize, crop = list(preset.resize_size), list(preset.crop_size)
        interpolation = str(getattr(preset.interpolation, "value", preset.interpolation))
        return InputPipeline(int(resize[0]), int(crop[0]), tuple(float(v) for v in preset.mean),
                             tuple(float(v) for v in preset.std), interpolation)
    except (AttributeError, TypeError, IndexError, ValueError):
        return None


def _arch_of_enum(enum: type) -> str | None:
    """The torchvision model whose weights enum is ``enum`` (``ResNet18_Weights`` → ``resnet18``)."""
    import torchvision

    guess = enum.__name__.removesuffix("_Weights").lower()
    candidates = [guess, *torchvision.models.list_models()]
    for name in candidates:
        try:
            if torchvision.models.get_model_weights(name) is enum:
                return name
        except (ValueError, KeyError):
            continue
    return None


# -------------------------------------------------------------------------------------------- fetch


def fetch(spec: WeightsSpec, progress: Progress | None = None,
          cancel: Cancel | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict ``spec`` names and its sha256, downloading an enum's file into the hub cache first."""
    if spec.path is not None:
        return read_weights_file(spec.path)
    if spec.url is None:
        raise WeightsError(f"{spec.label}: neither a file nor a URL to fetch")
    target = spec.cache_path
    assert target is not None
    sha = None
    if target.is_file():
        sha = file_sha256(target)
        want = expected_hash(target.name)
        if want is not None and not sha.startswith(want):
            sha = None  # a damaged cached copy (or another file by that name): fetch it again
    if sha is None:
        sha = download(spec.url, target, size_hint=spec.file_size, progress=progress, cancel=cancel)
    return _load_torch_file(target, spec.label), sha


def read_weights_file(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Tensors by name from a weights file or run folder, and the sha256 of the file read."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.pt"
        if not p.is_file():
            raise WeightsError(f"{path} is a folder but not a NetCanvas run with a checkpoint (checkpoints/last.pt "
                               "is missing: the run has not finished an epoch?)")
    try:
        sha = file_sha256(p)
    except OSError as exc:
        raise WeightsError(f"cannot read {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".safetensors":
        try:
            return read_safetensors(p), sha
        except SafetensorsError as exc:
            raise WeightsError(str(exc)) from None
    return _load_torch_file(p, str(p)), sha


def _load_torch_file(p: Path, label: str) -> dict[str, torch.Tensor]:
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refused an object it would have to run code to build (a whole pickled model:
        # "Unsupported global: GLOBAL torch.nn.modules.linear.Linear …"), or the bytes are no pickle
        # at all; torch's own message is lines of advice to turn the safety off, never shown
        needs = re.search(r"GLOBAL (\S+)", str(exc))
        if needs is None:
            raise WeightsError(f"cannot read {label} (damaged or not a weights file)") from None
        raise WeightsError(f"{label} contains code, not only tensors (it needs {needs.group(1)}: a whole pickled "
                           "model?); it was not loaded — save its state_dict() instead") from None
    except Exception as exc:  # truncated, damaged or not a torch file
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"cannot read {label} (damaged or not a weights file): {reason}") from None
    return state_from(data, label)


def state_from(data: Any, label: str) -> dict[str, torch.Tensor]:
    """The tensors by name inside a loaded file: a bare state_dict, ``{"model"|"state_dict": …}`` or a
    NetCanvas checkpoint (whose ``"model"`` is the state_dict)."""
    inner = data
    if isinstance(data, Mapping) and not _tensors(data):
        for key in STATE_KEYS:
            if isinstance(data.get(key), Mapping) and _tensors(data[key]):
                inner = data[key]
                break
    tensors = _tensors(inner) if isinstance(inner, Mapping) else {}
    if not tensors:
        found = (f"a dict with keys {', '.join(map(repr, list(data)[:6]))}" if isinstance(data, Mapping)
                 else f"a {type(data).__name__}")
        raise WeightsError(f"{label} holds no tensors by name (a state_dict, {{'model': …}}, {{'state_dict': …}} or "
                           f"a NetCanvas checkpoint); it holds {found}")
    return tensors


def _tensors(mapping: Mapping[Any, Any]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}


# --------------------------------------------------------------------------------------------- load


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
                 sha256: str | None = None) -> WeightsReport:
    """Copy the tensors of ``state`` that fit ``model`` (same name after the best prefix strip, same
    shape); the rest stay as initialised. Never raises on a mismatch: the report says what happened."""
    target = model.state_dict()
    prefix, mapped = best_mapping(state, target)
    kept: list[str] = []
    reinit: list[str] = []
    missing: list[str] = []
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    fits: dict[str, torch.Tensor] = {}
    for key, mine in target.items():
        theirs = mapped.get(key)
        if theirs is None:
            missing.append(key)
        elif tuple(theirs.shape) != tuple(mine.shape):
            reinit.append(key)
            shapes[key] = (tuple(theirs.shape), tuple(mine.shape))
        else:
            kept.append(key)
            fits[key] = theirs
    unexpected = [_original(k, prefix, state) for k in mapped if k not in target]
    with torch.no_grad():
        model.load_state_dict(fits, strict=False)  # copies (and casts) into the existing tensors
    return WeightsReport(source=source, sha256=sha256, kept=kept, reinitialized=reinit, missing=missing,
                         unexpected=unexpected, shapes=shapes, prefix=prefix, last_key=next(reversed(target), ""))


def _original(key: str, prefix: str, state: Mapping[str, torch.Tensor]) -> str:
    """A mapped key's name in the file (the prefix given back where it was stripped)."""
    return prefix + key if prefix and prefix + key in state else key


def best_mapping(state: Mapping[str, torch.Tensor],
                 target: Mapping[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """``(prefix, renamed state)``: the prefix whose removal makes the most of ``state``'s names match
    ``target``'s (``""``, keys unchanged, wins ties). Candidates are the dotted prefixes every key
    shares and the usual wrapper prefixes; a key without the prefix keeps its name."""
    keys = list(state)
    candidates = [""]
    shared = keys[0].split(".")[:-1] if keys else []
    for depth in range(1, min(len(shared), 3) + 1):
        p = ".".join(shared[:depth]) + "."
        if all(k.startswith(p) for k in keys):
            candidates.append(p)
    candidates += [p for p in KNOWN_PREFIXES if p not in candidates and any(k.startswith(p) for k in keys)]
    best: tuple[int, str, dict[str, torch.Tensor]] | None = None
    for p in candidates:
        renamed = {_held(k[len(p):] if p and k.startswith(p) else k, target): v for k, v in state.items()}
        score = sum(1 for k in renamed if k in target)
        if best is None or score > best[0]:
            best = (score, p, renamed)
    assert best is not None
    return best[1], best[2]


def _held(key: str, target: Mapping[str, torch.Tensor]) -> str:
    """A learned tensor the file names ``x`` (ViT's ``class_token``) is held by a Parameter node as ``x.weight``."""
    return f"{key}.weight" if key not in target and f"{key}.weight" in target else key


def apply_weights(model: nn.Module, spec_text: str, arch: str | None, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> WeightsReport:
    """resolve + fetch + load: the one call the training session and the GUI make."""
    spec = resolve(spec_text, arch)
    state, sha = fetch(spec, progress, cancel)
    return load_weights(model, state, spec.label, sha)


# ------------------------------------------------------------------------------------ the project


def project_weights(project: Project) -> dict[str, Any] | None:
    """The project's ``"weights": {"source", "sha256"}`` entry, checked; None when it has none."""
    entry = project.extra.get("weights")
    if entry is None:
        return None
    if not isinstance(entry, Mapping):
        raise ProjectError(f"must be an object {{\"source\": …, \"sha256\": …}}, not {type(entry).__name__}",
                           "weights")
    source = entry.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ProjectError("must name the weights (DEFAULT, a torchvision weights name or a file), "
                           f"got {source!r}", "weights.source")
    sha = entry.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _HEX.fullmatch(sha)):
        raise ProjectError(f"must be a hexadecimal sha256, got {sha!r}", "weights.sha256")
    return {"source": source, "sha256": sha}


def recorded_source(project: Project) -> str | None:
    """The weights source the project file records, to load again (``None`` when it records none): a
    relative file path is read from the project file's folder when the file is there."""
    entry = project_weights(project)
    if entry is None:
        return None
    source = str(entry["source"])
    if project.path is not None and not Path(source).is_absolute():
        beside = Path(project.path).parent / source
        if beside.exists():
            return str(beside)
    return source


def set_project_weights(project: Project, report: WeightsReport) -> None:
    """Record where the project's weights came from (saved with the project file)."""
    entry: dict[str, Any] = {"source": report.source}
    if report.sha256:
        entry["sha256"] = report.sha256
    project.extra["weights"] = entry


def project_arch(project: Project) -> str | None:
    """The torchvision model the project's graph mirrors: its ``"torchvision"`` key, a
    ``torchvision:NAME`` import, or the model of a recorded qualified weights name."""
    name = project.extra.get("torchvision")
    if isinstance(name, str) and name:
        return name
    imported = project.extra.get("imported_from")
    if isinstance(imported, str) and imported.startswith("torchvision:"):
        return imported.split(":", 1)[1] or None
    entry = project.extra.get("weights")
    source = entry.get("source") if isinstance(entry, Mapping) else None
    if isinstance(source, str) and _QUALIFIED.fullmatch(source):
        try:
            return _arch_of_enum(type(_qualified(source)))
        except WeightsError:
            return None
    return None


def project_pipeline(project: Project) -> InputPipeline | None:
    """The input pipeline of the torchvision weights the project records (None for a file or none):
    what a folder dataset should apply so the network sees images as its weights were trained on."""
    entry = project_weights(project)
    if entry is None:
        return None
    source = entry["source"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", source) or Path(source).suffix.lower() in WEIGHT_FILE_SUFFIXES:
        return None  # a file: it does not say how its network's inputs were prepared
    try:
        return resolve(source, project_arch(project)).transforms()
    except WeightsError:
        return None


def describe(spec: WeightsSpec) -> str:
    """One line for a progress dialog: ``ResNet18_Weights.IMAGENET1K_V1 (44.66 MiB) from URL``."""
    if spec.path is not None:
        return f"{spec.label}"
    return f"{spec.label} ({size_text(spec.file_size)}) from {spec.url}"

__all__ = ["InputPipeline", "WeightsCancelled", "WeightsError", "WeightsReport", "WeightsSpec", "apply_weights",
           "best_mapping", "describe", "fetch", "load_weights", "owner", "project_arch", "project_pipeline",
           "project_weights", "read_weights_file", "recorded_source", "resolve", "set_project_weights", "state_from"]
