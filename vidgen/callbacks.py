"""Callbacks: evaluation report, sample videos (files + W&B), prediction writer, config logging.

Every import of ``wandb`` is lazy: W&B is touched only when the trainer's logger is a
``WandbLogger``, so ``import vidgen`` and runs with other loggers work without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from torch import Tensor

from vidgen.data.video import write_video
from vidgen.evaluation import METRICS, SOURCES, format_table, horizon_rows, plot_horizons
from vidgen.evaluation import results_to_json as to_json

VideoFormat = Literal["gif", "mp4"]


def run_dir(trainer: L.Trainer) -> Path:
    """The run folder: ``trainer.default_root_dir``."""
    return Path(trainer.default_root_dir)


def side_by_side(*videos: Tensor) -> np.ndarray:
    """Videos ``(T, C, H, W)`` in [0, 1] -> one uint8 ``(T, H, W * n + gaps, C)`` video."""
    frames = [(v.detach().float().clamp(0, 1) * 255).round().byte().cpu() for v in videos]
    gap = torch.full_like(frames[0][:, :, :, :2], 255)
    joined = [frames[0]]
    for f in frames[1:]:
        joined += [gap, f]
    return torch.cat(joined, dim=-1).permute(0, 2, 3, 1).numpy()


def wandb_logger(trainer: L.Trainer) -> Any:
    """The trainer's ``WandbLogger``, or ``None`` (wandb is never imported for other loggers)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger
    return None


def trained_steps(trainer: L.Trainer, pl_module: L.LightningModule) -> int | None:
    """Horizon steps that a training clip covers after the context (None when unknown)."""
    frames = getattr(trainer.datamodule, "frames", None) if trainer.datamodule else None
    context = getattr(pl_module, "context_frames", None)
    if frames is None or context is None:
        return None
    return max(0, frames - context)


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves into ``<run dir>/checkpoints`` unless ``dirpath`` is set.

    Keeps every output of a run (checkpoints, videos, metrics, config) under one folder,
    whatever the logger.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(run_dir(trainer) / "checkpoints")
        super().setup(trainer, pl_module, stage)


