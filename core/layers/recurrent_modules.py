"""torch modules behind the RNN, LSTM and GRU declarations (:mod:`core.layers.recurrent`).

Each is torch's own recurrent layer, always ``batch_first=True`` (a sample is T×C, DESIGN.md §5),
whose ``forward`` returns its results as one flat tuple with the batch axis first in every
element: ``(output, h_n)`` or, for the LSTM, ``(output, h_n, c_n)``. torch returns ``h_n`` as
(layers·dirs)×N×H whatever ``batch_first`` says; transposing it to N×(layers·dirs)×H lets each
result be one output port of the node with the per-sample shape (layers·dirs)×H. The parameter
names are torch's (``weight_ih_l0`` …), so a torch RNN's ``state_dict`` loads unchanged.

They live apart from the declarations so that importing :mod:`core.layers` never imports torch.
Each class uses only ``torch``, so the code exporter copies its source into a generated file.
Initial states (``h_0``, ``c_0``) are not taken: every sequence starts from zeros.
"""

from __future__ import annotations

import torch
from torch import nn


class SequenceRNN(nn.RNN):
    """``nn.RNN`` with ``batch_first=True`` returning ``(output, h_n)``, both batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, bias=bias,
                         batch_first=True, dropout=dropout, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        output, h_n = super().forward(x)
        return output, h_n.transpose(0, 1)


class SequenceGRU(nn.GRU):
    """``nn.GRU`` with ``batch_first=True`` returning ``(output, h_n)``, both batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        output, h_n = super().forward(x)
        return output, h_n.transpose(0, 1)


class SequenceLSTM(nn.LSTM):
    """``nn.LSTM`` with ``batch_first=True`` returning ``(output, h_n, c_n)``, all batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        output, (h_n, c_n) = super().forward(x)
        return output, h_n.transpose(0, 1), c_n.transpose(0, 1)
