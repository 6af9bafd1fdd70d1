"""Looking inside a trained model: predict one image, Grad-CAM heat maps (for the GUI's viewers).

- :func:`image_input` turns an image file (or uint8 pixels) into the model's normalised input,
  exactly as the data pipeline does (resize shorter side + centre crop, the dataset's mean/std);
- :func:`predict` gives the top-k classes with probabilities;
- :func:`grad_cam` computes Selvaraju et al.'s Grad-CAM at a chosen node for a chosen class:
  ``ReLU(Σ_c mean(∂score/∂A_c) · A_c)``, upsampled to the input size and scaled to [0, 1]. The
  gradient is taken with ``torch.autograd.grad``, so the parameters' ``.grad`` stay untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.training.data.base import Normalizer
from core.training.data.folder import decode_image
from core.training.optim import main_output


def image_input(image: str | Path | torch.Tensor, shape: Sequence[int], mean: Sequence[float],
                std: Sequence[float], device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, pixels)``: the normalised batch of one ``(1, C, H, W)`` and its uint8 pixels ``(C, H, W)``.

    ``image`` is a file path or uint8 pixels ``(C, H, W)`` already at the model's size.
    """
    c, h, w = (int(v) for v in shape)
    if isinstance(image, torch.Tensor):
        pixels = image.to(torch.uint8)
        if tuple(pixels.shape) != (c, h, w):
            raise ValueError(f"the image is {'×'.join(map(str, pixels.shape))} but the network takes {c}×{h}×{w}")
    else:
        try:
            pixels = torch.from_numpy(decode_image(str(image), (c, h, w)))
        except Exception as exc:  # Pillow raises many kinds for unreadable files
            raise ValueError(f"cannot read the image {image}: {exc}") from None
    device = torch.device(device)
    x = Normalizer(mean, std, device)(pixels.unsqueeze(0).to(device))
    return x, pixels


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, classes: Sequence[str], k: int = 5) -> list[list[tuple[str, float]]]:
    """Top-``k`` ``(class, probability)`` per sample of ``x``, most likely first (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        probs = torch.softmax(main_output(model(x)).float(), dim=1)
    finally:
        model.train(was_training)
    top = probs.topk(min(k, probs.shape[1]), dim=1)
    return [[(classes[int(i)] if int(i) < len(classes) else str(int(i)), float(p)) for p, i in zip(ps, ix, strict=True)]
            for ps, ix in zip(top.values, top.indices, strict=True)]


def grad_cam(model: nn.Module, x: torch.Tensor, node_id: str, class_index: int | None = None) -> torch.Tensor:
    """Grad-CAM maps ``(B, H, W)`` in [0, 1] at ``node_id`` (a module with a spatial output) for
    ``class_index`` (default: each sample's predicted class)."""
    modules = dict(model.named_modules())
    if node_id not in modules or node_id == "":
        raise ValueError(f"{node_id!r} is not a layer of this model; choose a convolution (e.g. the last one)")
    store: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        store["a"] = out[0] if isinstance(out, tuple | list) else out  # type: ignore[assignment]

    handle = modules[node_id].register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            # an input that requires grad keeps the graph alive even when every layer is frozen
            logits = main_output(model(x.detach().requires_grad_(True)))
            act = store.get("a")
            if act is None or act.ndim != 4:
                shape = list(act.shape[1:]) if act is not None else "?"
                raise ValueError(f"{node_id} has no spatial output (shape {shape}); Grad-CAM needs a convolution "
                                 "or pooling layer")
            cls = logits.argmax(1) if class_index is None else torch.full((x.shape[0],), int(class_index),
                                                                             device=logits.device)
            score = logits.gather(1, cls.view(-1, 1)).sum()
            (grads,) = torch.autograd.grad(score, act)
    finally:
        handle.remove()
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).cpu()
