"""Looking inside a trained network: Grad-CAM, top-k predictions, receptive-field regions, kernels.

Pure torch/numpy (no Qt); the GUI's prediction, feature-map and filter viewers draw what these
functions return, and the comparison of two runs (:func:`diff_graphs`, :func:`diff_configs`)
explains what differed between them.

- :func:`gradcam` — Selvaraju et al., "Grad-CAM" (ICCV 2017): the feature maps ``A`` of a conv
  node weighted by the spatial mean of ``∂y_c/∂A`` per channel, summed, ReLU'd, upsampled to the
  input size and normalised to 0..1. The node is reached by its id, which is the module path in
  the compiled model (DESIGN.md §6): a forward hook on that module, or, for a node without a
  module (Add, Concat…), one interpreted pass of the ``torch.fx`` graph.
- :func:`top_k` — softmax of the first output, the k best classes with their probabilities.
- :func:`load_image` — an image file as the network's Input expects it (d2l's "predict one image":
  resize, to tensor, normalise, add a batch axis); :func:`open_image` reads the header and refuses
  decompression bombs, :func:`decode_image` decodes at reduced scale (JPEG draft, reduce).
- :func:`rf_region` — the input region a feature-map position sees, from the analysis'
  :class:`~core.analysis.ReceptiveField` (Araujo et al., Distill 2019: the first input pixel of
  output position ``i`` is ``i·jump − padding``, and the region is ``size`` pixels wide).
- :func:`rgb_tiles`, :func:`kernel_grid` — convolution kernels as pictures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn


class ExplainError(ValueError):
    """A request that cannot be answered; ``str()`` says what is wrong and what to do instead."""


# ----------------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class Prediction:
    """One class of a top-k list: its index, its name and the softmax probability (0..1)."""

    index: int
    name: str
    probability: float


def first_output(out: Any) -> torch.Tensor:
    """The main output of a model that may return a tuple (auxiliary heads come after it)."""
    while isinstance(out, tuple | list):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ExplainError(f"the model returned {type(out).__name__}, not a tensor of class scores")
    return out


def _device_of(model: nn.Module) -> torch.device:
    tensor: torch.Tensor | None = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def top_k(model: nn.Module, x: torch.Tensor, k: int = 5, classes: Sequence[str] = ()) -> list[Prediction]:
    """The ``k`` most probable classes for one image ``x`` (``(C, H, W)`` or ``(1, C, H, W)``, normalised).

    Runs in eval mode without gradients and restores the model's training mode.
    """
    batch = _batch_of_one(x).to(_device_of(model))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = first_output(model(batch)).float()
    finally:
        model.train(was_training)
    if logits.ndim != 2:
        raise ExplainError(f"the model's output has shape {list(logits.shape[1:])} per image; class predictions "
                           "need one score per class (a flat output)")
    probs = torch.softmax(logits[0], dim=0).cpu()
    k = max(1, min(k, probs.numel()))
    values, indices = probs.topk(k)
    return [Prediction(int(i), _class_name(classes, int(i)), float(v)) for v, i in zip(values, indices, strict=True)]


def _class_name(classes: Sequence[str], index: int) -> str:
    return str(classes[index]) if 0 <= index < len(classes) else f"class {index}"


def _batch_of_one(x: torch.Tensor) -> torch.Tensor:
    if x.ndim >= 2 and x.shape[0] == 1 and x.ndim in (2, 4):
        return x
    return x.unsqueeze(0)


# -------------------------------------------------------------------------------------- Grad-CAM


@dataclass(frozen=True)
class GradCam:
    """A Grad-CAM result: ``heatmap`` (H, W) float32 in 0..1 at the input's size.

    ``class_index``/``score``: the class explained and its logit; ``map_size``: the conv node's
    spatial size before upsampling (coarse maps make blocky heat).
    """

    heatmap: np.ndarray
    class_index: int
    score: float
    node: str
    map_size: tuple[int, int]


def gradcam(model: nn.Module, x: torch.Tensor, node_id: str, class_index: int | None = None) -> GradCam:
    """Grad-CAM of ``class_index`` (default: the predicted class) at node ``node_id`` for one image.

    ``x`` is one normalised image (``(C, H, W)`` or ``(1, C, H, W)``). The node's output must be a
    feature map ``(1, C, h, w)``. Model parameters get no gradients (their ``.grad`` is left as it
    was) and the training mode is restored.
    """
    batch = _batch_of_one(x).to(_device_of(model)).detach()
    if batch.ndim != 4:
        raise ExplainError(f"Grad-CAM needs an image input (C×H×W), got a tensor of shape {list(batch.shape[1:])}")
    was_training = model.training
    grad_flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    try:
        for p, _ in grad_flags:
            p.requires_grad_(False)  # only d(score)/d(activation) is wanted: leave .grad untouched
        with torch.enable_grad():
            activation, logits = _forward_capturing(model, batch, node_id)
            if activation.ndim != 4:
                raise ExplainError(f"{node_id} outputs {list(activation.shape[1:])} per image, not a feature map; "
                                   "choose a convolution (or any node with a C×H×W output) for Grad-CAM")
            if logits.ndim != 2:
                raise ExplainError("Grad-CAM explains a class score, but the model's output is not one score "
                                   f"per class (shape {list(logits.shape[1:])})")
            if class_index is None:
                class_index = int(logits[0].argmax())
            if not 0 <= class_index < logits.shape[1]:
                raise ExplainError(f"class {class_index} does not exist: the model has {logits.shape[1]} classes")
            score = logits[0, class_index]
            (grad,) = torch.autograd.grad(score, activation, allow_unused=True)
    finally:
        for p, flag in grad_flags:
            p.requires_grad_(flag)
        model.train(was_training)
    if grad is None:  # the class score does not depend on this node (e.g. an auxiliary branch)
        grad = torch.zeros_like(activation)
    weights = grad.float().mean(dim=(2, 3), keepdim=True)  # α_k^c: global-average-pooled gradients
    cam = F.relu((weights * activation.detach().float()).sum(dim=1, keepdim=True))
    h, w = batch.shape[2], batch.shape[3]
    up = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    peak = float(up.max())
    heat = (up / peak) if peak > 0 else torch.zeros_like(up)
    return GradCam(heatmap=heat.clamp_(0, 1).cpu().numpy().astype(np.float32), class_index=int(class_index),
                   score=float(score.detach()), node=node_id,
                   map_size=(int(activation.shape[2]), int(activation.shape[3])))


def _forward_capturing(model: nn.Module, batch: torch.Tensor, node_id: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model once and return (the output of ``node_id`` with its graph kept, the logits)."""
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    if node_id and node_id in modules:
        def hook(_m: nn.Module, _inputs: Any, output: Any) -> None:
            value = output[0] if isinstance(output, tuple | list) else output
            if isinstance(value, torch.Tensor):
                captured["a"] = value

        handle = modules[node_id].register_forward_hook(hook)
        try:
            # The input needs a gradient so the graph reaches the hooked activation even when
            # every parameter upstream is frozen.
            logits = first_output(model(batch.requires_grad_(True))).float()
        finally:
            handle.remove()
    elif isinstance(model, fx.GraphModule) and _fx_name(model, node_id) is not None:
        logits = first_output(_Capture(model, _fx_name(model, node_id) or "", captured)
                              .run(batch.requires_grad_(True))).float()
    else:
        raise ExplainError(f"there is no node {node_id!r} in the compiled model; pick a node of the graph "
                           "(its id is the module path)")
    if "a" not in captured:
        raise ExplainError(f"{node_id} did not produce a tensor in the forward pass")
    return captured["a"], logits


