"""Evaluation: per-frame MSE / PSNR / SSIM per horizon step, trivial baselines, collapse score.

All functions take float videos in [0, 1] shaped ``(B, T, C, H, W)``; "horizon step" ``t`` is
the ``t``-th predicted frame after the context. SSIM is scored frame by frame as
``(B*T, C, H, W)`` (torchmetrics treats 5-D input as volumetric).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

METRICS = ("mse", "psnr", "ssim")
BASELINES = ("copy_last", "mean_frame")


def frame_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each frame: ``(B, T)``."""
    return (pred.float() - target.float()).pow(2).flatten(2).mean(-1)


def frame_psnr(pred: Tensor, target: Tensor, eps: float = 1e-10) -> Tensor:
    """PSNR in dB of each frame for data range 1: ``(B, T)``."""
    return 10.0 * torch.log10(1.0 / frame_mse(pred, target).clamp_min(eps))


def frame_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM (Gaussian window, torchmetrics) of each frame: ``(B, T)``.

    The window is 11 pixels, or the largest odd size that fits frames smaller than that.
    """
    b, t = pred.shape[:2]
    side = min(pred.shape[-2:])
    kernel = min(11, side if side % 2 else side - 1)
    ssim = structural_similarity_index_measure(
        pred.float().flatten(0, 1),
        target.float().flatten(0, 1),
        data_range=1.0,
        kernel_size=kernel,
        reduction="none",
    )
    return ssim.view(b, t)


def frame_metrics(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """All per-frame metrics: name -> ``(B, T)``."""
    return {
        "mse": frame_mse(pred, target),
        "psnr": frame_psnr(pred, target),
        "ssim": frame_ssim(pred, target),
    }


def baselines(context: Tensor, horizon: int) -> dict[str, Tensor]:
    """Trivial predictions of ``horizon`` frames from ``context`` ``(B, T0, C, H, W)``.

    ``copy_last`` repeats the last context frame; ``mean_frame`` repeats the context's mean.
    """
    last = context[:, -1:].expand(-1, horizon, -1, -1, -1)
    mean = context.float().mean(1, keepdim=True).expand(-1, horizon, -1, -1, -1)
    return {"copy_last": last, "mean_frame": mean}


def frame_change(video: Tensor) -> Tensor:
    """Mean absolute frame-to-frame change of each video: ``(B,)`` (0 for a still video)."""
    return (video[:, 1:].float() - video[:, :-1].float()).abs().flatten(1).mean(-1)


def collapse_score(pred: Tensor, target: Tensor) -> Tensor:
    """Frame-to-frame change of the prediction / that of the ground truth (scalar).

    1 means the prediction moves as much as the truth; 0 is the paper's "sequence collapse"
    (the same frame at every step).
    """
    return frame_change(pred).sum() / frame_change(target).sum().clamp_min(1e-12)


class HorizonMetrics(Metric):
    """Accumulates per-horizon-step metric sums for the model and the baselines (DDP-safe).

    ``update(pred, target, context)`` with ``pred``/``target`` ``(B, T, C, H, W)``;
    ``compute()`` returns ``{"<source>/<metric>": (T,) tensor}`` for sources ``model``,
    ``copy_last``, ``mean_frame`` plus ``"model/collapse"`` (scalar).
    """

    full_state_update = False

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon
        sources = ("model", *BASELINES)
        self.add_state(
            "sums", torch.zeros(len(sources), len(METRICS), horizon), dist_reduce_fx="sum"
        )
        self.add_state("count", torch.zeros(()), dist_reduce_fx="sum")
        self.add_state("change", torch.zeros(2), dist_reduce_fx="sum")
        self.sources = sources

    def update(self, pred: Tensor, target: Tensor, context: Tensor) -> None:
        if pred.shape != target.shape or pred.shape[1] != self.horizon:
            raise ValueError(
                f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match with "
                f"{self.horizon} horizon steps"
            )
        candidates = {"model": pred, **baselines(context, self.horizon)}
        for i, source in enumerate(self.sources):
            values = frame_metrics(candidates[source], target)
            for j, name in enumerate(METRICS):
                self.sums[i, j] += values[name].sum(0)
        self.count += pred.shape[0]
        self.change += torch.stack([frame_change(pred).sum(), frame_change(target).sum()])

    def compute(self) -> dict[str, Tensor]:
        means = self.sums / self.count.clamp_min(1)
        out = {
            f"{source}/{name}": means[i, j]
            for i, source in enumerate(self.sources)
            for j, name in enumerate(METRICS)
        }
        out["model/collapse"] = self.change[0] / self.change[1].clamp_min(1e-12)
        return out


def format_table(results: dict[str, Tensor]) -> str:
    """A plain-text table: one row per horizon step, model vs baselines, then the means."""
    horizon = len(results["model/mse"])
    cols = [f"{s}/{m}" for m in METRICS for s in ("model", *BASELINES)]
    header = "step | " + " | ".join(f"{c:>18}" for c in cols)
    lines = [header, "-" * len(header)]
    for t in range(horizon):
        lines.append(f"{t + 1:>4} | " + " | ".join(f"{results[c][t]:>18.4f}" for c in cols))
    lines.append(" all | " + " | ".join(f"{results[c].mean():>18.4f}" for c in cols))
    lines.append(
        f"collapse score (1 = moves like the truth, 0 = frozen): "
        f"{float(results['model/collapse']):.3f}"
    )
    return "\n".join(lines)
