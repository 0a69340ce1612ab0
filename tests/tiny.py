"""Tiny things for tests: a 16 px FramePredictor and VideoVAE, packaged configs run through the
tiny overlay."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import torch

from vidgen import FramePredictor, VideoVAE
from vidgen.cli import TINY, VidgenCLI, config_path, main
from vidgen.models import LSTMCore, UpsampleDeconvHead


def tiny_predictor(hidden_size: int = 16, context_frames: int = 2, **kw: Any) -> FramePredictor:
    """Seeded, so two calls build the same weights."""
    torch.manual_seed(0)
    return FramePredictor(
        image_size=16,
        backbone_layer="pool2",
        core=partial(LSTMCore, hidden_size=hidden_size),
        head=partial(UpsampleDeconvHead, channels=4, base_size=4, kernel_size=5),
        context_frames=context_frames,
        **kw,
    )


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
