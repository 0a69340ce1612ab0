"""Moving pixels along flows: backward warping, forward splatting with hole filling, carrying a
velocity field along itself and composing flows.

Flows are in pixels ``(dx, dy)``. A backward flow says, for each output pixel, where it comes
from (:func:`warp`); a forward one, for each input pixel, where it goes (:func:`splat`). Backward
warping keeps every output pixel defined but lets the front of a moving thing take the motion
of what lies ahead of it; splatting moves each pixel on its own motion, so things stay whole,
and leaves holes where nothing lands, filled from the colours around them (:func:`push_pull`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

STILL = 1e-2  # carry(): the splatting weight of a still cell, relative to 1 cell a step
MAX_DEVIATION = 8.0  # splat_over(): speeds beyond this from the median weigh as this (no overflow)
OWN_COLOUR = 0.5  # push_pull(): a pixel keeps its own colour from this much weight landed on it


def grid(h: int, w: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column index ``(h, w)`` of every place of an ``h`` x ``w`` grid, on ``like``'s
    device and in its dtype."""
    ys = torch.arange(h, device=like.device, dtype=like.dtype)
    xs = torch.arange(w, device=like.device, dtype=like.dtype)
    return torch.meshgrid(ys, xs, indexing="ij")


def warp(frames: Tensor, flow: Tensor) -> Tensor:
    """Move ``frames`` ``(..., C, H, W)`` along ``flow`` ``(..., 2, H, W)`` in pixels ``(dx, dy)``.

    Output pixel ``p`` takes the (bilinearly interpolated) input at ``p - flow(p)``; borders
    repeat. A zero flow returns ``frames`` exactly.
    """
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    frames, flow = frames.reshape(-1, c, h, w), flow.reshape(-1, 2, h, w)
    ys, xs = grid(h, w, flow)
    x = (xs - flow[:, 0] + 0.5) * (2.0 / w) - 1.0
    y = (ys - flow[:, 1] + 0.5) * (2.0 / h) - 1.0
    sources = torch.stack([x, y], dim=-1)  # where each output pixel samples, in [-1, 1]
    out = F.grid_sample(
        frames.to(sources.dtype),
        sources,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out.to(frames.dtype).view(*lead, c, h, w)


def inside_frame(flow: Tensor) -> Tensor:
    """``(..., 1, H, W)``: whether each output pixel ``p`` of a backward ``flow``
    ``(..., 2, H, W)`` (as :func:`warp` takes it) comes from inside the frame, ``p - flow(p)``
    between the centres of its first and last pixels (beyond, :func:`warp` repeats the
    border)."""
    h, w = flow.shape[-2:]
    ys, xs = grid(h, w, flow)
    x, y = xs - flow[..., 0, :, :], ys - flow[..., 1, :, :]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).unsqueeze(-3)


