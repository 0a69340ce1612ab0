"""Video files: probing (frame count, fps, size) and decoding (decord).

Decoding sits behind one small interface, :class:`FrameReader` (``read(path, indices, size)``
-> uint8 ``(S, H, W, 3)``); :class:`DecordReader` is one implementation, the PyAV and TorchCodec
ones are in :mod:`vidgen.data.decoders`, which also picks one. decord and av are imported inside
the functions that need them, so ``import vidgen`` works on a machine without them.

decord 0.6.0 facts checked against frame-number-encoded videos (``tests/test_video.py``):

- AVI files whose stream has B-frames carry no presentation timestamps; decord then seeks to the
  wrong frames (``vr[100]`` returned frame 51; dmlc/decord#195). Reading from frame 0 forward is
  exact. The reader checks the timestamps whenever it opens a file and reads such files forward
  from frame 0 up to the last wanted frame. Files with valid timestamps (XviD without B-frames,
  as UCF101's are expected to be; each file is checked anyway) are read with ``get_batch`` on
  the wanted frames, which returned the exact frames on every tested pattern, non-contiguous and
  unsorted included; decoding a contiguous range and selecting, or seeking per frame, measured
  within noise of it (``benchmarks/bench_ucf101.py``).
- ``len(vr)`` comes from the packets found and can over-report (dmlc/decord#373): the decoding
  probe decodes the last frames and clamps the count to the last one that decodes. A truncated
  file (fewer packets than its header promises) ends in a partial packet that decord "decodes"
  as an error-concealed copy of the previous frame, so the last frame of such a file is dropped.
  Complete AVI files can instead be described from their header (:func:`avi_header`; the
  count equalled decord's on every generated file).
- decord readers are created lazily by the datasets, i.e. inside DataLoader workers; readers
  inherited through a fork are dropped, never reused (dmlc/decord#294), and decoding probes run
  in a process pool.
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


def _decord():
    try:
        import decord
    except ImportError as err:  # pragma: no cover - exercised on machines without decord
        raise ImportError(
            "the decord decoder is not installed: pip install 'vidgen[decord]' (or choose "
            "data.decoder: pyav, which needs nothing more)"
        ) from err
    return decord


def decode_size(
    width: int, height: int, size: int | None, resize: Resize = "crop"
) -> tuple[int, int]:
    """Decode-time ``(width, height)``, aspect kept: the shorter side becomes ``size``
    (``crop``) or the longer one does (``pad``)."""
    if size is None:
        return width, height
    if resize == "pad":
        scale = size / max(width, height)
        return min(size, max(1, round(width * scale))), min(size, max(1, round(height * scale)))
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def square(frames: np.ndarray, size: int | None, resize: Resize = "crop") -> np.ndarray:
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


def probe_video(path: str | os.PathLike, verify: bool = True, check_last: int = 2) -> VideoInfo:
    """Frame count, fps, size (and seekability) of a video; raises :class:`VideoError`.

    ``verify=True`` opens the file with decord and decodes its last ``check_last`` frames,
    clamping the count to frames that decode (``len(vr)`` can over-report). ``verify=False``
    first tries :func:`avi_header`: a complete AVI file (its RIFF size matches the file size) is
    described from its header alone, without decoding; anything else is verified.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file")
    if not verify:
        info = avi_header(path)
        if info is not None:
            return info
    decord = _decord()
    header = _header(path)
    try:
        # decode checks on a small resized reader: cheap, and decord 0.6.0 fails to copy some
        # native sizes (a 48x48 stream came back with a 64-pixel row stride)
        vr = decord.VideoReader(path, ctx=decord.cpu(0), width=32, height=32, num_threads=1)
        frames = len(vr)
        fps = float(vr.get_avg_fps())
        if header is None:
            full = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            height, width = full[0].shape[:2]
            del full
        else:
            width, height = header[1], header[2]
    except Exception as err:  # decord raises DECORDError (a RuntimeError) or others
        reason = str(err).splitlines()[0].replace(path, "file")[:200] if str(err) else "?"
        raise VideoError(f"{path}: cannot open ({reason})") from err
    if frames < 1:
        raise VideoError(f"{path}: no frames")
    seekable = _seekable(vr)
    frames = _decodable_count(vr, frames, check_last, seekable)
    if header is not None and 0 < frames < header[0]:
        # cut short (the container promised more): its last packet is likely partial and decodes
        # as an error-concealed copy of the frame before, so it is left out
        frames -= 1
    if frames < 1:
        raise VideoError(f"{path}: no decodable frames")
    return VideoInfo(frames, fps if fps > 0 else 25.0, int(width), int(height), seekable)


