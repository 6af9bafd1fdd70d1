"""Generated samples of a GAN: image grids (PNG) and the trained generator of a run folder.

The training engine writes the fixed-noise grid of every epoch with :func:`save_grid`
(``RUN_DIR/samples/epoch_001.png`` …); ``main.py sample`` loads a run's generator with
:func:`load_generator` and writes a grid of new samples the same way. Images are uint8
``(n, C, H, W)`` (one or three channels); the grid puts ``nrow`` images in a row with 2-pixel
gaps between them.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.project import Project, atomic_write_bytes
from core.training.runs import RunFolder, RunFolderError, load_checkpoint

GAP = 2  # pixels between tiles
# A mid grey, not black: MNIST digits and most generated images have black backgrounds, and black
# gaps would merge the tiles into one picture.
GAP_VALUE = 96


def grid_image(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """The images as one uint8 RGB picture ``(H, W, 3)``: ``nrow`` per row (default: a square),
    :data:`GAP` pixels of grey between them. Grey images are shown as RGB."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"expected images as a (n, C, H, W) tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    n, c, h, w = images.shape
    if n == 0:
        raise ValueError("there are no images to put in a grid")
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels to be shown, these have {c}")
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0-255), got {images.dtype}")
    per_row = math.ceil(math.sqrt(n)) if nrow is None else int(nrow)
    if per_row < 1:
        raise ValueError(f"nrow must be at least 1, got {nrow}")
    per_row = min(per_row, n)
    rows = math.ceil(n / per_row)
    imgs = images.detach().to("cpu")
    if c == 1:
        imgs = imgs.expand(n, 3, h, w)
    out = torch.full((rows * h + (rows - 1) * GAP, per_row * w + (per_row - 1) * GAP, 3), GAP_VALUE,
                     dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, per_row)
        y, x = r * (h + GAP), col * (w + GAP)
        out[y:y + h, x:x + w] = imgs[i].permute(1, 2, 0)
    return out


def grid_png(images: torch.Tensor, nrow: int | None = None) -> bytes:
    """:func:`grid_image` encoded as PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grid_image(images, nrow).numpy(), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write :func:`grid_image` of ``images`` to ``path`` as PNG, atomically (readers see the old
    picture or the new one, never a part); the folder is made when missing. Returns the path."""
    target = Path(path)
    data = grid_png(images, nrow)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, data)
    return target


def to_uint8(generated: torch.Tensor) -> torch.Tensor:
    """A generator's Tanh output in [-1, 1] as uint8 pixels (the contract's mapping)."""
    return ((generated.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class NetworkLoadError(RunFolderError):
    """A run whose network does not compile or whose weights do not fit it (a
    :class:`core.training.runs.RunFolderError`; the CLI exits 1 for it, 2 for other folder errors)."""


def run_project(run_dir: str | Path) -> Project:
    """The project a run folder trained (its ``graph.json``); :class:`RunFolderError` when missing or invalid."""
    from core.project import ProjectError, project_from_dict

    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise RunFolderError(f"{folder.path} is not a folder: give the run folder that training wrote")
    graph_file = folder.path / "graph.json"
    if not graph_file.is_file():
        raise RunFolderError(f"{graph_file} is missing: {folder.path} is not a run folder")
    try:
        return project_from_dict(folder.read_json("graph.json"))
    except ProjectError as exc:
        raise RunFolderError(f"{graph_file} is not a valid project: {exc}") from None


def load_run_network(run_dir: str | Path, network: str | None = None) -> tuple[Project, nn.Module]:
    """One trained network of a run folder, in eval mode on the CPU, with the project holding it.

    ``network`` ``"generator"`` or ``"discriminator"`` is that network of a GAN run (its own
    state_dict in ``checkpoints/last.pt``; the project is :func:`core.gan_graph.network_project`'s);
    ``None`` is the whole trained graph with the checkpoint's ``"model"`` weights. Raises
    :class:`RunFolderError` (:class:`NetworkLoadError` when the network does not build or load) with
    one sentence naming the file and the problem.
    """
    from core.compiler import CompileError, compile_graph
    from core.gan_graph import GanGraphError, network_project

    folder = RunFolder(run_dir)
    project = run_project(folder.path)
    graph_file = folder.path / "graph.json"
    what = network or "network"
    if network is not None:
        try:
            project = network_project(project, network)
        except GanGraphError as exc:
            raise RunFolderError(f"{folder.path} is not a GAN run ({graph_file}): {exc}") from None
    ckpt = load_checkpoint(folder.path)
    where = folder.checkpoint_path()
    state = ckpt.get(network or "model")
    if not isinstance(state, dict):
        raise RunFolderError(f"{where} holds no {what} weights" + (f": {folder.path} is not a GAN run"
                                                                   if network else ""))
    try:
        model = compile_graph(project.graph, device="cpu")
    except CompileError as exc:
        first = str(exc).splitlines()[-1].strip(" -")
        raise NetworkLoadError(f"the {what} in {graph_file} does not compile: {first}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise NetworkLoadError(f"the {what} weights in {where} do not fit the {what} in {graph_file}: "
                               f"{_first_problem(str(exc))}") from None
    model.eval()
    return project, model


def load_generator(run_dir: str | Path) -> tuple[nn.Module, tuple[int, ...]]:
    """The trained generator of a GAN run folder (in eval mode, on the CPU) and its noise shape.

    Reads ``RUN_DIR/graph.json`` (the project that was trained) and the ``"generator"`` weights of
    ``RUN_DIR/checkpoints/last.pt``. Raises :class:`core.training.runs.RunFolderError` with one
    sentence naming the file and the problem.
    """
    from core.gan_graph import input_shape

    project, model = load_run_network(run_dir, "generator")
    noise = next(n.id for n in project.graph.nodes.values() if n.type == "Input")
    return model, input_shape(project.graph, noise)


def _first_problem(message: str) -> str:
    """torch's load_state_dict message lists every key over several lines; keep its first problem."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    detail = (lines[1] if len(lines) > 1 else (lines[0] if lines else "mismatch")).rstrip(".")
    return detail if len(detail) <= 300 else detail[:300].rsplit(",", 1)[0] + ", …"


def sample(generator: nn.Module, noise_shape: tuple[int, ...], n: int, seed: int | None = None,
           batch: int = 256) -> torch.Tensor:
    """``n`` uint8 images from ``generator`` fed z ~ N(0, 1) of ``noise_shape`` (seeded when asked),
    in batches of at most ``batch`` so a large ``n`` needs no large memory."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    param = next(iter(generator.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    parts: list[torch.Tensor] = []
    with torch.no_grad():
        done = 0
        while done < n:
            k = min(batch, n - done)
            z = torch.randn((k, *noise_shape), generator=gen).to(device)
            out: Any = generator(z)
            if isinstance(out, tuple | list):
                out = out[0]
            parts.append(to_uint8(out).cpu())
            done += k
    return torch.cat(parts)


__all__ = ["GAP", "NetworkLoadError", "grid_image", "grid_png", "load_generator", "load_run_network", "run_project",
           "sample", "save_grid", "to_uint8"]
