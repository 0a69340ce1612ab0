"""The decoder choice: decord, TorchCodec or PyAV, behind one ``FrameReader``.

``decoder: decord | torchcodec | pyav`` (None: decord where installed, else the next installed
one in that order; PyAV is a dependency of vidgen, so one always is). The three agree on which
frame an index is (the ``n``-th frame in presentation order, checked on frame-number-coded
videos, ``tests/test_decoders.py``) and on its pixels at the source size. Resized, PyAV is
pixel-identical to decord (both scale in YUV with FFmpeg's bilinear ``scale`` filter, then convert
to RGB); TorchCodec's decoder-side resize converts to RGB first and differs by a few grey levels
on average, so a frame cache made with one decoder is not mixed with another (its folder name
says which).

- ``pyav``: :class:`PyAVReader`. Lists the packets' timestamps once per file (no decoding),
  seeks to the keyframe before the first wanted frame and decodes forward; a stream without
  timestamps (AVI with B-frames) is decoded from frame 0.
- ``torchcodec``: :class:`TorchCodecReader` (``VideoDecoder(seek_mode="exact")``). Needs the
  system's FFmpeg libraries (4 to 7).
- ``decord``: :class:`~vidgen.data.video.DecordReader`.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import OrderedDict
from typing import Literal

import numpy as np

from vidgen.data.video import (
    DecordReader,
    FrameReader,
    OpenFiles,
    Resize,
    VideoError,
    VideoInfo,
    avi_header,
    decode_size,
    probe_video,
    square,
)

Decoder = Literal["decord", "torchcodec", "pyav"]
DECODERS: tuple[str, ...] = ("decord", "torchcodec", "pyav")
INSTALL = {
    "decord": "pip install 'vidgen[decord]' (no wheel for macOS arm64 or Linux aarch64)",
    "torchcodec": "pip install 'vidgen[torchcodec]' plus the system FFmpeg libraries, e.g. "
    "apt-get install libavcodec-dev libavformat-dev libavutil-dev libswscale-dev "
    "libavfilter-dev libavdevice-dev",
    "pyav": "pip install av",
}


@functools.cache
def installed(decoder: str) -> bool:
    """True when ``decoder`` imports and loads here (TorchCodec also needs FFmpeg libraries)."""
    try:
        if decoder == "decord":
            import decord  # noqa: F401
        elif decoder == "torchcodec":
            from torchcodec.decoders import VideoDecoder  # noqa: F401
        elif decoder == "pyav":
            import av  # noqa: F401
        else:
            return False
    except Exception:  # ImportError, or TorchCodec's RuntimeError without FFmpeg
        return False
    return True


def choose_decoder(decoder: str | None = None) -> str:
    """``decoder`` if it is installed; None: the first installed of :data:`DECODERS`.

    Raises ``ImportError`` naming the extra to install, ``ValueError`` for an unknown name."""
    if decoder is None:
        for name in DECODERS:
            if installed(name):
                return name
        raise ImportError(
            "no video decoder is installed: pip install 'vidgen[decord]' (or pip install av)"
        )
    if decoder not in DECODERS:
        raise ValueError(f"data.decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    if not installed(decoder):
        raise ImportError(f"data.decoder={decoder} is not installed here: {INSTALL[decoder]}")
    return decoder


def make_reader(decoder: str | None = None, resize: Resize = "crop") -> FrameReader:
    """A :class:`~vidgen.data.video.FrameReader` of ``decoder`` (see :func:`choose_decoder`)."""
    readers = {"decord": DecordReader, "torchcodec": TorchCodecReader, "pyav": PyAVReader}
    return readers[choose_decoder(decoder)](resize=resize)


def probe(path: str | os.PathLike, verify: bool = True, decoder: str | None = None) -> VideoInfo:
    """Frame count, fps and size of a video as ``decoder`` sees it; raises ``VideoError``.

    decord: :func:`~vidgen.data.video.probe_video`. The others count the video packets (PyAV,
    no decoding) and decode the last frames, backing off to the last one that decodes; a file
    cut short (fewer packets than its header promises) loses its last, partial frame, as with
    decord. ``verify=False`` describes a complete AVI file from its header alone.
    """
    if choose_decoder(decoder) == "decord":
        return probe_video(path, verify=verify)
    path = str(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file")
    if not verify:
        info = avi_header(path)
        if info is not None:
            return info
    try:
        stream_info, table = _packets(path)
    except Exception as err:
        reason = str(err).splitlines()[0].replace(path, "file")[:200] if str(err) else "?"
        raise VideoError(f"{path}: cannot open ({reason})") from err
    fps, width, height, promised = stream_info
    frames = len(table)
    reader = PyAVReader()
    step = 1
    while frames > 0:
        try:
            reader.read(path, np.arange(max(0, frames - 2), frames), 32)
            break
        except VideoError:
            frames -= step
            step *= 2
    if 0 < frames < promised:
        frames -= 1  # cut short: the last packet is partial (see probe_video)
    if frames < 1:
        raise VideoError(f"{path}: no decodable frames")
    return VideoInfo(frames, fps if fps > 0 else 25.0, width, height)


def _packets(path: str) -> tuple[tuple[float, int, int, int], list[int | None]]:
    """``((fps, width, height, frames promised), packet timestamps in decode order)``.

    An AVI stream whose timestamps are out of decode order has B-frames: AVI stores no
    presentation times, FFmpeg guesses them (see :func:`avi_with_b_frames`)."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or 0
        ctx = stream.codec_context
        info = (float(rate), int(ctx.width), int(ctx.height), int(stream.frames))
        table = [p.pts for p in container.demux(stream) if p.size]
    return info, table


