"""Moving pixels: warp, splat, push-pull fill, splat-over, carry and flow composition."""

import pytest
import torch

from vidgen.models.motion_transport import (
    carry,
    compose_flows,
    inside_frame,
    push_pull,
    splat,
    splat_onto,
    splat_over,
    warp,
)


def test_warp_moves_pixels_by_the_flow():

    frames = torch.zeros(1, 3, 8, 8)
    frames[:, :, 3, 2] = 1.0
    still = warp(frames, torch.zeros(1, 2, 8, 8))
    assert torch.allclose(still, frames, atol=1e-6)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # two pixels to the right
    flow[:, 1] = 1.0  # one pixel down
    moved = warp(frames, flow)
    assert moved[0, 0, 4, 4] == pytest.approx(1.0) and moved.sum() == pytest.approx(3.0)


def test_inside_frame_says_which_pixels_come_from_the_frame():
    still = inside_frame(torch.zeros(2, 4, 2, 6, 6))
    assert still.shape == (2, 4, 1, 6, 6) and still.all()
    flow = torch.zeros(1, 2, 6, 6)
    flow[:, 0] = 2.0  # two pixels to the right: the first two columns come from outside
    flow[:, 1] = -0.5  # half a pixel up: the last row from half a pixel past the border
    inside = inside_frame(flow)[0, 0]
    assert not inside[:, :2].any() and not inside[5].any() and inside[:5, 2:].all()


def test_carried_velocity_moves_with_what_moves():

    assert torch.equal(carry(torch.zeros(2, 2, 5, 5)), torch.zeros(2, 2, 5, 5))  # still: still
    block = torch.zeros(1, 2, 6, 6)
    block[0, 0, 1:3, 1:3] = 0.5  # a 2 x 2 region moving half a cell a step right
    moved = carry(block)
    # it covers columns 1-3 a step later (column 3 half-way: it is in front of the still cells)
    assert moved[0, 0, 1:3, 1:4].min() > 0.45 and moved[0, 0, 1:3, 4:].abs().max() == 0
    assert moved[0, 1].abs().max() == 0 and moved[0, 0, 3:].abs().max() == 0
    twice = carry(carry(block))
    assert twice[0, 0, 1:3, 4].min() > 0.45  # ... and further on the next step
    uniform = torch.full((1, 2, 4, 4), -1.0)  # a pan: every cell one cell up-left a step
    assert torch.allclose(carry(uniform)[..., :3, :3], uniform[..., :3, :3])


def test_splat_sends_pixels_forward():

    frames = torch.rand(2, 3, 6, 6)
    ones = torch.ones(2, 1, 6, 6)
    sums, mass = splat(frames, torch.zeros(2, 2, 6, 6), 2 * ones)
    assert torch.equal(sums / mass, frames) and torch.equal(mass, 2 * ones)  # still: exact
    flow = torch.zeros(2, 2, 6, 6)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # 2 px right, 1 up
    sums, mass = splat(frames, flow, ones)
    assert torch.equal(sums[:, :, :5, 2:], frames[:, :, 1:, :4])
    assert mass[:, :, :5, :2].abs().max() == 0 and mass[:, :, 5].abs().max() == 0  # nothing came
    half = torch.zeros(1, 2, 6, 6, requires_grad=True)
    dot = torch.zeros(1, 1, 6, 6)
    dot[0, 0, 2, 2] = 1.0
    sums, mass = splat(dot, half + torch.tensor([0.5, 0.0])[:, None, None], ones[:1])
    assert sums[0, 0, 2, 2:4].tolist() == [0.5, 0.5]  # shared between the two pixels
    sums[0, 0, 2, 3].backward()
    assert half.grad[0, 0, 2, 2] == 1.0  # moving it further right sends it more of the dot
    a, b = torch.zeros(1, 1, 1, 3), torch.zeros(1, 2, 1, 3)
    a[..., 0], b[..., 0, :, 0] = 1.0, 1.0  # pixel 0 (value 1) lands on pixel 1 (value 0) ...
    weight = torch.tensor([3.0, 1.0, 1.0]).view(1, 1, 1, 3)  # ... weighing 3 to its 1
    sums, mass = splat(a, b, weight)
    assert (sums / mass)[0, 0, 0, 1].item() == pytest.approx(0.75)


