"""Frame heads: per-frame core outputs -> images, by bilinear upsampling + deconvolution.

``UpsampleDeconvHead`` is the paper's head; ``MultiScaleHead`` the fix its section 4.1 proposes.

A head maps ``(N, *in_shape)`` to frames ``(N, out_channels, image_size, image_size)`` in [0, 1].
``in_shape`` is a core's ``out_shape``: ``(F, 1, 1)`` for a vector, ``(C, h, w)`` for a map.

The last step, unbounded values -> [0, 1], is the head's ``activation``:

- ``"sigmoid"`` (the paper's). On mostly uniform frames (a black background) the large
  deconvolution kernels drive the logits far negative within a few Adam steps (a step moves an
  output pixel by about the learning rate times the kernel's fan-in); the sigmoid then saturates,
  the gradient into the recurrent core vanishes and the model paints the background whatever its
  input: the paper's collapse (``docs/models/video-vae.md``).
- ``"clamp"``: the values clipped to [0, 1], with a straight-through gradient (as if unclipped):
  frames are exactly what the loss sees, and no output saturates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.models.deconv import Deconv2d
from vidgen.models.recurrent import Shape

Activation = Literal["sigmoid", "clamp"]


class FrameHead(nn.Module, ABC):
    """Base of the heads: ``forward(z (N, *in_shape)) -> frames (N, C, H, W)`` in [0, 1].

    Subclasses implement :meth:`logits` (unbounded); ``forward`` applies ``activation``
    (``"sigmoid"`` or ``"clamp"``, see the module docstring).
    """

    def __init__(self, activation: Activation = "sigmoid") -> None:
        super().__init__()
        if activation not in ("sigmoid", "clamp"):
            raise ValueError(f"activation must be 'sigmoid' or 'clamp', got {activation!r}")
        self.activation = activation

    @abstractmethod
    def logits(self, z: Tensor) -> Tensor:
        """Per-frame core outputs to unbounded frames (before the activation)."""

    def forward(self, z: Tensor) -> Tensor:
        x = self.logits(z)
        if self.activation == "sigmoid":
            return torch.sigmoid(x)
        return clamp_unit(x)

    def zero_output_(self) -> FrameHead:
        """Make :meth:`logits` exactly 0 for any input (zero the last layer), in place; training
        moves it from there. A predictor whose head's 0 means "no change" starts at copy-last."""
        for layer in self.output_layers():
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        return self

    @abstractmethod
    def output_layers(self) -> list[nn.Module]:
        """The layers whose outputs sum to :meth:`logits`."""


def clamp_unit(x: Tensor) -> Tensor:
    """``x`` clipped to [0, 1] with a straight-through (identity) gradient."""
    return x + (x.clamp(0.0, 1.0) - x).detach()


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
        activation: ``"sigmoid"`` (paper) or ``"clamp"`` (see the module docstring).
    """

    def __init__(
        self,
        in_shape: Shape,
        image_size: int,
        out_channels: int = 3,
        channels: int = 16,
        base_size: int = 7,
        kernel_size: int = 190,
        activation: Activation = "sigmoid",
    ) -> None:
        super().__init__(activation)
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

    def output_layers(self) -> list[nn.Module]:
        return [self.deconv]


def _per_branch(value: int | Sequence[int], n: int, name: str) -> list[int]:
    values = [value] * n if isinstance(value, int) else list(value)
    if len(values) != n:
        raise ValueError(f"{name} needs one value per branch ({n}), got {values}")
    return values


class MultiScaleHead(FrameHead):
    """The paper's proposed fix (section 4.1): large-, medium- and small-kernel branches, summed.

    The per-frame core output is split into ``len(kernel_sizes)`` nearly equal parts along its
    first (feature/channel) axis; part ``i`` goes through its own :class:`UpsampleDeconvHead`
    branch (projection to ``channels[i] x base_sizes[i]**2``, bilinear upsampling, one
    deconvolution with ``kernel_sizes[i]``); the branches' outputs are summed before the
    activation. A large kernel alone paints smooth, image-wide patterns (the paper's decoder that
    "ignores the LSTM"); the small-kernel branch, fed from a finer base map, carries detail.

    Defaults scale with ``image_size`` (224 px: kernels 190 / 29 / 5 on base maps 7 / 14 / 28;
    the large branch is the paper's head). Any number of branches works.

    Args:
        in_shape: the core's per-frame output shape; its first axis must have at least one
            element per branch.
        image_size: output frames are ``image_size`` pixels square.
        out_channels: 3 for RGB.
        kernel_sizes: deconvolution kernel per branch (default: 190/224 of the frame as in the
            paper, 29/224 of it (at least 7 px), and 5 px (3 px below 64 px frames)).
        channels: channels of each branch's base map (one value for all, or one per branch).
        base_sizes: side of each branch's base map for vector inputs (default: image_size / 32,
            / 16, / 8); map inputs keep their own size.
        activation: ``"sigmoid"`` (paper) or ``"clamp"`` (see the module docstring).
    """

    def __init__(
        self,
        in_shape: Shape,
        image_size: int,
        out_channels: int = 3,
        kernel_sizes: Sequence[int] | None = None,
        channels: int | Sequence[int] = 16,
        base_sizes: int | Sequence[int] | None = None,
        activation: Activation = "sigmoid",
    ) -> None:
        super().__init__(activation)
        if kernel_sizes is None:
            kernel_sizes = (
                max(1, round(image_size * 190 / 224)),
                min(image_size, max(7, round(image_size * 29 / 224))),
                min(image_size, 5 if image_size >= 64 else 3),
            )
        n = len(kernel_sizes)
        if base_sizes is None:
            base_sizes = [max(1, image_size // 32 * 2**i) for i in range(n)]
        channels = _per_branch(channels, n, "channels")
        base_sizes = _per_branch(base_sizes, n, "base_sizes")
        c, h, w = in_shape
        if c < n:
            raise ValueError(f"in_shape {in_shape} has fewer than {n} features to split")
        self.split_sizes = [len(part) for part in torch.arange(c).tensor_split(n)]
        self.branches = nn.ModuleList(
            UpsampleDeconvHead((part, h, w), image_size, out_channels, ch, base, k)
            for part, ch, base, k in zip(
                self.split_sizes, channels, base_sizes, kernel_sizes, strict=True
            )
        )

    def logits(self, z: Tensor) -> Tensor:
        parts = z.split(self.split_sizes, dim=1)
        return sum(branch.logits(part) for branch, part in zip(self.branches, parts, strict=True))

    def output_layers(self) -> list[nn.Module]:
        return [layer for branch in self.branches for layer in branch.output_layers()]