def splat(values: Tensor, flow: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """Forward splatting: each pixel ``p`` of ``values`` ``(N, C, H, W)`` sent to ``p + flow(p)``
    (``flow`` ``(N, 2, H, W)``, pixels ``(dx, dy)``), shared bilinearly between the four pixels
    around it, times ``weight`` ``(N, 1, H, W)``. Returns the weighted sums ``(N, C, H, W)`` and
    the weights that landed ``(N, 1, H, W)`` (0 where nothing lands; what leaves the frame is
    lost). Their ratio is the weighted mean of what landed at each pixel; with a zero flow and a
    positive weight it is ``values`` exactly. Differentiable in ``values``, ``flow`` and
    ``weight``."""
    n, c, h, w = values.shape
    ys, xs = grid(h, w, flow)
    x, y = xs + flow[:, 0], ys + flow[:, 1]
    weighted = torch.cat([values * weight, weight], 1).flatten(2)
    total = weighted.new_zeros(n, c + 1, h * w)
    for corner_x, corner_y in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = x.detach().floor() + corner_x, y.detach().floor() + corner_y
        share = (1 - (x - cx).abs()) * (1 - (y - cy).abs())
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        share = torch.where(inside, share, torch.zeros_like(share)).flatten(1)
        index = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long().flatten(1)
        index = index[:, None].expand(-1, c + 1, -1)
        total = total.scatter_add(2, index, weighted * share[:, None])
    total = total.view(n, c + 1, h, w)
    return total[:, :c], total[:, c:]


def push_pull(sums: Tensor, mass: Tensor) -> tuple[Tensor, Tensor]:
    """Colours everywhere from a splatted image with holes (Gortler et al. 1996): ``sums``
    ``(N, C, H, W)`` and ``mass`` ``(N, 1, H, W)`` as :func:`splat` returns them. A pixel keeps
    its own weighted mean in proportion to its weight (fully from :data:`OWN_COLOUR`) and takes
    the rest from the same image at half the resolution, filled the same way and upsampled
    bilinearly: a hole gets the colours around it, from ever further away the larger it is.
    Returns the colours and, per image ``(N, 1, 1, 1)``, whether anything landed at all (if not,
    the colours are 0)."""
    levels = [(sums, mass)]
    while max(levels[-1][1].shape[-2:]) > 1:
        s, m = levels[-1]
        half = ((s.shape[-2] + 1) // 2, (s.shape[-1] + 1) // 2)
        levels.append((F.adaptive_avg_pool2d(s, half), F.adaptive_avg_pool2d(m, half)))
    tiny = torch.finfo(mass.dtype).tiny
    top_sums, top_mass = levels.pop()
    colour = top_sums / top_mass.clamp_min(tiny)
    for s, m in reversed(levels):
        coarse = F.interpolate(colour, size=s.shape[-2:], mode="bilinear", align_corners=False)
        own = (m / OWN_COLOUR).clamp(max=1.0)
        colour = own * s / m.clamp_min(tiny) + (1 - own) * coarse
    return colour, top_mass > 0


def splat_over(
    frames: Tensor, offset: Tensor, velocity: Tensor, fill: Tensor, sharpness: float
) -> Tensor:
    """``frames`` ``(..., C, H, W)``, each pixel moved by its ``offset`` ``(..., 2, H, W)`` and
    splatted (:func:`splat`). Where several pixels land, each weighs ``exp(sharpness * d)``,
    ``d`` the distance of its ``velocity`` from the median velocity of its frame (pixels a step,
    at most :data:`MAX_DEVIATION`): what moves against the camera is in front. Where nothing
    lands (what a moving thing uncovers, what enters at the borders) the frame shows, in
    proportion to how little lands, the colours around the hole (:func:`push_pull`), each
    weighing ``exp(-sharpness * d)``: the hole is filled with what is behind, not with the thing
    that left it. ``fill`` (same shape as ``frames``) shows only where nothing lands at all.
    A zero offset gives ``frames`` exactly."""
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    frames, offset, velocity = (
        x.reshape(-1, x.shape[-3], h, w) for x in (frames, offset, velocity)
    )
    front = in_front(velocity, sharpness)
    landed, splatted = splat_landed(frames, offset, front)
    behind, found = push_pull(*splat(frames, offset, torch.exp(-front)))
    holes = torch.where(found, behind, fill.reshape_as(frames))
    out = landed * splatted + (1 - landed) * holes
    return out.view(*lead, c, h, w)


def splat_onto(
    frames: Tensor, offset: Tensor, velocity: Tensor, base: Tensor, sharpness: float
) -> Tensor:
    """``frames`` ``(..., C, H, W)`` moved and splatted as :func:`splat_over` does, over
    ``base`` (same shape): where nothing lands (what a moving thing uncovers, what enters at
    the borders) ``base`` shows, in proportion to how little lands. For a ``base`` that knows
    what is behind (a background plate), not the colours around the hole."""
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    frames, offset, velocity = (
        x.reshape(-1, x.shape[-3], h, w) for x in (frames, offset, velocity)
    )
    landed, splatted = splat_landed(frames, offset, in_front(velocity, sharpness))
    out = landed * splatted + (1 - landed) * base.reshape_as(frames)
    return out.view(*lead, c, h, w)


def in_front(velocity: Tensor, sharpness: float) -> Tensor:
    """``(N, 1, H, W)``: each pixel's log weight of being in front where splatted pixels
    collide, ``sharpness`` times the distance of its ``velocity`` ``(N, 2, H, W)`` from its
    frame's median velocity (at most :data:`MAX_DEVIATION`)."""
    median = velocity.detach().flatten(2).median(-1).values[..., None, None]
    deviation = (velocity.detach() - median).norm(dim=1, keepdim=True)
    return sharpness * deviation.clamp(max=MAX_DEVIATION)


def splat_landed(frames: Tensor, offset: Tensor, front: Tensor) -> tuple[Tensor, Tensor]:
    """How much lands at each pixel (at most 1) and the weighted mean of what lands there
    (each pixel weighing ``exp(front)``), of ``frames`` ``(N, C, H, W)`` splatted by
    ``offset``."""
    sums, mass = splat(frames, offset, torch.exp(front))
    _, coverage = splat(frames[:, :1], offset, torch.ones_like(mass))
    return coverage.clamp(max=1.0), sums / mass.clamp_min(1e-6)


def carry(velocity: Tensor) -> Tensor:
    """A velocity map ``(N, 2, H, W)`` (cells a step, ``(dx, dy)``) one step on: each cell's
    velocity splatted (:func:`splat`) to where it moves, averaged where several land, weighted by
    speed (what moves is taken to be in front of what stays: a moving thing over a still
    background keeps its velocity), 0 where none lands. What moves takes its velocity along; a
    backward warp of the map by itself would not advance a moving region's front (a cell ahead
    of it holds 0 and keeps it)."""
    speed = velocity.norm(dim=1, keepdim=True) + STILL
    moved, weight = splat(velocity, velocity, speed)
    landed = weight > 1e-6
    return torch.where(landed, moved / weight.clamp_min(1e-6), torch.zeros_like(moved))


def compose_flows(total: Tensor, step: Tensor) -> Tensor:
    """The flow of ``total`` followed by ``step`` (both backward flows, ``(..., 2, H, W)``).

    Output pixel ``p`` comes from ``q = p - step(p)`` one step earlier, which came from
    ``q - total(q)``: the composed flow is ``step(p) + total(p - step(p))``.
    """
    return step + warp(total, step)
