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

Options that make z matter (``docs/vae.md`` measures them; all off by default = the paper):

- ``condition_frames=c > 0``: a conditional VAE in SVG's spirit (Denton & Fergus 2018). The
  decoder sees the backbone map of the clip's last context frame at every step, with z broadcast
  over it (use a :class:`ConvLSTMCore` decoder to keep the map's layout), and generates the
  frames after the first ``c``; z only has to carry what the context does not show: the motion.
  Reconstructions, samples and interpolations start with the given context frames.
- ``output="warp"``: the head emits a 2-channel flow per step (``tanh * max_flow`` pixels),
  composed with the steps before it (:func:`~vidgen.models.motion.compose_flows`): each
  generated frame is the last context frame's pixels moved along the accumulated flow (one
  bilinear resampling), so shapes stay sharp, and the decoder's constant input gives constant
  velocity by default; the head's deconvolutions start at zero, i.e. at "copy the context
  frame" (or, with a map latent and ``observed_motion``, at "move it at z's velocity").
- ``prior="affinity"`` (with a latent map): the cells of each of z's channels are correlated by
  how alike they look in the context frame and how close they are
  (:mod:`~vidgen.models.priors`), instead of independent: a prior sample moves the cells of one
  thing together instead of tearing it apart. The KL term is taken against this prior.
- ``free_bits``: the KL term in the loss counts each latent dimension as at least this many
  nats (batch mean; Kingma et al. 2016), so the warm-up cannot switch the posterior off.
- ``observed_motion``: the encoder also reads each frame's block-matched velocity
  (:func:`~vidgen.models.motion.block_match` against the frame before, averaged over the
  backbone's grid where there is texture to see it move, :func:`~vidgen.models.motion.pool_flow`):
  the motion the latent has to carry is in its input from the first step, not only implied by
  features of consecutive frames that barely differ.
- ``latent="map"`` (with ``condition_frames`` and map cores): z is a map ``(z_dim, h, w)`` over
  the backbone's feature grid instead of one vector: each place of the context frame gets its
  own latent, so the motion of a thing is encoded where the thing is (the decoder does not have
  to find which part of a global vector belongs to which object). Prior samples draw every
  place's motion independently. With ``observed_motion`` and ``output="warp"`` too, z's first
  two channels *are* a velocity (pixels a step): mu starts as the velocity seen at the first
  generated frame, and the decoder's flow starts from it (upsampled to pixels, each cell's
  velocity over its pixels; the head adds a change), so z drives the motion from the first step
  instead of having to be learned through the decoder.
- ``motion_steps`` (with that velocity latent): z also carries every later step's change of
  velocity, 2 channels a step. A step's velocity is the one before carried along itself
  (:func:`~vidgen.models.motion.carry`: what moves takes its velocity with it) plus z's change
  for it, in units of ``change_unit`` pixels; mu starts as the changes seen, so an untrained
  model already reconstructs the clip's motion, bounces included. A prior sample (changes ~
  N(0, 1)) moves at a random velocity that drifts by about ``change_unit`` a step.

