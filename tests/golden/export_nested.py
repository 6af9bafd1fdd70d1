"""Golden nested: a network exported by NetCanvas.

Input: N×3×6×6 (a batch of 3×6×6 samples).
Outputs: N×4×6×6, N×3.
Parameters: 279 (131 trainable, 148 frozen).
MACs per sample: 9,084 (18,168 FLOPs).

Load trained weights with ``model.load_state_dict(torch.load(path))``; this file needs only torch.
"""

import torch
from torch import nn


class GoldenNested(nn.Module):
    """Golden nested (7 layers; input N×3×6×6)."""

    def __init__(self) -> None:
        super().__init__()
        # Containers (nn.ModuleList, nn.Module) only give the layers their module paths,
        # so the state_dict keys match NetCanvas's; forward calls the layers themselves.
        self.features = nn.Module()
        self.features.add_module("0", nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False))
        self.features.get_submodule("0").bn = nn.BatchNorm2d(4)
        self.features.add_module("2", nn.ReLU())
        self.layer1 = nn.ModuleList([
            nn.Module(),
        ])
        self.layer1[0].conv1 = nn.Conv2d(4, 4, kernel_size=3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(output_size=1)
        self.flat = nn.Flatten()
        self.head = nn.Module()
        self.head.fc = nn.Linear(4, 3)
        # Frozen in NetCanvas: no gradient updates.
        self.layer1[0].conv1.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.features.get_submodule("0")(x)
        x = self.features.get_submodule("0").bn(x)
        x = self.features.get_submodule("2")(x)
        layer1_0 = self.layer1[0].conv1(x)
        layer1_0 = layer1_0 + x
        pool = self.pool(layer1_0)
        flat = self.flat(pool)
        head = self.head.fc(flat)
        return layer1_0, head


if __name__ == "__main__":
    model = GoldenNested()
    print(model(torch.zeros(2, 3, 6, 6)))
