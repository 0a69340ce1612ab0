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
memory ``O(N H W)``, time ``(2 radius + 1)**2`` block comparisons. ``subpixel=True`` then fits a
parabola through each pixel's cost at its best displacement and the two next to it along each
axis (kept as the search goes): errors of a fraction of a
pixel a step add up over a long rollout. :func:`observed_velocity` uses it and takes a 3 x 3
median of the result against isolated wrong matches; measured on 128 held-out textured clips,
untrained constant-velocity extrapolation over 16 steps: SSIM at step 16 0.485 -> 0.526, at step
8 0.568 -> 0.606 (integer matching -> subpixel + median).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TIE_BREAK = 1e-3  # cost per pixel of displacement: among equal matches, the shortest wins
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (dx, dy) next to the best, for the parabolas
STILL = 1e-2  # carry(): the splatting weight of a still cell, relative to 1 cell a step
MAX_DEVIATION = 8.0  # splat_over(): speeds beyond this from the median weigh as this (no overflow)
EXACT = 1e-6  # a block cost at most this (per pixel) is an exact match: no subpixel offset
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
    median = velocity.detach().flatten(2).median(-1).values[..., None, None]
    deviation = (velocity.detach() - median).norm(dim=1, keepdim=True)
    front = sharpness * deviation.clamp(max=MAX_DEVIATION)  # log weight of being in front
    sums, mass = splat(frames, offset, torch.exp(front))
    behind, found = push_pull(*splat(frames, offset, torch.exp(-front)))
    _, coverage = splat(frames[:, :1], offset, torch.ones_like(mass))
    landed = coverage.clamp(max=1.0)
    holes = torch.where(found, behind, fill.reshape_as(frames))
    out = landed * sums / mass.clamp_min(1e-6) + (1 - landed) * holes
    return out.view(*lead, c, h, w)


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


