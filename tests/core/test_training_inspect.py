"""Prediction of one image and Grad-CAM maps (the GUI's predictions viewer uses these)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.training.inspect import grad_cam, image_input, predict


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 6))


def test_image_file_to_prediction(tmp_path: Path) -> None:
    Image.fromarray(np.full((20, 30, 3), 200, dtype=np.uint8)).save(tmp_path / "a.png")
    x, pixels = image_input(tmp_path / "a.png", (3, 8, 8), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert pixels.shape == (3, 8, 8) and int(pixels[0, 0, 0]) == 200
    assert x.shape == (1, 3, 8, 8) and float(x[0, 0, 0, 0]) == pytest.approx((200 / 255 - 0.5) / 0.25, abs=1e-5)
    top = predict(_net().train(), x, [f"c{i}" for i in range(6)], k=5)
    probs = [p for _, p in top[0]]
    assert len(top[0]) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="cannot read the image"):
        image_input(tmp_path / "missing.png", (3, 8, 8), (0.5,) * 3, (0.25,) * 3)


def test_grad_cam_maps_and_leaves_grads_alone() -> None:
    model = _net()
    for p in model.parameters():
        p.requires_grad_(False)  # frozen layers still get a map
    x = torch.randn(2, 3, 8, 8)
    cam = grad_cam(model, x, "2", class_index=1)
    assert cam.shape == (2, 8, 8) and float(cam.min()) >= 0 and float(cam.max()) <= 1 + 1e-6
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="no spatial output"):
        grad_cam(model, x, "6")
    with pytest.raises(ValueError, match="not a layer"):
        grad_cam(model, x, "nope")
