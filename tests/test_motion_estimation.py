"""Estimating motion: block matching, subpixel fits, pooled flow, observed velocity and motion
layers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import translating

from vidgen.data.textured import pink_noise, sample_wrapped
from vidgen.models import motion_estimation
from vidgen.models.motion_estimation import (
    MIN_LAYER_PIXELS,
    affine_basis,
    block_match,
    median3,
    motion_layers,
    observed_velocity,
    pool_flow,
    pyramid_match,
    refine_translations,
    texture,
)
from vidgen.models.motion_transport import splat_over, warp


def test_block_matching_finds_where_pixels_came_from():

    video = translating(4, (2, -1))
    flow = block_match(video[:, 0], video[:, 1], radius=3)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert torch.equal(flow[:, 0][inner[:1] + inner[2:]], torch.full((1, 8, 8), 2.0))
    assert torch.equal(flow[:, 1][inner[:1] + inner[2:]], torch.full((1, 8, 8), -1.0))
    flat = torch.zeros(1, 3, 8, 8)
    assert torch.equal(block_match(flat, flat, 2), torch.zeros(1, 2, 8, 8))  # ties: no motion
    velocity = observed_velocity(video, span=3, max_speed=2.0)  # 3 steps apart, / 3
    expected = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)
    assert torch.allclose(velocity[..., 6:-6, 6:-6], expected, atol=0.02)  # subpixel fits
    assert torch.equal(observed_velocity(video[:, :1], 3, 2.0), torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="patch"):
        block_match(flat, flat, 1, patch=4)


def multiscale_texture(size: int, seed: int) -> torch.Tensor:
    """``(1, 3, size, size)`` noise at three scales: something to match at every pyramid level."""
    g = torch.Generator().manual_seed(seed)
    scales = (torch.rand(1, 3, size // s, size // s, generator=g) for s in (1, 4, 8))
    return sum(F.interpolate(x, size=(size, size), mode="bilinear") for x in scales) / 3


def test_pyramid_matching_finds_large_motions_coarse_to_fine():

    background, thing = multiscale_texture(112, 0), multiscale_texture(24, 1)
    earlier = background[..., 8:104, 8:104].clone()  # 96 px: a camera pan and a thing
    truth = torch.zeros(1, 2, 96, 96)
    truth[:, 0], truth[:, 1] = 14.0, -9.0
    later = warp(earlier, truth)
    earlier[..., 36:60, 41:65] = thing  # the thing moves by (-5, 4) against the pan
    later[..., 40:64, 36:60] = thing
    truth[..., 40:64, 36:60] = torch.tensor([-5.0, 4.0]).view(2, 1, 1)
    assert motion_estimation.SEARCH_RADIUS < 16  # the pyramid's case
    found = median3(pyramid_match(earlier, later, 16, subpixel=True))
    exact = median3(block_match(earlier, later, 16, subpixel=True))
    right = (exact - truth).abs().sum(1) < 0.5  # not what the thing hides or uncovers
    error = (found - truth).abs().sum(1)
    assert right.float().mean() > 0.7
    assert (error[right] < 1).float().mean() > 0.95
    assert error[..., 43:61, 39:57].mean() < 0.1  # the thing's inside
    small = translating(4, (2, -1))  # within SEARCH_RADIUS the search is exhaustive
    assert torch.equal(
        pyramid_match(small[:, 0], small[:, 1], 3), block_match(small[:, 0], small[:, 1], 3)
    )


def test_subpixel_matching_finds_fractions_of_a_pixel():

    frame = translating(1, (0, 0))[:, 0]
    shift = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    later = warp(frame, shift.expand(1, 2, 16, 16))
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    whole = (block_match(frame, later, 2) - shift)[inner].abs().mean()
    refined = (block_match(frame, later, 2, subpixel=True) - shift)[inner].abs().mean()
    assert whole.item() == pytest.approx(0.3, abs=1e-6)  # rounds to (0, 1)
    assert refined < 0.15
    outlier = torch.zeros(1, 2, 5, 5)
    outlier[0, 0, 2, 2] = 3.0
    assert torch.equal(median3(outlier), torch.zeros(1, 2, 5, 5))


def test_pooled_flow_is_the_motion_of_what_has_texture():

    frame = torch.zeros(1, 3, 8, 8)
    frame[..., 1:3, 1:3] = 1.0  # a flat square in the top-left cell, black elsewhere
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0, 0:4, 0:4] = torch.where(texture(frame)[0, 0, 0:4, 0:4] > 0, 2.0, 0.0)
    pooled = pool_flow(flow, frame, (2, 2))
    assert pooled[0, 0, 0, 0].item() == pytest.approx(2.0)  # not diluted by the flat pixels
    assert torch.equal(pooled[0, :, 1, 1], torch.zeros(2))  # nothing to see moving: 0
    assert texture(torch.ones(1, 3, 6, 6)).abs().max() == 0


def two_motions(size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, 2, size, size)``: a zoom everywhere but a square that moves 2 px a step right and
    1 up; and a confidence of 1."""
    basis = affine_basis(size, size, torch.zeros(()))
    zoom = (basis[:, :2] * 0.5).T.reshape(1, 2, size, size)  # v = 0.5 (x, y), centred
    field = zoom.clone()
    field[0, 0, 2:6, 3:7] = 2.0
    field[0, 1, 2:6, 3:7] = -1.0
    return field, torch.ones(1, 1, size, size)


