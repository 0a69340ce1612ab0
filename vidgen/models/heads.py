"""Frame heads: per-frame core outputs -> images, by bilinear upsampling + deconvolution.

A head maps ``(N, *in_shape)`` to frames ``(N, out_channels, image_size, image_size)`` in [0, 1].
``in_shape`` is a core's ``out_shape``: ``(F, 1, 1)`` for a vector, ``(C, h, w)`` for a map.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.models.deconv import Deconv2d
from vidgen.models.recurrent import Shape


class FrameHead(nn.Module, ABC):
    """Base of the heads: ``forward(z (N, *in_shape)) -> frames (N, C, H, W)`` in [0, 1].

    Subclasses implement :meth:`logits` (unbounded); ``forward`` is their sigmoid.
    """

    @abstractmethod
    def logits(self, z: Tensor) -> Tensor:
        """Per-frame core outputs to pre-sigmoid frames."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(z))


class Projection(nn.Module):
    """Core output -> ``(channels, base_size, base_size)`` maps.

    A vector is reshaped as it is when it has exactly ``channels * base_size**2`` elements (the
    paper's "reshape"), else it goes through a linear layer; a map gets a 1x1 convolution and
    keeps its own size.
    """

    def __init__(self, in_shape: Shape, channels: int, base_size: int) -> None:
        super().__init__()
        c, h, w = in_shape
        self.is_vector = (h, w) == (1, 1)
        self.shape = (channels, base_size, base_size) if self.is_vector else (channels, h, w)
        if self.is_vector:
            n = channels * base_size * base_size
            self.proj = nn.Identity() if c == n else nn.Linear(c, n)
        else:
            self.proj = nn.Conv2d(c, channels, 1)

    def forward(self, z: Tensor) -> Tensor:
        if self.is_vector:
            return self.proj(z.flatten(1)).view(-1, *self.shape)
        return self.proj(z)


class UpsampleDeconvHead(FrameHead):
    """The paper's head: reshape -> bilinear upsample -> one large transposed convolution.

    The upsampled map has ``image_size - kernel_size + 1`` pixels a side, so the stride-1
    deconvolution lands exactly on ``image_size``. Paper (224 px): 16 x 7 x 7 -> 35 x 35 ->
    kernel 190 -> 224 x 224.

    Args:
        in_shape: the core's per-frame output shape.
        image_size: output frames are ``image_size`` pixels square.
        out_channels: 3 for RGB.
        channels: C' of the reshaped map (paper: 16).
        base_size: H' = W' of the reshaped map for vector inputs (paper: 7).
        kernel_size: the deconvolution's kernel (paper: 190 at 224 px).
    """

    def __init__(
        self,
        in_shape: Shape,
        image_size: int,
        out_channels: int = 3,
        channels: int = 16,
        base_size: int = 7,
        kernel_size: int = 190,
    ) -> None:
        super().__init__()
        if not 1 <= kernel_size <= image_size:
            raise ValueError(f"kernel_size {kernel_size} must be in [1, image_size={image_size}]")
        self.project = Projection(in_shape, channels, base_size)
        self.upsampled = image_size - kernel_size + 1
        self.deconv = Deconv2d(channels, out_channels, kernel_size)

    def logits(self, z: Tensor) -> Tensor:
        x = F.interpolate(
            self.project(z), size=self.upsampled, mode="bilinear", align_corners=False
        )
        return self.deconv(x)
