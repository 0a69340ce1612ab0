"""Stride-1 transposed convolution (direct implementation; the FFT path lands with issue 6)."""

from __future__ import annotations

from typing import Literal

from torch import nn


class Deconv2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with stride 1 and no padding; same parameters and state dict."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        bias: bool = True,
        impl: Literal["auto", "fft", "direct"] = "auto",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, bias=bias)
        self.impl = impl
