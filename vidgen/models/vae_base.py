"""What every clip VAE shares: posterior, reparameterisation, sampling, interpolation, the
KL-weighted objective with warm-up, and the Lightning steps.

A subclass says how a clip's backbone features become the posterior (:meth:`infer`), how a
latent becomes frames (``decode(z, frames, context, context_features)``: clips
``(B, frames, C, H, W)`` in [0, 1] from latents ``(B, *z_shape)``; a conditional model's start
with ``context``, whose backbone features it may be given) and, if its prior is not N(0, I),
how a prior sample is drawn (:meth:`correlate`) and the KL term taken (:meth:`kl`). A
conditional VAE sets ``condition_frames``: its clips start with that many true frames, which
it copies, and it generates the rest. From those context frames it samples futures of any
horizon (:meth:`sample_futures`), which ``vidgen test`` scores
(:mod:`vidgen.sampled_futures`) and ``vidgen predict`` writes.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import Tensor

from vidgen.models.base import VideoModule
from vidgen.models.losses import kl_divergence
from vidgen.sampled_futures import GROUP, FutureMetrics

LOGVAR_RANGE = (-30.0, 20.0)
"""Log-variances are clamped to this range: exp() stays finite with a large learning rate."""


class VAEModule(VideoModule):
    """Base of the clip VAEs. Besides :class:`VideoModule`'s shared options (``**kwargs``):

    Args:
        z_dim: latent channels.
        frames: frames :meth:`sample` emits by default (reconstructions match their input).
        beta: weight of the KL term; 0 = the paper (reconstruction only).
        kl_warmup_steps: the KL weight rises linearly from 0 to ``beta`` over these steps.
        predict_samples: K, prior samples per clip: a conditional VAE's sampled futures, which
            ``vidgen test`` scores (best and mean of K) and ``vidgen predict`` writes.
    """

    condition_frames = 0
    """True frames a clip starts from (0: none, the paper's unconditional VAE)."""
    z_shape: tuple[int, ...]
    """The shape of one clip's latent (set by the subclass)."""

    def __init__(
        self,
        z_dim: int = 256,
        frames: int = 8,
        beta: float = 0.0,
        kl_warmup_steps: int = 0,
        predict_samples: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if min(z_dim, frames, predict_samples) < 1:
            raise ValueError(
                f"z_dim, frames and predict_samples must be >= 1, got {z_dim}, {frames}, "
                f"{predict_samples}"
            )
        if beta < 0 or kl_warmup_steps < 0:
            raise ValueError(f"beta ({beta}) and kl_warmup_steps ({kl_warmup_steps}) must be >= 0")
        self.z_dim, self.frames, self.predict_samples = z_dim, frames, predict_samples
        self.beta, self.kl_warmup_steps = beta, kl_warmup_steps

    @abstractmethod
    def infer(self, features: Tensor, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip), each ``(B, *z_shape)``, from the clip's
        backbone features ``(B, S, C', h, w)`` (which may be cached) and the clip itself."""

    def correlate(self, eps: Tensor, context: Tensor | None) -> Tensor:
        """A prior sample from standard normal ``eps`` ``(n, *z_shape)`` (N(0, I): itself)."""
        return eps

    def kl(self, mu: Tensor, logvar: Tensor, context: Tensor | None = None) -> Tensor:
        """KL(q(z | clip) || prior), summed over z, averaged over clips."""
        return kl_divergence(mu, logvar)

    def check_z(self, z: Tensor, frames: int | None) -> int:
        """Raise a clear error for latents that are not ``(B, *z_shape)``; the frame count."""
        frames = self.frames if frames is None else frames
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        if tuple(z.shape[1:]) != self.z_shape:
            raise ValueError(
                f"expected z (B, {', '.join(map(str, self.z_shape))}), got {tuple(z.shape)}"
            )
        return frames

    def check_context(self, z: Tensor, frames: int | None, context: Tensor | None) -> int:
        """:meth:`check_z` for a conditional model's :meth:`decode`, which also needs the
        clips' ``context`` ``(B, condition_frames, C, H, W)`` and more frames than it: the
        frame count."""
        frames = self.check_z(z, frames)
        c = self.condition_frames
        if context is None or context.shape[1] != c or context.shape[0] != z.shape[0]:
            got = None if context is None else tuple(context.shape)
            name = type(self).__name__
            raise ValueError(f"{name} needs context (B={z.shape[0]}, {c}, ...), got {got}")
        if frames <= c:
            raise ValueError(f"frames ({frames}) must exceed condition_frames ({c})")
        return frames

    def posterior(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip), each ``(B, *z_shape)``."""
        self.check_video(video)
        return self.infer(self.encode(video), video)

    @staticmethod
    def reparameterise(
        mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def context(self, video: Tensor) -> Tensor | None:
        """The frames a conditional model starts from (``None`` for an unconditional one)."""
        return video[:, : self.condition_frames] if self.condition_frames else None

    def forward(self, video: Tensor, ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Reconstruction, mu, log-variance; z is sampled in training mode, ``mu`` in eval mode.

        ``ids``: the clip's frame ids, for the feature cache (see :meth:`encode`).
        """
        self.check_video(video)
        features = self.encode(video, ids)
        mu, logvar = self.infer(features, video)
        z = self.reparameterise(mu, logvar) if self.training else mu
        c = self.condition_frames
        context_features = features[:, :c] if c else None
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
        return self.decode(self.correlate(self.noise(n, generator), context), frames, context)

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``eps ~ N(0, I)`` ``(n, *z_shape)`` on the model's device, drawn on ``generator``'s
        device from it (the same draws wherever the model runs) or from the global RNG."""
        device = self.draw_device(generator)
        return torch.randn(n, *self.z_shape, generator=generator, device=device).to(self.device)

    def draw_device(self, generator: torch.Generator | None) -> torch.device:
        """Where random draws from ``generator`` are made: its own device, or the model's for
        the global RNG (``None``)."""
        return self.device if generator is None else generator.device

    def sample_futures(
        self,
        context: Tensor,
        horizon: int,
        samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``samples`` futures ``(B, samples, horizon, C, H, W)`` of each clip's ``context``
        ``(B, c, C, H, W)`` (its last ``condition_frames`` frames are used), from the prior.

        Any horizon: the model generates at most ``frames - condition_frames`` steps (a
        training clip's) from one prior draw; a longer future goes on from its own last
        ``condition_frames`` frames with a new draw, as often as it takes.
        """
        c = self.condition_frames
        if not c:
            raise ValueError("an unconditional VAE has no context to sample futures of")
        if context.ndim != 5 or context.shape[1] < c or horizon < 1 or samples < 1:
            raise ValueError(
                f"expected context (B, >= {c}, C, H, W), horizon >= 1 and samples >= 1, got "
                f"{tuple(context.shape)}, {horizon}, {samples}"
            )
        current, repeats = context[:, -c:], samples
        stretch, futures = self.frames - c, []
        for start in range(0, horizon, stretch):
            steps = min(stretch, horizon - start)
            clips = self.sample_repeated(current, repeats, c + steps, generator)
            futures.append(clips[:, c:])
            current, repeats = clips[:, -c:], 1
        return torch.cat(futures, 1).unflatten(0, (len(context), samples))

    def sample_repeated(
        self,
        context: Tensor,
        repeats: int,
        frames: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``repeats`` clips ``(B * repeats, frames, C, H, W)`` from the prior for each clip of
        ``context`` ``(B, c, C, H, W)``, a clip's next to each other: :meth:`sample` of the
        repeated context. A model whose prior reads much off its context overrides it to read
        each clip once."""
        repeated = context.repeat_interleave(repeats, 0)
        return self.sample(len(repeated), frames, generator, context=repeated)

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
        terms["loss"] = terms["recon"] + kl_weight * terms["kl"] if kl_weight else terms["recon"]
        return terms

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
        failure mode) and its last frame as baselines. In a test, a conditional model's sampled
        futures are scored too (:meth:`score_futures`)."""
        video = batch["video"]
        mu, logvar = self.posterior(video)
        recon = self.decode(mu, video.shape[1], self.context(video))
        self.log_terms(stage, self.objective(recon, video, mu, logvar, self.beta), video.shape[0])
        c = self.condition_frames
        self.update_metrics(stage, recon[:, c:], video[:, c:], video)
        if stage == "test" and c:
            self.score_futures(stage, video)
        return {"target": video, "pred": recon}

    def score_futures(self, stage: str, video: Tensor) -> None:
        """Sample ``predict_samples`` futures of the clips' context over the rest of them and
        update their scores (:class:`~vidgen.sampled_futures.FutureMetrics`), reported as
        ``<stage>/futures/...``."""
        c = self.condition_frames
        context, target = video[:, :c], video[:, c:]
        samples = self.sample_futures(context, target.shape[1], self.predict_samples)
        metrics = self.stage_metrics(f"{stage}/{GROUP}", target.shape[1], FutureMetrics)
        metrics.update(samples, target, context)

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("test", batch)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        """``target`` (the clip), ``pred`` (its reconstruction), ``samples`` (prior samples of
        the same length: one per clip ``(B, T, C, H, W)``, or ``predict_samples`` per clip
        ``(B, N, T, C, H, W)``; a conditional model's are the clip's context followed by a
        sampled future, :meth:`sample_futures`) as float videos in [0, 1], and ``index``."""
        video = batch["video"]
        n, c = self.predict_samples, self.condition_frames
        if c:
            futures = self.sample_futures(video[:, :c], video.shape[1] - c, n)
            context = video[:, None, :c].expand(-1, n, -1, -1, -1, -1)
            samples = torch.cat([context, futures], 2)
        else:
            samples = self.sample(len(video) * n, video.shape[1]).unflatten(0, (len(video), n))
        return {
            "target": video,
            "pred": self.reconstruct(video),
            "samples": samples[:, 0] if n == 1 else samples,
            "index": batch["index"],
        }