def avi_header(path: str | os.PathLike) -> VideoInfo | None:
    """A complete AVI file's frame count, fps and size from its header (no decoding).

    None when the file is not a plain RIFF AVI, is cut short or grown (RIFF size != file size),
    or the header is incomplete: then :func:`probe_video` has to decode. The count is the video
    stream's ``dwLength`` (chunks written), which equals decord's ``len`` for such files.
    """
    import struct

    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16384)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    if struct.unpack_from("<I", head, 4)[0] + 8 != size:
        return None
    pos, stream = 12, None
    while pos + 8 <= len(head):
        fourcc, length = head[pos : pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if fourcc == b"LIST":
            if head[pos + 8 : pos + 12] == b"movi":
                break
            pos += 12  # descend into hdrl / strl
            continue
        body = head[pos + 8 : pos + 8 + length]
        if fourcc == b"strh" and len(body) >= 36 and body[:4] == b"vids" and stream is None:
            scale, rate, _start, frames = struct.unpack_from("<IIII", body, 20)
            stream = {"fps": rate / scale if scale else 0.0, "frames": frames}
        elif fourcc == b"strf" and stream and "width" not in stream and len(body) >= 12:
            stream["width"], stream["height"] = struct.unpack_from("<ii", body, 4)
        pos += 8 + length + (length & 1)
    if not stream or "width" not in stream or stream["frames"] < 1 or stream["fps"] <= 0:
        return None
    return VideoInfo(stream["frames"], stream["fps"], stream["width"], abs(stream["height"]))


def _header(path: str) -> tuple[int, int, int] | None:
    """``(frames, width, height)`` from the container header (PyAV, no decoding), if known.

    ``frames`` is what the header promises (AVI ``dwTotalFrames``; 0 when unknown)."""
    try:
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            return int(stream.frames), int(ctx.width), int(ctx.height)
    except Exception:
        return None


def _decodable_count(vr, frames: int, check_last: int, seekable: bool) -> int:
    """Largest ``n <= frames`` whose last ``check_last`` frames decode (backs off 1, 2, 4...)."""
    step = 1
    while frames > 0:
        wanted = list(range(max(0, frames - check_last), frames))
        try:
            if seekable:
                vr.get_batch(wanted).asnumpy()
            else:  # only forward reading from frame 0 is exact on these files
                vr.seek(0)
                vr.get_batch(list(range(frames))).asnumpy()
            return frames
        except Exception:
            frames -= step
            step *= 2
    return 0


class FrameReader(Protocol):
    """The decoding interface the datasets use: swap it to change the backend."""

    def read(
        self,
        path: str,
        indices: np.ndarray,
        size: int | None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """Frames ``indices`` of ``path`` as uint8 ``(S, size, size, 3)``, resized at decode time
        (:func:`decode_size`) and made square by the reader's ``resize`` rule (:func:`square`;
        full frames when ``size`` is None). ``shape`` is the source ``(width, height)`` when
        known. Raises :class:`VideoError`."""


def _seekable(vr) -> bool:
    """True when decord has strictly increasing presentation timestamps (it can seek)."""
    n = len(vr)
    starts = np.asarray(vr.get_frame_timestamp(list(range(n))))[:, 0] if n else np.zeros(0)
    return bool(np.all(starts >= 0) and np.all(np.diff(starts) > 0))


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


class DecordReader:
    """:class:`FrameReader` on decord.

    Keeps at most ``max_open`` readers open per process (default 1: an open decord reader that
    has decoded keeps polling on a thread, and with 8 idle readers open clip loading was 4x
    slower). A stream without timestamps (AVI with B-frames) is read forward from frame 0.
    ``resize``: see :data:`Resize`.
    """

    def __init__(self, max_open: int = 1, num_threads: int = 1, resize: Resize = "crop") -> None:
        self.num_threads = num_threads
        self.resize = resize
        self._readers = OpenFiles(max_open)

    def _reader(self, path: str, size: int | None, shape: tuple[int, int] | None) -> tuple:
        """``(decord reader, seekable)`` of ``path`` decoding at ``size`` (cached)."""
        return self._readers.get((path, size), lambda: self._open(path, size, shape))

    def _open(self, path: str, size: int | None, shape: tuple[int, int] | None) -> tuple:
        decord = _decord()
        kwargs = {"ctx": decord.cpu(0), "num_threads": self.num_threads}
        if size is not None:
            if shape is None:
                header = _header(path)
                if header is None:
                    raise VideoError(f"{path}: cannot read the frame size")
                shape = header[1:]
            kwargs["width"], kwargs["height"] = decode_size(shape[0], shape[1], size, self.resize)
        vr = decord.VideoReader(path, **kwargs)
        return vr, _seekable(vr)

    def read(
        self,
        path: str,
        indices: np.ndarray,
        size: int | None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """See :class:`FrameReader`."""
        indices = np.asarray(indices, dtype=np.int64)
        try:
            vr, seekable = self._reader(path, size, shape)
            if seekable:
                wanted, inverse = np.unique(indices, return_inverse=True)
                frames = vr.get_batch(wanted.tolist()).asnumpy()[inverse]
            else:  # decord's seeks land on wrong frames here (decord#195): read forward from 0
                vr.seek(0)
                frames = vr.get_batch(list(range(int(indices.max()) + 1))).asnumpy()[indices]
        except Exception as err:
            self._readers.drop((path, size))
            raise VideoError(f"{path}: frames {indices.tolist()} do not decode ({err})") from err
        if len(frames) != len(indices):
            raise VideoError(f"{path}: got {len(frames)} frames for {len(indices)} indices")
        return np.ascontiguousarray(square(frames, size, self.resize))


def read_frames(path: str | os.PathLike, indices, size: int | None = None) -> np.ndarray:
    """Frames ``indices`` of one video as uint8 ``(S, size, size, 3)`` (one-off reader)."""
    return DecordReader(max_open=0).read(str(path), np.asarray(indices), size)
