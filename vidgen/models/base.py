"""What every vidgen model shares: backbone, frame encoding/rendering, loss, optimiser, metrics."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torchmetrics import Metric

from vidgen.checkpoint import check_current, is_file_path, read_checkpoint
from vidgen.evaluation import HorizonMetrics
from vidgen.models.backbone import FrozenVGG16
from vidgen.models.feature_cache import FeatureCache
from vidgen.models.heads import FrameHead
from vidgen.models.losses import VideoLoss
from vidgen.models.recurrent import SequenceCore, Shape

CoreFactory = Callable[[Shape], SequenceCore]
"""Builds a sequence core from its per-frame input shape (YAML: ``class_path`` + ``init_args``)."""
HeadFactory = Callable[[Shape, int], FrameHead]
"""Builds a frame head from ``(core.out_shape, image_size)``."""

# The frozen backbone is in eval mode on purpose, and the uint8 -> float conversion is meant to
# live in the model (DESIGN section 3): Lightning's notes on both are noise for vidgen users.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`")


def paper_adam(params: Any) -> torch.optim.Optimizer:
    """The paper's optimiser: Adam, learning rate 0.01."""
    return torch.optim.Adam(params, lr=0.01)


def adam(params: Any) -> torch.optim.Optimizer:
    """Adam with PyTorch's default learning rate, 1e-3: vidgen's models' default."""
    return torch.optim.Adam(params, lr=1e-3)


class VideoModule(L.LightningModule):
    """Base LightningModule for models that read frames through a frozen VGG16.

    Batches arrive as uint8 ``(B, S, C, H, W)`` and are turned into floats in [0, 1] on the
    device (:meth:`on_after_batch_transfer`). Frames pass the backbone as ``(B*S, C, H, W)``
    (paper 2.2.1) and come back as ``(B, S, ...)``.

    The options every model shares (each model passes them on as ``**kwargs``; the defaults are
    the paper's):

    Args:
        image_size: frame side in pixels (linked to ``data.image_size`` by the CLI).
        backbone_layer: VGG16 cut, e.g. ``"pool5"`` (paper) or ``"pool3"``.
        backbone_weights: ``None`` (random), ``"imagenet"`` (torch cache) or a file path.
        loss: reconstruction loss (default: MSE, the paper's).
        optimizer: builds the optimiser from the trainable parameters (default: the model's
            :attr:`default_optimizer`: Adam, lr 0.01 for the paper's models, 1e-3 for vidgen's).
        lr_scheduler: e.g. ``StepLR(step_size=1000, gamma=0.1)`` per epoch (paper).
        feature_cache_gib: memory for the backbone features of true training frames, computed
            once per frame (:class:`FeatureCache`; 0 = off). Needs data with ``frame_ids``
            (every embedded and file source has them).
        channels_last: run the backbone in NHWC memory layout (the same features to 1e-5);
            whether it is faster depends on the machine and the model
            (``benchmarks/throughput.py`` measures it per packaged config).
    """

    default_optimizer: Callable[[Any], torch.optim.Optimizer] = staticmethod(paper_adam)
    """The optimiser of ``optimizer=None``."""

    def __init__(
        self,
        image_size: int = 224,
        backbone_layer: str = "pool5",
        backbone_weights: str | None = None,
        loss: VideoLoss | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        feature_cache_gib: float = 0.0,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        if feature_cache_gib < 0:
            raise ValueError(f"feature_cache_gib must be >= 0 (0 = off), got {feature_cache_gib}")
        self.image_size = image_size
        self.backbone = FrozenVGG16(backbone_layer, backbone_weights)
        self.channels_last = channels_last
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.feature_shape = self.backbone.feature_shape(image_size)
        self.loss = loss if loss is not None else VideoLoss()
        self.optimizer = optimizer or self.default_optimizer
        self.lr_scheduler = lr_scheduler
        self.feature_cache = (
            FeatureCache(int(feature_cache_gib * 2**30)) if feature_cache_gib else None
        )
        self.eval_metrics: dict[str, Metric] = {}
        self.results: dict[str, dict[str, Tensor]] = {}

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:
        """Lightning's, with a clear error for a checkpoint of vidgen 0.1 (CHANGELOG.md)."""
        if is_file_path(checkpoint_path):
            check_current(read_checkpoint(checkpoint_path), checkpoint_path, cls)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

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

    def encode(self, video: Tensor, ids: Tensor | None = None) -> Tensor:
        """Backbone features of every frame: ``(B, S, C, H, W)`` -> ``(B, S, C', h, w)``.

        ``ids`` ``(B, S)``: the frames' ids (``batch["frame_ids"]``, see :meth:`frame_ids`):
        frames of known ids come from the feature cache, without a gradient to ``video``.
        """
        b, s = video.shape[:2]
        frames = video.flatten(0, 1)
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        if ids is None or self.feature_cache is None:
            features = self.backbone(frames)
        else:
            features = self.feature_cache(self.backbone, frames, ids.flatten())
        return features.reshape(b, s, *features.shape[1:])

    def frame_ids(self, batch: dict) -> Tensor | None:
        """A training batch's ``frame_ids`` when the feature cache is on, else ``None``."""
        if self.feature_cache is None:
            return None
        ids = batch.get("frame_ids")
        if ids is None:
            raise ValueError(
                "model.feature_cache_gib needs data that names its frames (batch['frame_ids']); "
                "this data does not (a source that augments or otherwise changes pixels must "
                "not): set model.feature_cache_gib: 0"
            )
        return ids

    def on_fit_start(self) -> None:
        if self.feature_cache is not None:  # features of another fit's data must not leak in
            self.feature_cache.clear()

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

    def stage_metrics(
        self, key: str, horizon: int, kind: Callable[[int], Metric] = HorizonMetrics
    ) -> Metric:
        """The metrics accumulating under ``key`` (a stage, or ``<stage>/<group>`` for a group
        of results of their own): ``kind(horizon)``, new when missing or of another horizon."""
        metrics = self.eval_metrics.get(key)
        if metrics is None or metrics.horizon != horizon:
            metrics = kind(horizon).to(self.device)
            self.eval_metrics[key] = metrics
        return metrics

    def update_metrics(self, stage: str, pred: Tensor, target: Tensor, context: Tensor) -> None:
        """Accumulate per-step metrics of ``pred`` and of the baselines of ``context``."""
        self.stage_metrics(stage, target.shape[1]).update(pred, target, context)

    def summarise(self, stage: str) -> dict[str, Tensor]:
        """The results of ``stage``'s metrics (those of a ``<stage>/<group>`` key named
        ``<group>/...``), logged as means, kept in ``results``, then reset."""
        results = {}
        for key, metrics in self.eval_metrics.items():
            owner, _, group = key.partition("/")
            if owner == stage and metrics.update_called:
                prefix = f"{group}/" if group else ""
                results |= {prefix + k: v for k, v in metrics.compute().items()}
                metrics.reset()
        if not results:
            return {}
        self.log_dict({f"{stage}/{k}": v.mean() for k, v in results.items()}, sync_dist=False)
        self.results[stage] = results
        return results

    def on_validation_epoch_end(self) -> None:
        self.summarise("val")

    def on_test_epoch_end(self) -> None:
        self.summarise("test")

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer(params)
        if self.lr_scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.lr_scheduler(optimizer)}
