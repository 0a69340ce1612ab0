"""Things over a flat background: find them, follow them, move them by whole pixels.

A scene of one-colour things over a flat background (the embedded shapes data) is described by
each thing's mask in one frame and its offset in later ones. :func:`thing_masks` cuts a frame
into one-colour pieces, :func:`track` finds each piece again in later frames by template
matching, :func:`centres` reads its sub-pixel centre there, :func:`unhide` completes a piece
another covers from an earlier frame, and :func:`paste` draws a future by lifting the pieces
off the frame and putting them down at whole-pixel offsets: a thing keeps its outline and size
exactly, unless another covers it. How a thing's positions make a path is
:mod:`vidgen.models.thing_paths`. All functions work on a whole batch at once; no SciPy.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgen.models.thing_paths import fold
from vidgen.wholeness import THRESHOLD, background_colour, foreground

NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
"""The 8 neighbours a pixel joins when their colours are alike."""
TIE = 1e-5
"""Matching costs (sums of squared colour differences) this close are equal: the offset nearest
the prediction wins."""


def one_colour_pieces(frames: Tensor, mask: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """Labels ``(N, H, W)`` of the pieces of ``mask`` ``(N, H, W)`` in which neighbouring pixels
    of ``frames`` ``(N, C, H, W)`` differ by at most ``threshold`` in every channel: 0 off the
    mask, else the largest flat pixel index (+1) of the pixel's piece.

    Label propagation as :func:`vidgen.wholeness.connected_pieces`, joining two neighbours only
    where their colours are alike: two touching things of different colours stay two pieces.
    """
    h, w = frames.shape[-2:]
    padded = F.pad(frames.float(), (1, 1, 1, 1))
    inside = F.pad(mask, (1, 1, 1, 1))
    joins = []
    for dy, dx in NEIGHBOURS:
        rows, cols = slice(1 + dy, 1 + dy + h), slice(1 + dx, 1 + dx + w)
        alike = (padded[..., rows, cols] - frames).abs().amax(1) <= threshold
        joins.append(mask & inside[:, rows, cols] & alike)
    own = torch.arange(1, h * w + 1, device=frames.device).view(1, h, w)
    labels = own * mask
    while True:
        padded_labels = F.pad(labels, (1, 1, 1, 1))
        grown = labels
        for (dy, dx), join in zip(NEIGHBOURS, joins, strict=True):
            neighbour = padded_labels[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            grown = torch.maximum(grown, neighbour * join)
        if torch.equal(grown, labels):
            return labels
        labels = grown


def thing_masks(frames: Tensor, slots: int, min_area: int, threshold: float = THRESHOLD) -> Tensor:
    """Boolean ``(N, slots, H, W)``: the things of each frame ``(N, C, H, W)`` (floats in [0, 1])
    over its flat background (:func:`~vidgen.wholeness.background_colour`): its one-colour
    foreground pieces (:func:`one_colour_pieces`) of at least ``min_area`` pixels, the
    ``slots`` largest, largest first (equal sizes: the one with the larger last pixel index
    first); slots left over are empty."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    n, _, h, w = frames.shape
    frames = frames.float()
    mask = foreground(frames, background_colour(frames), threshold)
    labels = one_colour_pieces(frames, mask, threshold).view(n, h * w)
    sizes = torch.zeros(n, h * w + 1, dtype=torch.long, device=frames.device)
    sizes.scatter_add_(1, labels, torch.ones_like(labels))
    sizes[:, 0] = 0  # the background is no thing
    key = torch.where(
        sizes >= max(min_area, 1),
        sizes * (h * w + 1) + torch.arange(h * w + 1, device=frames.device),
        -1,
    )
    top = key.topk(min(slots, h * w + 1), dim=1)
    chosen = (labels[:, None] == top.indices[..., None]) & (top.values[..., None] > 0)
    return F.pad(chosen, (0, 0, 0, slots - chosen.shape[1])).view(n, slots, h, w)


