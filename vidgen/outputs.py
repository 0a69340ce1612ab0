"""What a run writes for people to look at: videos, predictions, metrics and plots.

:func:`write_video` encodes frames (PyAV; GIF through Pillow). The callbacks write under the run
folder (:func:`run_dir`) and, with a ``WandbLogger``, log the same to W&B:
:class:`SampleVideos` (ground truth | prediction during fit and test), :class:`PredictionWriter`
(``vidgen predict``'s videos and per-frame metrics) and :class:`EvaluationReport` (per-horizon
tables and plots after ``vidgen test``). Every import of ``wandb`` is lazy: W&B is touched only
when the trainer's logger is a ``WandbLogger``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from torch import Tensor

from vidgen.evaluation import (
    METRICS,
    SOURCES,
    format_table,
    frame_metrics,
    horizon_rows,
    plot_horizons,
)
from vidgen.evaluation import results_to_json as to_json
from vidgen.sampled_futures import format_futures, has_futures
from vidgen.wandb_run import wandb_logger

VideoFormat = Literal["gif", "mp4"]


def run_dir(trainer: L.Trainer) -> Path:
    """The run folder: ``trainer.default_root_dir``."""
    return Path(trainer.default_root_dir)


# -------------------------------------------------------------------------------------- video files


def to_uint8_frames(frames) -> np.ndarray:
    """``(S, C, H, W)`` or ``(S, H, W, C)`` frames (uint8, or float in [0, 1], numpy or torch)
    as uint8 ``(S, H, W, 3)``."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim == 3:  # (S, H, W) grey
        frames = frames[..., None]
    if frames.ndim != 4:
        raise ValueError(f"frames must be (S, C, H, W) or (S, H, W, C), got {frames.shape}")
    if frames.shape[1] in (1, 3) and frames.shape[-1] not in (1, 3):
        frames = frames.transpose(0, 2, 3, 1)
    if frames.shape[-1] not in (1, 3):
        raise ValueError(f"frames need 1 or 3 channels, got shape {frames.shape}")
    if frames.dtype != np.uint8:
        if np.issubdtype(frames.dtype, np.floating):
            frames = np.clip(frames, 0.0, 1.0) * 255.0 + 0.5
        frames = np.clip(frames, 0, 255).astype(np.uint8)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return np.ascontiguousarray(frames)


