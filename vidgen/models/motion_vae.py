"""MotionVAE: vidgen's conditional VAE, whose latent is the motion of the context frame's pixels.

The paper's VAE paints a whole clip from one vector; its samples are blurry and barely depend on
z. This one keeps the first ``condition_frames`` true frames and generates the rest by moving
the last one's pixels, so z only has to carry what the context does not show: the motion.

- **A motion latent on the feature grid.** z is a map ``(z_dim, h, w)`` over the backbone's
  grid: each place of the context frame gets its own latent. Its first two channels *are* a
  velocity (pixels a step), its next ones each later step's change of velocity (2 a step, in
  units of ``change_unit`` pixels): a step's velocity is the one before carried along itself
  (:func:`~vidgen.models.motion_transport.carry`: what moves takes its velocity with it) plus
  z's change for it.
- **The encoder sees the motion.** It reads each frame's backbone features and block-matched
  velocity (:func:`~vidgen.models.motion_estimation.block_match`, averaged over the grid where
  there is texture to see it move); the posterior mean starts as exactly the velocities and
  changes seen, so an untrained model already reconstructs the clip's motion.
- **A decoder that moves pixels.** A ConvLSTM over the context frame's backbone map, with z
  concatenated to it at every step, emits a flow change per step (``tanh * max_flow`` pixels;
  its head starts at zero) added to z's velocity; flows are composed
  (:func:`~vidgen.models.motion_transport.compose_flows`) and the last context frame is warped
  along them: one bilinear resampling per frame, shapes stay sharp.
- **A prior that moves things whole.** z's cells are correlated by how alike they look in the
  context frame and how close they are (:mod:`~vidgen.models.priors`): a prior sample moves the
  cells of one thing together; the KL term is taken against it.
- **A prior that goes on as the context moved.** With two context frames or more, the prior's
  mean is the latent that continues the motion seen between the last two (block-matched, as the
  encoder sees it): a prior sample is that motion plus the correlated spread around it.
  Futures longer than a training clip go on from their own last frames
  (:meth:`~vidgen.models.vae_base.VAEModule.sample_futures`): each new stretch's prior
  continues the motion generated so far.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.models.base import CoreFactory, HeadFactory, adam
from vidgen.models.heads import MultiScaleHead
from vidgen.models.motion_estimation import block_match, pool_flow
from vidgen.models.motion_transport import carry, compose_flows, warp
from vidgen.models.priors import affinity_scale_tril, correlated_kl, sample_correlated
from vidgen.models.recurrent import ConvLSTMCore
from vidgen.models.vae_base import LOGVAR_RANGE, VAEModule


class MotionVAE(VAEModule):
    """Conditional clip VAE whose latent map is the motion of the context frame's pixels. The
    shared options (``**kwargs``) are :class:`VideoModule`'s and :class:`VAEModule`'s.

    Args:
        encoder: builds the encoder core from ``(C' + 2, h, w)`` (features and velocity); it
            must keep the ``h`` x ``w`` map (e.g. :class:`~vidgen.models.ConvLSTMCore`).
        decoder: builds the decoder core from ``(z_dim + C', h, w)``: z over the context
            frame's backbone map.
        head: builds the flow head from ``(decoder.out_shape, image_size)``; it emits 2 channels.
        condition_frames: true frames each clip starts from (its context): the last one's
            pixels are moved; the motion between the last two is the prior's mean.
        change_unit: pixels a step of velocity change per unit of z: a prior sample's velocity
            drifts by about this much a step.
        max_flow: the largest flow change a step, in pixels, and the block-matching radius.
        logvar_init: initial posterior log-variance (the bias of its output; 0 = N(., 1)): a
            low value lets the small differences between clips' means reach the decoder above
            the sampling noise from the first steps.
    """

    default_optimizer = staticmethod(adam)

    def __init__(
        self,
        encoder: CoreFactory = ConvLSTMCore,
        decoder: CoreFactory = ConvLSTMCore,
        head: HeadFactory = MultiScaleHead,
        condition_frames: int = 1,
        change_unit: float = 0.5,
        max_flow: float = 8.0,
        logvar_init: float = -6.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["loss"])
        self.check_options(self.z_dim, self.frames, condition_frames, change_unit, max_flow)
        c, h, w = self.feature_shape
        self.encoder = encoder((c + 2, h, w))
        if self.encoder.out_shape[1:] != (h, w):
            raise ValueError(
                f"the encoder must keep the {h}x{w} feature map (e.g. vidgen.models.ConvLSTMCore);"
                f" its output is {self.encoder.out_shape}"
            )
        self.to_latent = nn.Conv2d(self.encoder.out_shape[0], 2 * self.z_dim, 1)
        nn.init.constant_(self.to_latent.bias[self.z_dim :], logvar_init)
        nn.init.zeros_(self.to_latent.weight[: self.z_dim])  # mu starts exactly as the motion seen
        nn.init.zeros_(self.to_latent.bias[: self.z_dim])
        self.decoder = decoder((self.z_dim + c, h, w))
        self.head = head(self.decoder.out_shape, self.image_size, out_channels=2).zero_output_()
        self.z_shape = (self.z_dim, h, w)
        self.condition_frames = condition_frames
        self.change_unit = change_unit
        self.max_flow = max_flow

    @staticmethod
    def check_options(
        z_dim: int, frames: int, condition_frames: int, change_unit: float, max_flow: float
    ) -> None:
        """Raise a clear error for options that cannot work together."""
        if not 1 <= condition_frames < frames:
            raise ValueError(
                f"condition_frames must be in [1, frames={frames}), got {condition_frames}"
            )
        generated = frames - condition_frames
        if z_dim < 2 * generated:
            raise ValueError(
                f"z_dim must be >= 2 * (frames - condition_frames) = {2 * generated} (a velocity"
                f" and a change per generated step), got {z_dim}"
            )
        if change_unit <= 0 or max_flow <= 0:
            raise ValueError(f"change_unit and max_flow must be > 0, got {change_unit}, {max_flow}")

    # --- the encoder: motion seen -> z ---------------------------------------------------------

    def infer(self, features: Tensor, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip) from the clip's backbone features
        ``(B, S, C', h, w)`` and the clip: mu is the encoder's output plus the motion seen."""
        motion = self.motion_maps(video, features.shape[-2:])
        out, _ = self.encoder(torch.cat([features, motion], 2))
        mu, logvar = self.to_latent(out[:, -1]).chunk(2, dim=1)
        seen = self.motion_latent(motion[:, self.condition_frames :] * math.ceil(self.max_flow))
        mu = mu + F.pad(seen, (0, 0, 0, 0, 0, self.z_dim - seen.shape[1]))
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def motion_maps(self, video: Tensor, size: tuple[int, int]) -> Tensor:
        """Each frame's block-matched velocity from the frame before (the first: none), in
        units of ``max_flow``, averaged over a ``size`` grid where there is texture to see it
        move (:func:`~vidgen.models.motion_estimation.pool_flow`): ``(B, S, 2, *size)``."""
        b, s = video.shape[:2]
        before = torch.cat([video[:, :1], video[:, :-1]], 1).flatten(0, 1)
        radius = math.ceil(self.max_flow)
        frames = video.flatten(0, 1).detach()
        flow = block_match(before.detach(), frames, radius) / radius
        return pool_flow(flow, frames, size).view(b, s, 2, *size)

    def motion_latent(self, seen: Tensor) -> Tensor:
        """The latent channels that reproduce the velocities ``seen`` ``(B, S, 2, h, w)`` (pixels a
        step, one map per generated frame) through :meth:`step_velocities`: the first step's
        velocity, then each later step's change from the velocity carried on, in
        ``change_unit`` s, as many as z has room for."""
        steps = min(seen.shape[1], self.z_dim // 2)
        changes = [seen[:, 0]] + [
            (seen[:, t] - self.carry_velocity(seen[:, t - 1])) / self.change_unit
            for t in range(1, steps)
        ]
        return torch.cat(changes, 1)

    # --- the decoder: z -> frames -------------------------------------------------------------

    def carry_velocity(self, velocity: Tensor) -> Tensor:
        """A velocity map ``(B, 2, h, w)`` (pixels a step, on the latent grid) one step on
        (:func:`~vidgen.models.motion_transport.carry`)."""
        cell = self.image_size / velocity.shape[-1]
        return carry(velocity / cell) * cell

    def step_velocities(self, z: Tensor, steps: int) -> Tensor:
        """The velocity maps ``(B, steps, 2, h, w)`` (pixels a step) that z gives the generated
        steps: z's velocity at the first; then each step's velocity carried on plus z's change
        for that step (none past z's channels: the velocity is carried as it is)."""
        velocity, out = z[:, :2], [z[:, :2]]
        for t in range(1, steps):
            velocity = self.carry_velocity(velocity)
            if 2 * t + 2 <= self.z_dim:
                velocity = velocity + self.change_unit * z[:, 2 * t : 2 * t + 2]
            out.append(velocity)
        return torch.stack(out, 1)

    def decode(
        self,
        z: Tensor,
        frames: int | None = None,
        context: Tensor | None = None,
        context_features: Tensor | None = None,
    ) -> Tensor:
        """Clips ``(B, frames, C, H, W)``: ``context`` (the clip's first ``condition_frames``
        frames ``(B, c, C, H, W)``), then its last frame moved along the flows that z and the
        decoder give each generated step. ``context_features``: its backbone features."""
        frames = self.check_context(z, frames, context)
        c = self.condition_frames
        if context_features is None:
            context_features = self.encode(context[:, -1:])
        inputs = torch.cat([z, context_features[:, -1]], 1)[:, None]
        out, _ = self.decoder(inputs.expand(-1, frames - c, -1, -1, -1))
        steps = torch.tanh(self.render(self.head.logits, out)) * self.max_flow
        velocity = self.step_velocities(z, steps.shape[1]).flatten(0, 1)
        steps = steps + F.interpolate(velocity, size=steps.shape[-2:], mode="nearest").view_as(
            steps
        )
        total, flows = steps[:, 0], [steps[:, 0]]
        for t in range(1, steps.shape[1]):  # each frame moves on from the one before
            total = compose_flows(total, steps[:, t])
            flows.append(total)
        last = context[:, -1:].expand(-1, frames - c, -1, -1, -1)
        flow = torch.stack(flows, 1)
        generated = warp(last.flatten(0, 1), flow.flatten(0, 1)).view_as(last)
        return torch.cat([context, generated], 1)

    # --- the prior ------------------------------------------------------------------------------

    def prior_scale_tril(self, context: Tensor | None) -> Tensor:
        """Cholesky factor of the affinity prior's covariance over z's cells, from the
        ``context`` frames."""
        if context is None:
            raise ValueError("the affinity prior is drawn from the context frames: pass context")
        return affinity_scale_tril(context[:, -1], self.z_shape[1:])

    def prior_mean(self, context: Tensor) -> Tensor:
        """The prior's mean ``(B, *z_shape)`` given ``context`` ``(B, c, C, H, W)``: the latent
        that continues the motion seen between its last two frames (their block-matched velocity
        on the latent grid, carried one step on, in z's velocity channels; no change after it);
        zero for a single context frame."""
        mean = context.new_zeros(len(context), *self.z_shape)
        if context.shape[1] >= 2:
            seen = self.motion_maps(context[:, -2:], self.z_shape[1:])[:, -1]
            mean[:, :2] = self.carry_velocity(seen * math.ceil(self.max_flow))
        return mean

    def correlate(self, eps: Tensor, context: Tensor | None) -> Tensor:
        tril = self.prior_scale_tril(context)
        return sample_correlated(eps, tril) + self.prior_mean(context).to(eps.dtype)

    def sample_repeated(
        self,
        context: Tensor,
        repeats: int,
        frames: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """:meth:`~vidgen.models.vae_base.VAEModule.sample_repeated` with each clip's prior
        (block matching, the affinity's Cholesky factor) and last frame's features computed
        once, not once a repeat."""

        def each(x: Tensor) -> Tensor:
            return x.repeat_interleave(repeats, 0)

        repeated = each(context)
        eps = self.noise(len(repeated), generator)
        tril, mean = each(self.prior_scale_tril(context)), each(self.prior_mean(context))
        z = sample_correlated(eps, tril) + mean.to(eps.dtype)
        return self.decode(z, frames, repeated, each(self.encode(context[:, -1:])))

    def kl(self, mu: Tensor, logvar: Tensor, context: Tensor | None = None) -> Tensor:
        tril = self.prior_scale_tril(context)
        return correlated_kl(mu - self.prior_mean(context).to(mu.dtype), logvar, tril)
