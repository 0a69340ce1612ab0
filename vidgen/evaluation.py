"""Evaluation: per-frame MSE / PSNR / SSIM per horizon step, trivial baselines, collapse score.

All functions take float videos in [0, 1] shaped ``(B, T, C, H, W)``; "horizon step" ``t`` is
the ``t``-th predicted frame after the context. SSIM is scored frame by frame as
``(B*T, C, H, W)`` (torchmetrics treats 5-D input as volumetric).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METRICS = ("mse", "psnr", "ssim")
BASELINES = ("copy_last", "mean_frame")
SOURCES = ("model", *BASELINES)
UNITS = {"mse": "lower is better", "psnr": "dB, higher is better", "ssim": "higher is better"}


def frame_mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of each frame: ``(B, T)``."""
    return (pred.float() - target.float()).pow(2).flatten(2).mean(-1)


def frame_psnr(pred: Tensor, target: Tensor, eps: float = 1e-10) -> Tensor:
    """PSNR in dB of each frame for data range 1: ``(B, T)``."""
    return 10.0 * torch.log10(1.0 / frame_mse(pred, target).clamp_min(eps))


def frame_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM (Gaussian window, torchmetrics) of each frame: ``(B, T)``.

    The window is 11 pixels (sigma 1.5), or for frames smaller than that the largest odd size
    that fits, with sigma scaled alike (torchmetrics sizes a Gaussian window from sigma alone).
    As in torchmetrics, frames are reflect-padded and SSIM is averaged over every pixel.
    """
    b, t = pred.shape[:2]
    side = min(pred.shape[-2:])
    kernel = min(11, side if side % 2 else side - 1)
    ssim = structural_similarity_index_measure(
        pred.float().flatten(0, 1),
        target.float().flatten(0, 1),
        data_range=1.0,
        sigma=1.5 * kernel / 11,
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


def baseline_scores(context: Tensor, target: Tensor) -> dict[str, Tensor]:
    """``"<baseline>/<metric>"`` ``(B, T)``: the per-frame scores of the :func:`baselines` of
    ``context`` against ``target`` ``(B, T, C, H, W)``."""
    scores = {}
    for source, video in baselines(context, target.shape[1]).items():
        scores |= {f"{source}/{m}": v for m, v in frame_metrics(video, target).items()}
    return scores


class StepScores(Metric):
    """Per-horizon-step sums of every metric of ``METRICS`` for named ``sources`` (DDP-safe):
    what the predictors' :class:`HorizonMetrics` and sampled futures' scores accumulate.
    :meth:`add_scores` adds a batch's ``"<source>/<metric>"`` ``(B, T)`` scores;
    :meth:`step_means` gives each ``(T,)`` mean over the clips."""

    full_state_update = False

    def __init__(self, horizon: int, sources: tuple[str, ...]) -> None:
        super().__init__()
        self.horizon = horizon
        self.sources = sources
        self.add_state(
            "sums", torch.zeros(len(sources), len(METRICS), horizon), dist_reduce_fx="sum"
        )
        self.add_state("count", torch.zeros(()), dist_reduce_fx="sum")

    def add_scores(self, scores: dict[str, Tensor], clips: int) -> None:
        """Add the ``(B, T)`` scores ``scores["<source>/<metric>"]`` of ``clips`` clips."""
        for i, source in enumerate(self.sources):
            for j, name in enumerate(METRICS):
                self.sums[i, j] += scores[f"{source}/{name}"].sum(0)
        self.count += clips

    def step_means(self) -> dict[str, Tensor]:
        """``"<source>/<metric>"``: its ``(T,)`` mean per horizon step over the clips."""
        means = self.sums / self.count.clamp_min(1)
        return {
            f"{source}/{name}": means[i, j]
            for i, source in enumerate(self.sources)
            for j, name in enumerate(METRICS)
        }


class HorizonMetrics(StepScores):
    """Accumulates per-horizon-step metric sums for the model and the baselines (DDP-safe).

    ``update(pred, target, context)`` with ``pred``/``target`` ``(B, T, C, H, W)``;
    ``compute()`` returns ``{"<source>/<metric>": (T,) tensor}`` for sources ``model``,
    ``copy_last``, ``mean_frame`` plus ``"model/collapse"`` (scalar).
    """

    def __init__(self, horizon: int) -> None:
        super().__init__(horizon, SOURCES)
        self.add_state("change", torch.zeros(2), dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, context: Tensor) -> None:
        if pred.shape != target.shape or pred.shape[1] != self.horizon:
            raise ValueError(
                f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match with "
                f"{self.horizon} horizon steps"
            )
        model = {f"model/{m}": v for m, v in frame_metrics(pred, target).items()}
        self.add_scores(model | baseline_scores(context, target), pred.shape[0])
        self.change += torch.stack([frame_change(pred).sum(), frame_change(target).sum()])

    def compute(self) -> dict[str, Tensor]:
        out = self.step_means()
        out["model/collapse"] = self.change[0] / self.change[1].clamp_min(1e-12)
        return out


def horizon_blocks(
    results: dict[str, Tensor],
    sources: tuple[str, ...] = SOURCES,
    trained_steps: int | None = None,
    prefix: str = "",
) -> list[str]:
    """Plain-text tables, one per metric: a row per horizon step, a column per source (the
    results ``<prefix><source>/<metric>``), ending with the mean over all steps; a line of dots
    marks where the rollout goes past ``trained_steps`` (the horizon steps the training clips
    covered), when given."""
    horizon = len(results[f"{prefix}{sources[0]}/{METRICS[0]}"])
    blocks = []
    for name in METRICS:
        columns = [results[f"{prefix}{s}/{name}"] for s in sources]
        header = f"{'step':>4} | " + " | ".join(f"{s:>10}" for s in sources)
        lines = [f"{name.upper()} ({UNITS[name]})", header, "-" * len(header)]
        for t in range(horizon):
            if trained_steps is not None and t == trained_steps:
                lines.append(f"{'':>4} : beyond the training length")
            row = " | ".join(f"{float(c[t]):>10.4f}" for c in columns)
            lines.append(f"{t + 1:>4} | {row}")
        row = " | ".join(f"{float(c.mean()):>10.4f}" for c in columns)
        lines += ["-" * len(header), f"{'mean':>4} | {row}"]
        blocks.append("\n".join(lines))
    return blocks


def format_table(results: dict[str, Tensor], trained_steps: int | None = None) -> str:
    """Plain-text tables, one block per metric: a row per horizon step, model vs baselines
    (:func:`horizon_blocks`), then the collapse score."""
    blocks = horizon_blocks(results, SOURCES, trained_steps)
    blocks.append(
        f"collapse score (1 = moves like the truth, 0 = frozen): "
        f"{float(results['model/collapse']):.3f}"
    )
    return "\n\n".join(blocks)


def results_to_json(results: dict[str, Tensor]) -> dict[str, float | list[float]]:
    """``HorizonMetrics.compute()`` output as plain lists/floats (for ``metrics.json``)."""
    return {k: torch.as_tensor(v).tolist() for k, v in results.items()}


def load_results(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read a ``metrics.json`` written by ``vidgen test`` back into tensors."""
    data = json.loads(Path(path).read_text())
    return {k: torch.tensor(v) for k, v in data.items()}


