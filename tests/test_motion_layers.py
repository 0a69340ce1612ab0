import pytest
import torch

from vidgen.models.motion_layers import affine_basis, motion_layers


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


def test_everything_is_made_on_the_fields_device():
    """Nothing is created on the CPU behind a GPU caller's back: run on PyTorch's ``meta``
    device (shapes only), which refuses a tensor from any other device."""
    from vidgen.models.motion import splat_over

    field = torch.randn(2, 2, 8, 8, device="meta")
    assert motion_layers(field, torch.ones(2, 1, 8, 8, device="meta"), 3).device.type == "meta"
    frames, offset = (
        torch.rand(2, 1, 3, 8, 8, device="meta"),
        torch.rand(2, 1, 2, 8, 8, device="meta"),
    )
    assert splat_over(frames, offset, offset, frames, 1.0).shape == frames.shape
