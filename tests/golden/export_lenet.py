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
        conv1 = self.conv1(x)
        relu1 = self.relu1(conv1)
        pool1 = self.pool1(relu1)
        conv2 = self.conv2(pool1)
        relu2 = self.relu2(conv2)
        pool2 = self.pool2(relu2)
        flatten = self.flatten(pool2)
        fc1 = self.fc1(flatten)
        relu3 = self.relu3(fc1)
        fc2 = self.fc2(relu3)
        relu4 = self.relu4(fc2)
        fc3 = self.fc3(relu4)
        return fc3


if __name__ == "__main__":
    model = LeNet5OnShapes()
    print(model(torch.zeros(2, 3, 32, 32)))