def horizon_rows(results: dict[str, Tensor]) -> tuple[list[str], list[list[Any]]]:
    """Long-format rows ``(step, source, mse, psnr, ssim)`` for a table (e.g. a W&B Table)."""
    horizon = len(results["model/mse"])
    rows = [
        [t + 1, s, *(float(results[f"{s}/{m}"][t]) for m in METRICS)]
        for s in SOURCES
        for t in range(horizon)
    ]
    return ["step", "source", *METRICS], rows


def plot_horizons(
    results: dict[str, Tensor],
    path: str | os.PathLike | None = None,
    trained_steps: int | None = None,
    title: str | None = None,
) -> Figure:
    """PSNR and SSIM per horizon step, model vs baselines; written as PNG to ``path`` if given.

    Uses matplotlib's object API (no pyplot, no backend switch), so it works headless and the
    returned figure still displays inline in a notebook. A dashed line marks ``trained_steps``.
    """
    from matplotlib.figure import Figure

    horizon = len(results["model/psnr"])
    steps = list(range(1, horizon + 1))
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    styles = {"model": "o-", "copy_last": "s--", "mean_frame": "^:"}
    for ax, name in zip(fig.subplots(1, 2), ("psnr", "ssim"), strict=True):
        for source in SOURCES:
            ax.plot(steps, results[f"{source}/{name}"].tolist(), styles[source], label=source)
        if trained_steps is not None and 0 < trained_steps < horizon:
            ax.axvline(trained_steps + 0.5, color="grey", ls="--", lw=1)
            ax.annotate(
                "beyond training length",
                (trained_steps + 0.6, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                color="grey",
            )
        ax.set_xlabel("horizon step (predicted frame after the context)")
        ax.set_ylabel(f"{name.upper()} ({UNITS[name]})")
        ax.grid(alpha=0.3)
    fig.axes[0].legend()
    collapse = float(results["model/collapse"]) if "model/collapse" in results else None
    suffix = "" if collapse is None else f"  (collapse score {collapse:.2f})"
    fig.suptitle((title or "Per-horizon quality, model vs baselines") + suffix)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig
