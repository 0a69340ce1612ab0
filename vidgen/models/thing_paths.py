"""Paths of things along each axis: steady sub-pixel paths through what was seen, bounces off
walls, runs in one direction and lines through positions.

Functions of ``(B, K, T, 2)`` positions (K things, T steps, down and right), batched, per
axis: :func:`follow` reads the steadiest sub-pixel path off seen positions (whole-pixel
offsets or sub-pixel centres), :func:`fold` bounces a free flight between two walls and
:func:`unfold` inverts it, :func:`one_run` and :func:`first_run` find the steps before a turn,
and :func:`line_fit` fits a line through positions: a thing's speed.
"""

from __future__ import annotations

import torch
from torch import Tensor

MARGIN = 0.25
"""How far inside a tracked pixel :func:`follow` moves a position that would round to another:
a position on a pixel's edge would need another change a step later."""


def fold(positions: Tensor, low: Tensor, high: Tensor) -> tuple[Tensor, Tensor]:
    """``positions`` bounced between ``low`` and ``high`` per axis (a ball between two walls:
    a free flight past a wall comes back mirrored), and each one's direction, 1 or -1: the
    sign a positive velocity has there. All broadcast to one shape."""
    span = (high - low).clamp(min=1e-6)
    lap = torch.remainder(positions - low, 2 * span)
    back = lap > span
    return low + torch.where(back, 2 * span - lap, lap), 1 - 2 * back.to(positions.dtype)


