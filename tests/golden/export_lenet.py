"""LeNet-5 on Shapes: a network exported by NetCanvas.

Input: N×3×32×32 (a batch of 3×32×32 samples).
Output: N×10.
Parameters: 62,006 (62,006 trainable).
MACs per sample: 651,720 (1,303,440 FLOPs).

Load trained weights with ``model.load_state_dict(torch.load(path))``; this file needs only torch.
"""

import torch
from torch import nn


class LeNet5OnShapes(nn.Module):
    """LeNet-5 on Shapes (12 layers; input N×3×32×32)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(400, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.relu1(x)
        x = self.pool1(x)
        x = self.conv2(x)
        x = self.relu2(x)
        x = self.pool2(x)
        x = self.flatten(x)
        x = self.fc1(x)
        x = self.relu3(x)
        x = self.fc2(x)
        x = self.relu4(x)
        x = self.fc3(x)
        return x


if __name__ == "__main__":
    model = LeNet5OnShapes()
    print(model(torch.zeros(2, 3, 32, 32)))
