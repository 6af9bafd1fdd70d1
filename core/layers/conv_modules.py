"""The torch module behind ``ConvTranspose2d(weight_init="bilinear")``: a transposed convolution that
starts as bilinear upsampling.

d2l's FCN (Dive into Deep Learning, §14.11 "Fully Convolutional Networks") initialises its
upsampling layer with ``bilinear_kernel``: every input channel is spread onto its own output
channel by the tent-shaped kernel ``(1 − |i − c|/f)·(1 − |j − c|/f)`` with ``f = ⌈k/2⌉`` and
centre ``c = f − 1`` (odd k) or ``f − 0.5`` (even k), all other weights zero — so before any
training the layer upsamples each class map bilinearly instead of scrambling it.

Like :mod:`core.layers.vision_modules`, the class lives apart from the declarations so that
importing :mod:`core.layers` never imports torch, and it is self-contained (only ``torch`` and
``nn``), so the code exporter copies its source into a generated file, which then builds the same
initial weights for the same seed.
"""

from __future__ import annotations

import torch
from torch import nn


class BilinearConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose weight starts as a bilinear upsampling kernel (d2l's FCN).

    The input and output channel counts must be equal: channel i is upsampled onto channel i (its
    place within its group when ``groups`` > 1), as d2l's ``bilinear_kernel`` does. Training and
    ``forward`` are torch's; only the starting weight differs.
    """

    weight_init = "bilinear"  # the importer reads this back as the layer's ``weight_init`` parameter

    def reset_parameters(self) -> None:
        # torch's own initialisation first, so the bias and the random numbers drawn are exactly those
        # of an nn.ConvTranspose2d (and of d2l, which overwrites the weight of one), then the kernel.
        super().reset_parameters()
        if self.in_channels != self.out_channels:
            raise ValueError(f"bilinear initialisation needs as many output channels as input channels, "
                             f"got {self.in_channels} in and {self.out_channels} out")
        kh, kw = self.kernel_size
        filt = self.bilinear_filter(kh)[:, None] * self.bilinear_filter(kw)[None, :]
        per_group = self.out_channels // self.groups
        with torch.no_grad():
            self.weight.zero_()
            for c in range(self.in_channels):
                self.weight[c, c % per_group].copy_(filt)

    @staticmethod
    def bilinear_filter(k: int) -> torch.Tensor:
        """The 1-D tent of a k-tap bilinear upsampling kernel (d2l's ``bilinear_kernel`` per axis)."""
        factor = (k + 1) // 2
        center = factor - 1 if k % 2 == 1 else factor - 0.5
        return 1 - torch.abs(torch.arange(k, dtype=torch.float32) - center) / factor


__all__ = ["BilinearConvTranspose2d"]
