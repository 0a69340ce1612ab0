"""Estimating motion from frames: block matching, the velocity seen in context frames, and
motion layers that explain a velocity field by a few motions.

Block matching compares each pixel's neighbourhood (a ``patch`` x ``patch`` block, sum of
absolute RGB differences) with the frame ``k`` steps earlier at every integer displacement up to
``radius``; the best is its displacement, divided by ``k`` a velocity. Ties (flat regions, where
every displacement matches) go to the smallest displacement, so a uniform background stays put.
The search runs one displacement at a time with a running minimum: memory ``O(N H W)``, time
``(2 radius + 1)**2`` block comparisons. With ``subpixel`` a parabola through each pixel's cost
at its best displacement and the two next to it along each axis refines it to a fraction of a
pixel: small errors add up over a long rollout. :func:`observed_velocity` takes a 3 x 3 median of
the result against isolated wrong matches.

The search's cost grows with the square of its radius: at 224 px a radius of 36 is 5329 block
comparisons of every pixel. :func:`pyramid_match` searches a radius beyond
:data:`SEARCH_RADIUS` coarse-to-fine instead: it matches the frames at half the size with half
the radius (recursively), doubles that flow, moves the earlier frame along it and refines the
result by a search of :data:`REFINE_RADIUS` at full size. Smaller radii are searched exactly.

Motion layers (Wang & Adelson 1994): block matching gives every pixel its own velocity, and the
velocities of one object's pixels differ by fractions of a pixel; extrapolated over many steps
those differences tear the object apart. A scene is mostly a few things moving rigidly, so
:func:`motion_layers` replaces the field by ``layers`` motions, each pixel taking the one that
explains its own velocity best. The first layer, the camera's, is affine,
``v(x, y) = A [x, y, 1]`` (pan, zoom, rotation); the others are translations (an affine fit to a
small thing's pixels leans on its worst matches and stretches it). Fitting is k-means with these
models: the first layer is the confidence-weighted least-squares fit to the whole field, each
next one starts as the velocity of the confident pixel worst explained so far; then pixels are
assigned to the nearest layer and each layer refitted to its pixels, ``iterations`` times.

A layer's velocity from block matching is a mean of per-pixel parabola fits, each biased towards
whole pixels; over 16 steps a tenth of a pixel a step is more than a pixel.
:func:`refine_translations` corrects it on the layer's own pixels: the correction whose earlier
frames, moved along it, best match the last frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgen.models.motion_transport import grid, inside_frame, warp

TIE_BREAK = 1e-3  # cost per pixel of displacement: among equal matches, the shortest wins
NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))  # (dx, dy) next to the best, for the parabolas
EXACT = 1e-6  # a block cost at most this (per pixel) is an exact match: no subpixel offset
RIDGE = 1e-3  # regularises each layer's least-squares fit (a layer with few or collinear pixels)
UNSURE = 1e-4  # confidence added everywhere: pixels without texture still count, a little
FIT_PIXELS = 4096  # the layers are fitted on at most about this many pixels of a frame
CHUNK = 2**20  # block matching takes differences of about this many values at a time
SEARCH_RADIUS = 12  # pyramid_match(): the largest radius searched exhaustively
REFINE_RADIUS = 2  # ... and the search around the doubled coarse flow at each finer level
REFINE_STAGES = ((0.4, 0.1), (0.1, 0.025))
"""refine_translations(): each stage's reach and spacing (pixels a step) of the grid of
corrections it tries, coarse to fine."""
MIN_LAYER_PIXELS = 8  # refine_translations(): a layer with fewer pixels keeps its velocity
CANDIDATES_AT_ONCE = 27  # refine_translations(): corrections compared in one batch of warps


def row_costs(padded: Tensor, later: Tensor, radius: int, dy: int, patch: int) -> Tensor:
    """Mean absolute difference ``(N, 2 radius + 1, H, W)`` of each ``patch`` x ``patch`` block
    of ``later`` and the block of the earlier frame displaced by ``(dx, dy)``, for every ``dx``
    from ``-radius`` to ``radius`` (channel ``dx + radius``); ``padded`` is that frame with
    ``radius`` replicated pixels on every side. The differences are taken a few displacements
    at a time (about :data:`CHUNK` values): the working set stays in the CPU's caches."""
    h, w = later.shape[-2:]
    rows = padded[:, :, radius - dy : radius - dy + h]  # (N, C, H, W + 2 radius)
    shifted = rows.unfold(3, w, 1)  # (N, C, H, 2 radius + 1, W), a view: dx descending
    count = 2 * radius + 1
    cost = later.new_empty(later.shape[0], count, h, w)
    step = max(1, CHUNK // later.numel())
    for start in range(0, count, step):
        part = shifted[:, :, :, start : start + step].flip(3)  # dx ascending
        stop = count - start
        diff = (part - later[:, :, :, None]).abs().sum(1)  # (N, H, k, W)
        cost[:, stop - diff.shape[2] : stop] = diff.transpose(1, 2)
    return F.avg_pool2d(cost, patch, 1, patch // 2, count_include_pad=False)


def pick(costs: Tensor, index: Tensor, offset: int) -> Tensor:
    """``costs`` ``(N, K, H, W)`` at channel ``index + offset`` of each pixel (``index``:
    ``(N, 1, H, W)``), NaN where that channel is out of range."""
    k = index + offset
    inside = (k >= 0) & (k < costs.shape[1])
    picked = costs.gather(1, k.clamp(0, costs.shape[1] - 1))
    return torch.where(inside, picked, torch.full_like(picked, float("nan")))


@torch.no_grad()
def block_match(
    earlier: Tensor, later: Tensor, radius: int, patch: int = 5, subpixel: bool = False
) -> Tensor:
    """Backward flow ``(N, 2, H, W)`` (dx, dy) in pixels: pixel ``p`` of ``later``
    ``(N, C, H, W)`` best matches ``earlier`` at ``p - flow(p)``, ``|dx|, |dy| <= radius``;
    whole pixels, or refined by parabolas to a fraction of one with ``subpixel``.

    ``warp(earlier, flow)`` (:func:`warp`) rebuilds ``later`` where the match is exact. Borders
    repeat. The search goes one row of displacements (one ``dy``, every ``dx``) at a time; among
    equal costs the first in row-major order wins. With ``subpixel`` the costs next to each
    pixel's best so far are kept as the search goes (the row of costs before is held): one pass.
    """
    if radius < 0 or patch < 1 or patch % 2 == 0:
        raise ValueError(f"radius must be >= 0 and patch odd, got {radius}, {patch}")
    n, _, h, w = later.shape
    padded = F.pad(earlier, (radius,) * 4, mode="replicate")
    best = later.new_full((n, 1, h, w), float("inf"))
    flow = later.new_zeros(n, 2, h, w)
    nan = later.new_full((n, 1, h, w), float("nan"))
    near = nan.expand(len(NEIGHBOURS), -1, -1, -1, -1).clone()  # the costs next to the best
    dxs = torch.arange(-radius, radius + 1, device=later.device, dtype=later.dtype)
    lengths = torch.arange(-radius, radius + 1, device=later.device, dtype=torch.float64)
    before: Tensor | None = None
    for dy in range(-radius, radius + 1):
        raw = row_costs(padded, later, radius, dy, patch)
        if subpixel and before is not None:  # this row is below some pixels' best so far
            index = (flow[:, 0:1] + radius).long()
            near[3] = torch.where(flow[:, 1:2] == dy - 1, pick(raw, index, 0), near[3])
        tie_break = TIE_BREAK * (lengths * lengths + dy * dy).sqrt()  # in float64, as Python's
        cost = raw + tie_break.to(raw.dtype).view(1, -1, 1, 1)
        row_best, index = cost.min(1, keepdim=True)
        better = row_best < best
        best = torch.where(better, row_best, best)
        flow[:, 0:1] = torch.where(better, dxs[index], flow[:, 0:1])
        flow[:, 1:2] = torch.where(better, float(dy), flow[:, 1:2])
        if subpixel:  # a new best: its neighbours in this row and the row above are known
            above = pick(before, index, 0) if before is not None else nan
            for slot, known in enumerate((pick(raw, index, -1), pick(raw, index, 1), above, nan)):
                near[slot] = torch.where(better, known, near[slot])
        before = raw
    if not subpixel:
        return flow
    best = best - TIE_BREAK * flow.norm(dim=1, keepdim=True)
    return flow + parabola_offsets(near, best)


@torch.no_grad()
def pyramid_match(
    earlier: Tensor, later: Tensor, radius: int, patch: int = 5, subpixel: bool = False
) -> Tensor:
    """:func:`block_match`'s flow, searched coarse-to-fine where ``radius`` exceeds
    :data:`SEARCH_RADIUS` (exactly otherwise): a displacement is found where the frames at half
    the size find it, to within :data:`REFINE_RADIUS` pixels, so fine texture that only matches
    at full size and motions that differ within a block of the coarse level can be missed."""
    if radius <= SEARCH_RADIUS:
        return block_match(earlier, later, radius, patch, subpixel)
    size = later.shape[-2:]
    half = (F.avg_pool2d(frames, 2, ceil_mode=True) for frames in (earlier, later))
    coarse = median3(pyramid_match(*half, math.ceil(radius / 2), patch, subpixel=True))
    guess = (2 * F.interpolate(coarse, size=size, mode="nearest")).round()  # whole pixels
    moved = warp(earlier, guess)  # the earlier frame where the coarse flow says it came from
    return guess + block_match(moved, later, REFINE_RADIUS, patch, subpixel)


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
    its subpixel block-matched displacement (:func:`pyramid_match`) from ``min(span, T - 1)``
    frames earlier, 3 x 3 median-filtered, divided by that many steps (zeros when ``T == 1``).
    Speeds up to ``max_speed`` pixels a step are found."""
    k = min(span, frames.shape[1] - 1)
    if k < 1:
        return frames.new_zeros(frames.shape[0], 2, *frames.shape[-2:])
    radius = math.ceil(k * max_speed)
    return median3(pyramid_match(frames[:, -1 - k], frames[:, -1], radius, patch, True)) / k


def affine_basis(h: int, w: int, like: Tensor) -> Tensor:
    """``(H * W, 3)``: each pixel's ``[x, y, 1]``, ``x`` and ``y`` centred and in frame widths."""
    ys, xs = grid(h, w, like)
    return torch.stack([(xs - w / 2) / w, (ys - h / 2) / h, torch.ones_like(xs)], -1).flatten(0, 1)


def fit_motion(basis: Tensor, velocity: Tensor, weight: Tensor, affine: bool) -> Tensor:
    """Weighted least-squares motions ``(N, 3, 2)`` (as ``A`` above) of ``velocity``
    ``(N, P, 2)`` at ``basis`` ``(P, 3)`` with pixel weights ``weight`` ``(N, P)``: affine
    (ridge :data:`RIDGE`), or a translation (the weighted mean velocity)."""
    if not affine:
        mean = (velocity * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(RIDGE)
        return F.pad(mean[:, None], (0, 0, 2, 0))  # zero rows for x and y
    weighted = basis * weight[..., None]  # (N, P, 3)
    gram = weighted.transpose(1, 2) @ basis + RIDGE * torch.eye(
        3, dtype=basis.dtype, device=basis.device
    )
    return torch.linalg.solve(gram, weighted.transpose(1, 2) @ velocity)


@torch.no_grad()
def motion_layers(velocity: Tensor, confidence: Tensor, layers: int, iterations: int = 8) -> Tensor:
    """``velocity`` ``(N, 2, H, W)`` with each pixel's velocity replaced by that of its motion
    layer (:func:`fit_layers`; weighted by ``confidence`` ``(N, 1, H, W)``, e.g.
    :func:`texture`). A field made of one affine motion and at most ``layers - 1``
    translations comes back unchanged (up to the ridge)."""
    motions, labels = fit_layers(velocity, confidence, layers, iterations)
    return layer_field(motions, labels).to(velocity.dtype)


@torch.no_grad()
def fit_layers(
    velocity: Tensor, confidence: Tensor, layers: int, iterations: int = 8
) -> tuple[Tensor, Tensor]:
    """``layers`` motions fitted per clip to ``velocity`` ``(N, 2, H, W)``, weighted by
    ``confidence`` ``(N, 1, H, W)``: the first affine, the others translations, each pixel in
    the layer whose motion fits it best. Returns the motions ``(N, layers, 3, 2)`` (as
    :func:`fit_motion`'s, in float32) and each pixel's layer ``(N, H, W)``. Frames of more than
    :data:`FIT_PIXELS` pixels are fitted on an evenly strided subset of them, then every pixel
    is assigned."""
    if layers < 1 or iterations < 0:
        raise ValueError(f"layers must be >= 1 and iterations >= 0, got {layers}, {iterations}")
    n, _, h, w = velocity.shape
    every = affine_basis(h, w, velocity.float())  # solved in float32 whatever the precision
    everywhere = velocity.float().flatten(2).transpose(1, 2)  # (N, P, 2)
    stride = math.ceil(math.sqrt(h * w / FIT_PIXELS))
    rows, columns = (torch.arange(0, size, stride, device=velocity.device) for size in (h, w))
    keep = (rows[:, None] * w + columns).flatten()
    clips = torch.arange(n, device=velocity.device)
    basis, field = every[keep], everywhere[:, keep]
    weight = confidence.float().flatten(1)[:, keep] + UNSURE
    models = [fit_motion(basis, field, weight, affine=True)]
    residual = (basis @ models[0] - field).norm(dim=-1)  # how badly the best layer so far fits
    for _ in range(layers - 1):  # seed: the confident pixel worst explained so far
        worst = (residual * weight).argmax(1)
        seed = torch.zeros_like(models[0])
        seed[:, 2] = field[clips, worst]
        models.append(seed)
        residual = torch.minimum(residual, (basis @ seed - field).norm(dim=-1))
    stacked = torch.stack(models, 1)  # (N, K, 3, 2)
    ids = torch.arange(layers, device=velocity.device)  # one-hot by comparison: no host sync
    for _ in range(iterations):
        member = (assign(basis, field, stacked)[..., None] == ids).to(weight) * weight[..., None]
        refits = []
        for k in range(layers):
            alive = (member[..., k].sum(1) > UNSURE)[:, None, None]
            refit = fit_motion(basis, field, member[..., k], affine=k == 0)
            refits.append(torch.where(alive, refit, stacked[:, k]))
        stacked = torch.stack(refits, 1)
    return stacked, assign(every, everywhere, stacked).view(n, h, w)


def layer_field(motions: Tensor, labels: Tensor) -> Tensor:
    """The velocity ``(N, 2, H, W)`` of each pixel's layer: ``motions`` ``(N, K, 3, 2)`` and
    ``labels`` ``(N, H, W)`` as :func:`fit_layers` returns them."""
    n, h, w = labels.shape
    every = affine_basis(h, w, motions)
    clips = torch.arange(n, device=labels.device)
    chosen = motions[clips[:, None], labels.flatten(1)]  # (N, P, 3, 2)
    out = (every[None, :, None] @ chosen)[:, :, 0]  # (N, P, 2)
    return out.transpose(1, 2).reshape(n, 2, h, w)


def assign(basis: Tensor, field: Tensor, models: Tensor) -> Tensor:
    """Each pixel's layer ``(N, P)``: the one of ``models`` ``(N, K, 3, 2)`` whose motion at it
    is nearest its velocity in ``field`` ``(N, P, 2)``."""
    predicted = torch.einsum("pi,nkij->nkpj", basis, models)
    return (predicted - field[:, None]).norm(dim=-1).argmin(1)


@torch.no_grad()
def refine_translations(
    frames: Tensor, motions: Tensor, labels: Tensor, span: int, border: int
) -> Tensor:
    """``motions`` ``(N, K, 3, 2)`` (as :func:`fit_layers` returns them) with each layer's
    translation corrected to fit ``frames`` ``(N, S, C, H, W)`` better: the correction, on a
    grid of :data:`REFINE_STAGES`, that brings each of the ``span`` frames before the last,
    moved along the layer's motion times its distance, nearest the last frame over the layer's
    pixels there (``labels`` ``(N, H, W)``; the mean absolute colour difference, robust to
    what covers a pixel in an earlier frame) and more than ``border`` pixels from the frame's
    borders. An affine layer's linear part is kept. Layers of fewer than
    :data:`MIN_LAYER_PIXELS` pixels keep their velocity."""
    s, (h, w) = frames.shape[1], frames.shape[-2:]
    frames, motions = frames.float(), motions.clone()
    basis = affine_basis(h, w, frames).view(h, w, 3)
    interior = torch.zeros(h, w, device=frames.device)
    interior[border : h - border, border : w - border] = 1
    last, steps = frames[:, -1, None], range(1, min(span, s - 1) + 1)
    stages = []  # each stage's corrections (M, 2) as (dx, dy)
    for reach, spacing in REFINE_STAGES:
        offsets = torch.arange(-reach, reach + spacing / 2, spacing, device=frames.device)
        stages.append(torch.cartesian_prod(offsets, offsets))
    for layer in range(motions.shape[1]):
        mask = (labels == layer).float() * interior  # (N, H, W)
        enough = mask.flatten(1).sum(1, keepdim=True) >= MIN_LAYER_PIXELS
        for tries in stages:
            flow = torch.einsum("hwi,nij->njhw", basis, motions[:, layer])  # (N, 2, H, W)
            costs = []
            for chunk in tries.split(CANDIDATES_AT_ONCE):
                flows = flow[:, None] + chunk[None, :, :, None, None]  # (N, M', 2, H, W)
                total = count = 0
                for step in steps:
                    earlier = frames[:, -1 - step, None].expand(-1, len(chunk), -1, -1, -1)
                    moved_by = flows * step
                    weight = mask[:, None] * inside_frame(moved_by)[:, :, 0]
                    error = (warp(earlier, moved_by) - last).abs().sum(2)
                    total = total + (error * weight).sum((-2, -1))
                    count = count + weight.sum((-2, -1))
                costs.append(total / count.clamp_min(1))
            best = tries[torch.cat(costs, 1).argmin(1)]  # (N, 2)
            motions[:, layer, 2] += torch.where(enough, best, torch.zeros_like(best))
    return motions
