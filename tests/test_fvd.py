"""Fréchet distance: zero for identical sets, closed forms, the FVD path on a stand-in I3D, and
the offline fallback features."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from vidgen.fvd import (
    BackboneFeatures,
    I3DFeatures,
    clip_features,
    frechet_distance,
    frechet_video_distance,
    video_features,
)


def test_identical_sets_are_at_distance_zero_and_a_shift_adds_its_square():
    torch.manual_seed(0)
    x = torch.randn(200, 6) @ torch.randn(6, 6)  # correlated features
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    distances = [frechet_distance(x, x + d) for d in (0.5, 1.0, 2.0)]
    assert distances == pytest.approx([6 * d**2 for d in (0.5, 1.0, 2.0)], rel=1e-6)


def test_diagonal_gaussians_match_the_closed_form():
    # Orthogonal zero-mean columns: the sample covariance is exactly diagonal (4/3 s^2).
    design = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    mu_a, s_a, mu_b, s_b = torch.tensor(
        [[0.0, 1.0], [1.0, 2.0], [3.0, -1.0], [0.5, 3.0]], dtype=torch.float64
    )
    a, b = mu_a + design * s_a, mu_b + design * s_b
    expected = (mu_a - mu_b).pow(2).sum() + (4 / 3) * (s_a - s_b).pow(2).sum()
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-9)
    assert frechet_distance(b, a) == pytest.approx(float(expected), rel=1e-9)


def test_bad_feature_sets_are_explained():
    with pytest.raises(ValueError, match="feature sizes"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(torch.randn(1, 3), torch.randn(5, 3))


class StandInI3D(nn.Module):
    """Random network with the interface of StyleGAN-V's ``i3d_torchscript.pt``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, (3, 7, 7), stride=(1, 4, 4))
        self.fc = nn.Linear(8, 400)

    def forward(
        self, x: Tensor, rescale: bool = True, resize: bool = True, return_features: bool = False
    ) -> Tensor:
        assert x.shape[1] == 3 and x.shape[2] >= 9 and x.shape[-2:] == (224, 224)
        assert not rescale and not resize and return_features
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        return self.fc(torch.relu(self.conv(x)).mean((2, 3, 4)))


def test_fvd_runs_on_a_stand_in_torchscript_i3d(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(StandInI3D()).save(str(path))
    net = I3DFeatures(path)
    real = torch.rand(6, 4, 3, 16, 16)  # short, small clips: looped to 10 frames, resized
    fake = (real * 0.3).flip(1)
    assert video_features(net, real, batch_size=4).shape == (6, 400)
    assert frechet_video_distance(net, real, real, batch_size=4) == pytest.approx(0.0, abs=1e-6)
    assert frechet_video_distance(net, real, fake, batch_size=4) > 1e-3
    with pytest.raises(FileNotFoundError, match="user-supplied I3D"):
        I3DFeatures(tmp_path / "missing.pt")


def test_the_fallback_features_are_seeded_and_see_motion(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(1)
    name, net = clip_features()  # no I3D file in the torch cache
    assert name == "frechet" and isinstance(net, BackboneFeatures)
    torch.manual_seed(2)  # the weights come from the class's seed, not the global RNG
    same = BackboneFeatures()
    video = torch.rand(3, 5, 3, 16, 16)
    still = video[:, :1].expand_as(video)
    features = net(video)
    assert features.shape == (3, 2 * 128 * 4)  # pool2's 128 channels on a 2 x 2 layout, twice
    assert torch.equal(features, same(video))
    assert net(still)[:, 512:].abs().max() == 0 and features[:, 512:].min() >= 0
    assert torch.allclose(net(still)[:, :512], net(video[:, :1])[:, :512])
    assert net(video[:, :1]).shape == (3, 1024)  # one frame: no change


def test_clip_features_use_i3d_from_the_torch_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.jit.script(StandInI3D()).save(str(tmp_path / "checkpoints" / "i3d_torchscript.pt"))
    name, net = clip_features()
    assert name == "fvd" and isinstance(net, I3DFeatures)
