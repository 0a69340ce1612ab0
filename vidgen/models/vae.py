"""VideoVAE: the paper's clip VAE (section 2.2): a clip -> one latent z -> a clip.

Each frame goes through the frozen VGG16 (as ``(B*S, C, H, W)``); an encoder core (the paper's
LSTM) reads the feature sequence and its last output gives the posterior's mean and
log-variance; ``z = mu + sigma * eps`` (reparameterisation); a decoder core emits one vector per
frame; a head turns each vector into a frame ``(B, S, C, H, W)`` in [0, 1].

How z drives the decoder (the paper only says "the z vector is supplied [to] the decoder-LSTM
where a vector for each generated image is created"): z is the decoder's input at every step,
from a zero initial state. The same z at every step keeps the decoder conditioned on it for any
number of frames (a z that only set the initial state could be forgotten over a long clip, and
the decoder would drift towards an unconditional "average" video, the failure the paper
reports); the frames still differ because the decoder's state evolves.

One z per clip (not one per frame): ``sample(n, frames)`` draws whole videos from the prior
N(0, I), and two clips' latents can be interpolated.

Loss: ``beta=0`` is the paper, reconstruction (MSE) only; ``beta>0`` adds ``beta * KL`` with a
linear warm-up over ``kl_warmup_steps`` optimiser steps, the fix the paper names. The KL is
summed over z's dimensions and averaged over clips while the MSE is averaged over pixels, so
useful ``beta`` values are small (1e-4 .. 1e-2).
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from vidgen.models.base import CoreFactory, HeadFactory
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.recurrent import LSTMCore
from vidgen.models.vae_base import LOGVAR_RANGE, VAEModule


class VideoVAE(VAEModule):
    """Clip VAE: VGG16 features -> encoder LSTM -> z -> decoder LSTM -> per-frame vectors -> head.

    Defaults are the paper's (pool5, LSTMs, upsample + deconvolution head, MSE only, Adam lr
    0.01); the fixes it names are options: a :class:`~vidgen.models.MultiScaleHead` head, a
    perceptual term in the :class:`~vidgen.models.VideoLoss`, a KL weight with warm-up. The
    shared options (``**kwargs``) are :class:`VideoModule`'s and :class:`VAEModule`'s.

    Args:
        encoder: builds the encoder core from the per-frame feature shape; its last step's
            output gives mu and log-variance.
        decoder: builds the decoder core from ``(self.z_dim, 1, 1)``; it gets z at every step.
        head: builds the frame head from ``(decoder.out_shape, image_size)``, e.g.
            :class:`UpsampleDeconvHead` (paper) or :class:`MultiScaleHead`.
    """

    def __init__(
        self,
        encoder: CoreFactory = LSTMCore,
        decoder: CoreFactory = LSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["loss"])
        self.encoder = encoder(self.feature_shape)
        self.to_latent = nn.Linear(math.prod(self.encoder.out_shape), 2 * self.z_dim)
        self.decoder = decoder((self.z_dim, 1, 1))
        self.head = head(self.decoder.out_shape, self.image_size)
        self.z_shape = (self.z_dim,)

    def infer(self, features: Tensor, video: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip) from the clip's backbone features
        ``(B, S, C', h, w)``: the encoder's last output, projected."""
        out, _ = self.encoder(features)
        mu, logvar = self.to_latent(out[:, -1].flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: Tensor, frames: int | None = None, *context: Tensor | None) -> Tensor:
        """Frames from latents: ``z`` ``(B, z_dim)`` -> ``(B, frames, C, H, W)`` in [0, 1]
        (context arguments are ignored: the paper's VAE is unconditional)."""
        frames = self.check_z(z, frames)
        out, _ = self.decoder(z[:, None, :, None, None].expand(-1, frames, -1, 1, 1))
        return self.render(self.head, out)
