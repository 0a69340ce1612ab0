"""Reading a video container without decoding: a complete AVI file's header
(:func:`avi_header`), the stream header and packet timestamps (PyAV), and whether an AVI file
has B-frames (which decord and TorchCodec cannot seek in)."""

from __future__ import annotations

import functools
import os
import struct

from vidgen.data.decoders.base import VideoError, VideoInfo


def avi_header(path: str | os.PathLike) -> VideoInfo | None:
    """A complete AVI file's frame count, fps and size from its header (no decoding).

    None when the file is not a plain RIFF AVI, is cut short or grown (RIFF size != file size),
    or the header is incomplete: then :func:`~vidgen.data.decoders.probe` has to decode. The
    count is the video stream's ``dwLength`` (chunks written), which equals decord's ``len`` for
    such files.
    """
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


def stream_header(path: str) -> tuple[int, int, int] | None:
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


def packets(path: str) -> tuple[tuple[float, int, int, int], list[int | None]]:
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
        pts = packets(path)[1]
    except Exception:
        return False
    return None not in pts and pts != sorted(pts)