def test_push_pull_fills_holes_with_the_colours_around_them():

    image = torch.rand(2, 3, 7, 5)  # odd sizes: the pyramid halves them rounding up
    colour, found = push_pull(image, torch.ones(2, 1, 7, 5))
    assert torch.equal(colour, image) and found.all()  # fully covered: unchanged
    halves = torch.zeros(1, 1, 8, 8)
    halves[..., 4:] = 1.0  # a dark left half, a bright right half
    mass = torch.ones(1, 1, 8, 8)
    mass[..., 2:6, 2:6] = 0.0  # a hole across the middle
    colour, _ = push_pull(halves * mass, mass)
    assert torch.equal(colour[..., :2], halves[..., :2]) and torch.equal(
        colour[..., 6:], halves[..., 6:]
    )
    hole = colour[0, 0, 2:6, 2:6]
    assert hole[:, 0].max() < 0.5 < hole[:, 3].min()  # each side takes after its own side
    assert hole[:, :2].mean() < hole[:, 2:].mean() and hole.min() >= 0.0 and hole.max() <= 1.0
    dot = torch.zeros(1, 1, 1, 3, 3)  # nothing landed anywhere but at one pixel
    dot[..., 1, 1] = 1.0
    colour, found = push_pull(torch.full((1, 3, 3, 3), 0.7) * dot[0], dot[0])
    assert torch.allclose(colour, torch.full_like(colour, 0.7)) and found.item()
    gone = torch.full((1, 2, 4, 4), 100.0)  # every pixel leaves the frame
    sums, mass = splat(torch.rand(1, 3, 4, 4), gone, torch.ones(1, 1, 4, 4))
    assert not push_pull(sums, mass)[1].any()


def test_splat_over_puts_what_moves_in_front_and_fills_the_rest():

    frames, fill = torch.rand(1, 2, 3, 8, 8), torch.rand(1, 2, 3, 8, 8)
    still = torch.zeros(1, 2, 2, 8, 8)
    assert torch.equal(splat_over(frames, still, still, fill, 1.0), frames)
    velocity = torch.zeros(1, 2, 2, 8, 8)
    velocity[..., 0, 2:4, 2:4] = 1.0  # a 2 x 2 block moving right over a still background
    out = splat_over(frames, velocity, velocity, fill, 10.0)
    block = frames[..., 2:4, 2:4]
    assert torch.allclose(out[..., 2:4, 3:5], block, atol=1e-3)  # in front of what it covers
    soft = splat_over(frames, velocity, velocity, fill, 1.0)[..., 2:4, 4]
    mixed = (torch.e * block[..., 1] + frames[..., 2:4, 4]) / (torch.e + 1)  # weights e : 1
    assert torch.allclose(soft, mixed, atol=1e-5)
    flat = torch.full((1, 1, 3, 8, 8), 0.2)
    flat[..., 2:4, 2:4] = 0.9  # a bright block on a flat dark background, moving right
    out = splat_over(flat, velocity[:, :1], velocity[:, :1], fill[:, :1], 10.0)
    assert torch.allclose(out[..., 2:4, 2], torch.full((1, 1, 3, 2), 0.2), atol=1e-3)
    # ... where it was, nothing landed: the background around the hole, not the block
    pan = torch.full((1, 1, 2, 8, 8), 1.0)  # everything moves: nothing is in front
    shifted = splat_over(flat, pan, pan, fill[:, :1], 10.0)
    assert torch.allclose(shifted[..., 1:, 1:], flat[..., :-1, :-1], atol=1e-6)
    entering = shifted[..., 0, :]  # the border entering: colours from just inside the frame
    assert entering.min() >= 0.2 - 1e-6 and entering.max() <= 0.9 + 1e-6
    gone = torch.full((1, 2, 2, 8, 8), 100.0)  # everything leaves: only the fill is left
    assert torch.equal(splat_over(frames, gone, gone, fill, 1.0), fill)


def test_splat_onto_shows_the_base_where_nothing_lands():
    frames, base = torch.rand(1, 2, 3, 8, 8), torch.rand(1, 2, 3, 8, 8)
    still = torch.zeros(1, 2, 2, 8, 8)
    assert torch.equal(splat_onto(frames, still, still, base, 1.0), frames)
    velocity = torch.zeros(1, 2, 2, 8, 8)
    velocity[..., 0, 2:4, 2:4] = 2.0  # a 2 x 2 block moving 2 px right over a still background
    out = splat_onto(frames, velocity, velocity, base, 10.0)
    assert torch.allclose(out[..., 2:4, 4:6], frames[..., 2:4, 2:4], atol=1e-3)  # in front
    assert torch.allclose(out[..., 2:4, 2:4], base[..., 2:4, 2:4])  # what it uncovered: base
    assert torch.equal(out[..., 5:, :], frames[..., 5:, :])  # untouched elsewhere
    gone = torch.full((1, 2, 2, 8, 8), 100.0)
    assert torch.equal(splat_onto(frames, gone, gone, base, 1.0), base)


def test_flows_compose_and_context_warping_resamples_once():

    a = torch.zeros(1, 2, 8, 8)
    a[:, 0] = 1.0
    b = torch.zeros(1, 2, 8, 8)
    b[:, 1] = 2.0
    assert torch.allclose(compose_flows(a, b), a + b)  # translations add
    frames = torch.rand(1, 3, 8, 8)
    half = torch.full((1, 2, 8, 8), 0.5)
    twice = warp(warp(frames, half), half)  # two bilinear resamplings blur
    once = warp(frames, compose_flows(half, half))  # one whole-pixel shift does not
    shifted = torch.roll(frames, (1, 1), (2, 3))
    assert torch.allclose(once[..., 1:, 1:], shifted[..., 1:, 1:], atol=1e-6)
    assert not torch.allclose(twice[..., 1:, 1:], shifted[..., 1:, 1:], atol=1e-2)
