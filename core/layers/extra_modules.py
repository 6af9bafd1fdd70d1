"""torch modules behind StochasticDepth (:mod:`core.layers.dropout`), LayerScale, LayerNorm2d and
FrozenBatchNorm2d (:mod:`core.layers.norm`), the layer types torchvision's EfficientNet and ConvNeXt need,
BlurPool2d (:mod:`core.layers.pool`, TResNet's anti-aliasing) and LearnedTensor behind the Parameter node
(:mod:`core.layers.param`).

They live apart from the declarations so that importing :mod:`core.layers` never imports torch
(only building a module does). Each class is self-contained and uses only ``torch``, so the
code exporter can copy its source into a generated file that needs nothing but torch.
State-dict names follow torchvision's (``layer_scale``, ``weight``/``bias``), so torchvision's
weights load into imported ConvNeXt and EfficientNet models unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class StochasticDepth(nn.Module):
    """Drops a whole residual branch with probability ``p`` while training (Huang et al., 2016).

    ``mode="row"`` draws one keep/drop decision per sample, ``"batch"`` one for the whole batch;
    kept branches are scaled by ``1/(1-p)`` so the expected value is unchanged. Identity in eval().
    """

    def __init__(self, p: float = 0.0, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        if keep > 0.0:
            noise.div_(keep)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class LayerScale(nn.Module):
    """Multiplies each channel by a learned factor γ that starts small (ConvNeXt, CaiT).

    The parameter is named ``layer_scale`` and shaped ``C×1×…×1`` so it broadcasts over a
    channels-first sample of ``rank`` axes, exactly like torchvision's ConvNeXt block.
    """

    def __init__(self, channels: int, init_value: float = 1e-6, rank: int = 3) -> None:
        super().__init__()
        self.channels = channels
        self.init_value = init_value
        self.rank = rank
        self.layer_scale = nn.Parameter(torch.full((channels,) + (1,) * (rank - 1), float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, init_value={self.init_value}, rank={self.rank}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of a C×H×W map (ConvNeXt's channels-first LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)



class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine transform: all four are buffers, nothing trains.

    Detection backbones (torchvision's Faster R-CNN, RetinaNet …) freeze their normalization this
    way; in training and eval alike it computes ``(x - running_mean) / sqrt(running_var + eps)``
    scaled by ``weight`` and shifted by ``bias``. A BatchNorm2d's ``num_batches_tracked`` is
    skipped when loading, so a trained BatchNorm2d's weights load into it.
    """

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict: dict[str, torch.Tensor], prefix: str, *args: object) -> None:
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


class BlurPool2d(nn.Module):
    """A fixed binomial blur of each channel, then a stride: anti-aliased downsampling (Zhang, 2019).

    The filter is the outer product of row ``filt_size - 1`` of Pascal's triangle with itself,
    normalized to sum 1 (3 → [1, 2, 1] / 4 per axis). It is computed, not learned, and kept as a
    non-persistent buffer: nothing of it is in ``state_dict``, as in the model zoos that use it.
    The same filter blurs every channel (a depthwise convolution without padding).
    """

    filt: torch.Tensor

    def __init__(self, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.filt_size = filt_size
        self.stride = stride
        row = [1.0]
        for _ in range(filt_size - 1):
            row = [a + b for a, b in zip([0.0, *row], [*row, 0.0], strict=True)]
        coeffs = torch.tensor(row, dtype=torch.float32) / 2.0 ** (filt_size - 1)
        self.register_buffer("filt", (coeffs[:, None] * coeffs[None, :])[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = self.filt.to(x.dtype).expand(channels, 1, self.filt_size, self.filt_size)
        return nn.functional.conv2d(x, weight, stride=self.stride, groups=channels)

    def extra_repr(self) -> str:
        return f"filt_size={self.filt_size}, stride={self.stride}"


class LearnedTensor(nn.Module):
    """A learned tensor used directly in ``forward``: ViT's class token and positional embedding.

    It takes no input and returns its ``weight``, one sample of ``shape`` with a batch axis of
    size 1 that broadcasts over the batch (``x + pos``) or is expanded to it (the class token).
    ``batch_axis`` says whether the stored tensor has that leading axis (ViT's ``1×N×D``) or is
    ``shape`` itself, so a source's weights load unchanged either way. Initialized like ViT's
    embeddings: normal with standard deviation 0.02.
    """

    def __init__(self, shape: list[int] | tuple[int, ...], batch_axis: bool = True) -> None:
        super().__init__()
        self.shape = tuple(int(d) for d in shape)
        self.batch_axis = batch_axis
        stored = (1, *self.shape) if batch_axis else self.shape
        self.weight = nn.Parameter(torch.empty(stored))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self) -> torch.Tensor:
        return self.weight if self.batch_axis else self.weight.unsqueeze(0)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, batch_axis={self.batch_axis}"
