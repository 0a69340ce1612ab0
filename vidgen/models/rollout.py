"""What every predictor shares: the evaluation protocol of a rollout from true context frames.

A predictor sees ``context_frames`` true frames of a clip, then predicts the rest of it, each
step from its own previous prediction (any horizon, also longer than the training clips).
Validation and test score that rollout per horizon step against copy-last-frame and mean-frame;
``vidgen predict`` returns it with the clip's context and target.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from torch import Tensor

from vidgen.models.base import VideoModule


class RolloutModule(VideoModule):
    """Base of the predictors: :meth:`forward` rolls out ``horizon`` frames after a context;
    this class splits clips, evaluates rollouts and serves ``vidgen predict``."""

    context_frames: int
    """True frames seen before a rollout (set by the subclass)."""

    @abstractmethod
    def forward(self, context: Tensor, horizon: int, ids: Tensor | None = None) -> Tensor:
        """``horizon`` frames ``(B, horizon, C, H, W)`` after ``context`` ``(B, T, C, H, W)``;
        ``ids``: the context's frame ids, for the feature cache (:meth:`encode`)."""

    def rollout(self, context: Tensor, horizon: int) -> Tensor:
        """What the model predicts at test time and in ``vidgen predict`` (its :meth:`forward`
        unless a subclass falls back on a reference); validation scores :meth:`forward`."""
        return self(context, horizon)

    def check_rollout(self, context: Tensor, horizon: int) -> None:
        """Raise a clear error for a bad context or horizon."""
        self.check_video(context)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")

    def split(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """A clip's context (at most ``context_frames``, leaving >= 1 frame) and its target."""
        context = min(self.context_frames, video.shape[1] - 1)
        return video[:, :context], video[:, context:]

    def rollout_loss(self, batch: dict) -> Tensor:
        """The training loss of a rollout from the clip's context over the rest of it."""
        video, ids = batch["video"], self.frame_ids(batch)
        context, target = self.split(video)
        pred = self(context, target.shape[1], None if ids is None else ids[:, : context.shape[1]])
        terms = self.loss(pred, target, self.backbone)
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]

    def evaluate(self, stage: str, batch: dict) -> dict[str, Tensor]:
        """Roll out from the context (validation: :meth:`forward`; test: :meth:`rollout`), log
        the loss and update the per-horizon metrics."""
        context, target = self.split(batch["video"])
        pred = (self if stage == "val" else self.rollout)(context, target.shape[1])
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
            "pred": self.rollout(context, target.shape[1]),
            "index": batch["index"],
        }
