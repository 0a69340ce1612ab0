"""Procedural moving-shapes videos: the embedded default dataset (no files, no downloads).

Each video holds ``num_shapes`` coloured squares, discs or triangles bouncing off the frame
borders at constant speed. Video ``i`` of a dataset is a pure function of ``(seed, i)``; positions
are computed in closed form, so only the sampled frames are rendered.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.data.sampling import ClipSampler

SHAPE_KINDS = ("square", "disc", "triangle")


def bounce(x: np.ndarray, limit: float | np.ndarray) -> np.ndarray:
    """Reflect positions ``x`` into ``[0, limit]`` (a ball bouncing between two walls)."""
    period = 2.0 * limit
    x = np.mod(x, period)
    return np.where(x > limit, period - x, x)


def shape_mask(kind: str, dy: np.ndarray, dx: np.ndarray, half: float) -> np.ndarray:
    """Pixels inside a shape of side ``2 * half`` whose centre is ``(dy, dx)`` away from each."""
    if kind == "square":
        return (np.abs(dy) <= half) & (np.abs(dx) <= half)
    if kind == "disc":
        return dy**2 + dx**2 <= half**2
    return (dy <= half) & (2 * np.abs(dx) <= dy + half)  # triangle pointing up


def shape_positions(
    scene: dict[str, np.ndarray], frame_numbers: np.ndarray, size: int
) -> np.ndarray:
    """Top-left corners ``(S, n, 2)`` (y, x) of a scene's shapes at ``frame_numbers``."""
    t = np.asarray(frame_numbers, dtype=np.float32)[:, None, None]  # (S, 1, 1)
    limit = (size - scene["size"])[None, :, None]  # (1, n, 1)
    return bounce(scene["start"][None] + scene["velocity"][None] * t, limit)


class ShapesVideos(Dataset):
    """Seeded videos of bouncing shapes; items follow the dataset contract.

    An item is ``{"video": uint8 (S, 3, H, W), "label": kind of the first shape, "index": i,
    "frame_ids": int64 (S,)}`` (frame ``f`` of video ``v`` is id ``v * video_length + f``).
    """

    def __init__(
        self,
        num_videos: int,
        sampler: ClipSampler,
        image_size: int = 64,
        video_length: int = 48,
        num_shapes: int = 2,
        seed: int = 0,
    ) -> None:
        if num_videos < 1 or video_length < 1 or num_shapes < 1 or image_size < 8:
            raise ValueError(
                "ShapesVideos needs num_videos, video_length, num_shapes >= 1 and image_size >= 8"
            )
        self.num_videos = num_videos
        self.sampler = sampler
        self.image_size = image_size
        self.video_length = video_length
        self.num_shapes = num_shapes
        self.seed = seed
        yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32)
        self._grid = (yy + 0.5, xx + 0.5)

    def __len__(self) -> int:
        return self.num_videos * self.sampler.clips_per_video

    def scene(self, video: int) -> dict[str, np.ndarray]:
        """The shapes of one video: kind, size, colour, start position and velocity (pixels)."""
        rng = np.random.default_rng([self.seed, video])
        n, size = self.num_shapes, self.image_size
        sizes = rng.uniform(0.18, 0.32, n) * size
        return {
            "kind": rng.integers(0, len(SHAPE_KINDS), n),
            "size": sizes,
            "colour": rng.integers(64, 256, (n, 3)),
            "start": rng.uniform(0, 1, (n, 2)) * (size - sizes[:, None]),
            "velocity": rng.uniform(0.03, 0.08, (n, 2)) * size * rng.choice([-1, 1], (n, 2)),
        }

    def render(self, video: int, frame_numbers: np.ndarray) -> np.ndarray:
        """Frames ``frame_numbers`` of video ``video`` as uint8 ``(S, 3, H, W)``."""
        s = self.scene(video)
        pos = shape_positions(s, frame_numbers, self.image_size)
        yy, xx = self._grid
        out = self.background(video, np.asarray(frame_numbers, dtype=np.float32))
        for j in range(self.num_shapes):  # later shapes are drawn over earlier ones
            half = s["size"][j] / 2
            top, left = pos[:, j, 0, None, None], pos[:, j, 1, None, None]
            dy, dx = yy[None] - top, xx[None] - left  # pixel offsets inside the shape's box
            mask = shape_mask(SHAPE_KINDS[s["kind"][j]], dy - half, dx - half, half)
            out[mask] = self.paint(video, j, s["colour"][j], dy[mask], dx[mask])
        return out.transpose(0, 3, 1, 2)

    def background(self, video: int, t: np.ndarray) -> np.ndarray:
        """The frames before any shape is drawn, uint8 ``(S, H, W, 3)``: black."""
        return np.zeros((len(t), self.image_size, self.image_size, 3), np.uint8)

    def paint(
        self, video: int, shape: int, colour: np.ndarray, dy: np.ndarray, dx: np.ndarray
    ) -> np.ndarray:
        """Colours of a shape's pixels at offsets ``(dy, dx)`` from its corner: flat."""
        return colour

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} clips")
        video = self.sampler.video_of(item)
        frames = self.sampler(item, self.video_length)
        label = int(self.scene(video)["kind"][0])
        return {
            "video": torch.from_numpy(np.ascontiguousarray(self.render(video, frames))),
            "label": label,
            "index": item,
            "frame_ids": torch.from_numpy(video * self.video_length + frames.astype(np.int64)),
        }