def unfold(targets: Tensor, guess: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """The free-flight position nearest ``guess`` that :func:`fold` bounces to ``targets``
    (between ``low`` and ``high``), per axis."""
    period = 2 * (high - low).clamp(min=1e-6)
    ahead = targets + torch.round((guess - targets) / period) * period
    mirrored = 2 * low - targets
    mirrored = mirrored + torch.round((guess - mirrored) / period) * period
    return torch.where((ahead - guess).abs() <= (mirrored - guess).abs(), ahead, mirrored)


def follow(
    offsets: Tensor,
    position: Tensor,
    velocity: Tensor,
    margin: float = MARGIN,
    walls: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Sub-pixel positions and velocities ``(B, K, N, 2)`` that round to the (whole-pixel or
    sub-pixel) ``offsets`` ``(B, K, N, 2)`` and change velocity as rarely and as little as
    they can.

    From ``position`` and ``velocity`` ``(B, K, 2)``, each step goes on at the last velocity;
    where that would round to another pixel than the tracked one, the position moves just far
    enough into it (``margin`` inside its edge), and the velocity with it. A speed between
    whole pixels (whole-pixel steps 1, 2, 1, 2) becomes a steady 1.5 after a correction or
    two. Without ``walls`` a bounce is one large change; with ``walls`` ``(low, high)``
    ``(B, K, 2)`` the path is a free flight whose :func:`fold` between them rounds to the
    offsets, and a bounce off them needs no change at all. Where an offset is NaN (not seen)
    the path goes on unchanged.
    """
    positions, velocities = [], []
    for t in range(offsets.shape[2]):
        guess = position + velocity
        target = offsets[:, :, t] if walls is None else unfold(offsets[:, :, t], guess, *walls)
        moved = torch.minimum(torch.maximum(guess, target - 0.5 + margin), target + 0.5 - margin)
        moved = torch.where(target.isnan(), guess, moved)
        velocity, position = moved - position, moved
        positions.append(position)
        velocities.append(velocity)
    return torch.stack(velocities, 2), torch.stack(positions, 2)


def first_run(steps: Tensor) -> Tensor:
    """``(B, K, T, 2)``, per axis: 1 on the first run of ``steps`` ``(B, K, T, 2)`` in one
    direction (zero steps included), 0 from its first change of direction on."""
    moved = (steps != 0).float().argmax(2, keepdim=True)  # the first step that moved
    direction = steps.gather(2, moved).sign()
    return (steps * direction >= 0).float().cumprod(2)


def first_run_velocity(offsets: Tensor) -> Tensor:
    """Each thing's velocity ``(B, K, 2)`` over ``offsets`` ``(B, K, T, 2)`` (from 0 before the
    first; whole-pixel or sub-pixel) until its first change of direction, per axis: the mean
    step of that run, the speed it kept after its last known position better than any one step
    shows."""
    steps = offsets.diff(dim=2, prepend=torch.zeros_like(offsets[:, :, :1]))
    run = first_run(steps)
    return (steps * run).sum(2) / run.sum(2)


def one_run(offsets: Tensor) -> Tensor:
    """``(B, K, T, 2)``, per axis: whether each of the whole-pixel ``offsets`` ``(B, K, T, 2)``
    lies on the first run of steps in one direction (the first offset always; a run that a
    change of direction ends loses its last offset too, which may lie past the turn)."""
    run = first_run(offsets.diff(dim=2))  # the first step is always on it
    return torch.cat([run, run[:, :, -1:]], 2)  # an offset is on it if the step from it is


def line_fit(positions: Tensor, weights: Tensor, at: int) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares line through ``positions`` ``(B, K, T, 2)`` per axis, over time steps
    0..T-1 weighted by ``weights`` (same shape): its slope, its value at step ``at``, and
    whether two or more steps carried weight (else both are 0)."""
    time = torch.arange(positions.shape[2], device=positions.device, dtype=torch.float32)
    time = time[:, None]
    total = weights.sum(2)
    mean_t = (weights * time).sum(2) / total.clamp(min=1e-9)
    mean_p = (weights * positions).sum(2) / total.clamp(min=1e-9)
    spread = (weights * (time - mean_t[:, :, None]).pow(2)).sum(2)
    fitted = spread > 1e-6
    slope = (weights * (time - mean_t[:, :, None]) * (positions - mean_p[:, :, None])).sum(2)
    slope = torch.where(fitted, slope / spread.clamp(min=1e-9), torch.zeros_like(slope))
    value = torch.where(fitted, mean_p + slope * (at - mean_t), torch.zeros_like(slope))
    return slope, value, fitted


FIT_SPEED_STEP = 0.02
"""Spacing of the velocities :func:`bounced_line_fit` tries, pixels a step."""
FIT_PHASE_STEP = 0.05
"""Spacing of the last positions it tries, pixels (within :data:`FIT_PHASE_REACH` of 0)."""
FIT_PHASE_REACH = 0.75
FIT_WALL_SLACK = (0.0, -0.25, 0.25, -0.5, 0.5)
"""How far (pixels) :func:`bounced_line_fit` tries both walls inside the given ones (outside
where negative): a thing drawn with hard edges shows its edges up to half a
pixel from where they are (a triangle's tip more), and where it meets a wall is its true
edge, not its drawn one."""
FIT_SLACK_COST = 0.05
"""What a pixel of slack adds to a fit's squared error (pixels squared): the walls move only
where that fits the positions clearly better."""


def bounced_line_fit(
    positions: Tensor, weights: Tensor, low: Tensor, high: Tensor, max_speed: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The free flight bounced between ``low`` and ``high`` (``(B, K, 2)``, per axis, each
    moved inside by a slack of :data:`FIT_WALL_SLACK`) nearest ``positions`` ``(B, K, T, 2)``
    (least squares, ``weights`` the same shape) whose last position is near 0: its velocity
    at the last step (the bounced direction), its position there, whether two or more steps
    carried weight (else both are 0) and the slack ``(B, K, 2)`` (walls ``low + slack`` and
    ``high - slack``). A line through positions on both sides of a bounce is no line: this
    fits the bounce too, so a thing that turned within the context keeps all its positions.
    Searched on a grid of :data:`FIT_SPEED_STEP` (speeds up to ``max_speed``) by
    :data:`FIT_PHASE_STEP`, each slack adding :data:`FIT_SLACK_COST` per pixel; of equal fits
    the slowest."""
    device, t = positions.device, positions.shape[2]
    speeds = torch.arange(-max_speed, max_speed + FIT_SPEED_STEP / 2, FIT_SPEED_STEP, device=device)
    reach = FIT_PHASE_REACH + FIT_PHASE_STEP / 2
    phases = torch.arange(-FIT_PHASE_REACH, reach, FIT_PHASE_STEP, device=device)
    velocity, phase = torch.cartesian_prod(speeds, phases).unbind(1)  # (M,)
    back = torch.arange(t - 1, -1, -1, device=device).float()  # steps before the last
    free = phase[:, None] - velocity[:, None] * back  # (M, T)
    weights = weights.float()
    slacks = torch.tensor(FIT_WALL_SLACK, device=device)
    best = []
    for axis in range(2):
        errors = []
        for slack in FIT_WALL_SLACK:
            walls = low[..., axis, None, None] + slack, high[..., axis, None, None] - slack
            path, _ = fold(free, *walls)  # (B, K, M, T)
            miss = (path - positions[..., None, :, axis]).pow(2) * weights[..., None, :, axis]
            cost = FIT_SLACK_COST * abs(slack) + 1e-9 * velocity.pow(2)
            errors.append(miss.sum(-1) + cost)  # (B, K, M)
        best.append(torch.cat(errors, -1).argmin(-1))  # (B, K): the first of equals
    best = torch.stack(best, -1)  # (B, K, 2): slack index * M + path
    slack = slacks[best // len(velocity)]
    best = best % len(velocity)
    fitted = (weights > 0).sum(2) >= 2
    zero = torch.zeros_like(velocity[best])
    end, direction = fold(phase[best], low + slack, high - slack)
    slope = torch.where(fitted, velocity[best] * direction, zero)
    return slope, torch.where(fitted, end, zero), fitted, torch.where(fitted, slack, zero)
