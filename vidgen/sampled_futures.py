"""Scores of sampled futures: K futures of each clip's context against the clip's true future.

A generative model's futures are scored per horizon step as the predictors' rollouts are
(:mod:`vidgen.evaluation`), in two ways over its K samples:

- **best of K**: each clip's sample with the best score over the whole horizon, chosen per
  metric (the lowest mean MSE, the highest mean PSNR, the highest mean SSIM): a whole future,
  never frames stitched from several samples; its score at each step;
- **mean of K**: the score at each step averaged over the K samples (not the score of their
  average, which would be a blur);

beside copy-last-frame and mean-frame of the context. Each sample index (the k-th future of
every clip) also gets its collapse score (:func:`~vidgen.evaluation.collapse_score` against
the true futures: 0 = frozen) and its Fréchet distance to the true futures in the features of
:func:`~vidgen.fvd.clip_features` (named ``frechet``, or ``fvd`` with I3D), beside the
baselines' distances.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat

from vidgen.evaluation import (
    BASELINES,
    METRICS,
    StepScores,
    baseline_scores,
    baselines,
    frame_change,
    frame_metrics,
    horizon_blocks,
)
from vidgen.fvd import FeatureNet, clip_features, frechet_distance

GROUP = "futures"
"""The prefix of sampled futures' results (``futures/best_of_k/mse``, ...)."""
SAMPLED = ("best_of_k", "mean_of_k")
SOURCES = (*SAMPLED, *BASELINES)
LOWER_IS_BETTER = ("mse",)


def best_and_mean(samples: Tensor, target: Tensor) -> dict[str, Tensor]:
    """``{"best_of_k/<metric>": (B, T), "mean_of_k/<metric>": (B, T)}`` of ``samples``
    ``(B, K, T, C, H, W)`` against ``target`` ``(B, T, C, H, W)``."""
    scores = [frame_metrics(samples[:, k], target) for k in range(samples.shape[1])]
    out = {}
    for name in METRICS:
        values = torch.stack([s[name] for s in scores], 1)  # (B, K, T)
        overall = values.mean(-1)
        pick = overall.argmin(1) if name in LOWER_IS_BETTER else overall.argmax(1)
        out[f"best_of_k/{name}"] = values[torch.arange(len(values)), pick]
        out[f"mean_of_k/{name}"] = values.mean(1)
    return out


class FutureMetrics(StepScores):
    """Accumulates the scores of sampled futures (DDP-safe).

    ``update(samples, target, context)`` with ``samples`` ``(B, K, T, C, H, W)``, ``target``
    ``(B, T, C, H, W)`` and ``context`` ``(B, c, C, H, W)``; ``compute()`` returns, for
    sources ``best_of_k``, ``mean_of_k``, ``copy_last`` and ``mean_frame``,
    ``"<source>/<metric>"`` ``(T,)``; ``"samples/collapse"`` and ``"samples/<distance>"``
    ``(K,)``, one per sample index; ``"copy_last/<distance>"`` and
    ``"mean_frame/<distance>"``. ``<distance>`` is the name :func:`clip_features` gives (or
    ``features``' name); a distance over fewer than 2 clips is NaN.
    """

    def __init__(self, horizon: int, features: tuple[str, FeatureNet] | None = None) -> None:
        super().__init__(horizon, SOURCES)
        self.distance, self.features = features if features is not None else clip_features()
        for name in ("sample_change", "true_change", "real", "sampled", *BASELINES):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, samples: Tensor, target: Tensor, context: Tensor) -> None:
        if samples.shape[2:] != target.shape[1:] or target.shape[1] != self.horizon:
            raise ValueError(
                f"samples {tuple(samples.shape)} must be (B, K, *target) with target "
                f"{tuple(target.shape)} of {self.horizon} horizon steps"
            )
        still = baselines(context, self.horizon)
        self.add_scores(
            best_and_mean(samples, target) | baseline_scores(context, target), len(target)
        )
        self.sample_change.append(torch.stack([frame_change(s) for s in samples.unbind(1)], 1))
        self.true_change.append(frame_change(target))
        self.real.append(self.features(target).float())
        sampled = self.features(samples.flatten(0, 1)).float()
        self.sampled.append(sampled.unflatten(0, samples.shape[:2]))
        for b in BASELINES:
            getattr(self, b).append(self.features(still[b]).float())

    def compute(self) -> dict[str, Tensor]:
        out = self.step_means()
        change = dim_zero_cat(self.sample_change).sum(0)
        out["samples/collapse"] = change / dim_zero_cat(self.true_change).sum().clamp_min(1e-12)
        real, sampled = dim_zero_cat(self.real), dim_zero_cat(self.sampled)
        out[f"samples/{self.distance}"] = torch.tensor(
            [distance(real, s) for s in sampled.unbind(1)]
        )
        for b in BASELINES:
            out[f"{b}/{self.distance}"] = torch.tensor(
                distance(real, dim_zero_cat(getattr(self, b)))
            )
        return out


def distance(real: Tensor, fake: Tensor) -> float:
    """:func:`frechet_distance`, NaN for fewer than 2 clips (no covariance to fit)."""
    return frechet_distance(real, fake) if min(len(real), len(fake)) >= 2 else math.nan


def has_futures(results: dict[str, Tensor]) -> bool:
    """Whether ``results`` hold sampled futures' scores."""
    return f"{GROUP}/best_of_k/mse" in results


def format_futures(results: dict[str, Tensor], trained_steps: int | None = None) -> str:
    """Plain-text tables of sampled futures: one per metric, a row per horizon step (best of K,
    mean of K, copy-last, mean-frame), then the samples' collapse and Fréchet distances."""
    blocks = horizon_blocks(results, SOURCES, trained_steps, prefix=f"{GROUP}/")
    collapse_key = f"{GROUP}/samples/collapse"
    collapse = results[collapse_key].reshape(-1)
    blocks.append(
        f"collapse score of each of the {len(collapse)} samples (1 = moves like the truth, "
        f"0 = frozen): mean {float(collapse.mean()):.3f}, min {float(collapse.min()):.3f}"
    )
    prefix = f"{GROUP}/samples/"
    name = next(k[len(prefix) :] for k in results if k.startswith(prefix) and k != collapse_key)
    sampled = results[f"{GROUP}/samples/{name}"].reshape(-1)
    references = ", ".join(f"{b} {float(results[f'{GROUP}/{b}/{name}']):.4f}" for b in BASELINES)
    blocks.append(
        f"{name} distance to the true futures: samples mean {float(sampled.mean()):.4f} "
        f"(min {float(sampled.min()):.4f}); {references}"
    )
    return "\n\n".join(blocks)
