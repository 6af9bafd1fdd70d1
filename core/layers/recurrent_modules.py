"""torch modules behind the RNN, LSTM and GRU declarations (:mod:`core.layers.recurrent`).

Each is torch's own recurrent layer, always ``batch_first=True`` (a sample is T×C, DESIGN.md §5),
whose ``forward`` returns its results as one flat tuple with the batch axis first in every
element: ``(output, h_n)`` or, for the LSTM, ``(output, h_n, c_n)``. torch returns ``h_n`` as
(layers·dirs)×N×H whatever ``batch_first`` says; transposing it to N×(layers·dirs)×H lets each
result be one output port of the node with the per-sample shape (layers·dirs)×H. The parameter
names are torch's (``weight_ih_l0`` …), so a torch RNN's ``state_dict`` loads unchanged.

They live apart from the declarations so that importing :mod:`core.layers` never imports torch.
Each class uses only ``torch``, so the code exporter copies its source into a generated file.
With ``initial_state`` the forward also takes ``h_0`` (and the LSTM ``c_0``) batch first,
N×(layers·dirs)×H like the ``h_n`` it returns, and hands them to torch transposed; without it
every sequence starts from zeros.
"""

from __future__ import annotations

import torch
from torch import nn


class SequenceRNN(nn.RNN):
    """``nn.RNN`` with ``batch_first=True`` returning ``(output, h_n)``, both batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 initial_state: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, bias=bias,
                         batch_first=True, dropout=dropout, bidirectional=bidirectional)
        self.initial_state = initial_state  # the flag: h_0 is a second input

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                h_0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        # torch takes the state (layers·dirs)×N×H whatever batch_first says
        output, h_n = super().forward(x, None if h_0 is None else h_0.transpose(0, 1).contiguous())
        return output, h_n.transpose(0, 1)


class SequenceGRU(nn.GRU):
    """``nn.GRU`` with ``batch_first=True`` returning ``(output, h_n)``, both batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, initial_state: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)
        self.initial_state = initial_state  # the flag: h_0 is a second input

    def forward(self, x: torch.Tensor,  # type: ignore[override]
                h_0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        output, h_n = super().forward(x, None if h_0 is None else h_0.transpose(0, 1).contiguous())
        return output, h_n.transpose(0, 1)


class SequenceLSTM(nn.LSTM):
    """``nn.LSTM`` with ``batch_first=True`` returning ``(output, h_n, c_n)``, all batch first."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, initial_state: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=True, dropout=dropout,
                         bidirectional=bidirectional)
        self.initial_state = initial_state  # the flag: h_0 and c_0 are the second and third inputs

    def forward(self, x: torch.Tensor, h_0: torch.Tensor | None = None,  # type: ignore[override]
                c_0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        state = None
        if h_0 is not None and c_0 is not None:
            state = (h_0.transpose(0, 1).contiguous(), c_0.transpose(0, 1).contiguous())
        output, (h_n, c_n) = super().forward(x, state)
        return output, h_n.transpose(0, 1), c_n.transpose(0, 1)
