"""TorchCodec behind :class:`~vidgen.data.decoders.base.FrameReader`
(``VideoDecoder(seek_mode="exact")``; needs the system's FFmpeg libraries, 4 to 7)."""

from __future__ import annotations

import numpy as np

from vidgen.data.decoders.base import BaseReader, OpenFiles, Resize, Shape, Size, decode_size
from vidgen.data.decoders.containers import avi_with_b_frames
from vidgen.data.decoders.pyav_reader import PyAVReader


class TorchCodecReader(BaseReader):
    """:class:`~vidgen.data.decoders.base.FrameReader` on TorchCodec (``seek_mode="exact"``).

    Keeps the last ``max_open`` decoders open per process (per path and size). Resizing is
    TorchCodec's decoder-side ``Resize`` (bilinear, after the RGB conversion). AVI files with
    B-frames (:func:`~vidgen.data.decoders.containers.avi_with_b_frames`), and any file
    TorchCodec fails on, are read by :class:`~vidgen.data.decoders.pyav_reader.PyAVReader`
    instead.
    """

    def __init__(self, resize: Resize = "crop", max_open: int = 1) -> None:
        super().__init__(resize)
        self._decoders = OpenFiles(max_open)
        self._pyav = PyAVReader(resize)
        self._failed: set[str] = set()  # files read by PyAV instead

    def _open(self, path: str, size: Size, shape: Shape):
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

    def decode(self, path: str, indices: np.ndarray, size: Size, shape: Shape) -> np.ndarray:
        """See :meth:`~vidgen.data.decoders.base.BaseReader.decode`."""
        if path in self._failed or avi_with_b_frames(path):
            return self._pyav.decode(path, indices, size, shape)
        wanted, inverse = np.unique(indices, return_inverse=True)
        try:
            decoder = self._decoders.get((path, size), lambda: self._open(path, size, shape))
            return decoder.get_frames_at(wanted.tolist()).data.numpy()[inverse]
        except Exception:
            self._decoders.drop((path, size))
            frames = self._pyav.decode(path, indices, size, shape)  # raises VideoError if bad
            self._failed.add(path)
            return frames
