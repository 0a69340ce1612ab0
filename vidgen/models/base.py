"""What FramePredictor and VideoVAE share: backbone, frame encoding/rendering, loss, optimiser."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from vidgen.models.backbone import FrozenVGG16
from vidgen.models.losses import VideoLoss

# The frozen backbone is in eval mode on purpose, and the uint8 -> float conversion is meant to
# live in the model (DESIGN section 3): Lightning's notes on both are noise for vidgen users.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`")


def paper_adam(params: Any) -> torch.optim.Optimizer:
    """The paper's optimiser: Adam, learning rate 0.01."""
    return torch.optim.Adam(params, lr=0.01)


class VideoModule(L.LightningModule):
    """Base LightningModule for models that read frames through a frozen VGG16.

    Batches arrive as uint8 ``(B, S, C, H, W)`` and are turned into floats in [0, 1] on the
    device (:meth:`on_after_batch_transfer`). Frames pass the backbone as ``(B*S, C, H, W)``
    (paper 2.2.1) and come back as ``(B, S, ...)``.
    """

    def __init__(
        self,
        image_size: int,
        backbone_layer: str,
        backbone_weights: str | None,
        loss: VideoLoss | None,
        optimizer: OptimizerCallable,
        lr_scheduler: LRSchedulerCallable | None,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.backbone = FrozenVGG16(backbone_layer, backbone_weights)
        self.feature_shape = self.backbone.feature_shape(image_size)
        self.loss = loss if loss is not None else VideoLoss()
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        video = batch["video"]
        if video.dtype == torch.uint8:
            batch["video"] = video.float().div_(255.0)
        return batch

    def check_video(self, video: Tensor) -> None:
        """Raise a clear error for input that is not ``(B, S, C, image_size, image_size)``."""
        if video.ndim != 5 or tuple(video.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"expected video (B, S, C, {self.image_size}, {self.image_size}), got "
                f"{tuple(video.shape)}; set data.image_size and model.image_size alike"
            )

    def encode(self, video: Tensor) -> Tensor:
        """Backbone features of every frame: ``(B, S, C, H, W)`` -> ``(B, S, C', h, w)``."""
        b, s = video.shape[:2]
        features = self.backbone(video.flatten(0, 1))
        return features.view(b, s, *features.shape[1:])

    @staticmethod
    def render(head: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
        """Frames from per-frame core outputs: ``(B, S, *shape)`` -> ``(B, S, C, H, W)``.

        ``head`` is a :class:`FrameHead` (frames in [0, 1]) or its ``logits`` method.
        """
        b, s = z.shape[:2]
        frames = head(z.flatten(0, 1))
        return frames.view(b, s, *frames.shape[1:])

    def log_terms(self, stage: str, terms: dict[str, Tensor], batch_size: int) -> None:
        """Log loss terms as ``<stage>/<term>``."""
        self.log_dict(
            {f"{stage}/{k}": v.detach() for k, v in terms.items()},
            prog_bar=stage == "train",
            batch_size=batch_size,
            sync_dist=stage != "train",
        )

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer(params)
        if self.lr_scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler(optimizer)}
