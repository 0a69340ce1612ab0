"""Callbacks: evaluation report (table + metrics.json) and sample videos (files + W&B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only
from torch import Tensor

from vidgen.evaluation import format_table


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


def write_gif(path: Path, frames: np.ndarray, fps: int = 4) -> Path:
    """Write uint8 ``(T, H, W, C)`` frames as a looping GIF."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
    return path


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
    """After ``vidgen test``: print model-vs-baselines per horizon and write ``metrics.json``."""

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "results", {}).get("test")
        if not results:
            return
        rank_zero_info("\n" + format_table(results))
        path = run_dir(trainer) / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({k: v.tolist() for k, v in results.items()}, indent=2))
        rank_zero_info(f"metrics written to {path}")


class SampleVideos(L.Callback):
    """Writes ground truth | prediction side by side for the first clips of a batch.

    Files go to ``<run dir>/videos/<stage>_epoch<E>_<i>.gif`` on every test batch 0 and on
    validation batch 0 every ``every_n_epochs`` epochs.
    """

    def __init__(self, num_videos: int = 4, every_n_epochs: int = 1, fps: int = 4) -> None:
        self.num_videos = num_videos
        self.every_n_epochs = every_n_epochs
        self.fps = fps

    @rank_zero_only
    def write(self, trainer: L.Trainer, stage: str, outputs: dict[str, Tensor]) -> list[Path]:
        paths = []
        target, pred = outputs["target"], outputs["pred"]
        context = outputs.get("context")
        for i in range(min(self.num_videos, target.shape[0])):
            truth = target[i] if context is None else torch.cat([context[i], target[i]])
            guess = pred[i] if context is None else torch.cat([context[i], pred[i]])
            name = f"{stage}_epoch{trainer.current_epoch:03d}_{i}.gif"
            paths.append(
                write_gif(run_dir(trainer) / "videos" / name, side_by_side(truth, guess), self.fps)
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
