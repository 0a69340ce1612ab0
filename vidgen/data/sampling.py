"""Skip-frame segment sampling (paper section 2.1): which frame numbers make a clip.

Pure index math, no I/O. A clip has ``frames`` (S) frames; ``frame_skip`` (k) frames are dropped
between two kept frames, so the stride is k + 1 and a clip spans ``(S - 1) * (k + 1) + 1`` source
frames. Randomness comes only from ``rng``: with ``rng=None`` (evaluation) every function is
deterministic.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

SamplingMode = Literal["stride", "segments"]


def clip_span(frames: int, frame_skip: int) -> int:
    """Source frames covered by a clip of ``frames`` frames at stride ``frame_skip + 1``."""
    return (frames - 1) * (frame_skip + 1) + 1


def part_range(num_frames: int, part: int, parts: int) -> tuple[int, int]:
    """Frame range ``[lo, hi)`` of the ``part``-th of ``parts`` equal, disjoint parts of a video.

    Parts never overlap; each holds at least one frame (parts past the end reuse the last frame).
    """
    if not 0 <= part < parts:
        raise ValueError(f"part must be in [0, {parts}), got {part}")
    lo = min(part * num_frames // parts, num_frames - 1)
    hi = max((part + 1) * num_frames // parts, lo + 1)
    return lo, hi


def stride_indices(
    num_frames: int, frames: int, frame_skip: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One window of ``frames`` frames at stride ``frame_skip + 1``.

    Random start with ``rng``, centred without. A video shorter than the span gets the largest
    stride that fits; shorter than ``frames`` it is read at stride 1 and its last frame repeats.
    """
    stride = frame_skip + 1
    if clip_span(frames, frame_skip) > num_frames:
        stride = max(1, (num_frames - 1) // (frames - 1)) if frames > 1 else 1
    span = min(clip_span(frames, stride - 1), num_frames)
    slack = num_frames - span
    start = int(rng.integers(0, slack + 1)) if rng is not None else slack // 2
    return np.minimum(start + np.arange(frames) * stride, num_frames - 1)


def segment_indices(
    num_frames: int, frames: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """One frame from each of ``frames`` equal segments: random with ``rng``, middle without."""
    edges = np.floor(np.linspace(0, num_frames, frames + 1)).astype(np.int64)
    lo = np.minimum(edges[:-1], num_frames - 1)
    hi = np.maximum(edges[1:], lo + 1)
    if rng is None:
        return (lo + hi - 1) // 2
    return rng.integers(lo, hi)


def clip_indices(
    num_frames: int,
    frames: int,
    frame_skip: int = 0,
    mode: SamplingMode = "stride",
    rng: np.random.Generator | None = None,
    part: int = 0,
    parts: int = 1,
) -> np.ndarray:
    """Frame numbers (int64, length ``frames``, non-decreasing) of one clip of a video.

    Args:
        num_frames: frames in the video (>= 1).
        frames: S, frames per clip (>= 1).
        frame_skip: k, frames dropped between two kept frames (``stride`` mode only).
        mode: ``"stride"`` (one window) or ``"segments"`` (one frame per equal segment).
        rng: a numpy Generator for training-time randomness; ``None`` for deterministic eval.
        part, parts: sample inside the ``part``-th of ``parts`` disjoint parts of the video, so
            ``clips_per_video`` clips of one video never overlap.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if frame_skip < 0:
        raise ValueError(f"frame_skip must be >= 0, got {frame_skip}")
    lo, hi = part_range(num_frames, part, parts)
    if mode == "stride":
        local = stride_indices(hi - lo, frames, frame_skip, rng)
    elif mode == "segments":
        local = segment_indices(hi - lo, frames, rng)
    else:
        raise ValueError(f"mode must be 'stride' or 'segments', got {mode!r}")
    return (lo + local).astype(np.int64)


def head_indices(num_frames: int, frames: int, frame_skip: int = 0) -> tuple[np.ndarray, int]:
    """The first ``frames`` frame numbers from frame 0 at stride ``frame_skip + 1`` (clamped to
    the last frame) and how many of them are in the video."""
    stride = frame_skip + 1
    wanted = np.arange(frames, dtype=np.int64) * stride
    available = min(frames, (num_frames - 1) // stride + 1)
    return np.minimum(wanted, num_frames - 1), available


def training_rng() -> np.random.Generator:
    """A Generator seeded from torch's global RNG, which Lightning seeds per DataLoader worker."""
    import torch

    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


class ClipSampler:
    """Maps a dataset item number to ``(video number, frame numbers)``.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``; a video's clips
    come from disjoint parts of it. ``random=True`` (training) draws positions from a fresh
    :func:`training_rng`; ``random=False`` is deterministic.
    """

    def __init__(
        self,
        frames: int,
        frame_skip: int = 0,
        mode: SamplingMode = "stride",
        clips_per_video: int = 1,
        random: bool = False,
    ) -> None:
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
        self.frames = frames
        self.frame_skip = frame_skip
        self.mode = mode
        self.clips_per_video = clips_per_video
        self.random = random

    def __call__(self, item: int, num_frames: int) -> np.ndarray:
        """Frame numbers of dataset item ``item`` in a video of ``num_frames`` frames."""
        return clip_indices(
            num_frames,
            self.frames,
            self.frame_skip,
            self.mode,
            rng=training_rng() if self.random else None,
            part=item % self.clips_per_video,
            parts=self.clips_per_video,
        )

    def video_of(self, item: int) -> int:
        """Video number of dataset item ``item``."""
        return item // self.clips_per_video
