"""FramePredictor: frame t in, frame t+1 out (paper section 2.3).

Each frame goes through the frozen VGG16; a recurrent core carries the sequence; a head turns
each step's output back into a frame. Training is teacher-forced next-frame prediction (the
paper) or, with ``train_rollout=True``, the evaluation protocol itself: see ``context_frames``
true frames, then feed back its own predictions. Evaluation always rolls out from
``context_frames`` true frames for as many steps as the clip has left, which may be longer than
the training clips.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from vidgen.models.base import CoreFactory, HeadFactory, VideoModule, paper_adam
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.losses import VideoLoss
from vidgen.models.recurrent import LSTMCore

RESIDUAL_EPS = 0.01  # previous frames are clamped to [eps, 1 - eps] before their logit
OUTPUT_CHANNELS = {"frame": 3, "residual": 3, "warp": 2}  # what the head emits per output mode


def warp(frames: Tensor, flow: Tensor) -> Tensor:
    """Move ``frames`` ``(N, C, H, W)`` along ``flow`` ``(N, 2, H, W)`` in pixels ``(dx, dy)``.

    Output pixel ``p`` takes the (bilinearly interpolated) input at ``p - flow(p)``; borders
    repeat.
    """
    h, w = frames.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, device=frames.device, dtype=flow.dtype),
        torch.arange(w, device=frames.device, dtype=flow.dtype),
        indexing="ij",
    )
    x = (xs - flow[:, 0] + 0.5) * (2.0 / w) - 1.0
    y = (ys - flow[:, 1] + 0.5) * (2.0 / h) - 1.0
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(
        frames.to(grid.dtype), grid, mode="bilinear", padding_mode="border", align_corners=False
    ).to(frames.dtype)


class FramePredictor(VideoModule):
    """Next-frame prediction with a frozen VGG16, a recurrent core and a deconvolution head.

    Args:
        image_size: frame side in pixels (linked to ``data.image_size`` by the CLI).
        backbone_layer: VGG16 cut, e.g. ``"pool5"`` (paper) or ``"pool3"``.
        backbone_weights: ``None`` (random), ``"imagenet"`` (torch cache) or a file path.
        core: builds the core from the per-frame feature shape, e.g. ``LSTMCore`` or
            ``functools.partial(ConvLSTMCore, hidden_channels=64)``; in YAML a ``class_path``
            with ``init_args`` lacking ``in_shape``.
        head: builds the head from ``(core.out_shape, image_size)``.
        context_frames: true frames seen before the rollout at evaluation.
        train_rollout: train on rollouts from ``context_frames`` instead of teacher forcing.
        output: what the head's output means. ``"frame"`` (paper): the next frame itself.
            ``"residual"``: a change of the previous frame, added in logit space, so an untrained
            model starts near copy-last-frame. ``"warp"``: a 2-channel flow field (at most
            ``max_flow`` pixels a step) that moves the previous frame's pixels (bilinear
            sampling): motion stays sharp and cannot fade into the background.
        max_flow: the largest displacement, in pixels per step, of ``output="warp"``.
        loss: reconstruction loss (default: MSE, the paper's).
        optimizer: default Adam with lr 0.01 (paper).
        lr_scheduler: e.g. ``StepLR(step_size=1000, gamma=0.1)`` per epoch (paper).
    """

    def __init__(
        self,
        image_size: int = 224,
        backbone_layer: str = "pool5",
        backbone_weights: str | None = None,
        core: CoreFactory = LSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        context_frames: int = 4,
        train_rollout: bool = False,
        output: Literal["frame", "residual", "warp"] = "frame",
        max_flow: float = 4.0,
        loss: VideoLoss | None = None,
        optimizer: OptimizerCallable = paper_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ) -> None:
        super().__init__(
            image_size, backbone_layer, backbone_weights, loss, optimizer, lr_scheduler
        )
        self.save_hyperparameters(ignore=["loss"])
        if context_frames < 1:
            raise ValueError(f"context_frames must be >= 1, got {context_frames}")
        if output not in OUTPUT_CHANNELS:
            raise ValueError(f"output must be one of {sorted(OUTPUT_CHANNELS)}, got {output!r}")
        self.core = core(self.feature_shape)
        self.head = head(self.core.out_shape, image_size, out_channels=OUTPUT_CHANNELS[output])
        self.context_frames = context_frames
        self.train_rollout = train_rollout
        self.output = output
        self.max_flow = max_flow

    def forward(self, context: Tensor, horizon: int) -> Tensor:
        """Roll out ``horizon`` frames after ``context`` ``(B, T, C, H, W)`` (any horizon >= 1)."""
        self.check_video(context)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        out, state = self.core(self.encode(context))
        frame = self.next_frames(out[:, -1:], context[:, -1:])
        frames = [frame]
        for _ in range(horizon - 1):
            out, state = self.core(self.encode(frame), state)
            frame = self.next_frames(out, frame)
            frames.append(frame)
        return torch.cat(frames, dim=1)

    def next_frames(self, out: Tensor, previous: Tensor) -> Tensor:
        """Frames after ``previous`` ``(B, S, C, H, W)`` from the core's outputs at them."""
        if self.output == "frame":
            return self.render(self.head, out)
        logits = self.render(self.head.logits, out)
        if self.output == "residual":
            base = torch.logit(previous.clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS))
            return torch.sigmoid(base + logits)
        flow = torch.tanh(logits) * self.max_flow
        return warp(previous.flatten(0, 1), flow.flatten(0, 1)).view_as(previous)

    def teacher_forced(self, video: Tensor) -> Tensor:
        """Predictions of frames ``1..S-1``, each from the true frames before it."""
        self.check_video(video)
        out, _ = self.core(self.encode(video[:, :-1]))
        return self.next_frames(out, video[:, :-1])

    def split(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """A clip's context (at most ``context_frames``, leaving >= 1 frame) and its target."""
        context = min(self.context_frames, video.shape[1] - 1)
        return video[:, :context], video[:, context:]

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        video = batch["video"]
        if self.train_rollout:
            context, target = self.split(video)
            pred = self(context, target.shape[1])
        else:
            pred, target = self.teacher_forced(video), video[:, 1:]
        terms = self.loss(pred, target, self.backbone)
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]

    def evaluate(self, stage: str, batch: dict) -> dict[str, Tensor]:
        """Roll out from the context, log the loss and update the per-horizon metrics."""
        context, target = self.split(batch["video"])
        pred = self(context, target.shape[1])
        self.log_terms(stage, self.loss(pred, target, self.backbone), target.shape[0])
        self.update_metrics(stage, pred, target, context)
        return {"context": context, "target": target, "pred": pred}

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("test", batch)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        context, target = self.split(batch["video"])
        return {
            "context": context,
            "target": target,
            "pred": self(context, target.shape[1]),
            "index": batch["index"],
        }
