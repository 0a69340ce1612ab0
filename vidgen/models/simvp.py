"""SimVP: a learned, all-convolutional predictor from the literature, vidgen's learned peer.

SimVP (Gao, Tan, Wu, Li: "SimVP: Simpler yet Better Video Prediction", CVPR 2022) paints the
next frames all at once, without recurrence, backbone or motion, from three parts:

1. **Spatial encoder**: each context frame alone through strided convolution blocks (conv,
   GroupNorm, SiLU; every second block halves the side), to a feature map.
2. **Translator**: the context's maps stacked over time into channels, ``(B, T*C, h, w)``, so
   that plain 2D blocks mix space and time at once. The blocks are the gated spatiotemporal
   attention (gSTA) blocks of SimVP's extension (Tan, Li, Gao, Li: "SimVP: Towards Simple yet
   Powerful Spatiotemporal Predictive Learning", 2022; OpenSTL's default SimVP): a large kernel
   decomposed into a depthwise and a dilated depthwise convolution, gated by a sigmoid, then a
   convolutional MLP. Its last block reads out ``pred_frames`` maps.
3. **Decoder**: each predicted map alone through upsampling blocks (conv to 4x the channels,
   pixel shuffle), a 1x1 readout to RGB. Before the last block it adds the encoder's first-layer
   map (the skip, full resolution: the frame's details). SimVP's outputs are as many as its
   inputs and output t gets input t's skip; here they may be fewer or more, so every output gets
   the last true frame's, the nearest in time.

Frames are clipped to [0, 1] with a straight-through gradient (:func:`clamp_unit`): SimVP's
readout is unbounded, vidgen's metrics and rollouts read frames. A horizon longer than
``pred_frames`` is rolled out in chunks, each from the last ``context_frames`` frames, true or
predicted. It trains on the config's loss (MSE, the paper's, by default) of that rollout, and
is evaluated as every :class:`RolloutModule` is. The shared :class:`VideoModule` always builds
a frozen VGG16 that SimVP never runs (unless the loss has a perceptual term): its configs cut
it at ``conv1_1``, one convolution.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import Tensor, nn

from vidgen.models.base import adam
from vidgen.models.heads import clamp_unit
from vidgen.models.rollout import RolloutModule

FRAME_CHANNELS = 3  # RGB frames in, RGB frames out
GROUPS = 2  # GroupNorm groups of the encoder and decoder blocks (SimVP's)
ATTENTION_KERNEL = 21  # the large kernel each gSTA block decomposes (SimVP's extension)
DILATION = 3  # dilation of its second, depthwise part
MLP_RATIO = 4  # hidden channels of a gSTA block's MLP per channel
LAYER_SCALE = 1e-2  # initial scale of each gSTA branch before its residual sum


class ConvBlock(nn.Sequential):
    """Conv, GroupNorm, SiLU; ``down`` halves the side (stride 2), ``up`` doubles it (conv to 4x
    the channels, pixel shuffle)."""

    def __init__(self, c_in: int, c_out: int, down: bool = False, up: bool = False) -> None:
        conv: nn.Module = nn.Conv2d(c_in, c_out, 3, stride=2 if down else 1, padding=1)
        if up:
            conv = nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 3, padding=1), nn.PixelShuffle(2))
        super().__init__(conv, nn.GroupNorm(GROUPS, c_out), nn.SiLU())


class GatedAttention(nn.Module):
    """gSTA's spatial attention: 1x1, GELU, a large depthwise kernel (a depthwise conv then a
    dilated one) whose 1x1 output is split into values and sigmoid gates, 1x1; plus its input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        local = 2 * DILATION - 1
        wide = ATTENTION_KERNEL // DILATION
        wide += wide % 2 - 1  # odd
        self.proj_in = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU())
        self.local = nn.Conv2d(dim, dim, local, padding=local // 2, groups=dim)
        self.wide = nn.Conv2d(
            dim, dim, wide, padding=DILATION * (wide // 2), groups=dim, dilation=DILATION
        )
        self.gate = nn.Conv2d(dim, 2 * dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        values, gates = self.gate(self.wide(self.local(self.proj_in(x)))).chunk(2, dim=1)
        return x + self.proj_out(torch.sigmoid(gates) * values)


class GSTABlock(nn.Module):
    """A gSTA block: ``x + s1 * attention(BN(x))``, then ``+ s2 * MLP(BN(.))`` (the MLP: 1x1 up,
    depthwise 3x3, GELU, 1x1 down; ``s1``, ``s2``: per-channel layer scales); a 1x1 conv to
    ``c_out`` channels after it where they differ from ``c_in``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = MLP_RATIO * c_in
        self.attention = nn.Sequential(nn.BatchNorm2d(c_in), GatedAttention(c_in))
        self.mlp = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.Conv2d(c_in, hidden, 1),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Conv2d(hidden, c_in, 1),
        )
        self.scale_attention = nn.Parameter(torch.full((c_in, 1, 1), LAYER_SCALE))
        self.scale_mlp = nn.Parameter(torch.full((c_in, 1, 1), LAYER_SCALE))
        self.reduce = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.scale_attention * self.attention(x)
        x = x + self.scale_mlp * self.mlp(x)
        return self.reduce(x)


class SimVP(RolloutModule):
    """SimVP: encoder, translator over time stacked into channels, decoder; ``pred_frames``
    frames at once from ``context_frames`` (the module docstring has the design). The shared
    options (``**kwargs``) are :class:`~vidgen.models.base.VideoModule`'s.

    Args:
        context_frames: true frames the translator reads (training and evaluation).
        pred_frames: frames predicted at once; a longer horizon is rolled out in chunks.
        channels: channels of the encoder's and decoder's maps (SimVP's ``hid_S``).
        translator_channels: channels of the translator's inner blocks (``hid_T``).
        spatial_blocks: encoder blocks, as many decoder blocks (``N_S``, even: every second
            one halves the side, so ``image_size`` must divide by ``2 ** (spatial_blocks / 2)``).
        translator_blocks: gSTA blocks (``N_T``, >= 2: the first reads the stacked context
            maps, the last writes the predicted ones).
    """

    default_optimizer = staticmethod(adam)

    def __init__(
        self,
        context_frames: int = 4,
        pred_frames: int = 4,
        channels: int = 32,
        translator_channels: int = 128,
        spatial_blocks: int = 4,
        translator_blocks: int = 6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["loss"])
        if min(context_frames, pred_frames, translator_channels) < 1 or translator_blocks < 2:
            raise ValueError(
                "context_frames, pred_frames and translator_channels must be >= 1 and "
                f"translator_blocks >= 2, got {context_frames}, {pred_frames}, "
                f"{translator_channels}, {translator_blocks}"
            )
        if channels < GROUPS or channels % GROUPS:
            raise ValueError(f"channels must be a positive multiple of {GROUPS}, got {channels}")
        halvings = spatial_blocks // 2
        if spatial_blocks < 2 or spatial_blocks % 2 or self.image_size % 2**halvings:
            raise ValueError(
                f"spatial_blocks must be even and >= 2, and image_size must divide by 2 ** "
                f"(spatial_blocks / 2) (every second block halves the side), got "
                f"{spatial_blocks} and {self.image_size}"
            )
        self.context_frames = context_frames
        self.pred_frames = pred_frames
        downs = [i % 2 == 1 for i in range(spatial_blocks)]  # SimVP's: keep, halve, keep, ...
        self.encoder = nn.ModuleList(
            ConvBlock(FRAME_CHANNELS if i == 0 else channels, channels, down=down)
            for i, down in enumerate(downs)
        )
        sizes = [context_frames * channels]
        sizes += [translator_channels] * (translator_blocks - 1) + [pred_frames * channels]
        self.translator = nn.Sequential(
            *(GSTABlock(c_in, c_out) for c_in, c_out in itertools.pairwise(sizes))
        )
        self.decoder = nn.ModuleList(ConvBlock(channels, channels, up=up) for up in downs[::-1])
        self.readout = nn.Conv2d(channels, FRAME_CHANNELS, 1)

    def check_rollout(self, context: Tensor, horizon: int) -> None:
        """Also: the context holds at least ``context_frames`` frames."""
        super().check_rollout(context, horizon)
        if context.shape[1] < self.context_frames:
            raise ValueError(
                f"SimVP reads {self.context_frames} context frames, got {context.shape[1]}"
            )

    def forward(self, context: Tensor, horizon: int, ids: Tensor | None = None) -> Tensor:
        """Roll out ``horizon`` frames after ``context`` ``(B, T, C, H, W)``, ``pred_frames`` at
        a time, each chunk from the last ``context_frames`` frames (true, then predicted)."""
        self.check_rollout(context, horizon)
        window, chunks = context[:, -self.context_frames :], []
        for _ in range(math.ceil(horizon / self.pred_frames)):
            chunks.append(self.next_frames(window))
            window = torch.cat([window, chunks[-1]], dim=1)[:, -self.context_frames :]
        return torch.cat(chunks, dim=1)[:, :horizon]

    def next_frames(self, window: Tensor) -> Tensor:
        """``pred_frames`` frames ``(B, P, C, H, W)`` after exactly ``context_frames`` frames."""
        b, t = window.shape[:2]
        first = self.encoder[0](window.flatten(0, 1))
        maps = first
        for block in self.encoder[1:]:
            maps = block(maps)
        maps = self.translator(maps.reshape(b, -1, *maps.shape[-2:]))
        maps = maps.reshape(b * self.pred_frames, -1, *maps.shape[-2:])
        skip = first.unflatten(0, (b, t))[:, -1:].expand(-1, self.pred_frames, -1, -1, -1)
        for block in self.decoder[:-1]:
            maps = block(maps)
        frames = self.readout(self.decoder[-1](maps + skip.flatten(0, 1)))
        return clamp_unit(frames.unflatten(0, (b, self.pred_frames)))

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self.rollout_loss(batch)
