"""decord behind :class:`~vidgen.data.decoders.base.FrameReader` (the default decoder).

decord 0.6.0 facts checked against frame-number-encoded videos (``tests/test_decord.py``):

- AVI files whose stream has B-frames carry no presentation timestamps; decord then seeks to the
  wrong frames (``vr[100]`` returned frame 51; dmlc/decord#195). Reading from frame 0 forward is
  exact. The reader checks the timestamps whenever it opens a file and reads such files forward
  from frame 0 up to the last wanted frame. Files with valid timestamps (XviD without B-frames,
  as UCF101's are expected to be; each file is checked anyway) are read with ``get_batch`` on
  the wanted frames, which returned the exact frames on every tested pattern, non-contiguous and
  unsorted included; decoding a contiguous range and selecting, or seeking per frame, is no
  faster (``benchmarks/bench_ucf101.py`` compares them).
- ``len(vr)`` comes from the packets found and can over-report (dmlc/decord#373): the decoding
  probe decodes the last frames and clamps the count to the last one that decodes. A truncated
  file (fewer packets than its header promises) ends in a partial packet that decord "decodes"
  as an error-concealed copy of the previous frame, so the last frame of such a file is dropped.
  Complete AVI files can instead be described from their header
  (:func:`~vidgen.data.decoders.containers.avi_header`; the count equalled decord's on every
  generated file).
- decord readers are created lazily by the datasets, i.e. inside DataLoader workers; readers
  inherited through a fork are dropped, never reused (dmlc/decord#294), and decoding probes run
  in a process pool.

decord is imported inside the functions that need it, so ``import vidgen`` works without it.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from vidgen.data.decoders.base import (
    CHECK_LAST,
    BaseReader,
    Opened,
    OpenFiles,
    Resize,
    Shape,
    Size,
    VideoError,
    decode_size,
)
from vidgen.data.decoders.containers import stream_header


def _decord():
    try:
        import decord
    except ImportError as err:  # pragma: no cover - exercised on machines without decord
        raise ImportError(
            "the decord decoder is not installed: pip install 'vidgen[decord]' (or choose "
            "data.decoder: pyav, which needs nothing more)"
        ) from err
    return decord


def _seekable(vr) -> bool:
    """True when decord has strictly increasing presentation timestamps (it can seek)."""
    n = len(vr)
    starts = np.asarray(vr.get_frame_timestamp(list(range(n))))[:, 0] if n else np.zeros(0)
    return bool(np.all(starts >= 0) and np.all(np.diff(starts) > 0))


def _decodes(vr, seekable: bool, frames: int) -> bool:
    """Whether the last frames of the first ``frames`` decode (without timestamps: all of them,
    read forward from frame 0, the only exact way on such files)."""
    try:
        if seekable:
            vr.get_batch(list(range(max(0, frames - CHECK_LAST), frames))).asnumpy()
        else:
            vr.seek(0)
            vr.get_batch(list(range(frames))).asnumpy()
    except Exception:
        return False
    return True


def open_video(path: str) -> Opened:
    """``path`` as decord lists it (count, fps, timestamps), its size from the container header
    (else from a full-size frame); raises what decord raises."""
    decord = _decord()
    header = stream_header(path)
    # decode checks on a small resized reader: cheap, and decord 0.6.0 fails to copy some
    # native sizes (a 48x48 stream came back with a 64-pixel row stride)
    vr = decord.VideoReader(path, ctx=decord.cpu(0), width=32, height=32, num_threads=1)
    if header is None:
        full = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        (height, width), promised = full[0].shape[:2], 0
        del full
    else:
        promised, width, height = header
    seekable = _seekable(vr)
    decodes = partial(_decodes, vr, seekable)
    fps = float(vr.get_avg_fps())
    return Opened(len(vr), fps, int(width), int(height), promised, decodes, seekable)


class DecordReader(BaseReader):
    """:class:`~vidgen.data.decoders.base.FrameReader` on decord.

    Keeps at most ``max_open`` readers open per process (default 1: an open decord reader that
    has decoded keeps polling on a thread, and with 8 idle readers open clip loading was 4x
    slower). A stream without timestamps (AVI with B-frames) is read forward from frame 0.
    ``resize``: see :data:`~vidgen.data.decoders.base.Resize`.
    """

    def __init__(self, max_open: int = 1, num_threads: int = 1, resize: Resize = "crop") -> None:
        super().__init__(resize)
        self.num_threads = num_threads
        self._readers = OpenFiles(max_open)

    def _open(self, path: str, size: Size, shape: Shape) -> tuple:
        """``(decord reader, seekable)`` of ``path`` decoding at ``size``."""
        decord = _decord()
        kwargs = {"ctx": decord.cpu(0), "num_threads": self.num_threads}
        if size is not None:
            if shape is None:
                header = stream_header(path)
                if header is None:
                    raise VideoError(f"{path}: cannot read the frame size")
                shape = header[1:]
            kwargs["width"], kwargs["height"] = decode_size(shape[0], shape[1], size, self.resize)
        vr = decord.VideoReader(path, **kwargs)
        return vr, _seekable(vr)

    def decode(self, path: str, indices: np.ndarray, size: Size, shape: Shape) -> np.ndarray:
        """See :meth:`~vidgen.data.decoders.base.BaseReader.decode`."""
        try:
            vr, seekable = self._readers.get((path, size), lambda: self._open(path, size, shape))
            if seekable:
                wanted, inverse = np.unique(indices, return_inverse=True)
                return vr.get_batch(wanted.tolist()).asnumpy()[inverse]
            # decord's seeks land on wrong frames here (decord#195): read forward from frame 0
            vr.seek(0)
            return vr.get_batch(list(range(int(indices.max()) + 1))).asnumpy()[indices]
        except Exception as err:
            self._readers.drop((path, size))
            raise VideoError(f"{path}: frames {indices.tolist()} do not decode ({err})") from err
