"""Tiny things for tests: 16 px models, packaged configs run through the tiny overlay, and small
clips with known motion."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import lightning as L
import torch

from vidgen import FramePredictor, MotionPredictor, VideoVAE
from vidgen.cli import TINY, VidgenCLI, config_path, main
from vidgen.models import LSTMCore, UpsampleDeconvHead


def tiny_predictor(
    hidden_size: int = 16, context_frames: int = 2, model: type = FramePredictor, **kw: Any
) -> FramePredictor | MotionPredictor:
    """A 16 px predictor (``model``: the class); seeded, so two calls build the same weights."""
    torch.manual_seed(0)
    return model(
        image_size=16,
        backbone_layer="pool2",
        core=partial(LSTMCore, hidden_size=hidden_size),
        head=partial(UpsampleDeconvHead, channels=4, base_size=4, kernel_size=5),
        context_frames=context_frames,
        **kw,
    )


def tiny_motion_predictor(hidden_size: int = 32, context_frames: int = 3, **kw: Any) -> Any:
    """A 16 px :class:`MotionPredictor`, seeded."""
    return tiny_predictor(hidden_size, context_frames, MotionPredictor, **kw)


def quiet_trainer(root: str | os.PathLike, **kw: Any) -> L.Trainer:
    """A one-epoch Trainer without logger, checkpoints or progress bar, writing under ``root``."""
    args = {"max_epochs": 1, "logger": False, "enable_checkpointing": False}
    return L.Trainer(**{**args, "enable_progress_bar": False, "default_root_dir": root, **kw})


def tiny_vae(frames: int = 4, **kw: Any) -> VideoVAE:
    """A 16 px VideoVAE of ``frames``-frame clips; seeded like :func:`tiny_predictor`."""
    torch.manual_seed(0)
    return VideoVAE(
        image_size=16,
        backbone_layer="pool2",
        encoder=partial(LSTMCore, hidden_size=16),
        decoder=partial(LSTMCore, hidden_size=16),
        head=partial(UpsampleDeconvHead, channels=4, base_size=4, kernel_size=5),
        z_dim=4,
        frames=frames,
        **kw,
    )


def tiny_args(config: str | os.PathLike, *overrides: str) -> list[str]:
    """``--config <config> --config tiny.yaml <overrides>``: a packaged config's run, shrunk."""
    return ["--config", str(config_path(config)), "--config", str(TINY), *overrides]


def tiny_run(subcommand: str, config: str | os.PathLike, *overrides: str) -> VidgenCLI:
    """``vidgen <subcommand>`` on a packaged config through the tiny overlay."""
    return main([subcommand, *tiny_args(config, *overrides)])


def translating(steps: int, speed: tuple[int, int], size: int = 16) -> torch.Tensor:
    """``(1, steps, 3, size, size)``: a smooth random texture moving ``speed`` px a frame."""
    torch.manual_seed(0)
    big = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 3 * size, 3 * size), 3, 1, 1)
    frames = [
        big[
            ...,
            size - t * speed[1] : 2 * size - t * speed[1],
            size - t * speed[0] : 2 * size - t * speed[0],
        ]
        for t in range(steps)
    ]
    return torch.stack(frames, 1)
