"""VideoVAE: a clip -> one latent z -> a clip (paper section 2.2).

Each frame goes through the frozen VGG16 (as ``(B*S, C, H, W)``); an encoder core (the paper's
LSTM) reads the feature sequence and its last output gives the posterior's mean and
log-variance; ``z = mu + sigma * eps`` (reparameterisation); a decoder core emits one vector per
frame; a head turns each vector into a frame ``(B, S, C, H, W)`` in [0, 1].

How z drives the decoder (the paper only says "the z vector is supplied [to] the decoder-LSTM
where a vector for each generated image is created"): z is the decoder's input at every step,
from a zero initial state. The same z at every step keeps the decoder conditioned on it for any
number of frames (a z that only set the initial state could be forgotten over a long clip, and
the decoder would drift towards an unconditional "average" video, the failure the paper
reports); the frames still differ because the decoder's state evolves. Any ``SequenceCore``
works as the decoder, as its state format needs no special handling.

One z per clip (not one per frame): ``sample(n, frames)`` draws whole videos from the prior
N(0, I), and two clips' latents can be interpolated.

Loss: ``beta=0`` is the paper, reconstruction (MSE) only; ``beta>0`` adds ``beta * KL`` with a
linear warm-up over ``kl_warmup_steps`` optimiser steps. The KL is summed over z's dimensions
and averaged over clips while the MSE is averaged over pixels, so useful ``beta`` values are
small (1e-4 .. 1e-2).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from vidgen.models.base import CoreFactory, HeadFactory, VideoModule, paper_adam
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.losses import VideoLoss, kl_divergence
from vidgen.models.recurrent import LSTMCore

LOGVAR_RANGE = (-30.0, 20.0)
"""Log-variances are clamped to this range: exp() stays finite with a large learning rate."""


class VideoVAE(VideoModule):
    """Clip VAE: VGG16 features -> encoder LSTM -> z -> decoder LSTM -> per-frame vectors -> head.

    Args:
        image_size: frame side in pixels (linked to ``data.image_size`` by the CLI).
        backbone_layer: VGG16 cut, e.g. ``"pool5"`` (paper) or ``"pool3"``.
        backbone_weights: ``None`` (random), ``"imagenet"`` (torch cache) or a file path.
        encoder: builds the encoder core from the per-frame feature shape (default
            :class:`LSTMCore`); its last step's output gives mu and log-variance.
        decoder: builds the decoder core from ``(z_dim, 1, 1)``; it gets z at every step.
        head: builds the frame head from ``(decoder.out_shape, image_size)``, e.g.
            :class:`UpsampleDeconvHead` (paper) or :class:`MultiScaleHead`.
        z_dim: latent size.
        frames: frames :meth:`sample` emits by default (reconstructions match their input).
        beta: weight of the KL term; 0 = the paper (MSE only).
        kl_warmup_steps: the KL weight rises linearly from 0 to ``beta`` over these steps.
        loss: reconstruction loss (default: MSE, the paper's).
        optimizer: default Adam with lr 0.01 (paper).
        lr_scheduler: e.g. ``StepLR(step_size=1000, gamma=0.1)`` per epoch (paper).
    """

    def __init__(
        self,
        image_size: int = 224,
        backbone_layer: str = "pool5",
        backbone_weights: str | None = None,
        encoder: CoreFactory = LSTMCore,
        decoder: CoreFactory = LSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        z_dim: int = 256,
        frames: int = 8,
        beta: float = 0.0,
        kl_warmup_steps: int = 0,
        loss: VideoLoss | None = None,
        optimizer: OptimizerCallable = paper_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(
            image_size, backbone_layer, backbone_weights, loss, optimizer, lr_scheduler
        )
        self.save_hyperparameters(ignore=["loss"])
        for name, value in (("z_dim", z_dim), ("frames", frames)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if beta < 0 or kl_warmup_steps < 0:
            raise ValueError(f"beta ({beta}) and kl_warmup_steps ({kl_warmup_steps}) must be >= 0")
        self.encoder = encoder(self.feature_shape)
        self.to_latent = nn.Linear(math.prod(self.encoder.out_shape), 2 * z_dim)
        self.decoder = decoder((z_dim, 1, 1))
        self.head = head(self.decoder.out_shape, image_size)
        self.z_dim = z_dim
        self.frames = frames
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps

    # --- the model -------------------------------------------------------------------------

    def posterior(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip), each ``(B, z_dim)``."""
        self.check_video(video)
        return self.infer(self.encode(video))

    def infer(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip) from the clip's backbone features
        ``(B, S, C', h, w)`` (which may be cached: the backbone is frozen)."""
        out, _ = self.encoder(features)
        mu, logvar = self.to_latent(out[:, -1].flatten(1)).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    @staticmethod
    def reparameterise(
        mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def decode(self, z: Tensor, frames: int | None = None) -> Tensor:
        """Frames from latents: ``z`` ``(B, z_dim)`` -> ``(B, frames, C, H, W)`` in [0, 1]."""
        frames = self.frames if frames is None else frames
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"expected z (B, {self.z_dim}), got {tuple(z.shape)}")
        steps = z[:, None, :, None, None].expand(-1, frames, -1, 1, 1)
        out, _ = self.decoder(steps)
        return self.render(self.head, out)

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction, mu, log-variance; z is sampled in training mode, ``mu`` in eval mode."""
        mu, logvar = self.posterior(video)
        z = self.reparameterise(mu, logvar) if self.training else mu
        return self.decode(z, video.shape[1]), mu, logvar

    def reconstruct(self, video: Tensor, sample: bool = False) -> Tensor:
        """The clip through the VAE, from z = mu (or a posterior sample if ``sample``)."""
        mu, logvar = self.posterior(video)
        return self.decode(self.reparameterise(mu, logvar) if sample else mu, video.shape[1])

    def sample(
        self, n: int, frames: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n`` new clips ``(n, frames, C, H, W)`` from z ~ N(0, I) (seeded by ``generator`` or
        the global RNG)."""
        device = self.device if generator is None else generator.device
        z = torch.randn(n, self.z_dim, generator=generator, device=device).to(self.device)
        return self.decode(z, frames)

    def interpolate(
        self, a: Tensor, b: Tensor, steps: int = 8, frames: int | None = None
    ) -> Tensor:
        """Clips decoded along the line between the latents (means) of clips ``a`` and ``b``.

        ``a`` and ``b`` are ``(B, S, C, H, W)``; returns ``(B, steps, frames, C, H, W)`` whose
        first and last entries are the reconstructions of ``a`` and ``b``.
        """
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        mu_a, _ = self.posterior(a)
        mu_b, _ = self.posterior(b)
        alpha = torch.linspace(0, 1, steps, device=mu_a.device, dtype=mu_a.dtype)[None, :, None]
        z = torch.lerp(mu_a[:, None], mu_b[:, None], alpha)  # (B, steps, z_dim)
        clips = self.decode(z.flatten(0, 1), frames or a.shape[1])
        return clips.view(a.shape[0], steps, *clips.shape[1:])

    # --- the objective ---------------------------------------------------------------------

    def kl_weight(self, step: int | None = None) -> float:
        """The KL term's weight at optimiser ``step`` (default: now): ``beta``, ramped up
        linearly from 0 over ``kl_warmup_steps``."""
        step = self.global_step if step is None else step
        if self.beta == 0 or self.kl_warmup_steps == 0:
            return self.beta
        return self.beta * min(1.0, step / self.kl_warmup_steps)

    def objective(
        self, recon: Tensor, video: Tensor, mu: Tensor, logvar: Tensor, kl_weight: float
    ) -> dict[str, Tensor]:
        """Loss terms: the reconstruction terms, ``recon`` (their sum), ``kl`` (unweighted,
        always reported), ``kl_weight`` and ``loss`` = recon + kl_weight * kl."""
        terms = self.loss(recon, video, self.backbone)
        terms["recon"] = terms.pop("loss")
        terms["kl"] = kl_divergence(mu, logvar)
        terms["kl_weight"] = torch.tensor(kl_weight, device=recon.device)
        terms["loss"] = terms["recon"] + kl_weight * terms["kl"] if kl_weight else terms["recon"]
        return terms

    # --- Lightning -------------------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        video = batch["video"]
        recon, mu, logvar = self(video)
        terms = self.objective(recon, video, mu, logvar, self.kl_weight())
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]

    def evaluate(self, stage: str, batch: dict) -> dict[str, Tensor]:
        """Reconstruct from z = mu; log the loss (KL at full ``beta``, so ``val/loss`` is
        comparable across the warm-up) and update the per-frame metrics, with the clip's mean
        frame (the paper's failure mode) and its last frame as baselines."""
        video = batch["video"]
        mu, logvar = self.posterior(video)
        recon = self.decode(mu, video.shape[1])
        self.log_terms(stage, self.objective(recon, video, mu, logvar, self.beta), video.shape[0])
        self.update_metrics(stage, recon, video, video)
        return {"target": video, "pred": recon}

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("test", batch)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        """``target`` (the clip), ``pred`` (its reconstruction), ``samples`` (as many prior
        samples of the same length) as float videos in [0, 1], and ``index``."""
        video = batch["video"]
        return {
            "target": video,
            "pred": self.reconstruct(video),
            "samples": self.sample(video.shape[0], video.shape[1]),
            "index": batch["index"],
        }