@functools.lru_cache(maxsize=1024)
def avi_with_b_frames(path: str) -> bool:
    """True for an AVI file with B-frames: decord cannot seek in it and TorchCodec 0.17 returns
    wrong frames from it (frame 6 for 7), so both read it differently (checked on
    frame-number-coded files, ``tests/test_decoders.py``)."""
    import av

    try:
        with av.open(path) as container:
            if "avi" not in container.format.name.split(","):
                return False
        pts = _packets(path)[1]
    except Exception:
        return False
    return None not in pts and pts != sorted(pts)


class PyAVReader:
    """:class:`~vidgen.data.video.FrameReader` on PyAV (FFmpeg bundled in its wheels).

    Frame ``n`` is the ``n``-th of the stream's packet timestamps in order (listed once per file
    and kept for ``tables`` files); reading seeks to the keyframe before the first wanted frame
    and decodes forward. Without usable timestamps the file is decoded from frame 0. Resizing
    uses FFmpeg's ``scale`` filter (bilinear) before the RGB conversion, as decord does.
    """

    def __init__(self, resize: Resize = "crop", tables: int = 256) -> None:
        self.resize = resize
        self.tables = tables
        self._tables: OrderedDict[str, list[int] | None] = OrderedDict()

    def _table(self, path: str) -> list[int] | None:
        """Presentation timestamps of ``path``'s frames in order (None: not usable)."""
        if path in self._tables:
            self._tables.move_to_end(path)
            return self._tables[path]
        _info, pts = _packets(path)
        ordered = sorted(pts) if pts and None not in pts else None
        if ordered is not None and len(set(ordered)) != len(ordered):
            ordered = None
        self._tables[path] = ordered
        while len(self._tables) > self.tables:
            self._tables.popitem(last=False)
        return ordered

    def read(
        self,
        path: str,
        indices: np.ndarray,
        size: int | None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """See :class:`~vidgen.data.video.FrameReader`."""
        import av

        indices = np.asarray(indices, dtype=np.int64)
        wanted = sorted(set(indices.tolist()))
        try:
            table = self._table(path)
            with av.open(path) as container:
                stream = container.streams.video[0]
                convert = self._converter(stream, size)
                got = self._seek_read(container, stream, table, wanted, convert) if table else {}
            if len(got) < len(wanted):
                with av.open(path) as container:  # no (usable) timestamps: read from frame 0
                    stream = container.streams.video[0]
                    got = self._forward_read(container, stream, wanted, convert)
        except Exception as err:
            raise VideoError(f"{path}: frames {indices.tolist()} do not decode ({err})") from err
        if len(got) < len(wanted):
            missing = [i for i in wanted if i not in got]
            raise VideoError(f"{path}: frames {missing} are past the end of the stream")
        return np.ascontiguousarray(square(np.stack([got[i] for i in indices]), size, self.resize))

    def _converter(self, stream, size: int | None):
        """Frame -> uint8 ``(H, W, 3)`` at :func:`decode_size`."""
        if size is None:
            return lambda frame: frame.to_ndarray(format="rgb24")
        import av

        ctx = stream.codec_context
        width, height = decode_size(ctx.width, ctx.height, size, self.resize)
        graph = av.filter.Graph()
        chain = [
            graph.add_buffer(template=stream),
            graph.add("scale", f"{width}:{height}:flags=bilinear"),
            graph.add("format", "rgb24"),
            graph.add("buffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()

        def convert(frame):
            graph.push(frame)
            return graph.pull().to_ndarray()

        return convert

    @staticmethod
    def _seek_read(container, stream, table: list[int], wanted: list[int], convert) -> dict:
        if wanted[-1] >= len(table):
            return {}
        position = {pts: i for i, pts in enumerate(table)}
        container.seek(table[wanted[0]], stream=stream, backward=True, any_frame=False)
        todo, got = set(wanted), {}
        for frame in container.decode(stream):
            i = position.get(frame.pts)
            if i is None:
                continue
            if i > wanted[-1]:
                break
            if i in todo:
                got[i] = convert(frame)
                todo.discard(i)
                if not todo:
                    break
        return got

    @staticmethod
    def _forward_read(container, stream, wanted: list[int], convert) -> dict:
        todo, got = set(wanted), {}
        for i, frame in enumerate(container.decode(stream)):
            if i in todo:
                got[i] = convert(frame)
                todo.discard(i)
                if not todo:
                    break
        return got


class TorchCodecReader:
    """:class:`~vidgen.data.video.FrameReader` on TorchCodec (``seek_mode="exact"``).

    Keeps the last ``max_open`` decoders open per process (per path and size). Resizing is
    TorchCodec's decoder-side ``Resize`` (bilinear, after the RGB conversion). AVI files with
    B-frames (:func:`avi_with_b_frames`), and any file TorchCodec fails on, are read by
    :class:`PyAVReader` instead.
    """

    def __init__(self, resize: Resize = "crop", max_open: int = 1) -> None:
        self.resize = resize
        self._decoders = OpenFiles(max_open)
        self._pyav = PyAVReader(resize)
        self._failed: set[str] = set()  # files read by PyAV instead

    def _open(self, path: str, size: int | None, shape: tuple[int, int] | None):
        from torchcodec.decoders import VideoDecoder

        transforms = None
        if size is not None:
            from torchcodec.transforms import Resize as CodecResize

            if shape is None:
                meta = VideoDecoder(path, seek_mode="approximate").metadata
                shape = (meta.width, meta.height)
            width, height = decode_size(shape[0], shape[1], size, self.resize)
            transforms = [CodecResize(size=(height, width))]
        return VideoDecoder(
            path,
            seek_mode="exact",
            dimension_order="NHWC",
            num_ffmpeg_threads=1,
            transforms=transforms,
        )

    def read(
        self,
        path: str,
        indices: np.ndarray,
        size: int | None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """See :class:`~vidgen.data.video.FrameReader`."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted, inverse = np.unique(indices, return_inverse=True)
        if path in self._failed or avi_with_b_frames(path):
            return self._pyav.read(path, indices, size, shape)
        try:
            decoder = self._decoders.get((path, size), lambda: self._open(path, size, shape))
            frames = decoder.get_frames_at(wanted.tolist()).data.numpy()[inverse]
        except Exception:
            self._decoders.drop((path, size))
            frames = self._pyav.read(path, indices, size, shape)  # raises VideoError if bad
            self._failed.add(path)
            return frames
        return np.ascontiguousarray(square(frames, size, self.resize))