Loss: ``beta=0`` is the paper, reconstruction (MSE) only; ``beta>0`` adds ``beta * KL`` with a
linear warm-up over ``kl_warmup_steps`` optimiser steps. The KL is summed over z's dimensions
and averaged over clips while the MSE is averaged over pixels, so useful ``beta`` values are
small (1e-4 .. 1e-2; 1e-6 for a latent map with ``motion_steps``, whose KL is thousands of nats).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from vidgen.models.base import CoreFactory, HeadFactory, VideoModule, paper_adam
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.losses import VideoLoss, kl_divergence
from vidgen.models.motion import block_match, carry, compose_flows, pool_flow, warp
from vidgen.models.priors import affinity_scale_tril, correlated_kl, sample_correlated
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
        decoder: builds the decoder core from ``(z_dim, 1, 1)`` (or, with ``condition_frames``,
            ``(z_dim + C', h, w)``: z broadcast over the context frame's backbone map); it gets
            z at every step.
        head: builds the frame head from ``(decoder.out_shape, image_size)``, e.g.
            :class:`UpsampleDeconvHead` (paper) or :class:`MultiScaleHead`.
        z_dim: latent size.
        frames: frames :meth:`sample` emits by default (reconstructions match their input).
        beta: weight of the KL term; 0 = the paper (MSE only).
        kl_warmup_steps: the KL weight rises linearly from 0 to ``beta`` over these steps.
        free_bits: nats per latent dimension below which the KL term is not pushed down.
        observed_motion: the encoder also reads each frame's block-matched velocity (2 extra
            channels on the feature grid); with a map latent and ``output="warp"``, z's first
            two channels start as the velocity seen and the flow starts from them.
        motion_steps: with that velocity latent, z also carries each later generated step's
            change of velocity (2 channels a step: ``z_dim >= 2 * (frames - condition_frames)``),
            starting as the changes seen; without it the velocity stays as it is.
        change_unit: pixels a step of velocity change per unit of z (``motion_steps``): a
            prior sample's velocity drifts by about this much a step.
        prior: ``"standard"``: z ~ N(0, I); ``"affinity"`` (map latent): each channel's cells
            correlated by how alike they look in the context frame and how close they are
            (:mod:`vidgen.models.priors`): a sample moves a thing's cells together; the KL term
            is taken against it.
        latent: ``"vector"`` (paper): z ``(z_dim,)``; ``"map"``: z ``(z_dim, h, w)`` on the
            backbone's feature grid (needs ``condition_frames`` and an encoder that keeps the
            map, e.g. :class:`ConvLSTMCore`).
        condition_frames: true frames the decoder starts from (0 = the paper: none).
        output: ``"frame"`` (paper): the head paints frames; ``"warp"``: the head's 2-channel
            flow moves the last context frame (needs ``condition_frames >= 1``).
        max_flow: the largest displacement a step, in pixels, of ``output="warp"``.
        logvar_init: initial posterior log-variance (the bias of its output; 0 = N(., 1)): a
            low value lets the small differences between clips' means reach the decoder above
            the sampling noise from the first steps.
        predict_samples: prior samples per clip that ``vidgen predict`` writes.
        loss: reconstruction loss (default: MSE, the paper's).
        optimizer: default Adam with lr 0.01 (paper).
        lr_scheduler: e.g. ``StepLR(step_size=1000, gamma=0.1)`` per epoch (paper).
        feature_cache: GiB of memory for the backbone features of true training frames,
            computed once per frame (:mod:`vidgen.models.feature_cache`; 0 = off). Needs data
            with ``frame_ids`` (every embedded and file source has them).
        channels_last: run the backbone in NHWC memory layout (default: on; same features
            to 1e-5; 1.0-1.5x faster training steps on a CPU, ``benchmarks/throughput.py``).
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
        free_bits: float = 0.0,
        latent: Literal["vector", "map"] = "vector",
        observed_motion: bool = False,
        motion_steps: bool = False,
        change_unit: float = 1.0,
        prior: Literal["standard", "affinity"] = "standard",
        condition_frames: int = 0,
        output: Literal["frame", "warp"] = "frame",
        max_flow: float = 8.0,
        logvar_init: float = 0.0,
        predict_samples: int = 1,
        loss: VideoLoss | None = None,
        optimizer: OptimizerCallable = paper_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        feature_cache: float = 0.0,
        channels_last: bool = True,
    ) -> None:
        super().__init__(
            image_size,
            backbone_layer,
            backbone_weights,
            loss,
            optimizer,
            lr_scheduler,
            feature_cache,
            channels_last,
        )
        self.save_hyperparameters(ignore=["loss"])
        for name, value in (
            ("z_dim", z_dim),
            ("frames", frames),
            ("predict_samples", predict_samples),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if beta < 0 or kl_warmup_steps < 0 or free_bits < 0:
            raise ValueError(
                f"beta ({beta}), kl_warmup_steps ({kl_warmup_steps}) and free_bits ({free_bits}) "
                "must be >= 0"
            )
        if not 0 <= condition_frames < frames:
            raise ValueError(
                f"condition_frames must be in [0, frames={frames}), got {condition_frames}"
            )
        if output not in ("frame", "warp") or (output == "warp" and not condition_frames):
            raise ValueError(
                f"output must be 'frame' or 'warp' (with condition_frames), got {output!r}"
            )
        c, h, w = self.feature_shape
        self.encoder = encoder((c + 2, h, w) if observed_motion else self.feature_shape)
        self.observed_motion = observed_motion
        if latent == "map":
            if not condition_frames or self.encoder.out_shape[1:] != (h, w):
                raise ValueError(
                    "latent='map' needs condition_frames >= 1 and an encoder that keeps the "
                    f"{h}x{w} feature map (e.g. vidgen.models.ConvLSTMCore); got encoder output "
                    f"{self.encoder.out_shape}"
                )
            if observed_motion and z_dim < 2:
                raise ValueError("latent='map' with observed_motion needs z_dim >= 2")
            self.to_latent = nn.Conv2d(self.encoder.out_shape[0], 2 * z_dim, 1)
        elif latent == "vector":
            self.to_latent = nn.Linear(math.prod(self.encoder.out_shape), 2 * z_dim)
        else:
            raise ValueError(f"latent must be 'vector' or 'map', got {latent!r}")
        if logvar_init:
            nn.init.constant_(self.to_latent.bias[z_dim:], logvar_init)
        if observed_motion and latent == "map":  # z starts exactly as the motion seen
            nn.init.zeros_(self.to_latent.weight[:z_dim])
            nn.init.zeros_(self.to_latent.bias[:z_dim])
        self.decoder = decoder((z_dim + c, h, w) if condition_frames else (z_dim, 1, 1))
        if output == "warp":
            self.head = head(self.decoder.out_shape, image_size, out_channels=2)
            self.head.zero_output_()  # flow 0: start at "copy the context frame"
        else:
            self.head = head(self.decoder.out_shape, image_size)
        self.z_dim = z_dim
        self.z_shape = (z_dim, h, w) if latent == "map" else (z_dim,)
        self.frames = frames
        self.beta = beta
        self.kl_warmup_steps = kl_warmup_steps
        self.free_bits = free_bits
        self.condition_frames = condition_frames
        self.output = output
        self.max_flow = max_flow
        self.predict_samples = predict_samples
        self.motion_skip = observed_motion and latent == "map" and output == "warp"
        if motion_steps and not (self.motion_skip and z_dim >= 2 * (frames - condition_frames)):
            raise ValueError(
                "motion_steps needs latent='map', observed_motion, output='warp' and z_dim >= "
                f"2 * (frames - condition_frames) = {2 * (frames - condition_frames)}, "
                f"got z_dim={z_dim}"
            )
        if change_unit <= 0:
            raise ValueError(f"change_unit must be > 0, got {change_unit}")
        if prior not in ("standard", "affinity"):
            raise ValueError(f"prior must be 'standard' or 'affinity', got {prior!r}")
        if prior == "affinity" and (latent != "map" or free_bits):
            raise ValueError("prior='affinity' needs latent='map' and free_bits=0")
        self.prior = prior
        self.motion_steps = motion_steps
        self.change_unit = change_unit

    # --- the model -------------------------------------------------------------------------

    def posterior(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip), each ``(B, *z_shape)``."""
        self.check_video(video)
        return self.infer(self.encode(video), video)

    def infer(self, features: Tensor, video: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip) from the clip's backbone features
        ``(B, S, C', h, w)`` (which may be cached: the backbone is frozen) and, with
        ``observed_motion``, the clip itself."""
        motion = None
        if self.observed_motion:
            if video is None:
                raise ValueError("observed_motion reads the clip: pass video to infer()")
            motion = self.motion_maps(video, features.shape[-2:])
            features = torch.cat([features, motion], 2)
        out, _ = self.encoder(features)
        last = out[:, -1] if len(self.z_shape) > 1 else out[:, -1].flatten(1)
        mu, logvar = self.to_latent(last).chunk(2, dim=1)
        if motion is not None and len(self.z_shape) > 1:  # z starts as the motion seen
            seen = self.motion_latent(motion[:, self.condition_frames :] * math.ceil(self.max_flow))
            mu = mu + F.pad(seen, (0, 0, 0, 0, 0, self.z_dim - seen.shape[1]))
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def motion_latent(self, seen: Tensor) -> Tensor:
        """The latent channels that reproduce the velocities ``seen`` ``(B, S, 2, h, w)`` (pixels a
        step, one map per generated frame) through :meth:`step_velocities`: the first step's
        velocity, then (``motion_steps``) each later step's change from the velocity carried on,
        in ``change_unit`` s, as many as z has room for."""
        if not self.motion_steps:
            return seen[:, 0]
        steps = min(seen.shape[1], self.z_dim // 2)
        changes = [seen[:, 0]] + [
            (seen[:, t] - self.carry(seen[:, t - 1])) / self.change_unit for t in range(1, steps)
        ]
        return torch.cat(changes, 1)

    def carry(self, velocity: Tensor) -> Tensor:
        """A velocity map ``(B, 2, h, w)`` (pixels a step, on the latent grid) one step on
        (:func:`~vidgen.models.motion.carry`)."""
        cell = self.image_size / velocity.shape[-1]
        return carry(velocity / cell) * cell

    def step_velocities(self, z: Tensor, steps: int) -> Tensor:
        """The velocity maps ``(B, steps, 2, h, w)`` (pixels a step) that z's motion channels
        give the generated steps: z's velocity at the first; then, with ``motion_steps``, each
        step's velocity carried on (:meth:`carry`) plus z's change for that step (none past z's
        channels: constant velocity); without, the same map at every step."""
        velocity, out = z[:, :2], [z[:, :2]]
        for t in range(1, steps):
            if self.motion_steps:
                velocity = self.carry(velocity)
                if 2 * t + 2 <= self.z_dim:
                    velocity = velocity + self.change_unit * z[:, 2 * t : 2 * t + 2]
            out.append(velocity)
        return torch.stack(out, 1)

    def motion_maps(self, video: Tensor, size: tuple[int, int]) -> Tensor:
        """Each frame's block-matched velocity from the frame before (the first: none), in
        units of ``max_flow``, averaged over a ``size`` grid where there is texture to see it
        move (:func:`~vidgen.models.motion.pool_flow`): ``(B, S, 2, *size)``."""
        b, s = video.shape[:2]
        before = torch.cat([video[:, :1], video[:, :-1]], 1).flatten(0, 1)
        radius = math.ceil(self.max_flow)
        frames = video.flatten(0, 1).detach()
        flow = block_match(before.detach(), frames, radius) / radius
        return pool_flow(flow, frames, size).view(b, s, 2, *size)

    @staticmethod
    def reparameterise(
        mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def decode(
        self,
        z: Tensor,
        frames: int | None = None,
        context: Tensor | None = None,
        context_features: Tensor | None = None,
    ) -> Tensor:
        """Frames from latents: ``z`` ``(B, *z_shape)`` -> ``(B, frames, C, H, W)`` in [0, 1].

        A conditional model (``condition_frames = c``) needs ``context``, the clip's first ``c``
        frames ``(B, c, C, H, W)``: they are the output's first ``c`` frames and the decoder
        generates the other ``frames - c``. ``context_features`` (its backbone features
        ``(B, c, C', h, w)``) saves encoding it again.
        """
        frames = self.frames if frames is None else frames
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if tuple(z.shape[1:]) != self.z_shape:
            raise ValueError(
                f"expected z (B, {', '.join(map(str, self.z_shape))}), got {tuple(z.shape)}"
            )
        if not self.condition_frames:
            out, _ = self.decoder(z[:, None, :, None, None].expand(-1, frames, -1, 1, 1))
            return self.render(self.head, out)
        c = self.condition_frames
        if context is None or context.shape[1] != c or context.shape[0] != z.shape[0]:
            got = None if context is None else tuple(context.shape)
            raise ValueError(
                f"a conditional VAE needs context (B={z.shape[0]}, {c}, ...), got {got}"
            )
        if frames <= c:
            raise ValueError(f"frames ({frames}) must exceed condition_frames ({c})")
        if context_features is None:
            context_features = self.encode(context[:, -1:])
        maps = context_features[:, -1]  # (B, C', h, w)
        z_map = z if z.ndim == 4 else z[:, :, None, None].expand(-1, -1, *maps.shape[-2:])
        steps = torch.cat([z_map, maps], 1)[:, None].expand(-1, frames - c, -1, -1, -1)
        out, _ = self.decoder(steps)
        if self.output == "frame":
            generated = self.render(self.head, out)
        else:
            steps = torch.tanh(self.render(self.head.logits, out)) * self.max_flow
            if self.motion_skip:  # z's motion channels are velocities: the flow starts there
                velocity = self.step_velocities(z, steps.shape[1])
                seen = F.interpolate(velocity.flatten(0, 1), size=steps.shape[-2:], mode="nearest")
                steps = steps + seen.view_as(steps)
            total, flows = steps[:, 0], [steps[:, 0]]
            for t in range(1, steps.shape[1]):  # each frame moves on from the one before
                total = compose_flows(total, steps[:, t])
                flows.append(total)
            last = context[:, -1:].expand(-1, frames - c, -1, -1, -1)
            flow = torch.stack(flows, 1)
            generated = warp(last.flatten(0, 1), flow.flatten(0, 1)).view_as(last)
        return torch.cat([context, generated], 1)

    def context(self, video: Tensor) -> Tensor | None:
        """The frames a conditional model starts from (``None`` for the paper's VAE)."""
        return video[:, : self.condition_frames] if self.condition_frames else None

    def forward(self, video: Tensor, ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction, mu, log-variance; z is sampled in training mode, ``mu`` in eval mode.

        ``ids``: the clip's frame ids, for the feature cache (see :meth:`encode`).
        """
        self.check_video(video)
        features = self.encode(video, ids)
        mu, logvar = self.infer(features, video)
        z = self.reparameterise(mu, logvar) if self.training else mu
        context_features = features[:, : self.condition_frames] if self.condition_frames else None
        return self.decode(z, video.shape[1], self.context(video), context_features), mu, logvar

    def reconstruct(self, video: Tensor, sample: bool = False) -> Tensor:
        """The clip through the VAE, from z = mu (or a posterior sample if ``sample``)."""
        mu, logvar = self.posterior(video)
        z = self.reparameterise(mu, logvar) if sample else mu
        return self.decode(z, video.shape[1], self.context(video))

    def sample(
        self,
        n: int,
        frames: int | None = None,
        generator: torch.Generator | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """``n`` new clips ``(n, frames, C, H, W)`` from the prior (seeded by ``generator`` or the
        global RNG); a conditional model continues ``context`` ``(n, c, C, H, W)``."""
        device = self.device if generator is None else generator.device
        z = torch.randn(n, *self.z_shape, generator=generator, device=device).to(self.device)
        scale_tril = self.prior_scale_tril(context)
        if scale_tril is not None:
            z = sample_correlated(z, scale_tril)
        return self.decode(z, frames, context)

    def prior_scale_tril(self, context: Tensor | None) -> Tensor | None:
        """Cholesky factor of the affinity prior's covariance over z's cells, from the
        ``context`` frames (``None`` for the standard prior)."""
        if self.prior == "standard":
            return None
        if context is None:
            raise ValueError("the affinity prior is drawn from the context frames: pass context")
        return affinity_scale_tril(context[:, -1], self.z_shape[1:])

    def kl(self, mu: Tensor, logvar: Tensor, context: Tensor | None = None) -> Tensor:
        """KL(q(z | clip) || prior), summed over z, averaged over clips (the affinity prior
        needs the clips' ``context`` frames)."""
        scale_tril = self.prior_scale_tril(context)
        if scale_tril is None:
            return kl_divergence(mu, logvar)
        return correlated_kl(mu, logvar, scale_tril)

    def interpolate(
        self, a: Tensor, b: Tensor, steps: int = 8, frames: int | None = None
    ) -> Tensor:
        """Clips decoded along the line between the latents (means) of clips ``a`` and ``b``.

        ``a`` and ``b`` are ``(B, S, C, H, W)``; returns ``(B, steps, frames, C, H, W)`` whose
        first and last entries are the reconstructions of ``a`` and ``b`` (a conditional model
        starts every entry from ``a``'s context: the path goes from ``a``'s motion to ``b``'s).
        """
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        mu_a, _ = self.posterior(a)
        mu_b, _ = self.posterior(b)
        alpha = torch.linspace(0, 1, steps, device=mu_a.device, dtype=mu_a.dtype)
        alpha = alpha.view(1, steps, *[1] * len(self.z_shape))
        z = torch.lerp(mu_a[:, None], mu_b[:, None], alpha)  # (B, steps, *z_shape)
        context = self.context(a)
        if context is not None:
            context = context.repeat_interleave(steps, 0)
        clips = self.decode(z.flatten(0, 1), frames or a.shape[1], context)
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
        c = self.condition_frames  # the context frames are copied: no loss on them
        terms = self.loss(recon[:, c:], video[:, c:], self.backbone)
        terms["recon"] = terms.pop("loss")
        terms["kl"] = self.kl(mu, logvar, self.context(video))
        terms["kl_weight"] = torch.tensor(kl_weight, device=recon.device)
        kl = terms["kl"]
        if self.free_bits:
            per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
            kl = per_dim.flatten(1).mean(0).clamp_min(self.free_bits).sum()
        terms["loss"] = terms["recon"] + kl_weight * kl if kl_weight else terms["recon"]
        return terms

    # --- Lightning -------------------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        video = batch["video"]
        recon, mu, logvar = self(video, self.frame_ids(batch))
        terms = self.objective(recon, video, mu, logvar, self.kl_weight())
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]

    def evaluate(self, stage: str, batch: dict) -> dict[str, Tensor]:
        """Reconstruct from z = mu; log the loss (KL at full ``beta``, so ``val/loss`` is
        comparable across the warm-up) and update the per-frame metrics of the generated frames
        (after the context of a conditional model), with the clip's mean frame (the paper's
        failure mode) and its last frame as baselines."""
        video = batch["video"]
        mu, logvar = self.posterior(video)
        recon = self.decode(mu, video.shape[1], self.context(video))
        self.log_terms(stage, self.objective(recon, video, mu, logvar, self.beta), video.shape[0])
        c = self.condition_frames
        self.update_metrics(stage, recon[:, c:], video[:, c:], video)
        return {"target": video, "pred": recon}

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("test", batch)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        """``target`` (the clip), ``pred`` (its reconstruction), ``samples`` (prior samples of
        the same length: one per clip ``(B, T, C, H, W)``, or ``predict_samples`` per clip
        ``(B, N, T, C, H, W)``; a conditional model's continue the clip's context) as float
        videos in [0, 1], and ``index``."""
        video = batch["video"]
        n = self.predict_samples
        context = self.context(video)
        if context is not None:
            context = context.repeat_interleave(n, 0)
        samples = self.sample(video.shape[0] * n, video.shape[1], context=context)
        return {
            "target": video,
            "pred": self.reconstruct(video),
            "samples": samples if n == 1 else samples.view(len(video), n, *samples.shape[1:]),
            "index": batch["index"],
        }