def take(images: Tensor, which: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
    """Pixels ``(M, C, h, w)`` of ``images[which]`` (``images`` ``(N, C, H, W)``, ``which``
    ``(M,)``) at ``rows`` ``(M, h)`` and ``cols`` ``(M, w)``, and whether each lies inside the
    frame ``(M, h, w)`` (outside: the nearest edge pixel's value, to be replaced)."""
    _, _, h, w = images.shape
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rows, cols = rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]
    return images[which[:, None, None], :, rows, cols].permute(0, 3, 1, 2), inside


def shift(images: Tensor, offsets: Tensor) -> Tensor:
    """``images`` ``(*L, H, W)`` (masks or channels, any dtype) moved by ``offsets`` ``(*L, 2)``
    (down, right; rounded to whole pixels): no resampling, nothing wraps around, what comes in
    from outside is 0 (False)."""
    *lead, h, w = images.shape
    if tuple(offsets.shape) != (*lead, 2):
        raise ValueError(f"expected offsets {(*lead, 2)} for images {tuple(images.shape)}")
    flat = images.reshape(-1, 1, h, w)
    whole = (offsets.round() if offsets.is_floating_point() else offsets).long().view(-1, 2)
    rows = torch.arange(h, device=images.device) - whole[:, :1]
    cols = torch.arange(w, device=images.device) - whole[:, 1:]
    which = torch.arange(len(flat), device=images.device)
    taken, inside = take(flat, which, rows, cols)
    return torch.where(inside, taken[:, 0], torch.zeros((), dtype=images.dtype)).view_as(images)


def boxes(masks: Tensor) -> Tensor:
    """``(*L, 4)``: each mask's ``(*L, H, W)`` bounding box in pixels, top, left, bottom, right
    (the last two past the end); all zero for an empty mask."""
    rows, cols = masks.any(-1), masks.any(-2)
    top, left = rows.byte().argmax(-1), cols.byte().argmax(-1)  # the first True
    bottom = rows.shape[-1] - rows.flip(-1).byte().argmax(-1)
    right = cols.shape[-1] - cols.flip(-1).byte().argmax(-1)
    box = torch.stack([top, left, bottom, right], -1)
    return box * rows.any(-1)[..., None]


def search_offsets(radius: int, device: torch.device) -> Tensor:
    """``(D, 2)``: the whole-pixel offsets within ``radius`` (a square), nearest first (then by
    row and column): the first best match is the one nearest the prediction."""
    span = torch.arange(-radius, radius + 1, device=device)
    grid = torch.cartesian_prod(span, span)  # by row, then column
    return grid[grid.pow(2).sum(1).argsort(stable=True)]


