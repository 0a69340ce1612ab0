"""The clip Dataset over indexed video files, and the one-line report of bad files."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.data.decoders import FrameReader, VideoError, VideoInfo, make_reader
from vidgen.data.sampling import ClipSampler, head_indices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Video:
    """One usable video of a split."""

    path: str
    label: int
    info: VideoInfo


class VideoClips(Dataset):
    """Clips of a list of indexed videos; items follow the dataset contract.

    An item is ``{"video": uint8 (S, 3, image_size, image_size), "label": int, "index": i,
    "frame_ids": int64 (S,)}``; frame ``f`` of the ``v``-th video is id ``offsets[v] + f``
    (the frame counts of the videos before it, summed): equal ids, equal pixels.
    A clip that fails to decode is logged once per file and replaced by the same clip number of
    the next video (deterministic); after ``max_retries`` failures in a row the error is raised.
    """

    def __init__(
        self,
        videos: Sequence[Video],
        sampler: ClipSampler,
        image_size: int | None = 64,
        reader: Callable[[], FrameReader] = make_reader,
        max_retries: int = 10,
    ) -> None:
        self.videos = list(videos)
        self.sampler = sampler
        self.image_size = image_size
        self._make_reader = reader
        self._reader: FrameReader | None = None
        self.max_retries = max_retries
        self.failed: set[str] = set()
        counts = [video.info.frames for video in self.videos]
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.videos) * self.sampler.clips_per_video

    @property
    def reader(self) -> FrameReader:
        if self._reader is None:  # created lazily, i.e. inside the DataLoader worker
            self._reader = self._make_reader()
        return self._reader

    def frame_numbers(self, item: int) -> np.ndarray:
        """Frame numbers of item ``item`` (random in training, see :class:`ClipSampler`)."""
        video = self.videos[self.video_number(item)]
        return self.sampler(item, video.info.frames)

    def load(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """``(frame numbers, uint8 (S, H, W, 3) frames)`` of item ``item``; may raise."""
        video = self.videos[self.video_number(item)]
        numbers = self.frame_numbers(item)
        shape = (video.info.width, video.info.height)
        frames = self.reader.read(video.path, numbers, self.image_size, shape=shape)
        return numbers, frames

    def decode(self, item: int) -> tuple[int, np.ndarray, np.ndarray]:
        """``(item used, frame ids, uint8 (S, 3, H, W) frames)``: item ``item``, or the
        replacement of a clip that failed to decode."""
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} clips")
        cpv = self.sampler.clips_per_video
        source = item
        for attempt in range(self.max_retries + 1):
            try:
                numbers, frames = self.load(source)
                break
            except VideoError as err:
                path = self.videos[self.video_number(source)].path
                if path not in self.failed:
                    self.failed.add(path)
                    log.warning("decode failure, item replaced by the next video's clip: %s", err)
                if attempt == self.max_retries:
                    raise
                source = (source + cpv) % len(self)
        ids = self.offsets[self.video_number(source)] + np.asarray(numbers, dtype=np.int64)
        # numpy's transpose copy: torch's permute().contiguous() on uint8 is much slower here
        return source, ids, np.ascontiguousarray(frames.transpose(0, 3, 1, 2))

    def video_number(self, item: int) -> int:
        """Which of ``videos`` item ``item`` comes from."""
        return self.sampler.video_of(item)

    def __getitem__(self, item: int) -> dict:
        source, ids, frames = self.decode(item)
        video = self.videos[self.video_number(source)]
        return {
            "video": torch.from_numpy(frames),
            "label": video.label,
            "index": item,
            "frame_ids": torch.from_numpy(ids),
        }


def report_bad(problems: dict[str, list[str]], source: str, limit: int = 5) -> None:
    """Log each kind of problem once: ``source``, the count and the first ``limit`` paths."""
    for kind, items in problems.items():
        if items:
            shown = "\n  ".join(items[:limit])
            more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
            log.warning("%s: %d %s, left out:\n  %s%s", source, len(items), kind, shown, more)


class HeadClips(VideoClips):
    """One clip per video from its first frame: what ``vidgen predict`` reads from files.

    Item ``i`` holds frames ``0, k+1, 2(k+1), ...`` (``sampler.frames`` of them at the
    sampler's ``frame_skip`` k) of video ``i``; past the video's end the last frame repeats, and
    ``available`` says how many are real. ``path`` is the source file; a file that fails to
    decode is replaced by the next one, and ``index`` and ``path`` name the one used.
    """

    def frame_numbers(self, item: int) -> np.ndarray:
        video = self.videos[item]
        return head_indices(video.info.frames, self.sampler.frames, self.sampler.frame_skip)[0]

    def video_number(self, item: int) -> int:
        return item

    def __getitem__(self, item: int) -> dict:
        source, ids, frames = self.decode(item)
        video = self.videos[source]
        available = head_indices(video.info.frames, self.sampler.frames, self.sampler.frame_skip)
        return {
            "video": torch.from_numpy(frames),
            "label": video.label,
            "index": source,
            "available": available[1],
            "path": video.path,
            "frame_ids": torch.from_numpy(ids),
        }
