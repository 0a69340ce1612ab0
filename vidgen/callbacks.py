"""Callbacks: evaluation report, sample videos (files + W&B), prediction writer, config logging.

Every import of ``wandb`` is lazy: W&B is touched only when the trainer's logger is a
``WandbLogger``, so ``import vidgen`` and runs with other loggers work without it.
"""

from __future__ import annotations

import json
import statistics
import time
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
from vidgen.errors import NonFiniteLossError
from vidgen.evaluation import (
    METRICS,
    SOURCES,
    format_table,
    frame_metrics,
    horizon_rows,
    plot_horizons,
)
from vidgen.evaluation import results_to_json as to_json
from vidgen.wandb_run import wandb_logger

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
    whatever the logger. With ``save_last``, ``last.ckpt`` holds the latest weights after every
    epoch, also when the monitored metric did not improve.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(run_dir(trainer) / "checkpoints")
        super().setup(trainer, pl_module, stage)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def _keep_last_current(self, trainer: L.Trainer) -> None:
        """Lightning writes ``last.ckpt`` only when a monitored checkpoint is saved the same step,
        which makes it the best checkpoint, not the last: write it whenever it is behind."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
    """Writes what ``vidgen predict`` returns as video files and per-frame metrics.

    For each float video ``(B, T, C, H, W)`` in [0, 1] among ``context``, ``target``, ``pred``
    (FramePredictor: ``pred`` is the continuation) and ``samples`` (VideoVAE) it writes
    ``{name}_{key}.{fmt}`` for each of ``format`` (one format or a list). ``name`` is the item's
    dataset index (``prediction["index"]``, ``{index:06d}``), followed by the source file's stem
    when the batch names one (``batch["path"]``, :class:`~vidgen.data.VideoFolderDataModule`);
    rows past the indices (e.g. more prior samples than clips) are named
    ``batch{b:05d}_{row:03d}``. With both ``target`` and ``pred`` it also writes
    ``{name}_compare.{fmt}`` (and always a GIF): (context + target) | (context + pred) side by
    side, and ``{name}_metrics.json``: MSE, PSNR and SSIM of each predicted frame, with the
    copy-last-frame baseline's beside them.

    A batch that says how many of a clip's frames are real (``batch["available"]``: a file
    shorter than the clip, padded with its last frame) limits ``target``, the comparison and
    the metrics to those frames; a file with fewer frames than the context is skipped with a
    warning. Several videos per item (``(B, N, T, C, H, W)``, e.g. a VideoVAE's
    ``predict_samples``) are written as ``{name}_{key}{j}``. ``output_dir`` defaults to
    ``<run dir>/predictions``.
    """

    VIDEO_KEYS = ("context", "target", "pred", "samples")

    def __init__(
        self,
        output_dir: str | None = None,
        format: VideoFormat | list[VideoFormat] = "mp4",
        fps: int = 4,
    ) -> None:
        super().__init__(write_interval="batch")
        self.formats = (format,) if isinstance(format, str) else tuple(format)
        if not self.formats or any(f not in ("gif", "mp4") for f in self.formats):
            raise ValueError(f"format must be 'gif', 'mp4' or a list of them, got {format!r}")
        self.output_dir = output_dir
        self.fps = fps

    def folder(self, trainer: L.Trainer) -> Path:
        return Path(self.output_dir) if self.output_dir else run_dir(trainer) / "predictions"

    @staticmethod
    def names(prediction: dict[str, Any], rows: int, batch_idx: int, batch: Any = None) -> list:
        index = prediction.get("index")
        index = [] if index is None else torch.as_tensor(index).flatten().tolist()
        paths = batch.get("path") if isinstance(batch, dict) else None
        stems = [f"_{Path(p).stem}" for p in paths] if paths else [""] * len(index)
        return [
            f"{index[r]:06d}{stems[r]}" if r < len(index) else f"batch{batch_idx:05d}_{r:03d}"
            for r in range(rows)
        ]

    def write(self, path: Path, frames: np.ndarray, formats: Sequence[str]) -> None:
        for fmt in dict.fromkeys(formats):
            write_video(path.with_suffix(f".{fmt}"), frames, self.fps)

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
        context = videos.get("context")
        seen = 0 if context is None else context.shape[1]
        available = batch.get("available") if isinstance(batch, dict) else None
        truth: list[int | None] = [None] * max((len(v) for v in videos.values()), default=0)
        for i, frames in enumerate([] if available is None else available.tolist()):
            truth[i] = int(frames) - seen  # predicted frames that have a true frame
        names = self.names(prediction, len(truth), batch_idx, batch)
        skipped = {i for i, steps in enumerate(truth) if steps is not None and steps < 0}
        for i in sorted(skipped):
            rank_zero_warn(
                f"{names[i]}: the clip has {truth[i] + seen} frames, fewer than the "
                f"{seen} context frames the model needs; nothing written for it (lower "
                "data.frame_skip, or use a longer video)"
            )
        for key, video in videos.items():
            for i, clip in enumerate(video):
                if i not in skipped:
                    clip = clip[: truth[i]] if key == "target" else clip
                    if len(clip):
                        self.write(folder / f"{names[i]}_{key}", side_by_side(clip), self.formats)
        for key in self.VIDEO_KEYS:  # several videos per item, e.g. VideoVAE samples
            video = prediction.get(key)
            if torch.is_tensor(video) and video.is_floating_point() and video.ndim == 6:
                many = self.names(prediction, len(video), batch_idx, batch)
                for name, clips in zip(many, video, strict=True):
                    for j, clip in enumerate(clips):
                        self.write(folder / f"{name}_{key}{j}", side_by_side(clip), self.formats)
        if "target" in videos and "pred" in videos:
            for i in range(len(videos["target"])):
                steps = truth[i] if truth[i] is not None else videos["target"].shape[1]
                if i in skipped:
                    continue
                target, pred = videos["target"][i, :steps], videos["pred"][i, :steps]
                if steps and context is not None:
                    joined = side_by_side(
                        torch.cat([context[i], target]), torch.cat([context[i], pred])
                    )
                    self.write(folder / f"{names[i]}_compare", joined, (*self.formats, "gif"))
                elif steps:
                    self.write(folder / f"{names[i]}_compare", side_by_side(target, pred), ("gif",))
                last = None if context is None else context[i, -1:]
                metrics = frame_metrics_json(pred, target, last)
                metrics["source"] = (
                    batch["path"][i] if isinstance(batch, dict) and "path" in batch else None
                )
                metrics["context_frames"] = seen
                metrics["predicted_frames"] = videos["pred"].shape[1]
                path = folder / f"{names[i]}_metrics.json"
                path.write_text(json.dumps(metrics, indent=2))


def frame_metrics_json(pred: Tensor, target: Tensor, last: Tensor | None) -> dict[str, Any]:
    """Per-frame MSE, PSNR and SSIM of ``pred`` against ``target`` (``(T, C, H, W)``), and of
    the copy-last-frame baseline (``last``, ``(1, C, H, W)``) when given, as lists."""
    out: dict[str, Any] = {"truth_frames": len(target)}
    if not len(target):
        return out
    sources = {"model": pred}
    if last is not None:
        sources["copy_last"] = last.expand_as(target)
    for source, video in sources.items():
        values = frame_metrics(video[None].float(), target[None].float())
        out[source] = {name: [round(float(v), 6) for v in values[name][0]] for name in METRICS}
    return out


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the run folder (LightningCLI's default) and also puts the
    resolved config into every logger's hyperparameters (``config`` key; W&B's run config)."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class StepTimer(L.Callback):
    """Wall time of every training step (forward, backward, optimiser step), in seconds, and
    of every period from one step's end to the next's (the step plus waiting for its batch).

    ``--trainer.callbacks+=vidgen.callbacks.StepTimer``; after ``fit``, :meth:`median` skips the
    first ``warmup`` steps (allocations, first-call overheads).
    """

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self.times: list[float] = []
        self.periods: list[float] = []
        self._start = 0.0
        self._end: float | None = None

    def on_train_epoch_start(self, *args: Any) -> None:
        self._end = None  # validation and epoch ends are not a batch's wait

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        now = time.perf_counter()
        self.times.append(now - self._start)
        if self._end is not None:
            self.periods.append(now - self._end)
        self._end = now

    def median(self, periods: bool = False) -> float:
        """Median step time (or with ``periods`` median period) in seconds, ``nan`` before
        any."""
        times = self.periods if periods else self.times
        times = times[self.warmup :] or times
        return statistics.median(times) if times else float("nan")


class FiniteLoss(L.Callback):
    """Stops training at the first NaN or infinite loss, before its backward pass: the weights
    and optimiser state stay those of the last good step and no checkpoint is written over
    the last good one. The error names the step, the loss terms and what to try."""

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        results = getattr(trainer, "_results", None) or {}  # this step's logged terms
        terms = {key.split(".", 1)[-1]: metric.value for key, metric in results.items()}
        shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items() if torch.is_tensor(v))
        raise NonFiniteLossError(
            f"the training loss is {float(loss.detach()):.4g} at step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}): {shown or 'no terms logged'}. Stopped before this "
            f"step's update; the checkpoints in {run_dir(trainer) / 'checkpoints'} are from "
            "before it. Try clipping gradients (--trainer.gradient_clip_val=1.0, advised with "
            "the paper's Adam lr 0.01; --ckpt_path last resumes from the last good checkpoint) "
            "or a lower learning rate in a new run (--model.init_args.optimizer.init_args.lr)"
        )


class InterruptCheckpoint(L.Callback):
    """Ctrl-C during ``fit`` saves ``last.ckpt`` (the state of the last finished step) into the
    run's checkpoint folder before Lightning shuts down, so ``--ckpt_path last`` resumes there.
    Only an interrupt: after any other error (a NaN loss) no checkpoint is written."""

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt) or not trainer.training:
            return
        checkpoint = trainer.checkpoint_callback
        folder = getattr(checkpoint, "dirpath", None) or run_dir(trainer) / "checkpoints"
        path = Path(folder) / "last.ckpt"
        trainer.save_checkpoint(path)
        rank_zero_info(f"interrupted: {path} saved; resume with --ckpt_path last")