def _fx_name(model: fx.GraphModule, node_id: str) -> str | None:
    wanted = node_id.replace(".", "_")
    return next((n.name for n in model.graph.nodes if n.name == wanted), None)


class _Capture(fx.Interpreter):
    """Interprets a GraphModule and keeps one fx node's output (with autograd history)."""

    def __init__(self, module: fx.GraphModule, name: str, store: dict[str, torch.Tensor]) -> None:
        super().__init__(module)
        self.name = name
        self.store = store

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if n.name == self.name and isinstance(result, torch.Tensor):
            self.store["a"] = result
        return result


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a 0..1 heat map (jet-like colours) over an RGB uint8 image ``(H, W, 3)``; returns uint8."""
    if image.shape[:2] != heatmap.shape:
        raise ExplainError(f"the heat map is {heatmap.shape} but the image is {image.shape[:2]}")
    colours = colormap(heatmap, "jet")
    a = (alpha * np.clip(heatmap, 0, 1) ** 0.5)[..., None]  # cold areas stay see-through
    out = image.astype(np.float32) * (1 - a) + colours.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------- image files


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the network: ``tensor`` (1, C, H, W) normalised, ``display`` uint8 (C, H, W)."""

    tensor: torch.Tensor
    display: torch.Tensor
    source_size: tuple[int, int]  # the file's (width, height)
    decoded_size: tuple[int, int] = (0, 0)  # what was actually decoded (JPEG draft / reduce), before the resize


