"""FramePredictor: the paper's next-frame predictor (section 2.3).

Each frame goes through the frozen VGG16; a recurrent core carries the sequence; a head paints
each step's output as the next frame. Training is teacher-forced next-frame prediction: every
frame is predicted from the true frames before it. Evaluation rolls out from
``context_frames`` true frames, feeding back its own predictions (:class:`RolloutModule`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from vidgen.models.base import CoreFactory, HeadFactory
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.recurrent import LSTMCore
from vidgen.models.rollout import RolloutModule


class FramePredictor(RolloutModule):
    """Next-frame prediction with a frozen VGG16, a recurrent core and a deconvolution head.

    Defaults are the paper's (pool5, LSTM, upsample + deconvolution head, MSE, Adam lr 0.01);
    the fixes the paper names are options: a :class:`~vidgen.models.ConvLSTMCore` core, a
    :class:`~vidgen.models.MultiScaleHead` head, a perceptual term in the
    :class:`~vidgen.models.VideoLoss`. The shared options (``**kwargs``) are
    :class:`~vidgen.models.base.VideoModule`'s.

    Args:
        core: builds the core from the per-frame feature shape, e.g. ``LSTMCore`` or
            ``functools.partial(ConvLSTMCore, hidden_channels=64)``; in YAML a ``class_path``
            with ``init_args`` lacking ``in_shape``.
        head: builds the head from ``(core.out_shape, image_size)``.
        context_frames: true frames seen before the rollout at evaluation.
    """

    def __init__(
        self,
        core: CoreFactory = LSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        context_frames: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["loss"])
        if context_frames < 1:
            raise ValueError(f"context_frames must be >= 1, got {context_frames}")
        self.core = core(self.feature_shape)
        self.head = head(self.core.out_shape, self.image_size)
        self.context_frames = context_frames

    def forward(self, context: Tensor, horizon: int, ids: Tensor | None = None) -> Tensor:
        """Roll out ``horizon`` frames after ``context`` ``(B, T, C, H, W)``, each painted by
        the head from the core's output at the frame before."""
        self.check_rollout(context, horizon)
        out, state = self.core(self.encode(context, ids))
        frames = [self.render(self.head, out[:, -1:])]
        for _ in range(horizon - 1):
            out, state = self.core(self.encode(frames[-1]), state)
            frames.append(self.render(self.head, out))
        return torch.cat(frames, dim=1)

    def teacher_forced(self, video: Tensor, ids: Tensor | None = None) -> Tensor:
        """Predictions of frames ``1..S-1``, each from the true frames before it (``ids``: the
        clip's frame ids, for the feature cache)."""
        self.check_video(video)
        inputs = video[:, :-1]
        out, _ = self.core(self.encode(inputs, None if ids is None else ids[:, :-1]))
        return self.render(self.head, out)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        video = batch["video"]
        pred = self.teacher_forced(video, self.frame_ids(batch))
        terms = self.loss(pred, video[:, 1:], self.backbone)
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]