class Matcher:
    """The cost of each thing of ``template`` ``(B, C, H, W)`` (its pixels under ``masks``
    ``(B, K, H, W)``) at every whole-pixel offset within a radius of a guess in a frame: the
    sum of squared colour differences over its pixels, outside the frame counting as the
    background colour. One correlation of ``[frame, frame^2]`` with ``[-2 patch, 1]`` over the
    thing's pixels, plus ``|patch|^2``."""

    def __init__(self, template: Tensor, masks: Tensor) -> None:
        b, k, h, w = masks.shape
        template = template.float()
        self.things = b * k
        self.background = background_colour(template)[:, :, 0, 0]  # (B, C)
        box = boxes(masks).view(b * k, 4)
        side = max(1, int((box[:, 2:] - box[:, :2]).max()))
        self.thing = torch.arange(b, device=masks.device).repeat_interleave(k)
        span = torch.arange(side, device=masks.device)
        self.rows, self.cols = box[:, :1] + span, box[:, 1:2] + span
        patch, _ = take(template, self.thing, self.rows, self.cols)  # (B*K, C, side, side)
        every = torch.arange(b * k, device=masks.device)
        weight, _ = take(masks.reshape(b * k, 1, h, w).float(), every, self.rows, self.cols)
        kernel = torch.cat([-2 * patch, torch.ones_like(patch)], 1) * weight
        self.kernel = kernel.double()
        self.constant = (patch.pow(2) * weight).double().sum((1, 2, 3))
        self.side = side

    def costs(self, frames: Tensor, guess: Tensor, radius: int) -> Tensor:
        """``(B*K, 2 radius + 1, 2 radius + 1)``: each thing's cost in ``frames``
        ``(B, C, H, W)`` at ``guess`` ``(B*K, 2)`` (whole pixels, down and right) plus every
        offset of the square of side ``2 radius + 1`` around it, by row then column."""
        reach = torch.arange(self.side + 2 * radius, device=guess.device) - radius
        seen, inside = take(
            frames.float(),
            self.thing,
            self.rows[:, :1] + guess[:, :1] + reach,
            self.cols[:, :1] + guess[:, 1:] + reach,
        )
        seen = torch.where(inside[:, None], seen, self.background[self.thing, :, None, None])
        seen = seen.double()
        region = torch.cat([seen, seen.pow(2)], 1).reshape(1, -1, *seen.shape[-2:])
        cost = F.conv2d(region, self.kernel, groups=self.things)[0]
        return cost + self.constant[:, None, None]


def track(template: Tensor, masks: Tensor, frames: Tensor, velocity: Tensor, radius: int) -> Tensor:
    """Each thing's whole-pixel offset ``(B, K, T, 2)`` (down, right) in each of ``frames``
    ``(B, T, C, H, W)`` from where its mask ``(B, K, H, W)`` lies in ``template``
    ``(B, C, H, W)``.

    At each frame the thing's pixels are matched (:class:`Matcher`) at every offset within
    ``radius`` of the prediction, its last offset plus its last step's velocity (``velocity``
    ``(B, K, 2)`` pixels a step at the first frame); of equal matches the one nearest the
    prediction wins.
    """
    b, k = masks.shape[:2]
    matcher = Matcher(template, masks)
    deltas = search_offsets(radius, masks.device)
    order = (deltas[:, 0] + radius) * (2 * radius + 1) + deltas[:, 1] + radius  # row-major
    offset = torch.zeros(b * k, 2, dtype=torch.long, device=masks.device)
    step = velocity.float().round().long().reshape(b * k, 2)
    out = []
    for t in range(frames.shape[1]):
        guess = offset + step
        cost = matcher.costs(frames[:, t], guess, radius).flatten(1)[:, order]
        best = (cost <= cost.amin(1, keepdim=True) + TIE).byte().argmax(1)  # the nearest
        found = guess + deltas[best]
        step, offset = found - offset, found
        out.append(offset)
    return torch.stack(out, 1).view(b, k, -1, 2).float()


SPEED_STEP = 0.125
"""Spacing of the velocities :func:`context_offsets` tries, pixels a step per axis."""
PHASES = (-0.375, -0.125, 0.125, 0.375)
"""Sub-pixel places in the last frame :func:`context_offsets` tries: with the velocities, they
give every whole-pixel path a constant velocity can take."""
PATHS_AT_ONCE = 4096
"""Paths :func:`context_offsets` scores at once (memory: things x paths x frames)."""