def test_a_field_of_few_affine_motions_comes_back():
    field, confidence = two_motions()
    assert torch.allclose(motion_layers(field, confidence, layers=2), field, atol=1e-3)
    one = motion_layers(field, confidence, layers=1)  # a single layer: the weighted fit
    assert not torch.allclose(one, field, atol=0.1)  # cannot hold the square too
    big, confidence = two_motions(size=96)  # fitted on every 2nd pixel, all assigned
    assert torch.allclose(motion_layers(big, confidence, layers=2), big, atol=1e-3)


def test_stray_velocities_take_their_layers_motion():
    field, confidence = two_motions()
    noisy = field + 0.2 * torch.randn(field.shape, generator=torch.Generator().manual_seed(0))
    noisy[0, :, 3, 4] = torch.tensor([1.5, -0.5])  # a bad match inside the square
    layered = motion_layers(noisy, confidence, layers=2)
    assert torch.allclose(layered, field, atol=0.25)  # the bad match too (it was 0.5 off)
    assert (layered - field).abs().mean() < 0.3 * (noisy - field).abs().mean()  # noise gone
    background = torch.ones(12, 12, dtype=torch.bool)
    background[2:6, 3:7] = False  # ... the zoom's pixels, 128 of them, to 0.03
    assert (layered - field)[0][:, background].abs().max() < 0.03


def test_confidence_weights_the_fit_and_errors_are_clear():
    field, confidence = two_motions()
    wrong = field.clone()
    wrong[0, 0, 8:, 8:] = 3.0  # a corner of wrong velocities that nothing can be seen in
    confidence[0, 0, 8:, 8:] = 0.0
    layered = motion_layers(wrong, confidence, layers=2)
    assert torch.allclose(layered[0, :, :8, :8], field[0, :, :8, :8], atol=2e-2)
    batch = torch.cat([field, -field])  # clips are fitted one by one
    both = motion_layers(batch, torch.ones(2, 1, 12, 12), layers=2)
    assert torch.allclose(both, batch, atol=1e-3)
    with pytest.raises(ValueError, match="layers"):
        motion_layers(field, confidence, layers=0)


def test_refining_a_layer_finds_its_subpixel_velocity():
    canvas = pink_noise(np.random.default_rng(0), 64, 3)
    true = torch.tensor([0.63, -0.38])  # (dx, dy) pixels a step
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float64)
    frames = [
        sample_wrapped(canvas, ys - float(true[1]) * t, xs - float(true[0]) * t) for t in range(4)
    ]
    clip = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float()
    motions = torch.zeros(1, 2, 3, 2)
    motions[0, 0, :2] = torch.tensor([[0.01, 0.0], [0.0, -0.01]])  # a slight zoom: kept
    motions[0, 0, 2] = true + torch.tensor([0.23, -0.17])  # block matching's guess, a bit off
    motions[0, 1, 2] = torch.tensor([1.0, 1.0])
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, 0, : MIN_LAYER_PIXELS - 1] = 1  # too few pixels to refine, and on the border
    refined = refine_translations(clip, motions, labels, span=3, border=2)
    assert (refined[0, 0, 2] - true).abs().max() < 0.05, refined[0, 0, 2]
    assert torch.equal(refined[0, 0, :2], motions[0, 0, :2])
    assert torch.equal(refined[0, 1], motions[0, 1])
    assert torch.equal(motions[0, 0, 2], true + torch.tensor([0.23, -0.17]))  # not in place


def test_everything_is_made_on_the_fields_device():
    """Nothing is created on the CPU behind a GPU caller's back: run on PyTorch's ``meta``
    device (shapes only), which refuses a tensor from any other device."""

    field = torch.randn(2, 2, 8, 8, device="meta")
    assert motion_layers(field, torch.ones(2, 1, 8, 8, device="meta"), 3).device.type == "meta"
    frames, offset = (
        torch.rand(2, 1, 3, 8, 8, device="meta"),
        torch.rand(2, 1, 2, 8, 8, device="meta"),
    )
    assert splat_over(frames, offset, offset, frames, 1.0).shape == frames.shape
    clip, labels = torch.rand(2, 4, 3, 8, 8, device="meta"), torch.zeros(2, 8, 8, device="meta")
    motions = torch.zeros(2, 3, 3, 2, device="meta")
    assert refine_translations(clip, motions, labels.long(), 3, 1).device.type == "meta"
