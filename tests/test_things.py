"""Things over a flat background: segmentation into one-colour pieces, whole-pixel shifts,
template tracking through a bounce, pasting that keeps things whole, the steadiest
sub-pixel path through whole-pixel offsets (bounced off walls, through unseen frames),
sub-pixel centres and the lines through them, things completed where another covers them."""

from __future__ import annotations

import torch

from vidgen.models import thing_paths
from vidgen.models.thing_paths import (
    MARGIN,
    bounced_line_fit,
    fold,
    follow,
    line_fit,
    one_run,
    unfold,
)
from vidgen.models.things import (
    centres,
    context_offsets,
    paste,
    seen_pixels,
    shift,
    thing_masks,
    track,
    unhide,
)

S = 32
RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.2, 0.4, 1.0)


def scene(*things: tuple[tuple[float, float, float], int, int, int]) -> torch.Tensor:
    """A black ``(3, S, S)`` frame with squares ``(colour, top, left, side)``, later on top."""
    frame = torch.zeros(3, S, S)
    for colour, top, left, side in things:
        frame[:, top : top + side, left : left + side] = torch.tensor(colour)[:, None, None]
    return frame


def test_touching_things_of_different_colours_are_two_and_specks_are_none():
    frame = scene((RED, 4, 4, 6), (GREEN, 4, 10, 5), (BLUE, 20, 20, 1), (BLUE, 20, 21, 1))
    masks = thing_masks(frame[None], slots=3, min_area=4)
    assert masks.shape == (1, 3, S, S)
    red, green = torch.zeros(S, S, dtype=torch.bool), torch.zeros(S, S, dtype=torch.bool)
    red[4:10, 4:10], green[4:9, 10:15] = True, True
    assert torch.equal(masks[0, 0], red)  # the larger first
    assert torch.equal(masks[0, 1], green)  # touching the red one, yet a thing of its own
    assert not masks[0, 2].any()  # the blue speck (2 pixels) is no thing
    # one colour across the two squares: one thing
    same = thing_masks(scene((RED, 4, 4, 6), (RED, 4, 10, 5))[None], 3, 4)
    assert same[0, 0].sum() == 61 and not same[0, 1:].any()


def test_shift_moves_by_whole_pixels_without_wrapping():
    mask = torch.zeros(2, S, S, dtype=torch.bool)
    mask[:, 10:14, 28:32] = True  # touching the right border
    moved = shift(mask, torch.tensor([[2.0, -3.0], [0.6, 2.4]]))  # rounded: (2, -3), (1, 2)
    want = torch.zeros_like(mask)
    want[0, 12:16, 25:29] = True
    want[1, 11:15, 30:32] = True  # half of it left the frame: nothing comes in at the left
    assert torch.equal(moved, want)
    image = torch.rand(3, S, S)
    back = shift(shift(image, torch.tensor([[-4, 5]] * 3)), torch.tensor([[4, -5]] * 3))
    assert torch.equal(back[:, 4:, : S - 5], image[:, 4:, : S - 5])  # exact, no resampling
    assert not back[:, :4].any() and not back[:, :, S - 5 :].any()


def test_track_follows_a_bounce_and_each_thing():
    xs = [16, 18, 20, 22, 24, 26, 24, 22, 20]  # red bounces off the right border (26 + 6 = S)
    ys = [2, 3, 4, 5, 6, 7, 8, 9, 10]  # green moves down 1 px a step
    frames = torch.stack(
        [scene((RED, 4, x, 6), (GREEN, y, 2, 5)) for x, y in zip(xs, ys, strict=True)]
    )
    masks = thing_masks(frames[None, 0], 2, 4)
    velocity = torch.tensor([[[0.0, 2.0], [1.0, 0.0]]])
    offsets = track(frames[None, 0], masks, frames[None, 1:], velocity, radius=8)
    red = torch.tensor([[0.0, x - xs[0]] for x in xs[1:]])
    green = torch.tensor([[y - ys[0], 0.0] for y in ys[1:]])
    assert torch.equal(offsets[0, 0], red) and torch.equal(offsets[0, 1], green)


