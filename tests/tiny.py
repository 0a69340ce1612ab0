"""A tiny FramePredictor for tests: 16 px frames, VGG16 cut at pool2, narrow LSTM and head."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from vidgen import FramePredictor
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
