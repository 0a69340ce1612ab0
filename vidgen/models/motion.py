"""Observed motion: where each pixel of a frame was ``k`` frames earlier, by block matching.

In short runs the predictor hardly learns more than copy-last-frame at its first step: the
frozen backbone sees one frame at a time, coarsely, and the core has to infer motion from
features of consecutive frames that barely differ. The context frames show the motion directly:
matching each pixel's neighbourhood (a ``patch`` x ``patch`` block, sum of absolute RGB
differences) against the frame ``k`` steps earlier, over every integer displacement up to
``radius``, gives its displacement; divided by ``k`` it is a velocity with ``1/k`` pixel
resolution. Constant velocity from there is a strong prior on natural video (camera pans,
moving objects; on the embedded textured data it beats copy-last by 0.004 MSE at every step of a
16-step rollout untrained) and needs no training; the predictor learns what to add to it.

Ties (flat regions: every displacement matches) go to the smallest displacement, so a uniform
background stays put. The search runs one displacement at a time with a running minimum:
memory ``O(N H W)``, time ``(2 radius + 1)**2`` block comparisons.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TIE_BREAK = 1e-3  # cost per pixel of displacement: among equal matches, the shortest wins


@torch.no_grad()
def block_match(earlier: Tensor, later: Tensor, radius: int, patch: int = 5) -> Tensor:
    """Backward flow ``(N, 2, H, W)`` (dx, dy) in whole pixels: pixel ``p`` of ``later``
    ``(N, C, H, W)`` best matches ``earlier`` at ``p - flow(p)``, ``|dx|, |dy| <= radius``.

    ``warp(earlier, flow)`` (:func:`vidgen.models.predictor.warp`) rebuilds ``later`` where the
    match is exact. Borders repeat.
    """
    if radius < 0 or patch < 1 or patch % 2 == 0:
        raise ValueError(f"radius must be >= 0 and patch odd, got {radius}, {patch}")
    n, _, h, w = later.shape
    padded = F.pad(earlier, (radius,) * 4, mode="replicate")
    best = later.new_full((n, 1, h, w), float("inf"))
    flow = later.new_zeros(n, 2, h, w)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[:, :, radius - dy : radius - dy + h, radius - dx : radius - dx + w]
            cost = (shifted - later).abs().sum(1, keepdim=True)
            cost = F.avg_pool2d(cost, patch, 1, patch // 2, count_include_pad=False)
            cost = cost + TIE_BREAK * (dx * dx + dy * dy) ** 0.5
            better = cost < best
            best = torch.where(better, cost, best)
            flow[:, 0:1] = torch.where(better, float(dx), flow[:, 0:1])
            flow[:, 1:2] = torch.where(better, float(dy), flow[:, 1:2])
    return flow


def observed_velocity(frames: Tensor, span: int, max_speed: float, patch: int = 5) -> Tensor:
    """Per-step backward flow ``(B, 2, H, W)`` of the last of ``frames`` ``(B, T, C, H, W)``:
    its block-matched displacement from ``min(span, T - 1)`` frames earlier, divided by that
    many steps (zeros when ``T == 1``). Speeds up to ``max_speed`` pixels a step are found."""
    k = min(span, frames.shape[1] - 1)
    if k < 1:
        return frames.new_zeros(frames.shape[0], 2, *frames.shape[-2:])
    radius = math.ceil(k * max_speed)
    return block_match(frames[:, -1 - k], frames[:, -1], radius, patch) / k