def test_paste_keeps_each_things_pixels_and_colours_exactly():
    last = scene((RED, 4, 4, 6), (GREEN, 20, 18, 5))
    masks = thing_masks(last[None], 3, 4)
    offsets = torch.tensor([[[[1, 2], [3, 4], [-4, 0]], [[0, -1], [-5, 7], [2, -9]], [[0, 0]] * 3]])
    frames = paste(last[None], masks, offsets.float())[0]  # (3 steps, C, H, W)
    assert frames.shape == (3, 3, S, S)
    for t in range(3):
        for colour, count, thing in ((RED, 36, 0), (GREEN, 25, 1)):
            where = (frames[t] == torch.tensor(colour)[:, None, None]).all(0)
            assert where.sum() == count  # the whole thing, not a pixel more
            dy, dx = offsets[0, thing, t].tolist()
            assert torch.equal(where, shift(masks[0, thing], torch.tensor([dy, dx])))
        assert frames[t].sum() == 36 + 25  # the rest is background (black)


def velocity(clip: torch.Tensor, slots: int = 1) -> torch.Tensor:
    """Each thing's velocity ``(slots, 2)`` at the last frame of ``clip`` ``(1, S, ...)``: of
    its steadiest path through the clip."""
    offsets = context_offsets(clip, thing_masks(clip[:, -1], slots, 4), 4.0)
    start = offsets[:, :, 1] - offsets[:, :, 0]
    return follow(offsets[:, :, 1:], offsets[:, :, 0], start)[0][0, :, -1]


def test_context_offsets_and_velocities_of_a_steady_clip_and_after_a_bounce():
    steady = torch.stack([scene((RED, 10 + 2 * t, 20 - t, 6)) for t in range(4)])[None]
    masks = thing_masks(steady[:, -1], 2, 4)
    offsets = context_offsets(steady, masks, 4.0)[0, 0]
    assert torch.equal(offsets, torch.tensor([[-6.0, 3.0], [-4.0, 2.0], [-2.0, 1.0], [0.0, 0.0]]))
    assert torch.equal(velocity(steady, 2), torch.tensor([[2.0, -1.0], [0.0, 0.0]]))  # 1 empty
    uneven = torch.stack([scene((RED, 10, x, 6)) for x in (4, 5, 7, 8)])[None]  # 1.33-1.5 a step
    assert velocity(uneven)[0, 0] == 0 and 1.25 <= velocity(uneven)[0, 1] <= 1.75
    bounced = torch.stack([scene((RED, 10, x, 6)) for x in (22, 24, 26, 24)])[None]  # wall: 26
    offsets = context_offsets(bounced, thing_masks(bounced[:, -1], 1, 4), 4.0)[0, 0]
    assert torch.equal(offsets[:, 1], torch.tensor([-2.0, 0.0, 2.0, 0.0]))


def test_a_frame_where_a_thing_is_covered_does_not_pull_its_context_path():
    """Tracked frame by frame, the covered frame's best match (some black patch) set the next
    guess and the thing was lost; one constant-velocity path through all frames keeps it."""
    frames = [scene((RED, 10, x, 6)) for x in (4, 7, 10, 13)]
    frames[2] = scene((RED, 10, 10, 6), (GREEN, 8, 8, 10))  # hidden under a green square
    offsets = context_offsets(torch.stack(frames)[None], thing_masks(frames[-1][None], 1, 4), 4.0)
    assert torch.equal(offsets[0, 0, :, 1], torch.tensor([-9.0, -6.0, -3.0, 0.0]))
    assert not offsets[0, 0, :, 0].any()


