"""LightningDataModules: the shared ``VideoDataModule`` base and the concrete data sources."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from vidgen.data.resumable import resumable_loader
from vidgen.data.sampling import ClipSampler, SamplingMode
from vidgen.data.shapes import ShapesVideos
from vidgen.data.textured import TexturedVideos

SPLITS = ("train", "val", "test")


def default_num_workers() -> int:
    """DataLoader workers when none are given: up to 4, leaving one core to the main process."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class VideoDataModule(L.LightningDataModule, ABC):
    """Clip sampling, splits and DataLoaders shared by every video source.

    Subclasses implement :meth:`make_dataset`. Items are dicts with a uint8 ``video``
    ``(S, C, H, W)``; batches are ``(B, S, C, H, W)`` uint8 (the model converts on the device).

    Args:
        frames: S, frames per training clip (>= 2: one to see, one to predict).
        eval_frames: frames per validation/test clip (default ``frames``); longer clips let the
            evaluation roll a predictor out past its training length.
        frame_skip: k, source frames dropped between two kept frames.
        sampling: ``"stride"`` (one window of stride k+1) or ``"segments"`` (one frame per equal
            segment of the video).
        image_size: frames are square, ``image_size`` pixels a side.
        batch_size: clips per batch.
        num_workers: DataLoader worker processes (default: up to 4, one core left free).
        clips_per_video: disjoint clips taken from each video per epoch.
    """

    def __init__(
        self,
        frames: int = 8,
        eval_frames: int | None = None,
        frame_skip: int = 0,
        sampling: SamplingMode = "stride",
        image_size: int = 64,
        batch_size: int = 16,
        num_workers: int | None = None,
        clips_per_video: int = 1,
    ) -> None:
        super().__init__()
        self.frames = frames
        self.eval_frames = eval_frames or frames
        self.frame_skip = frame_skip
        self.sampling = sampling
        self.image_size = image_size
        self.batch_size = batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.clips_per_video = clips_per_video
        self.datasets: dict[str, Dataset] = {}

    @abstractmethod
    def make_dataset(self, split: str, sampler: ClipSampler) -> Dataset:
        """The dataset of ``split`` (one of ``train``, ``val``, ``test``) using ``sampler``."""

    def sampler(self, split: str) -> ClipSampler:
        """Random clips of ``frames`` for training; deterministic clips of ``eval_frames`` else."""
        train = split == "train"
        return ClipSampler(
            frames=self.frames if train else self.eval_frames,
            frame_skip=self.frame_skip,
            mode=self.sampling,
            clips_per_video=self.clips_per_video,
            random=train,
        )

    def check_config(self) -> None:
        """Fail early, with the fix in the message, on settings no dataset can satisfy."""
        if self.frames < 2 or self.eval_frames < 2:
            raise ValueError(
                f"frames={self.frames}, eval_frames={self.eval_frames}: a clip needs at least 2 "
                "frames (one to see, one to predict); set data.frames >= 2"
            )
        for name in ("frame_skip", "batch_size", "image_size", "clips_per_video"):
            value = getattr(self, name)
            if value < (0 if name == "frame_skip" else 1):
                raise ValueError(f"data.{name} must be positive, got {value}")
        if self.sampling not in ("stride", "segments"):
            raise ValueError(f"data.sampling must be 'stride' or 'segments', got {self.sampling!r}")

    def setup(self, stage: str | None = None) -> None:
        self.check_config()
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}
        for split in wanted.get(stage, SPLITS):
            if split not in self.datasets:
                dataset = self.make_dataset(split, self.sampler(split))
                if len(dataset) == 0:
                    raise ValueError(f"the {split} split of {type(self).__name__} is empty")
                self.datasets[split] = dataset

    def _loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate"}.get(split, "test"))
        dataset = self.datasets[split]
        kwargs = {
            "batch_size": self.batch_size,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
        }
        if split == "train":  # shuffled, random clips: resumes exactly (data/resumable.py)
            drop_last = len(dataset) >= self.batch_size
            return resumable_loader(dataset, self.trainer, drop_last=drop_last, **kwargs)
        return DataLoader(dataset, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")


class ShapesDataModule(VideoDataModule):
    """The embedded default: procedural bouncing shapes, seeded, no files.

    Args:
        num_train, num_val, num_test: videos per split (disjoint seeds).
        video_length: frames per source video; clips are sampled from it like from a real video.
        num_shapes: shapes per video.
        seed: base seed; split ``j`` uses ``seed + 1_000_003 * j``.
        **kwargs: the :class:`VideoDataModule` arguments.
    """

    videos: type[ShapesVideos] = ShapesVideos

    def __init__(
        self,
        num_train: int = 512,
        num_val: int = 64,
        num_test: int = 64,
        video_length: int = 48,
        num_shapes: int = 2,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.video_length = video_length
        self.num_shapes = num_shapes
        self.seed = seed

    def make_dataset(self, split: str, sampler: ClipSampler) -> Dataset:
        return self.videos(
            num_videos=self.sizes[split],
            sampler=sampler,
            image_size=self.image_size,
            video_length=self.video_length,
            num_shapes=self.num_shapes,
            seed=self.seed + 1_000_003 * SPLITS.index(split),
        )


class TexturedDataModule(ShapesDataModule):
    """Procedural video that looks like video (:mod:`vidgen.data.textured`): textured shapes
    over a panning, zooming 1/f-noise background, seeded, no files; the arguments of
    :class:`ShapesDataModule`."""

    videos = TexturedVideos