def context_offsets(context: Tensor, masks: Tensor, max_speed: float) -> Tensor:
    """Each thing's whole-pixel offset ``(B, K, S, 2)`` in each frame of ``context``
    ``(B, S, C, H, W)`` from where its mask ``(B, K, H, W)`` lies in the last one (0 there).

    One path for all the frames: of the paths at a constant velocity (up to ``max_speed`` a
    step per axis, :data:`SPEED_STEP` apart, from each of :data:`PHASES`) bounced off the
    frame's borders, the one along which the thing's pixels match best (:class:`Matcher`),
    summed over the earlier frames; of equal ones the slowest. A frame where the thing is
    covered or touches another cannot pull its offsets off the path, as frame-by-frame
    tracking let it (a jump there read as a speed beyond ``max_speed``).
    """
    b, k, h, w = masks.shape
    s, device = context.shape[1], context.device
    zero = torch.zeros(b, k, 1, 2, device=device)
    if s < 2:
        return zero
    radius = math.ceil(max_speed * (s - 1))
    matcher = Matcher(context[:, -1], masks)
    guess = torch.zeros(b * k, 2, dtype=torch.long, device=device)
    costs = []
    for t in range(s - 1):  # a frame n steps back is searched within n * max_speed
        near = math.ceil(max_speed * (s - 1 - t))
        cost = matcher.costs(context[:, t], guess, near)
        costs.append(F.pad(cost, (radius - near,) * 4, value=math.inf))
    side = 2 * radius + 1
    costs = torch.stack(costs, 1).flatten(2)  # (B*K, S-1, side * side)
    speeds = torch.arange(-max_speed, max_speed + SPEED_STEP / 2, SPEED_STEP, device=device)
    velocity, phase = torch.cartesian_prod(speeds, torch.tensor(PHASES, device=device)).unbind(1)
    before = torch.arange(s - 1, 0, -1, device=device).float()  # steps back from the last frame
    free = (phase[:, None] - velocity[:, None] * before).round()  # (M, S-1) whole pixels
    paths, which = free.unique(dim=0, return_inverse=True)  # (U, S-1): each once
    speed = torch.full((len(paths),), math.inf, device=device)
    speed = speed.scatter_reduce(0, which, velocity.abs(), "amin")  # the slowest giving it
    box = boxes(masks).view(b * k, 4).float()
    low, high = -box[:, :2], torch.tensor([h, w], device=device) - box[:, 2:]
    axis = [  # walls are whole pixels: a rounded flight bounced is the bounced one rounded
        fold(paths, low[:, a, None, None], high[:, a, None, None])[0].round().long() + radius
        for a in range(2)
    ]  # per axis (B*K, U, S-1): the paths' offsets, from 0 to side - 1
    axis = [a.clamp(0, side - 1) for a in axis]
    every_path = torch.arange(len(paths), device=device)
    pairs = torch.cartesian_prod(every_path, every_path)
    pairs = pairs[(speed[pairs[:, 0]].pow(2) + speed[pairs[:, 1]].pow(2)).argsort(stable=True)]
    totals = []
    for chunk in pairs.split(PATHS_AT_ONCE):
        cells = axis[0][:, chunk[:, 0]] * side + axis[1][:, chunk[:, 1]]  # (B*K, P, S-1)
        totals.append(costs.gather(2, cells.transpose(1, 2)).sum(1))  # (B*K, P)
    total = torch.cat(totals, 1)
    best = pairs[(total <= total.amin(1, keepdim=True) + TIE).byte().argmax(1)]  # the slowest
    every = torch.arange(b * k, device=device)
    path = torch.stack([axis[0][every, best[:, 0]], axis[1][every, best[:, 1]]], -1) - radius
    return torch.cat([path.view(b, k, s - 1, 2).float(), zero], 2)


NEAR = 2
"""How far (pixels) from a thing's whole-pixel place :func:`centres` looks for its pixels."""
AREA_CHANGE = 0.2
"""A thing seen with its area changed by more than this fraction (of the pixels no other thing
covers) is partly hidden or out of the frame: its centre there is not trusted."""
VISIBLE = 0.5
"""The least fraction of a thing's mask that other things may leave to compare, for its centre
to be trusted."""


def colours(template: Tensor, masks: Tensor) -> Tensor:
    """Each thing's mean colour ``(B, K, C)`` over its mask ``(B, K, H, W)`` in ``template``
    ``(B, C, H, W)`` (0 for an empty one)."""
    weight = masks.float()
    area = weight.sum((-2, -1)).clamp(min=1)[..., None]
    return torch.einsum("bkhw,bchw->bkc", weight, template.float()) / area