def path(xs: list[float], start: float, speed: float) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`follow` along x through offsets ``xs`` from ``start`` at ``speed``: the
    velocities and positions ``(N,)``."""
    offsets = torch.stack([torch.zeros(len(xs)), torch.tensor(xs)], -1)[None, None]
    velocities, positions = follow(
        offsets, torch.tensor([[[0.0, start]]]), torch.tensor([[[0.0, speed]]])
    )
    assert not velocities[..., 0].any() and not positions[..., 0].any()  # nothing moves in y
    return velocities[0, 0, :, 1], positions[0, 0, :, 1]


def test_follow_rounds_to_the_offsets_and_changes_velocity_rarely():
    xs = [2.0, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]  # 1.5 px a step, seen as 1, 2, 1, 2, ...
    velocities, positions = path(xs, 0.0, 1.0)  # starting from a guess of 1 px a step
    assert torch.equal(positions.round(), torch.tensor(xs))
    changes = torch.cat([velocities[:1] - 1.0, velocities.diff()])
    assert (changes != 0).sum() <= 3  # whole-pixel steps would change at every step
    assert torch.allclose(velocities[-4:], torch.full((4,), 1.5), atol=0.3)
    steady, _ = path([2.0, 4, 6, 8], 0.1, 2.0)  # on course: no change at all
    assert torch.allclose(steady, torch.full((4,), 2.0))
    xs = [2.0, 4, 6, 8, 6, 4, 2]  # a bounce at 8: one large change
    velocities, positions = path(xs, 0.0, 2.0)
    assert torch.equal(positions.round(), torch.tensor(xs))
    assert (velocities[:4] == 2).all() and (velocities[4:] < -1.5).all()
    assert ((positions - positions.round()).abs() <= 0.5 - MARGIN + 1e-6).all()


def disc(colour: tuple[float, float, float], y: float, x: float, radius: float) -> torch.Tensor:
    """A black ``(3, S, S)`` frame with a hard-edged disc centred at sub-pixel ``(y, x)``."""
    rows, cols = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    inside = (rows - y).pow(2) + (cols - x).pow(2) <= radius**2
    return inside * torch.tensor(colour)[:, None, None]


def test_centres_of_hard_edges_give_a_sub_pixel_speed_and_distrust_a_covered_thing():
    speed = (0.7, -1.37)  # between whole pixels on both axes
    clip = torch.stack([disc(RED, 9.2 + speed[0] * t, 24.6 + speed[1] * t, 4.3) for t in range(4)])
    clip = clip[None]
    masks = thing_masks(clip[:, -1], 1, 4)
    offsets = context_offsets(clip, masks, 4.0)
    seen = seen_pixels(clip[:, -1], masks, clip, offsets)
    seen, trusted = centres(clip[:, -1], masks, clip, offsets, seen)
    assert trusted.all() and torch.equal(seen[0, 0, -1], torch.zeros(2))
    slope, at_last, fitted = line_fit(seen, torch.ones_like(seen), 3)
    assert fitted.all() and torch.allclose(slope[0, 0], torch.tensor(speed), atol=0.1)
    assert at_last[0, 0].abs().max() < 0.5  # the fitted centre lies near the drawn one
    whole = offsets.diff(dim=2).mean(2)[0, 0]  # what whole-pixel offsets tell
    truth = torch.tensor(speed)
    assert (slope[0, 0] - truth).abs().sum() < (whole - truth).abs().sum()
    covered = clip.clone()
    covered[0, 1, :, :, :22] = 0  # most of the disc hidden in the second frame
    seen = seen_pixels(covered[:, -1], masks, covered, offsets)
    _, trusted = centres(covered[:, -1], masks, covered, offsets, seen)
    assert trusted[0, 0].tolist() == [True, False, True, True]


def test_a_thing_partly_covered_by_another_keeps_its_centre_where_it_is():
    """A disc at 1.3 px a step, a third of it under a green square in the first frame and
    a quarter of it in the last: its centres, compared over what neither covers, lie where
    the disc is and give its speed; those of its uncovered pixels alone lie a pixel or more
    off and give a speed 0.3 px a step off."""
    ys, xs = [6.2 + 1.3 * t for t in range(4)], [9.4 + 1.3 * t for t in range(4)]
    clip = torch.stack([disc(RED, y, x, 4.6) for y, x in zip(ys, xs, strict=True)])
    clip[0, :, 0:16, 0:9] = torch.tensor(GREEN)[:, None, None]  # the disc's left third
    clip[3, :, 10:17, 7:12] = torch.tensor(GREEN)[:, None, None]  # its lower left
    clip = clip[None]
    masks = thing_masks(clip[:, -1], 2, 4)
    masks = masks[:, (masks[0] & (clip[0, -1, 1] == 0)).flatten(1).any(1)]  # the red one
    offsets = context_offsets(clip, masks, 4.0)
    seen = seen_pixels(clip[:, -1], masks, clip, offsets)
    relative, trusted = centres(clip[:, -1], masks, clip, offsets, seen)
    truth = torch.tensor([[ys[t] - ys[-1], xs[t] - xs[-1]] for t in range(4)])
    assert trusted[0, 0].all()
    assert (relative[0, 0] - truth).abs().max() < 0.5
    slope, _, _ = line_fit(relative, torch.ones_like(relative), 3)
    assert (slope[0, 0] - 1.3).abs().max() < 0.15
    shown = seen.float()[0, 0]  # the uncovered pixels' centres alone
    rows, cols = torch.arange(S).float(), torch.arange(S).float()
    naive = (
        torch.stack([(shown.sum(2) * rows).sum(1), (shown.sum(1) * cols).sum(1)], -1)
        / shown.sum((1, 2))[:, None]
    )
    naive = naive - naive[-1]
    assert (naive - truth).abs().max() > 1.0
    slope, _, _ = line_fit(naive[None, None], torch.ones_like(relative), 3)
    assert (slope[0, 0] - 1.3).abs().max() > 0.3


def test_one_run_ends_before_a_turn_and_line_fit_needs_two_steps():
    def run(xs: list[float]) -> list[float]:
        offsets = torch.stack([torch.zeros(len(xs)), torch.tensor(xs)], -1)[None, None]
        flags = one_run(offsets)[0, 0]
        assert flags[:, 0].all()  # no motion in y: one run
        return flags[:, 1].tolist()

    assert run([0.0, 2, 4, 6]) == [1, 1, 1, 1]
    assert run([0.0, 2, 4, 3, 1]) == [1, 1, 0, 0, 0]  # 4 may lie past the turn
    assert run([0.0, 0, -1, -3, -2]) == [1, 1, 1, 0, 0]
    positions = torch.tensor([[0.0, 0.0], [1.0, -2.0], [2.0, -4.0], [9.0, 9.0]])[None, None]
    weights = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])[None, None]
    slope, value, fitted = line_fit(positions, weights, 3)
    assert fitted[0, 0].tolist() == [True, True]
    assert torch.allclose(slope[0, 0], torch.tensor([1.0, -2.0]))
    assert torch.allclose(value[0, 0], torch.tensor([3.0, -6.0]))
    _, _, fitted = line_fit(positions, weights * torch.tensor([1.0, 0.0]), 3)
    assert fitted[0, 0].tolist() == [True, False]


def test_fold_bounces_between_walls_and_unfold_inverts_it():
    low, high = torch.tensor(0.0), torch.tensor(10.0)
    folded, direction = fold(torch.tensor([-1.0, 0.0, 3.0, 11.0, 21.0, 31.0]), low, high)
    assert torch.allclose(folded, torch.tensor([1.0, 0.0, 3.0, 9.0, 1.0, 9.0]))
    assert direction.tolist() == [-1, 1, 1, -1, 1, -1]
    flights = torch.tensor([-3.5, 2.0, 8.0, 12.5, 17.0, 26.0])
    back = unfold(fold(flights, low, high)[0], flights + 0.8, low, high)
    assert torch.allclose(back, flights)


def test_follow_flies_through_bounces_off_walls_and_unseen_frames():
    xs = [2.0, 4, 6, 6, 4, 2, float("nan"), -2]  # 2 px a step, a wall at 7, one frame unseen
    offsets = torch.stack([torch.zeros(len(xs)), torch.tensor(xs)], -1)[None, None]
    walls = (torch.tensor([[[-100.0, -20.0]]]), torch.tensor([[[100.0, 7.0]]]))
    velocities, positions = follow(
        offsets, torch.zeros(1, 1, 2), torch.tensor([[[0.0, 2.0]]]), walls=walls
    )
    assert torch.allclose(velocities[0, 0, :, 1], torch.full((8,), 2.0))  # no change at all
    assert torch.allclose(positions[0, 0, :, 1], torch.arange(2.0, 17.0, 2.0))
    drawn, _ = fold(positions, *(w[:, :, None] for w in walls))
    seen = ~offsets.isnan()
    assert torch.equal(drawn.round()[seen], offsets[seen])


def test_a_covered_thing_is_cut_whole_from_an_earlier_frame_and_pasted_whole():
    red_xs, green_xs = [4, 6, 8, 10], [22, 19, 16, 13]  # green slides over red's right half
    frames = torch.stack(
        [scene((RED, 8, r, 6), (GREEN, 6, g, 8)) for r, g in zip(red_xs, green_xs, strict=True)]
    )[None]
    masks = thing_masks(frames[:, -1], 2, 4)
    assert masks[0].flatten(1).sum(1).tolist() == [64, 18]  # 3 of red's 6 columns show
    offsets = context_offsets(frames, masks, 4.0)
    whole = unhide(frames, masks, offsets, seen_pixels(frames[:, -1], masks, frames, offsets))
    want = torch.zeros(S, S, dtype=torch.bool)
    want[8:14, 10:16] = True
    assert torch.equal(whole[0, 1], want) and torch.equal(whole[0, 0], masks[0, 0])
    moved = paste(frames[:, -1], masks, torch.tensor([[[[0.0, 9.0]], [[0.0, -8.0]]]]), whole)
    is_red = (moved[0, 0] == torch.tensor(RED)[:, None, None]).all(0)
    assert torch.equal(is_red, shift(want, torch.tensor([0, -8])))  # the whole red square


def test_a_bounced_line_fits_positions_on_both_sides_of_a_bounce():
    """Left at 1.3 px a step into a wall 2 px left of the last position, back out at 1.3,
    seen 4 times with 0.1 px of jitter: the fit follows the bounce, ending on its way out."""
    free = torch.tensor([-3.9, -2.6, -1.3, 0.0]) + torch.tensor([0.1, -0.1, 0.05, 0.0])
    low, high = torch.tensor([[[-10.0, -2.0]]]), torch.tensor([[[10.0, 10.0]]])
    seen, _ = fold(free, low[..., 1], high[..., 1])  # about -0.2, -1.3, -1.25, 0
    positions = torch.stack([torch.zeros(4), seen.flatten()], -1)[None, None]  # (1, 1, 4, 2)
    weights = torch.ones_like(positions)
    slope, phase, fitted, slack = bounced_line_fit(positions, weights, low, high, 4.0)
    assert fitted.all() and slope[0, 0, 0].abs() < 0.03 and phase[0, 0, 0].abs() < 0.06
    assert torch.equal(slack, torch.zeros(1, 1, 2))  # the walls given fit: they stay
    assert abs(slope[0, 0, 1] - 1.3) < 0.1 and abs(phase[0, 0, 1]) < 0.1
    plain, _, _ = line_fit(positions, weights, 3)  # a line through both sides: far slower
    assert abs(plain[0, 0, 1]) < 0.6
    weights[..., :3, :] = 0  # one weighted position: no fit
    assert not bounced_line_fit(positions, weights, low, high, 4.0)[2].any()


def test_a_bounced_line_moves_a_wall_the_drawn_box_put_half_a_pixel_off(monkeypatch):
    """Left at 1.5 px a step into a wall 2.5 px left of the last position, where the drawn box
    says 2: the fit moves the wall out by half a pixel and reads the speed; kept at the drawn
    wall, it reads a speed far off."""
    free = torch.tensor([-4.5, -3.0, -1.5, 0.0])
    low, high = torch.tensor([[[-10.0, -2.0]]]), torch.tensor([[[10.0, 10.0]]])
    seen, _ = fold(free, low[..., 1] - 0.5, high[..., 1])  # the true wall at -2.5
    positions = torch.stack([torch.zeros(4), seen.flatten()], -1)[None, None]
    weights = torch.ones_like(positions)
    slope, phase, _, slack = bounced_line_fit(positions, weights, low, high, 4.0)
    assert slack[0, 0].tolist() == [0.0, -0.5]
    assert abs(slope[0, 0, 1] - 1.5) < 0.03 and abs(phase[0, 0, 1]) < 0.06
    monkeypatch.setattr(thing_paths, "FIT_WALL_SLACK", (0.0,))
    drawn, _, _, _ = bounced_line_fit(positions, weights, low, high, 4.0)
    assert abs(drawn[0, 0, 1] - 1.5) > 0.15