def write_video(
    path: str | os.PathLike,
    frames,
    fps: float = 25.0,
    codec: str | None = None,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Write frames to ``path``: ``.mp4`` (libx264, else mpeg4), ``.avi`` (mpeg4) or ``.gif``.

    Args:
        frames: uint8 (or float in [0, 1]) ``(S, C, H, W)`` or ``(S, H, W, C)``, numpy or torch.
        fps: frames per second.
        codec: override the encoder (PyAV name).
        bit_rate: bits per second (default about 0.3 bit per pixel, at least 200 kbit/s).
        options: encoder options passed to FFmpeg, e.g. ``{"bf": "2", "g": "12"}``.
    Returns the path. Odd sizes are padded to even for yuv420p.
    """
    path = Path(path)
    data = to_uint8_frames(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in data]
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
        )
        return path
    if suffix not in (".mp4", ".avi", ".mkv", ".mov"):
        raise ValueError(f"write_video writes .mp4, .avi, .mkv, .mov or .gif, not {path.name}")
    import av

    if codec is None:
        codec = "mpeg4" if suffix == ".avi" else _first_encoder("libx264", "mpeg4")
    pad_h, pad_w = data.shape[1] % 2, data.shape[2] % 2
    if pad_h or pad_w:
        data = np.pad(data, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    height, width = data.shape[1:3]
    rate = round(fps) if float(fps).is_integer() else _fraction(fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bit_rate or max(200_000, int(0.3 * width * height * fps))
        for frame in data:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _first_encoder(*names: str) -> str:
    import av

    for name in names:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:
            continue
    raise RuntimeError(f"none of the encoders {names} is available in PyAV")


def _fraction(fps: float):
    from fractions import Fraction

    return Fraction(fps).limit_denominator(1001)


# ---------------------------------------------------------------------------------------- callbacks


def side_by_side(*videos: Tensor) -> np.ndarray:
    """Videos ``(T, C, H, W)`` in [0, 1] -> one uint8 ``(T, H, W * n + gaps, C)`` video."""
    frames = [(v.detach().float().clamp(0, 1) * 255).round().byte().cpu() for v in videos]
    gap = torch.full_like(frames[0][:, :, :, :2], 255)
    joined = [frames[0]]
    for f in frames[1:]:
        joined += [gap, f]
    return torch.cat(joined, dim=-1).permute(0, 2, 3, 1).numpy()


def trained_steps(trainer: L.Trainer, pl_module: L.LightningModule) -> int | None:
    """Horizon steps that a training clip covers after the context (a predictor's
    ``context_frames``, a VAE's ``condition_frames``; None when unknown)."""
    frames = getattr(trainer.datamodule, "frames", None) if trainer.datamodule else None
    context = getattr(pl_module, "context_frames", getattr(pl_module, "condition_frames", None))
    if frames is None or context is None:
        return None
    return max(0, frames - context)


class EvaluationReport(L.Callback):
    """Per-horizon results, model vs baselines, made visible.

    After ``vidgen test``: prints one table per metric (and those of sampled futures, when the
    model scores them: :mod:`vidgen.sampled_futures`), writes ``<run dir>/metrics.json`` and
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
        if has_futures(results):
            print("\nSampled futures\n\n" + format_futures(results, trained_steps=steps))
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
        """Batch 0 of every test, and of validation every ``every_n_epochs`` epochs (no sanity
        check): write its videos."""
        if batch_idx or not outputs:
            return
        if trainer.testing:
            self.write(trainer, "test", outputs)
        elif not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.write(trainer, "val", outputs)

    on_test_batch_end = on_validation_batch_end


class PredictionWriter(BasePredictionWriter):
    """Writes what ``vidgen predict`` returns as video files and per-frame metrics.

    For each float video ``(B, T, C, H, W)`` in [0, 1] among ``context``, ``target``, ``pred``
    (a predictor's continuation, a VAE's reconstruction) and ``samples`` (a VAE's prior
    samples; a conditional VAE's: the clip's context, then a sampled future) it writes
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
    warning. Several videos per item (``(B, N, T, C, H, W)``, e.g. a VAE's
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
        truth = self.truth_steps(batch, seen, max((len(v) for v in videos.values()), default=0))
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
        self.write_samples(folder, prediction, batch_idx, batch)
        if "target" in videos and "pred" in videos:
            for i in range(len(videos["target"])):
                if i not in skipped:
                    steps = truth[i] if truth[i] is not None else videos["target"].shape[1]
                    self.write_comparison(folder, names[i], videos, i, steps, batch)

    @staticmethod
    def truth_steps(batch: Any, seen: int, items: int) -> list[int | None]:
        """Per item, how many predicted frames have a true frame (``None``: all of them), from
        the batch's ``available`` frame counts and the ``seen`` context frames."""
        available = batch.get("available") if isinstance(batch, dict) else None
        truth: list[int | None] = [None] * items
        for i, frames in enumerate([] if available is None else available.tolist()):
            truth[i] = int(frames) - seen
        return truth

    def write_samples(self, folder: Path, prediction: dict, batch_idx: int, batch: Any) -> None:
        """Videos of several clips per item (``(B, N, T, C, H, W)``, e.g. a VAE's samples), as
        ``<name>_<key><n>``."""
        for key in self.VIDEO_KEYS:
            video = prediction.get(key)
            if torch.is_tensor(video) and video.is_floating_point() and video.ndim == 6:
                many = self.names(prediction, len(video), batch_idx, batch)
                for name, clips in zip(many, video, strict=True):
                    for j, clip in enumerate(clips):
                        self.write(folder / f"{name}_{key}{j}", side_by_side(clip), self.formats)

    def write_comparison(
        self, folder: Path, name: str, videos: dict[str, Tensor], i: int, steps: int, batch: Any
    ) -> None:
        """Item ``i``'s truth | prediction side by side over its first ``steps`` predicted
        frames (after its context, if any) and its per-frame metrics as JSON."""
        context = videos.get("context")
        target, pred = videos["target"][i, :steps], videos["pred"][i, :steps]
        if steps and context is not None:
            joined = side_by_side(torch.cat([context[i], target]), torch.cat([context[i], pred]))
            self.write(folder / f"{name}_compare", joined, (*self.formats, "gif"))
        elif steps:
            self.write(folder / f"{name}_compare", side_by_side(target, pred), ("gif",))
        last = None if context is None else context[i, -1:]
        metrics = frame_metrics_json(pred, target, last)
        metrics["source"] = (
            batch["path"][i] if isinstance(batch, dict) and "path" in batch else None
        )
        metrics["context_frames"] = 0 if context is None else context.shape[1]
        metrics["predicted_frames"] = videos["pred"].shape[1]
        (folder / f"{name}_metrics.json").write_text(json.dumps(metrics, indent=2))


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
