"""Every frame reader and the container probing: decord, TorchCodec or PyAV behind one
:class:`FrameReader`, and :func:`probe` (frame count, fps, size of a video file).

``decoder: decord | torchcodec | pyav`` (None: decord where installed, else the next installed
one in that order; PyAV is a dependency of vidgen, so one always is). The three agree on which
frame an index is (the ``n``-th frame in presentation order, checked on frame-number-coded
videos, ``tests/test_decoders.py``) and on its pixels at the source size. Resized, PyAV is
pixel-identical to decord (both scale in YUV with FFmpeg's bilinear ``scale`` filter, then convert
to RGB); TorchCodec's decoder-side resize converts to RGB first and differs by a few grey levels
on average, so a frame cache made with one decoder is not mixed with another (its folder name
says which).

- ``base``: the :class:`FrameReader` interface, :class:`VideoInfo`, :class:`VideoError`, the
  resize rule (``decode_size``, ``square``) and what every reader shares.
- ``containers``: what a container says without decoding (:func:`avi_header`, PyAV's stream
  header and packet list).
- ``decord_reader``: :class:`DecordReader`. A stream without timestamps (AVI with B-frames) is
  read forward from frame 0 (decord seeks wrong in it).
- ``pyav_reader``: :class:`PyAVReader`. Lists the packets' timestamps once per file (no
  decoding), seeks to the keyframe before the first wanted frame and decodes forward; a stream
  without timestamps is decoded from frame 0.
- ``torchcodec_reader``: :class:`TorchCodecReader` (``VideoDecoder(seek_mode="exact")``).
  Needs the system's FFmpeg libraries (4 to 7).

The backends are imported inside the functions that need them, so ``import vidgen`` works on a
machine without decord or TorchCodec.
"""

from __future__ import annotations

import functools
import os
from typing import Literal

from vidgen.data.decoders import decord_reader, pyav_reader
from vidgen.data.decoders.base import FrameReader, Resize, VideoError, VideoInfo
from vidgen.data.decoders.containers import avi_header
from vidgen.data.decoders.decord_reader import DecordReader
from vidgen.data.decoders.pyav_reader import PyAVReader
from vidgen.data.decoders.torchcodec_reader import TorchCodecReader

__all__ = [
    "DECODERS",
    "Decoder",
    "DecordReader",
    "FrameReader",
    "PyAVReader",
    "Resize",
    "TorchCodecReader",
    "VideoError",
    "VideoInfo",
    "avi_header",
    "choose_decoder",
    "installed",
    "make_reader",
    "probe",
]

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
    """A :class:`FrameReader` of ``decoder`` (see :func:`choose_decoder`)."""
    readers = {"decord": DecordReader, "torchcodec": TorchCodecReader, "pyav": PyAVReader}
    return readers[choose_decoder(decoder)](resize=resize)


def probe(path: str | os.PathLike, verify: bool = True, decoder: str | None = None) -> VideoInfo:
    """Frame count, fps and size of a video as ``decoder`` sees it; raises :class:`VideoError`.

    decord lists the frames itself (and says whether it can seek: :attr:`VideoInfo.seekable`);
    for PyAV and TorchCodec the video packets are counted (PyAV, no decoding). The count is then
    clamped to the last frame whose last frames decode (a listed count can over-report: backing
    off 1, 2, 4... frames), and a file cut short (fewer frames than its header promises) loses
    its last frame: its last packet is partial and decodes as an error-concealed copy of the
    frame before. ``verify=False`` describes a complete AVI file from its header alone
    (:func:`avi_header`) and decodes only other files.
    """
    backend = decord_reader if choose_decoder(decoder) == "decord" else pyav_reader
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
        video = backend.open_video(path)
    except Exception as err:  # decord raises DECORDError (a RuntimeError) or others
        reason = str(err).splitlines()[0].replace(path, "file")[:200] if str(err) else "?"
        raise VideoError(f"{path}: cannot open ({reason})") from err
    if video.frames < 1:
        raise VideoError(f"{path}: no frames")
    frames, step = video.frames, 1
    while frames > 0 and not video.decodes(frames):
        frames -= step
        step *= 2
    if 0 < frames < video.promised:
        frames -= 1
    if frames < 1:
        raise VideoError(f"{path}: no decodable frames")
    fps = video.fps if video.fps > 0 else 25.0
    return VideoInfo(frames, fps, video.width, video.height, video.seekable)
