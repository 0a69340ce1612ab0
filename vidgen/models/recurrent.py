"""Sequence cores: an LSTM over per-frame feature vectors (paper) and a ConvLSTM over maps.

Every core maps per-frame features ``(B, S, C, h, w)`` to outputs ``(B, S, *out_shape)`` and
returns its state, so a rollout can continue one step at a time: ``core(x_t, state)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

Shape = tuple[int, int, int]


class SequenceCore(nn.Module, ABC):
    """Base of the recurrent cores. ``out_shape`` is the per-frame output ``(C, h, w)``."""

    out_shape: Shape

    @abstractmethod
    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``x`` ``(B, S, C, h, w)`` -> outputs ``(B, S, *out_shape)`` and the new state."""


class LSTMCore(SequenceCore):
    """The paper's core: frame features flattened to vectors (25088 at pool5/224 px) -> LSTM.

    Args:
        in_shape: per-frame feature shape ``(C, h, w)`` (filled in by the LightningModule).
        hidden_size: LSTM width; the output is ``(hidden_size, 1, 1)``.
        num_layers: stacked LSTM layers.
        dropout: between stacked layers.
    """

    def __init__(
        self, in_shape: Shape, hidden_size: int = 1024, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        self.lstm = nn.LSTM(c * h * w, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.out_shape = (hidden_size, 1, 1)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        b, s = x.shape[:2]
        y, state = self.lstm(x.reshape(b, s, -1), state)
        return y.reshape(b, s, *self.out_shape), state


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer (Shi et al. 2015, no peepholes): gates from a conv over [x, h]."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor]:
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTMCore(SequenceCore):
    """A richer core (the paper's future work): stacked ConvLSTMs keep the feature map's layout.

    Args:
        in_shape: per-frame feature shape ``(C, h, w)``.
        hidden_channels: channels of every layer; the output is ``(hidden_channels, h, w)``.
        num_layers: stacked ConvLSTM layers.
        kernel_size: gate convolution kernel.
    """

    def __init__(
        self, in_shape: Shape, hidden_channels: int = 64, num_layers: int = 2, kernel_size: int = 3
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        self.cells = nn.ModuleList(
            ConvLSTMCell(c if i == 0 else hidden_channels, hidden_channels, kernel_size)
            for i in range(num_layers)
        )
        self.out_shape = (hidden_channels, h, w)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        state = list(state) if state is not None else [None] * len(self.cells)
        outputs = []
        for t in range(x.shape[1]):
            h = x[:, t]
            for layer, cell in enumerate(self.cells):
                state[layer] = cell(h, state[layer])
                h = state[layer][0]
            outputs.append(h)
        return torch.stack(outputs, dim=1), state
