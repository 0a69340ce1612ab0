"""Losses: pixel (MSE, L1), perceptual (frozen VGG16 activations) and the Gaussian KL."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.evaluation import frame_ssim
from vidgen.models.backbone import FrozenVGG16


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) of ``(B, ...)`` latents: summed over each latent's
    elements, averaged over the batch."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).flatten(1).sum(-1).mean()


def gradient_difference(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of the images' spatial gradient magnitudes (Mathieu et al.
    2016): penalises blur (gradients lost) and smear (gradients moved), which MSE averages."""
    total = pred.new_zeros(())
    for dim in (-1, -2):
        total = total + F.l1_loss(pred.diff(dim=dim).abs(), target.diff(dim=dim).abs())
    return total / 2


class VideoLoss(nn.Module):
    """Weighted sum of reconstruction terms between predicted and true frames in [0, 1].

    ``mse=1`` alone is the paper's loss. ``perceptual > 0`` adds the mean squared distance of
    the frozen backbone's activations at ``perceptual_layers`` (deep feature perceptual loss, the
    paper's proposed fix for blur); with random backbone weights this still compares multi-scale
    random-filter responses, with ImageNet weights it is the usual perceptual loss. ``ssim``
    adds ``1 - SSIM`` (per frame, as evaluated), ``gradient`` the gradient-difference term
    (:func:`gradient_difference`): both also act against blur.

    ``forward`` returns a dict of the weighted terms and their sum under ``"loss"``.
    """

    def __init__(
        self,
        mse: float = 1.0,
        l1: float = 0.0,
        perceptual: float = 0.0,
        perceptual_layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3"),
        ssim: float = 0.0,
        gradient: float = 0.0,
    ) -> None:
        super().__init__()
        self.weights = {
            "mse": mse,
            "l1": l1,
            "perceptual": perceptual,
            "ssim": ssim,
            "gradient": gradient,
        }
        self.perceptual_layers = tuple(perceptual_layers)

    def forward(
        self, pred: Tensor, target: Tensor, backbone: FrozenVGG16 | None = None
    ) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        if self.weights["mse"]:
            terms["mse"] = self.weights["mse"] * F.mse_loss(pred, target)
        if self.weights["l1"]:
            terms["l1"] = self.weights["l1"] * F.l1_loss(pred, target)
        if self.weights["perceptual"]:
            if backbone is None:
                raise ValueError("a perceptual loss needs the backbone")
            predicted = backbone.taps(pred.flatten(0, -4), self.perceptual_layers)
            with torch.no_grad():  # no gradient to the targets: half the backward pass
                true = backbone.taps(target.flatten(0, -4), self.perceptual_layers)
            pairs = zip(predicted, true, strict=True)
            distance = sum(F.mse_loss(p, t) for p, t in pairs) / len(true)
            terms["perceptual"] = self.weights["perceptual"] * distance
        if self.weights["ssim"]:
            terms["ssim"] = self.weights["ssim"] * (1.0 - frame_ssim(pred, target).mean())
        if self.weights["gradient"]:
            terms["gradient"] = self.weights["gradient"] * gradient_difference(pred, target)
        if not terms:
            raise ValueError("VideoLoss needs at least one positive weight")
        terms["loss"] = torch.stack(list(terms.values())).sum()
        return terms
