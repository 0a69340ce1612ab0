"""Procedural textured videos: the embedded dataset that looks like video.

Black-background shapes flatter models that paint the background (an empty frame is a strong
answer there). Here every pixel carries texture, as in real footage: a 1/f-noise background
(the power spectrum of natural images) seen through a camera that pans and zooms, and textured
shapes moving over it at their own speeds, occluding each other and the background. Copy-last
frame is a strong baseline, as on real footage; only a model that moves the right pixels by the
right amount beats it.

Video ``i`` is a pure function of ``(seed, i)``; the shapes move as in :mod:`vidgen.data.shapes`
(same scene draws), the textures and the camera come from a second random stream.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from vidgen.data.shapes import ShapesVideos, bounce

ZOOM_RANGE = (0.8, 1.25)
"""The camera's zoom stays in this range (bouncing between the two in log space)."""


def pink_noise(rng: np.random.Generator, size: int, channels: int = 1) -> np.ndarray:
    """Periodic 1/f noise ``(size, size, channels)`` in [0, 1] (amplitude falls as 1/frequency)."""
    fy = np.fft.fftfreq(size)[:, None, None]
    fx = np.fft.rfftfreq(size)[None, :, None]
    freq = np.sqrt(fy**2 + fx**2)
    freq[0, 0] = np.inf  # no constant term
    shape = (size, size // 2 + 1, channels)
    spectrum = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / freq
    noise = np.fft.irfft2(spectrum, s=(size, size), axes=(0, 1))
    low, high = noise.min(axis=(0, 1)), noise.max(axis=(0, 1))
    return ((noise - low) / (high - low)).astype(np.float32)


def sample_wrapped(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear samples of a periodic ``image`` ``(N, M, C)`` at pixel coordinates ``(y, x)``."""
    n, m = image.shape[:2]
    y0, x0 = np.floor(y), np.floor(x)
    wy, wx = (y - y0)[..., None], (x - x0)[..., None]
    y0, x0 = y0.astype(np.int64) % n, x0.astype(np.int64) % m
    y1, x1 = (y0 + 1) % n, (x0 + 1) % m
    top = image[y0, x0] * (1 - wx) + image[y0, x1] * wx
    bottom = image[y1, x0] * (1 - wx) + image[y1, x1] * wx
    return top * (1 - wy) + bottom * wy


class TexturedVideos(ShapesVideos):
    """Textured shapes over a panning, zooming 1/f-noise background; items as
    :class:`ShapesVideos` (``label``: the kind of the first shape).

    The background is a periodic texture twice the frame's side; the camera's centre moves at
    0.5-3% of the frame a frame in a random direction and its zoom changes by up to 1% a frame
    (within :data:`ZOOM_RANGE`). Each shape carries its own texture in its colour.
    """

    def world(self, video: int) -> dict[str, np.ndarray]:
        """The textures and camera motion of one video."""
        return _world(self.seed, video, self.image_size, self.num_shapes)

    def background(self, video: int, t: np.ndarray) -> np.ndarray:
        w = self.world(video)
        low, high = np.log(ZOOM_RANGE)
        log_zoom = low + bounce(w["log_zoom"] - low + w["zoom_rate"] * t, high - low)
        zoom = np.exp(log_zoom)[:, None, None]
        centre = w["start"][None] + w["pan"][None] * t[:, None]  # (S, 2)
        yy, xx = self._grid
        half = self.image_size / 2
        y = centre[:, 0, None, None] + (yy[None] - half) / zoom
        x = centre[:, 1, None, None] + (xx[None] - half) / zoom
        return np.clip(sample_wrapped(w["canvas"], y, x), 0, 255).astype(np.uint8)

    def paint(
        self, video: int, shape: int, colour: np.ndarray, dy: np.ndarray, dx: np.ndarray
    ) -> np.ndarray:
        texture = self.world(video)["textures"][..., shape : shape + 1]
        shade = sample_wrapped(texture, dy, dx)  # (P, 1) in [0, 1], moves with the shape
        return np.clip(colour * (0.35 + 0.65 * shade), 0, 255).astype(np.uint8)


@lru_cache(maxsize=4)
def _world(seed: int, video: int, size: int, num_shapes: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, video, 1])
    mix = pink_noise(rng, 2 * size, 2)
    colours = rng.uniform(40, 220, (2, 3)).astype(np.float32)
    canvas = mix[..., :1] * colours[0] + (1 - mix[..., :1]) * colours[1]
    speed = rng.uniform(0.005, 0.03) * size
    angle = rng.uniform(0, 2 * np.pi)
    return {
        "canvas": canvas * (0.6 + 0.4 * mix[..., 1:]),
        "start": rng.uniform(0, 2 * size, 2),
        "pan": speed * np.array([np.sin(angle), np.cos(angle)]),
        "log_zoom": rng.uniform(*np.log(ZOOM_RANGE)),
        "zoom_rate": rng.uniform(-0.01, 0.01),
        "textures": pink_noise(rng, size, num_shapes),
    }
