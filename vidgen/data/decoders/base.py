"""What every frame reader shares: the :class:`FrameReader` interface, :class:`VideoInfo` (what
a probe finds), :class:`VideoError`, the resize rule and the per-process cache of open decoders.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal, Protocol, TypeVar

import numpy as np

T = TypeVar("T")
Resize = Literal["crop", "pad"]
"""How a frame becomes a square: ``crop`` (shorter side to the size, centre square kept) or
``pad`` (longer side to the size, the rest filled with black: the aspect ratio is kept)."""
Size = int | None
"""The side of the square frames a read returns; None: the full frames."""
Shape = tuple[int, int] | None
"""A video's ``(width, height)`` when the caller knows it (spares the reader a look)."""
CHECK_LAST = 2
"""How many frames at the end of a video a decoding probe decodes."""


class VideoError(RuntimeError):
    """A video that cannot be opened or decoded."""


@dataclass(frozen=True)
class VideoInfo:
    """What the index stores about one video file."""

    frames: int
    fps: float
    width: int
    height: int
    seekable: bool | None = None  # decord can seek (None: not checked, the reader checks)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> VideoInfo:
        """The inverse of :meth:`to_dict`; other keys (cache stamps) are ignored."""
        return cls(**{k: data[k] for k in ("frames", "fps", "width", "height", "seekable")})


@dataclass(frozen=True)
class Opened:
    """A video as a backend opened it for :func:`~vidgen.data.decoders.probe`, before the
    probe checks which of its frames decode."""

    frames: int  # frames the backend lists (can over-report)
    fps: float
    width: int
    height: int
    promised: int  # frames the container header promises (0: unknown)
    decodes: Callable[[int], bool]  # whether the last frames of the first n decode
    seekable: bool | None = None


def decode_size(width: int, height: int, size: Size, resize: Resize = "crop") -> tuple[int, int]:
    """Decode-time ``(width, height)``, aspect kept: the shorter side becomes ``size``
    (``crop``) or the longer one does (``pad``)."""
    if size is None:
        return width, height
    if resize == "pad":
        scale = size / max(width, height)
        return min(size, max(1, round(width * scale))), min(size, max(1, round(height * scale)))
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def square(frames: np.ndarray, size: Size, resize: Resize = "crop") -> np.ndarray:
    """``(S, H, W, C)`` frames decoded at :func:`decode_size` -> ``(S, size, size, C)``: the
    centre square (``crop``) or the frames centred on black (``pad``)."""
    if size is None:
        return frames
    h, w = frames.shape[1:3]
    if resize == "pad":
        top, left = (size - h) // 2, (size - w) // 2
        out = np.zeros((len(frames), size, size, frames.shape[3]), frames.dtype)
        out[:, top : top + h, left : left + w] = frames
        return out
    top, left = (h - size) // 2, (w - size) // 2
    return frames[:, top : top + size, left : left + size]


class FrameReader(Protocol):
    """The decoding interface the datasets use: swap it to change the backend."""

    def read(self, path: str, indices: np.ndarray, size: Size, shape: Shape = None) -> np.ndarray:
        """Frames ``indices`` of ``path`` as uint8 ``(S, size, size, 3)``, resized at decode time
        (:func:`decode_size`) and made square by the reader's ``resize`` rule (:func:`square`;
        full frames when ``size`` is None). ``shape`` is the source ``(width, height)`` when
        known. Raises :class:`VideoError`."""


class BaseReader:
    """What a decoding :class:`FrameReader` does whatever its backend: indices as int64, the
    frame count checked, the frames made square by ``resize``; :meth:`decode` is the backend's.
    """

    def __init__(self, resize: Resize = "crop") -> None:
        self.resize = resize

    def read(self, path: str, indices: np.ndarray, size: Size, shape: Shape = None) -> np.ndarray:
        """See :class:`FrameReader`."""
        indices = np.asarray(indices, dtype=np.int64)
        frames = self.decode(path, indices, size, shape)
        if len(frames) != len(indices):
            raise VideoError(f"{path}: got {len(frames)} frames for {len(indices)} indices")
        return np.ascontiguousarray(square(frames, size, self.resize))

    def decode(self, path: str, indices: np.ndarray, size: Size, shape: Shape) -> np.ndarray:
        """Frames ``indices`` (int64) of ``path`` at :func:`decode_size`, not yet made square;
        raises :class:`VideoError`."""
        raise NotImplementedError


class OpenFiles:
    """The last ``max_open`` decoders a reader opened in this process, by key (LRU).

    Open decoders never cross a process boundary: they are dropped when the reader is pickled
    (sent to a DataLoader worker) and after a fork (dmlc/decord#294)."""

    def __init__(self, max_open: int = 1) -> None:
        self.max_open = max_open
        self._open: OrderedDict = OrderedDict()
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_open"])

    def __len__(self) -> int:
        return len(self._open)

    def get(self, key: tuple, opener: Callable[[], T]) -> T:
        """The decoder of ``key``, opened by ``opener()`` unless open already."""
        if self._pid != os.getpid():  # forked: decoders opened by the parent are not ours
            self.__init__(self.max_open)
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        value = opener()
        while self._open and len(self._open) >= self.max_open:
            self._open.popitem(last=False)
        if self.max_open > 0:
            self._open[key] = value
        return value

    def drop(self, key: tuple) -> None:
        """Forget ``key``'s decoder (after it failed)."""
        self._open.pop(key, None)