class EvaluationReport(L.Callback):
    """Per-horizon results, model vs baselines, made visible.

    After ``vidgen test``: prints one table per metric, writes ``<run dir>/metrics.json`` and
    ``<run dir>/horizons.png`` (PSNR and SSIM per horizon step) and, with a ``WandbLogger``,
    logs the per-horizon table, line plots and the PNG. During fit it does the W&B part (and
    writes ``<run dir>/horizons_val.png``) every ``every_n_epochs`` validation epochs.

    It runs at ``on_{validation,test}_end``: the model stores its results in
    ``on_*_epoch_end``, which Lightning calls after the callbacks' hook of the same name.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "results", {}).get("test")
        if not results:
            return
        steps = trained_steps(trainer, pl_module)
        print("\n" + format_table(results, trained_steps=steps))
        folder = run_dir(trainer)
        path = folder / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(to_json(results), indent=2))
        png = folder / "horizons.png"
        plot_horizons(results, png, trained_steps=steps, title="Test: quality per horizon step")
        rank_zero_info(f"metrics written to {path}, per-horizon plot to {png}")
        self.log_curves(trainer, "test", results, png)

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "results", {}).get("val")
        if (
            trainer.sanity_checking
            or not results
            or (trainer.current_epoch + 1) % self.every_n_epochs
            or wandb_logger(trainer) is None
        ):
            return
        png = run_dir(trainer) / "horizons_val.png"
        title = f"Validation, epoch {trainer.current_epoch}"
        plot_horizons(results, png, trained_steps=trained_steps(trainer, pl_module), title=title)
        self.log_curves(trainer, "val", results, png)

    @staticmethod
    def log_curves(trainer: L.Trainer, stage: str, results: dict[str, Tensor], png: Path) -> None:
        """Log per-horizon curves to W&B: a table, one line plot per metric and the PNG."""
        logger = wandb_logger(trainer)
        if logger is None:
            return
        import wandb

        step = trainer.global_step
        columns, rows = horizon_rows(results)
        logger.log_table(key=f"{stage}/horizons", columns=columns, data=rows, step=step)
        horizon = len(results["model/mse"])
        plots = {
            f"{stage}/horizon_{name}": wandb.plot.line_series(
                xs=list(range(1, horizon + 1)),
                ys=[results[f"{source}/{name}"].tolist() for source in SOURCES],
                keys=list(SOURCES),
                title=f"{stage} {name.upper()} per horizon step",
                xname="horizon step",
            )
            for name in METRICS
        }
        logger.log_metrics(plots, step=step)
        logger.log_image(key=f"{stage}/horizons_plot", images=[str(png)], step=step)


class SampleVideos(L.Callback):
    """Ground truth | prediction side by side for the first clips of a batch: files and W&B.

    Files go to ``<run dir>/videos/<stage>_epoch<E>_<i>.<fmt>`` for each of ``formats`` on
    every test batch 0 and on validation batch 0 every ``every_n_epochs`` epochs. With a
    ``WandbLogger`` the same videos are logged under ``<stage>/videos`` (from the written files:
    W&B needs moviepy/imageio to encode raw arrays, but not to upload a GIF or mp4).
    """

    def __init__(
        self,
        num_videos: int = 4,
        every_n_epochs: int = 1,
        fps: int = 4,
        formats: Sequence[VideoFormat] = ("gif", "mp4"),
    ) -> None:
        if not formats:
            raise ValueError("SampleVideos needs at least one format ('gif' or 'mp4')")
        self.num_videos = num_videos
        self.every_n_epochs = every_n_epochs
        self.fps = fps
        self.formats = tuple(formats)

    @rank_zero_only
    def write(self, trainer: L.Trainer, stage: str, outputs: dict[str, Tensor]) -> list[Path]:
        paths = []
        target, pred = outputs["target"], outputs["pred"]
        context = outputs.get("context")
        logged = []
        for i in range(min(self.num_videos, target.shape[0])):
            truth = target[i] if context is None else torch.cat([context[i], target[i]])
            guess = pred[i] if context is None else torch.cat([context[i], pred[i]])
            frames = side_by_side(truth, guess)
            stem = f"{stage}_epoch{trainer.current_epoch:03d}_{i}"
            written = [
                write_video(run_dir(trainer) / "videos" / f"{stem}.{fmt}", frames, self.fps)
                for fmt in self.formats
            ]
            paths += written
            logged.append(written[0])
        logger = wandb_logger(trainer)
        if logger is not None and logged:
            logger.log_video(
                f"{stage}/videos",
                videos=[str(p) for p in logged],
                step=trainer.global_step,
                caption=["ground truth | prediction"] * len(logged),
            )
        return paths

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if (
            batch_idx == 0
            and not trainer.sanity_checking
            and outputs
            and ((trainer.current_epoch + 1) % self.every_n_epochs == 0)
        ):
            self.write(trainer, "val", outputs)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and outputs:
            self.write(trainer, "test", outputs)


class PredictionWriter(BasePredictionWriter):
    """Writes what ``vidgen predict`` returns as video files, one per item and key.

    For each float video ``(B, T, C, H, W)`` in [0, 1] among ``context``, ``target``, ``pred``
    (FramePredictor) and ``samples`` (VideoVAE) it writes ``{index:06d}_{key}.{format}``
    (several videos per item, ``(B, N, T, C, H, W)``: ``{index:06d}_{key}{j}.{format}``), where
    ``index`` is the item's dataset index (``prediction["index"]``); rows past the indices (e.g.
    more prior samples than clips) are named ``batch{b:05d}_{row:03d}_{key}``. With both
    ``target`` and ``pred`` it also writes ``{index:06d}_compare.gif``: (context + target) |
    (context + pred) side by side. ``output_dir`` defaults to ``<run dir>/predictions``.
    """

    VIDEO_KEYS = ("context", "target", "pred", "samples")

    def __init__(
        self, output_dir: str | None = None, format: VideoFormat = "mp4", fps: int = 4
    ) -> None:
        super().__init__(write_interval="batch")
        if format not in ("gif", "mp4"):
            raise ValueError(f"format must be 'gif' or 'mp4', got {format!r}")
        self.output_dir = output_dir
        self.format = format
        self.fps = fps

    def folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer) / "predictions"

    @staticmethod
    def names(prediction: dict[str, Any], rows: int, batch_idx: int) -> list[str]:
        index = prediction.get("index")
        index = [] if index is None else torch.as_tensor(index).flatten().tolist()
        return [
            f"{index[r]:06d}" if r < len(index) else f"batch{batch_idx:05d}_{r:03d}"
            for r in range(rows)
        ]

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(prediction, dict):
            rank_zero_warn("PredictionWriter expects predict_step to return a dict; skipped")
            return
        folder = self.folder(trainer)
        videos = {
            k: v
            for k, v in prediction.items()
            if k in self.VIDEO_KEYS and torch.is_tensor(v) and v.is_floating_point() and v.ndim == 5
        }
        for key, video in videos.items():
            for name, clip in zip(
                self.names(prediction, len(video), batch_idx), video, strict=True
            ):
                write_video(folder / f"{name}_{key}.{self.format}", side_by_side(clip), self.fps)
        for key in self.VIDEO_KEYS:  # several videos per item, e.g. VideoVAE samples
            video = prediction.get(key)
            if torch.is_tensor(video) and video.is_floating_point() and video.ndim == 6:
                for name, clips in zip(
                    self.names(prediction, len(video), batch_idx), video, strict=True
                ):
                    for j, clip in enumerate(clips):
                        path = folder / f"{name}_{key}{j}.{self.format}"
                        write_video(path, side_by_side(clip), self.fps)
        if "target" in videos and "pred" in videos:
            target, pred, context = videos["target"], videos["pred"], videos.get("context")
            for i, name in enumerate(self.names(prediction, len(target), batch_idx)):
                truth = target[i] if context is None else torch.cat([context[i], target[i]])
                guess = pred[i] if context is None else torch.cat([context[i], pred[i]])
                write_video(folder / f"{name}_compare.gif", side_by_side(truth, guess), self.fps)


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the run folder (LightningCLI's default) and also puts the
    resolved config into every logger's hyperparameters (``config`` key; W&B's run config)."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})
