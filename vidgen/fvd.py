"""Fréchet distance between real and generated clips in a video network's features (FVD).

FVD (Unterthiner et al. 2018) fits a Gaussian to the features of real clips and one to the
features of generated clips and reports the Fréchet (2-Wasserstein) distance between them:

    ||mu_r - mu_g||^2 + tr(S_r) + tr(S_g) - 2 tr((S_r^1/2 S_g S_r^1/2)^1/2)

The network is any callable ``videos (B, T, C, H, W) in [0, 1] -> features (B, D)``:

- :class:`I3DFeatures`: the I3D network FVD uses, from a user-supplied TorchScript file (the
  ``i3d_torchscript.pt`` of StyleGAN-V / fvd-comparison, whose call is
  ``detector(x, rescale=False, resize=False, return_features=True)`` on ``(B, C, T, 224, 224)``
  clips in [-1, 1]). Its weights cannot be downloaded here, so nothing is fetched: pass the file.
- :class:`BackboneFeatures`: a VGG16 with seeded random weights, pooled per clip: available on
  every machine, the fallback when the I3D file is absent (:func:`clip_features` picks).
- any small video classifier's penultimate layer, e.g. the one trained on the embedded shapes
  data by ``benchmarks/shapes_classifier.py``, so that the number is reproducible offline.

Distances from different networks are not comparable with each other; only compare numbers from
the same network and the same number of clips (the estimate is biased for few clips).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.models.backbone import FrozenVGG16

I3D_FILE = "i3d_torchscript.pt"
"""The I3D TorchScript file :func:`clip_features` looks for in the torch cache."""

FeatureNet = Callable[[Tensor], Tensor]
"""Float videos ``(B, T, C, H, W)`` in [0, 1] -> features ``(B, D)``."""


def gaussian_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased) of ``features`` ``(N, D)``, float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"expected features (N >= 2, D), got {tuple(features.shape)}")
    x = features.double()
    return x.mean(0), torch.cov(x.T).reshape(x.shape[1], x.shape[1])


def sqrtm_psd(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    Zero for identical sets; for Gaussians with diagonal covariances it is
    ``sum((mu_r - mu_g)^2 + (s_r - s_g)^2)`` with standard deviations ``s``.
    """
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"feature sizes differ: {tuple(real.shape)} vs {tuple(fake.shape)}")
    mu_r, cov_r = gaussian_stats(real)
    mu_g, cov_g = gaussian_stats(fake)
    root = sqrtm_psd(cov_r)
    cross = sqrtm_psd(root @ cov_g @ root)
    value = (mu_r - mu_g).pow(2).sum() + cov_r.trace() + cov_g.trace() - 2 * cross.trace()
    return max(float(value), 0.0)


@torch.no_grad()
def video_features(net: FeatureNet, videos: Tensor, batch_size: int = 32) -> Tensor:
    """``net``'s features ``(N, D)`` of ``videos`` ``(N, T, C, H, W)`` in [0, 1], by batches."""
    return torch.cat(
        [net(videos[i : i + batch_size]).flatten(1) for i in range(0, len(videos), batch_size)]
    )


def frechet_video_distance(
    net: FeatureNet, real: Tensor, fake: Tensor, batch_size: int = 32
) -> float:
    """Fréchet distance between real and generated clips (both ``(N, T, C, H, W)`` in [0, 1])
    in ``net``'s features: FVD when ``net`` is :class:`I3DFeatures`."""
    return frechet_distance(
        video_features(net, real, batch_size), video_features(net, fake, batch_size)
    )


class I3DFeatures(nn.Module):
    """FVD's I3D features (400 logits before the softmax) from a TorchScript file.

    Frames are resized to ``size`` (bilinear), scaled to [-1, 1] and laid out as
    ``(B, C, T, H, W)``; the network is called with ``rescale=False, resize=False,
    return_features=True`` (the convention of StyleGAN-V's ``i3d_torchscript.pt``). I3D wants
    clips of at least 9 frames; shorter clips are repeated in time up to ``min_frames``.

    Args:
        path: the TorchScript file (e.g. ``i3d_torchscript.pt``), never downloaded.
        size: frame side the network expects.
        min_frames: clips shorter than this are looped (I3D's temporal pooling needs ~9).
    """

    def __init__(self, path: str | os.PathLike, size: int = 224, min_frames: int = 10) -> None:
        super().__init__()
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"I3D TorchScript file not found at {path}: FVD needs user-supplied I3D weights "
                "(e.g. i3d_torchscript.pt from StyleGAN-V), copied to this machine"
            )
        self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.size = size
        self.min_frames = min_frames

    @torch.no_grad()
    def forward(self, videos: Tensor) -> Tensor:
        b, t = videos.shape[:2]
        if t < self.min_frames:
            videos = videos.repeat(1, -(-self.min_frames // t), 1, 1, 1)
        frames = F.interpolate(
            videos.flatten(0, 1).float(), size=(self.size, self.size), mode="bilinear"
        )
        x = frames.view(b, -1, *frames.shape[1:]).permute(0, 2, 1, 3, 4) * 2 - 1
        device = next(iter(self.net.parameters()), x).device
        return self.net(x.to(device), rescale=False, resize=False, return_features=True)


class BackboneFeatures(nn.Module):
    """Clip features available offline: VGG16 cut at ``layer`` with random weights drawn from
    ``seed`` (the same on every machine with the same torch; nothing to download).

    Each frame's map is average-pooled to a ``grid`` x ``grid`` layout (what is where); a clip's
    features are that layout's mean over the clip's frames (what it shows) and its mean absolute
    change from one frame to the next (how much moves, and where): ``(B, 2 * C * grid**2)``.
    These are no ImageNet or action features: compare distances in them only with distances in
    the same features (same layer, grid and seed) over the same number of clips.
    """

    def __init__(self, layer: str = "pool2", grid: int = 2, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.backbone = FrozenVGG16(layer)
        self.grid = grid

    @torch.no_grad()
    def forward(self, videos: Tensor) -> Tensor:
        b, t = videos.shape[:2]
        maps = self.backbone(videos.flatten(0, 1).float())
        layout = F.adaptive_avg_pool2d(maps, self.grid).view(b, t, -1)
        change = layout.diff(dim=1).abs().mean(1) if t > 1 else torch.zeros_like(layout[:, 0])
        return torch.cat([layout.mean(1), change], 1)


def i3d_cache_path() -> Path:
    """Where :func:`clip_features` looks for the I3D file: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / I3D_FILE


def clip_features() -> tuple[str, FeatureNet]:
    """The features generated clips are compared to real ones in, and the distance's name:
    ``("fvd", I3DFeatures)`` when :func:`i3d_cache_path` holds the I3D file, else
    ``("frechet", BackboneFeatures())``: the name says which, so the two never mix."""
    path = i3d_cache_path()
    return ("fvd", I3DFeatures(path)) if path.is_file() else ("frechet", BackboneFeatures())
