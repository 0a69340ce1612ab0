"""LightningDataModules: the shared ``VideoDataModule`` base and the concrete data sources."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from functools import partial
from pathlib import Path
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


class UCF101DataModule(VideoDataModule):
    """UCF101 clips from the official archives, with the official folds.

    ``root`` holds ``UCF-101/`` (class folders of ``v_<Class>_gXX_cYY.avi``) and
    ``ucfTrainTestlist/`` (``classInd.txt``, ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt``);
    class folders directly in ``root`` work too. ``train`` is the fold's train list minus the
    validation groups, ``val`` those groups (no group is in both), ``test`` the fold's test list.

    Videos are indexed once (frame count, fps, size; in parallel, cached beside the data or in
    ``cache_dir`` when the root is read-only, refreshed per file by size and mtime). Missing,
    empty, undecodable and too-short videos (fewer than the split's clip frames) are reported
    once and left out.

    Args:
        root: the UCF101 folder.
        fold: official split 1, 2 or 3.
        val_fraction: share of the train list's groups (``gXX``) held out for validation.
        cache_dir: where the frame cache goes, and the index when ``root`` is not writable
            (default ``~/.cache/vidgen``); given explicitly, the index always goes there.
        index_workers: processes probing videos while indexing and decoding them into the
            frame cache (default: all cores, up to 8).
        verify_videos: decode the last frames of every video while indexing. Off (default),
            complete AVI files are indexed from their headers (50x faster) and only the others
            (truncated, other containers) are decoded; a corrupt payload then shows up as a
            logged, replaced decode failure during the epoch instead of at index time.
        frame_cache: decode every video once at ``image_size`` into uint8 ``.npy`` files in
            ``cache_dir`` (:meth:`frame_cache_dir`) and read clips from them: several times the
            clips/s of decoding each clip (``benchmarks/results/ucf101_cpu.md``), the same pixels,
            ``3 * image_size**2`` bytes of disk a frame (see :mod:`vidgen.data.frame_cache`).
        progress: show progress bars while indexing and caching.
        frames, eval_frames, frame_skip, sampling, image_size, batch_size, num_workers,
        clips_per_video: as in :class:`VideoDataModule`.
    """

    def __init__(
        self,
        root: str,
        fold: int = 1,
        frames: int = 8,
        frame_skip: int = 1,
        sampling: SamplingMode = "stride",
        image_size: int = 64,
        batch_size: int = 16,
        num_workers: int | None = None,
        clips_per_video: int = 1,
        eval_frames: int | None = None,
        val_fraction: float = 0.1,
        cache_dir: str | None = None,
        index_workers: int | None = None,
        verify_videos: bool = False,
        frame_cache: bool = False,
        progress: bool = True,
    ) -> None:
        super().__init__(
            frames=frames,
            eval_frames=eval_frames,
            frame_skip=frame_skip,
            sampling=sampling,
            image_size=image_size,
            batch_size=batch_size,
            num_workers=num_workers,
            clips_per_video=clips_per_video,
        )
        self.root = root
        self.fold = fold
        self.val_fraction = val_fraction
        self.cache_dir = cache_dir
        self.index_workers = index_workers
        self.verify_videos = verify_videos
        self.frame_cache = frame_cache
        self.progress = progress
        self.class_names: list[str] = []
        self._index: dict | None = None

    def check_config(self) -> None:
        from vidgen.data import ucf101

        super().check_config()
        if not 0.0 < self.val_fraction < 1.0:
            raise ucf101.UCF101ConfigError(
                f"data.val_fraction={self.val_fraction}: set it in (0, 1), e.g. 0.1"
            )
        _, list_dir = ucf101.find_layout(self.root)
        ucf101.split_lists(list_dir, self.fold)

    def prepare_data(self) -> None:
        """Build the video index cache once (rank 0) so that the other ranks only read it."""
        self.check_config()
        self._build_index()

    def _build_index(self) -> dict:
        """Parse the fold's lists, index their videos and sort out the bad ones (once)."""
        if self._index is not None:
            return self._index
        from vidgen.data import ucf101
        from vidgen.data.video import VideoInfo

        video_dir, list_dir = ucf101.find_layout(self.root)
        train_list, test_list = ucf101.split_lists(list_dir, self.fold)
        self.class_names, classes = ucf101.read_class_index(list_dir / "classInd.txt")
        train, bad_train = ucf101.read_split(train_list, classes)
        test, bad_test = ucf101.read_split(test_list, classes)
        val_groups = ucf101.validation_groups((e.group for e in train), self.val_fraction)
        splits = {
            "train": [e for e in train if e.group not in val_groups],
            "val": [e for e in train if e.group in val_groups],
            "test": test,
        }
        located = ucf101.resolve_paths(video_dir, [e.path for e in train + test])
        missing = sorted(rel for rel, path in located.items() if path is None)
        present = sorted({path for path in located.values() if path is not None})
        index = ucf101.VideoIndex(
            video_dir, self.cache_dir, self.index_workers, self.progress, self.verify_videos
        )
        infos = index.update(present)
        broken = sorted(info["error"] for info in infos.values() if "error" in info)
        good = {
            path: VideoInfo.from_dict(info) for path, info in infos.items() if "error" not in info
        }
        videos = {
            split: [
                ucf101.Video(str(located[e.path]), e.label, good[located[e.path]])
                for e in entries
                if located[e.path] in good
            ]
            for split, entries in splits.items()
        }
        ucf101.report_bad(
            {
                "listed videos missing on disk": missing,
                "unreadable videos (empty, truncated or undecodable)": broken,
                "list lines with unknown classes or labels": bad_train + bad_test,
            }
        )
        self._index = {
            "videos": videos,
            "index_file": index.file,
            "val_groups": val_groups,
            "cached": self._cache_frames(video_dir, videos) if self.frame_cache else {},
        }
        return self._index

    def frame_cache_dir(self) -> Path:
        """Where the frame cache of this root and ``image_size`` lives: in ``cache_dir``
        (default ``~/.cache/vidgen``), never among the class folders, where other tools
        (torchvision's UCF101) would take it for a class."""
        from vidgen.data import ucf101

        video_dir, _ = ucf101.find_layout(self.root)
        name = f"ucf101_frames_{ucf101.dir_key(video_dir)}_{self.image_size}px"
        return Path(self.cache_dir or ucf101.default_cache_dir()) / name

    def _cache_frames(self, video_dir: Path, videos: dict[str, list]) -> dict[str, str]:
        """Decode the splits' videos into the frame cache -> ``{path: cache file}``."""
        from vidgen.data.frame_cache import FrameCache

        directory = self.frame_cache_dir()
        cache = FrameCache(directory, video_dir, self.image_size, self.index_workers, self.progress)
        unique = {v.path: v.info for split in videos.values() for v in split}
        return cache.build(list(unique.items()))

    def make_dataset(self, split: str, sampler: ClipSampler) -> Dataset:
        from vidgen.data import ucf101
        from vidgen.data.frame_cache import CachedReader
        from vidgen.data.video import DecordReader

        videos = self._build_index()["videos"][split]
        usable = [v for v in videos if v.info.frames >= sampler.frames]
        short = [f"{v.path} ({v.info.frames} frames)" for v in videos if v not in usable]
        ucf101.report_bad({f"{split} videos shorter than {sampler.frames} frames": short})
        if not usable:
            raise ucf101.UCF101ConfigError(
                f"the {split} split of UCF101 fold {self.fold} under {self.root} has no usable "
                f"video ({len(videos)} listed and readable, {len(short)} shorter than "
                f"{sampler.frames} frames): check data.root and the list files, lower "
                f"data.frames/data.eval_frames, or raise data.val_fraction for an empty val split"
            )
        cached = self._build_index()["cached"]
        reader = partial(CachedReader, cached, self.image_size) if cached else DecordReader
        return ucf101.UCF101Clips(usable, sampler, image_size=self.image_size, reader=reader)