def seen_pixels(
    template: Tensor, masks: Tensor, frames: Tensor, offsets: Tensor, threshold: float = THRESHOLD
) -> Tensor:
    """Boolean ``(B, K, T, H, W)``: each thing's pixels in each of ``frames``
    ``(B, T, C, H, W)``: those of its colour (its mean over its mask ``(B, K, H, W)`` in
    ``template`` ``(B, C, H, W)``, within ``threshold`` in every channel) within ``NEAR``
    pixels of its mask moved by its whole-pixel ``offsets`` ``(B, K, T, 2)``."""
    b, k, h, w = masks.shape
    t = frames.shape[1]
    colour = colours(template, masks)
    moved = shift(masks[:, :, None].expand(b, k, t, h, w), offsets).float()
    near = F.max_pool2d(moved.view(-1, 1, h, w), 2 * NEAR + 1, 1, NEAR).view(b, k, t, h, w) > 0
    alike = (frames.float()[:, None] - colour[:, :, None, :, None, None]).abs().amax(3) <= threshold
    return near & alike


def centres(
    last: Tensor, masks: Tensor, frames: Tensor, offsets: Tensor, seen: Tensor
) -> tuple[Tensor, Tensor]:
    """Each thing's sub-pixel centre ``(B, K, T, 2)`` in each of ``frames`` ``(B, T, C, H, W)``,
    relative to its centre where its mask ``(B, K, H, W)`` lies in ``last`` ``(B, C, H, W)``,
    and whether it is trusted ``(B, K, T)``.

    The centre is the mean position of the thing's pixels ``seen`` there (``(B, K, T, H, W)``,
    :func:`seen_pixels`) against that of its mask moved by its whole-pixel ``offsets``
    ``(B, K, T, 2)``, both over the same pixels: those where no other thing lies, in that
    frame or (moved along) in ``last``. A thing drawn with hard edges from a sub-pixel
    position has its drawn pixels' centre within a fraction of a pixel of its true one, so a
    line through a few centres gives its speed far better than whole-pixel offsets; leaving
    out on both sides what another covers keeps a partly covered thing's centre where the
    thing is, not where its uncovered part is. Not trusted where less than ``VISIBLE`` of its
    mask is left or its pixels there differ in number from its mask's by more than
    ``AREA_CHANGE`` (covered by the background's colour, leaving).
    """
    b, k, h, w = masks.shape
    t = frames.shape[1]
    flat = frames.flatten(0, 1).float()
    others = foreground(flat, background_colour(flat)).view(b, 1, t, h, w) & ~seen
    last = last.float()
    in_last = foreground(last, background_colour(last))[:, None] & ~masks  # (B, K, H, W)
    blocked = others | shift(in_last[:, :, None].expand(b, k, t, h, w), offsets)
    mine = (seen & ~blocked).float()
    mask = (shift(masks[:, :, None].expand(b, k, t, h, w), offsets) & ~blocked).float()
    rows = torch.arange(h, device=masks.device, dtype=torch.float32)
    cols = torch.arange(w, device=masks.device, dtype=torch.float32)

    def centre(pixels: Tensor, total: Tensor) -> Tensor:
        y = (pixels.sum(-1) * rows).sum(-1) / total.clamp(min=1)
        x = (pixels.sum(-2) * cols).sum(-1) / total.clamp(min=1)
        return torch.stack([y, x], -1)

    count, compared = mine.sum((-2, -1)), mask.sum((-2, -1))
    relative = centre(mine, count) - centre(mask, compared) + offsets
    area = masks.flatten(-2).sum(-1)[..., None].float()  # (B, K, 1)
    trusted = (count - compared).abs() <= AREA_CHANGE * compared
    return relative, trusted & (compared >= VISIBLE * area) & (area > 0)