def open_image(path: str | Path) -> Any:
    """Open an image file lazily (only its header is read) and refuse what cannot or must not be decoded.

    Returns the open PIL image (the caller closes it, e.g. through :func:`decode_image`). A file whose
    header claims more pixels than PIL's decompression-bomb limit (about 179 megapixels) is refused in
    one sentence naming it and its pixel count: decoding it would take gigabytes. Images between PIL's
    warning and its limit are legitimate (big photos) and are decoded at reduced scale, so PIL's
    warning about them is silenced here.
    """
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except FileNotFoundError:
        raise ExplainError(f"{path}: no such file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else 0
        limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        raise ExplainError(f"{path} is {_megapixels(pixels)} megapixels, more than the {_megapixels(limit)} "
                           "megapixels an image may have here; scale it down first") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ExplainError(f"{path}: not a readable image ({exc}); use a PNG, JPEG, BMP or GIF file") from None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:,.0f}" if pixels >= 1e6 else f"{pixels / 1e6:.2g}"


# Modes whose pixels may be averaged as they are (``reduce``); palette, bilevel and 16-bit images are
# converted first, since averaging palette indices or packed bits gives nonsense.
_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA")


def decode_image(opened: Any, path: str | Path, shape: Sequence[int], mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> LoadedImage:
    """Decode an image from :func:`open_image` at the scale the Input ``shape`` (C, H, W) needs, and close it.

    The image is downscaled while it is decoded: a JPEG is decoded at 1/2, 1/4 or 1/8 scale
    (``draft``) and any other image is ``reduce``d by a whole factor, both keeping at least twice the
    target size so the final bilinear resize still averages enough pixels. Only then is it converted to
    grey (C = 1) or RGB (C = 3) and resized to H×W (the aspect ratio is not kept: the network sees a
    fixed size), scaled to 0..1 and normalised with the data source's per-channel ``mean``/``std``.
    This may run on a worker thread: it touches nothing but ``opened``.
    """
    from PIL import Image

    c, h, w = _image_shape(shape)
    mode = "L" if c == 1 else "RGB"
    try:
        with opened:
            size = opened.size
            opened.draft(mode, (2 * w, 2 * h))  # JPEG only (a no-op for other formats)
            img = opened
            if img.mode not in _REDUCIBLE_MODES:
                img = img.convert("RGBA" if "A" in img.mode or img.mode == "P" else mode)
            factor = min(img.width // (2 * w), img.height // (2 * h))
            if factor > 1:
                img = img.reduce(factor)
            decoded = img.size
            img = img.convert(mode).resize((w, h), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ExplainError(f"{path}: not a readable image ({exc}); use a PNG, JPEG, BMP or GIF file") from None
    except MemoryError:
        raise ExplainError(f"{path} is too big to read in the memory left ({size[0]}×{size[1]} pixels); "
                           "scale it down first") from None
    display = torch.from_numpy(array.copy())
    display = display.unsqueeze(0) if c == 1 else display.permute(2, 0, 1).contiguous()
    return LoadedImage(tensor=normalize(display, mean, std), display=display, source_size=size,
                       decoded_size=decoded)


def _image_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    dims = tuple(int(v) for v in shape)
    if len(dims) != 3 or dims[0] not in (1, 3):
        raise ExplainError(f"the network's Input is {list(dims)}: an image file can only feed a 1×H×W or 3×H×W "
                           "input")
    return dims[0], dims[1], dims[2]


def load_image(path: str | Path, shape: Sequence[int], mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> LoadedImage:
    """Read an image file and make it what the Input ``shape`` (C, H, W) expects: :func:`open_image`
    then :func:`decode_image` (downscaled while decoding, bombs refused)."""
    _image_shape(shape)
    return decode_image(open_image(path), path, shape, mean, std)


def normalize(images: torch.Tensor, mean: Sequence[float] | None = None,
              std: Sequence[float] | None = None) -> torch.Tensor:
    """uint8 ``(C, H, W)`` or ``(N, C, H, W)`` → float ``(N, C, H, W)``: ``(x/255 − mean)/std``."""
    x = images.to(torch.float32).div(255.0)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    c = x.shape[1]
    if mean:
        m = torch.tensor(_per_channel(mean, c), dtype=torch.float32).view(1, c, 1, 1)
        x = x - m
    if std:
        s = torch.tensor(_per_channel(std, c), dtype=torch.float32).clamp_min(1e-6).view(1, c, 1, 1)
        x = x / s
    return x


def _per_channel(values: Sequence[float], c: int) -> list[float]:
    values = [float(v) for v in values]
    if len(values) == c:
        return values
    if len(values) == 1:
        return values * c
    if c == 1:
        return [sum(values) / len(values)]
    raise ExplainError(f"{len(values)} normalisation values for an image with {c} channels")


# ------------------------------------------------------------------------------- receptive field


@dataclass(frozen=True)
class Region:
    """A rectangle of input pixels, inclusive: rows ``top..bottom``, columns ``left..right``.

    ``full`` is the unclipped extent (it may reach into the padding, outside the image).
    """

    top: int
    left: int
    bottom: int
    right: int
    center: tuple[float, float]  # (row, column) in input pixels
    full: tuple[float, float, float, float]  # top, left, bottom, right before clipping

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def width(self) -> int:
        return self.right - self.left + 1


def rf_region(rf: Any, position: tuple[int, int], image_size: tuple[int, int]) -> Region:
    """The input region that feature-map ``position`` (row, column) sees, clipped to the image.

    ``rf`` is a node's :class:`core.analysis.ReceptiveField` (``size``, ``stride`` = jump,
    ``padding`` = effective padding, per spatial axis); a global field (``size`` None) covers
    the whole image. ``image_size`` is the input's (H, W).
    """
    h, w = int(image_size[0]), int(image_size[1])
    if rf is None or rf.size is None:
        return Region(0, 0, h - 1, w - 1, ((h - 1) / 2, (w - 1) / 2), (0, 0, h - 1, w - 1))
    size, jump, pad = (_two(v) for v in (rf.size, rf.stride, rf.padding))
    starts = [position[i] * jump[i] - pad[i] for i in range(2)]
    ends = [starts[i] + size[i] - 1 for i in range(2)]
    centers = [(starts[i] + ends[i]) / 2 for i in range(2)]
    limits = (h - 1, w - 1)
    lo = [int(min(max(math.floor(starts[i]), 0), limits[i])) for i in range(2)]
    hi = [int(max(min(math.ceil(ends[i]), limits[i]), lo[i])) for i in range(2)]
    return Region(lo[0], lo[1], hi[0], hi[1], (centers[0], centers[1]), (starts[0], starts[1], ends[0], ends[1]))


def _two(values: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(v) for v in values)
    if len(values) == 1:
        return values[0], values[0]
    return values[-2], values[-1]


def scale_position(position: tuple[int, int], shown: tuple[int, int], actual: tuple[int, int]) -> tuple[int, int]:
    """Map a position in a downsampled map (``shown`` size) to the node's real output size."""
    return (min(actual[0] - 1, int(position[0] * actual[0] / max(shown[0], 1))),
            min(actual[1] - 1, int(position[1] * actual[1] / max(shown[1], 1))))


# --------------------------------------------------------------------------------------- kernels


def rgb_tiles(weight: torch.Tensor) -> np.ndarray:
    """First-layer kernels ``(out, 3, k, k)`` as RGB tiles ``(out, k, k, 3)`` float32 in 0..1.

    Each kernel is min-max normalised on its own (what the filter responds to, not its scale).
    """
    if weight.ndim != 4 or weight.shape[1] not in (1, 3):
        raise ExplainError(f"RGB tiles need the kernels of a convolution on 1 or 3 channels, got a weight of shape "
                           f"{list(weight.shape)}; use kernel_grid for other layers")
    w = weight.detach().float().cpu()
    if w.shape[1] == 1:
        w = w.expand(-1, 3, -1, -1)
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    tiles = (w - lo) / (hi - lo).clamp_min(1e-12)
    return tiles.permute(0, 2, 3, 1).contiguous().numpy().astype(np.float32)


def kernel_grid(weight: torch.Tensor, max_out: int = 64, max_in: int = 64) -> np.ndarray:
    """Any conv's kernels as a grid ``(out, in, kh, kw)`` float32 in −1..1 (0 = a zero weight).

    Scaled by the largest magnitude shown, so signs and relative strengths read the same across
    the grid (for a diverging colour map). Rows and columns are capped at ``max_out``/``max_in``.
    """
    if weight.ndim < 3:
        raise ExplainError(f"a weight of shape {list(weight.shape)} is not a convolution kernel")
    w = weight.detach().float().cpu()
    if w.ndim == 3:  # Conv1d: one row per kernel
        w = w.unsqueeze(2)
    elif w.ndim > 4:  # Conv3d: the middle depth slice
        w = w.select(2, w.shape[2] // 2)
    w = w[:max_out, :max_in]
    peak = float(w.abs().max()) if w.numel() else 0.0
    return (w / peak if peak > 0 else w).numpy().astype(np.float32)


def conv_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every convolution's weight by node id (module path), in model order."""
    out: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.conv._ConvNd) and name:
            out[name] = module.weight
    return out


# ----------------------------------------------------------------------------------- colour maps

# Control points (position, r, g, b) of the colour maps the viewers use: viridis-like for
# activations (perceptually ordered), jet-like for Grad-CAM heat, blue-white-red for signed weights.
_MAPS: dict[str, tuple[tuple[float, int, int, int], ...]] = {
    "viridis": ((0.0, 68, 1, 84), (0.25, 59, 82, 139), (0.5, 33, 145, 140), (0.75, 94, 201, 98),
                (1.0, 253, 231, 37)),
    "jet": ((0.0, 0, 0, 128), (0.15, 0, 0, 255), (0.35, 0, 200, 255), (0.5, 60, 255, 160),
            (0.65, 255, 230, 0), (0.85, 255, 60, 0), (1.0, 128, 0, 0)),
    "diverging": ((0.0, 33, 102, 172), (0.25, 103, 169, 207), (0.5, 247, 247, 247), (0.75, 239, 138, 98),
                  (1.0, 178, 24, 43)),
    "gray": ((0.0, 0, 0, 0), (1.0, 255, 255, 255)),
}
_LUTS: dict[str, np.ndarray] = {}


def lookup_table(name: str) -> np.ndarray:
    """A 256×3 uint8 table for the colour map ``name`` (viridis, jet, diverging, gray)."""
    if name not in _MAPS:
        raise ExplainError(f"unknown colour map {name!r}; use one of {', '.join(_MAPS)}")
    if name not in _LUTS:
        points = np.array(_MAPS[name], dtype=np.float64)
        xs = np.linspace(0, 1, 256)
        _LUTS[name] = np.stack([np.interp(xs, points[:, 0], points[:, i]) for i in (1, 2, 3)], axis=1
                               ).round().astype(np.uint8)
    return _LUTS[name]


def colormap(values: np.ndarray, name: str = "viridis") -> np.ndarray:
    """Map 0..1 values (any shape) to uint8 RGB (shape + (3,))."""
    idx = np.clip(np.nan_to_num(values, nan=0.0) * 255 + 0.5, 0, 255).astype(np.uint8)
    return lookup_table(name)[idx]


def normalize_channels(maps: np.ndarray) -> np.ndarray:
    """Per-channel min-max to 0..1 for ``(C, H, W)`` maps (a flat channel becomes 0)."""
    m = maps.astype(np.float32)
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    return np.where(span > 0, (m - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


# ---------------------------------------------------------------------------------- run compare


@dataclass(frozen=True)
class GraphDiff:
    """What changed from graph ``a`` to graph ``b``: node ids added, removed and changed.

    ``changed[id]`` lists the differences in words (type, parameters, inputs, frozen, init).
    """

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_graphs(a: Mapping[str, Any], b: Mapping[str, Any]) -> GraphDiff:
    """Compare two graphs in the project-file form (``{"nodes": [...], "edges": [...]}``).

    Positions and groups are layout, not the network, and are ignored.
    """
    na = {n["id"]: n for n in a.get("nodes", [])}
    nb = {n["id"]: n for n in b.get("nodes", [])}
    ins_a, ins_b = _inputs(a), _inputs(b)
    changed: dict[str, tuple[str, ...]] = {}
    for nid in na.keys() & nb.keys():
        x, y = na[nid], nb[nid]
        notes: list[str] = []
        if x.get("type") != y.get("type"):
            notes.append(f"type {x.get('type')} → {y.get('type')}")
        px, py = x.get("params") or {}, y.get("params") or {}
        for key in sorted(px.keys() | py.keys()):
            if px.get(key) != py.get(key):
                notes.append(f"{key} {_show(px.get(key))} → {_show(py.get(key))}")
        for key in ("frozen", "init"):
            if x.get(key) != y.get(key):
                notes.append(f"{key} {_show(x.get(key))} → {_show(y.get(key))}")
        if ins_a.get(nid, []) != ins_b.get(nid, []):
            before, after = (", ".join(ins.get(nid, [])) or "none" for ins in (ins_a, ins_b))
            notes.append(f"inputs {before} → {after}")
        if notes:
            changed[nid] = tuple(notes)
    order = [n["id"] for n in b.get("nodes", [])] + [n["id"] for n in a.get("nodes", [])]
    rank = {nid: i for i, nid in reversed(list(enumerate(order)))}
    return GraphDiff(added=tuple(sorted(nb.keys() - na.keys(), key=rank.__getitem__)),
                     removed=tuple(sorted(na.keys() - nb.keys(), key=rank.__getitem__)),
                     changed={k: changed[k] for k in sorted(changed, key=rank.__getitem__)})


def _inputs(graph: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for e in graph.get("edges", []):
        out.setdefault(e["to"], []).append((int(e.get("port", 0)), str(e["from"])))
    return {k: [src for _, src in sorted(v)] for k, v in out.items()}


def diff_configs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """The training settings that differ: ``(key, value in a, value in b)``, sorted by key."""
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def _show(value: Any) -> str:
    if value is None:
        return "default"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


__all__ = [
    "ExplainError", "GradCam", "GraphDiff", "LoadedImage", "Prediction", "Region", "colormap", "conv_weights",
    "decode_image", "diff_configs", "diff_graphs", "first_output", "gradcam", "kernel_grid", "load_image",
    "lookup_table", "normalize", "normalize_channels", "open_image", "overlay", "rf_region", "rgb_tiles",
    "scale_position", "top_k",
]