def block_costs(padded: Tensor, later: Tensor, radius: int, dx: int, dy: int, patch: int) -> Tensor:
    """Mean absolute difference ``(N, 1, H, W)`` of each ``patch`` x ``patch`` block of
    ``later`` and the block of the earlier frame displaced by ``(dx, dy)``; ``padded`` is that
    frame with ``radius`` replicated pixels on every side (``|dx|, |dy| <= radius``)."""
    h, w = later.shape[-2:]
    shifted = padded[:, :, radius - dy : radius - dy + h, radius - dx : radius - dx + w]
    cost = (shifted - later).abs().sum(1, keepdim=True)
    return F.avg_pool2d(cost, patch, 1, patch // 2, count_include_pad=False)


@torch.no_grad()
def block_match(
    earlier: Tensor, later: Tensor, radius: int, patch: int = 5, subpixel: bool = False
) -> Tensor:
    """Backward flow ``(N, 2, H, W)`` (dx, dy) in pixels: pixel ``p`` of ``later``
    ``(N, C, H, W)`` best matches ``earlier`` at ``p - flow(p)``, ``|dx|, |dy| <= radius``;
    whole pixels, or refined by parabolas to a fraction of one with ``subpixel``.

    ``warp(earlier, flow)`` (:func:`warp`) rebuilds ``later`` where the
    match is exact. Borders repeat. With ``subpixel`` the costs next to each pixel's best so
    far are kept as the search goes (the row of costs before is held): one pass.
    """
    if radius < 0 or patch < 1 or patch % 2 == 0:
        raise ValueError(f"radius must be >= 0 and patch odd, got {radius}, {patch}")
    n, _, h, w = later.shape
    padded = F.pad(earlier, (radius,) * 4, mode="replicate")
    best = later.new_full((n, 1, h, w), float("inf"))
    flow = later.new_zeros(n, 2, h, w)
    if subpixel:  # the costs next to each pixel's best so far (NaN: not seen / out of range)
        nan = best.new_full((n, 1, h, w), float("nan"))
        near = nan.expand(len(NEIGHBOURS), -1, -1, -1, -1).clone()
    row_before: list[Tensor] = []
    for dy in range(-radius, radius + 1):
        row: list[Tensor] = []
        for dx in range(-radius, radius + 1):
            raw = block_costs(padded, later, radius, dx, dy, patch)
            if subpixel:  # this displacement is right of / below some pixels' best so far
                near[1] = torch.where(at(flow, dx - 1, dy), raw, near[1])
                near[3] = torch.where(at(flow, dx, dy - 1), raw, near[3])
            cost = raw + TIE_BREAK * (dx * dx + dy * dy) ** 0.5
            better = cost < best
            best = torch.where(better, cost, best)
            flow[:, 0:1] = torch.where(better, float(dx), flow[:, 0:1])
            flow[:, 1:2] = torch.where(better, float(dy), flow[:, 1:2])
            if subpixel:  # a new best: the costs left of and above it are known, not yet the rest
                near[0] = torch.where(better, row[-1] if row else nan, near[0])
                near[2] = torch.where(better, row_before[len(row)] if row_before else nan, near[2])
                near[1] = torch.where(better, nan, near[1])
                near[3] = torch.where(better, nan, near[3])
                row.append(raw)
        row_before = row
    if not subpixel:
        return flow
    best = best - TIE_BREAK * flow.norm(dim=1, keepdim=True)
    return flow + parabola_offsets(near, best)


def at(flow: Tensor, dx: int, dy: int) -> Tensor:
    """Where ``flow`` ``(N, 2, H, W)`` is the displacement ``(dx, dy)``: ``(N, 1, H, W)``."""
    return (flow[:, 0:1] == dx) & (flow[:, 1:2] == dy)


def parabola_offsets(near: Tensor, best: Tensor) -> Tensor:
    """Offsets ``(N, 2, H, W)`` in ``[-0.5, 0.5]`` from each pixel's whole-pixel match to the
    minimum of the parabola through its block costs at the displacements next to it (``near``,
    ``(4, N, 1, H, W)`` in :data:`NEIGHBOURS` order, NaN out of range) and at it (``best``), per
    axis; 0 where a neighbour is out of range, the costs are flat or the match is exact (a
    block found unchanged moved by whole pixels)."""
    offsets = []
    for minus, plus in (near[0], near[1]), (near[2], near[3]):
        curvature = minus + plus - 2 * best
        offset = (0.5 * (minus - plus) / curvature.clamp_min(1e-6)).clamp(-0.5, 0.5)
        fits = torch.isfinite(curvature) & (curvature > 1e-4) & (best > EXACT)
        offsets.append(torch.where(fits, offset, torch.zeros_like(offset)))
    return torch.cat(offsets, 1)


def median3(flow: Tensor) -> Tensor:
    """3 x 3 median of each channel of ``(N, C, H, W)`` (borders repeat)."""
    n, c, h, w = flow.shape
    blocks = F.pad(flow, (1, 1, 1, 1), mode="replicate").unfold(2, 3, 1).unfold(3, 3, 1)
    return blocks.reshape(n, c, h, w, 9).median(-1).values


def texture(frames: Tensor, patch: int = 5) -> Tensor:
    """How much texture each pixel's block has: the ``patch`` x ``patch`` mean of the absolute
    spatial differences of ``frames`` ``(N, C, H, W)``, summed over channels, ``(N, 1, H, W)``.
    0 on flat regions, where block matching cannot see motion (every displacement ties)."""
    dx = F.pad((frames[..., :, 1:] - frames[..., :, :-1]).abs(), (0, 1))
    dy = F.pad((frames[..., 1:, :] - frames[..., :-1, :]).abs(), (0, 0, 0, 1))
    energy = (dx + dy).sum(1, keepdim=True)
    return F.avg_pool2d(energy, patch, 1, patch // 2, count_include_pad=False)


def pool_flow(flow: Tensor, frames: Tensor, size: tuple[int, int]) -> Tensor:
    """``flow`` ``(N, 2, H, W)`` averaged over a ``size`` grid, each pixel weighted by the
    :func:`texture` of ``frames`` there: a cell's motion is that of what can be seen moving in it,
    not diluted by the flat regions (a shape's inside, a black background) that tie at 0. Cells
    without texture get 0."""
    weight = texture(frames)
    total = F.adaptive_avg_pool2d(weight * flow, size)
    mass = F.adaptive_avg_pool2d(weight, size)
    return torch.where(mass > 1e-6, total / mass.clamp_min(1e-6), torch.zeros_like(total))


def observed_velocity(frames: Tensor, span: int, max_speed: float, patch: int = 5) -> Tensor:
    """Per-step backward flow ``(B, 2, H, W)`` of the last of ``frames`` ``(B, T, C, H, W)``:
    its subpixel block-matched displacement from ``min(span, T - 1)`` frames earlier, 3 x 3
    median-filtered, divided by that many steps (zeros when ``T == 1``). Speeds up to
    ``max_speed`` pixels a step are found."""
    k = min(span, frames.shape[1] - 1)
    if k < 1:
        return frames.new_zeros(frames.shape[0], 2, *frames.shape[-2:])
    radius = math.ceil(k * max_speed)
    return median3(block_match(frames[:, -1 - k], frames[:, -1], radius, patch, True)) / k