def unhide(frames: Tensor, masks: Tensor, offsets: Tensor, seen: Tensor) -> Tensor:
    """Each thing's whole mask ``(B, K, H, W)`` in the last of ``frames`` ``(B, T, C, H, W)``,
    where ``masks`` is what shows of it there: where another thing covers more than
    ``AREA_CHANGE`` of it, its one-colour piece (:func:`one_colour_pieces`; the one holding
    its pixels ``seen`` ``(B, K, T, H, W)`` near its whole-pixel ``offsets`` ``(B, K, T, 2)``,
    :func:`seen_pixels` of ``frames``) in the context frame that shows the most of it (the
    latest of equals), put where it covers what shows of it and no background (of the places
    within ``NEAR`` of its offset there, the nearest best; a template that shows part of a
    thing tracks it to a pixel or two)."""
    b, k, h, w = masks.shape
    t = frames.shape[1]
    flat = frames.flatten(0, 1).float()
    labels = one_colour_pieces(flat, foreground(flat, background_colour(flat)))
    labels = labels.view(b, 1, t, h, w)
    label = (labels * seen).flatten(-2).amax(-1)[..., None, None]  # one of its pieces
    pieces = (labels == label) & (label > 0)
    count = pieces.flatten(-2).sum(-1)  # (B, K, T)
    best = t - 1 - count.flip(2).argmax(2)  # (B, K): the latest of the largest
    piece = pieces.gather(2, best[:, :, None, None, None].expand(b, k, 1, h, w))[:, :, 0]
    back = -offsets.gather(2, best[:, :, None, None].expand(b, k, 1, 2))[:, :, 0]
    last = frames[:, -1].float()
    empty = ~foreground(last, background_colour(last))[:, None]  # (B, 1, H, W)
    places = back[:, :, None] + search_offsets(NEAR, masks.device)  # (B, K, D, 2), nearest first
    d = places.shape[2]
    moved = shift(piece[:, :, None].expand(b, k, d, h, w), places)
    wrong = (masks[:, :, None] & ~moved) | (moved & empty[:, :, None])
    place = wrong.flatten(-2).sum(-1).argmin(2)  # the first of the best: the nearest
    placed = moved.gather(2, place[:, :, None, None, None].expand(b, k, 1, h, w))[:, :, 0]
    hidden = count.amax(2) > (1 + AREA_CHANGE) * masks.flatten(-2).sum(-1)
    return torch.where(hidden[..., None, None], placed, masks)


def paste(last: Tensor, masks: Tensor, offsets: Tensor, whole: Tensor | None = None) -> Tensor:
    """Frames ``(B, T, C, H, W)``: ``last`` ``(B, C, H, W)`` with the things' pixels (``masks``
    ``(B, K, H, W)``) lifted off (filled with the background colour) and put down at each
    step's whole-pixel offset ``offsets`` ``(B, K, T, 2)``; later things cover earlier ones.
    Where ``whole`` (same shape as ``masks``, default ``masks``) adds pixels another thing
    covers in ``last`` (:func:`unhide`), they take the thing's mean colour."""
    b, k, t, _ = offsets.shape
    c, h, w = last.shape[1:]
    last = last.float()
    whole = masks if whole is None else whole
    empty = torch.where(masks.any(1)[:, None], background_colour(last), last)
    out = empty[:, None].repeat(1, t, 1, 1, 1)
    where = shift(whole[:, :, None].expand(b, k, t, h, w), offsets)
    colour = colours(last, masks)[..., None, None]  # (B, K, C, 1, 1)
    pixels = torch.where(masks[:, :, None], last[:, None], colour) * whole[:, :, None]
    pixels = pixels[:, :, None].expand(b, k, t, c, h, w)
    moved = shift(pixels, offsets[:, :, :, None].expand(b, k, t, c, 2))
    for thing in range(k):
        out = torch.where(where[:, thing, :, None], moved[:, thing], out)
    return out
