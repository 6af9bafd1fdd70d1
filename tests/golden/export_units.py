"""Golden units: a network exported by NetCanvas.

Input: N×3×8×8 (a batch of 3×8×8 samples).
Output: N×3.
Parameters: 1,259 (1,259 trainable).
MACs per sample: 31,256 (62,512 FLOPs).

Load trained weights with ``model.load_state_dict(torch.load(path))``; this file needs only torch.
"""

import torch
from torch import nn


class Shortcut(nn.Sequential):
    """Used by 2 blocks: blocks.0.downsample, blocks.2.downsample."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )


class ResidualUnit(nn.Module):
    """Used by 4 blocks: blocks.0 … blocks.3."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.act(out)
        downsample = x if self.downsample is None else self.downsample(x)
        out = out + downsample
        return out


class GoldenUnits(nn.Module):
    """Golden units (19 layers; input N×3×8×8)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            ResidualUnit(3, 4, downsample=Shortcut(3, 4)),
            ResidualUnit(4, 4),
            ResidualUnit(4, 8, stride=2, downsample=Shortcut(4, 8, stride=2)),
            ResidualUnit(8, 8),
        )
        self.pool = nn.AdaptiveAvgPool2d(output_size=1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(x)
        x = self.pool(x)
        x = self.flat(x)
        x = self.fc(x)
        return x


if __name__ == "__main__":
    model = GoldenUnits()
    print(model(torch.zeros(2, 3, 8, 8)))
