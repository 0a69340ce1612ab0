"""PyAV behind :class:`~vidgen.data.decoders.base.FrameReader` (FFmpeg bundled in its wheels;
a dependency of vidgen, so always installed). Its probe also serves TorchCodec."""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from vidgen.data.decoders.base import (
    CHECK_LAST,
    BaseReader,
    Opened,
    Resize,
    Shape,
    Size,
    VideoError,
    decode_size,
)
from vidgen.data.decoders.containers import packets


def open_video(path: str) -> Opened:
    """``path``'s video packets counted (no decoding), its fps, size and promised count from the
    stream header; its last frames are decoded by :class:`PyAVReader`."""
    (fps, width, height, promised), table = packets(path)
    reader = PyAVReader()

    def decodes(frames: int) -> bool:
        try:
            reader.read(path, np.arange(max(0, frames - CHECK_LAST), frames), 32)
        except VideoError:
            return False
        return True

    return Opened(len(table), fps, width, height, promised, decodes)


class PyAVReader(BaseReader):
    """:class:`~vidgen.data.decoders.base.FrameReader` on PyAV.

    Frame ``n`` is the ``n``-th of the stream's packet timestamps in order (listed once per file
    and kept for ``tables`` files); reading seeks to the keyframe before the first wanted frame
    and decodes forward. Without usable timestamps the file is decoded from frame 0. Resizing
    uses FFmpeg's ``scale`` filter (bilinear) before the RGB conversion, as decord does.
    """

    def __init__(self, resize: Resize = "crop", tables: int = 256) -> None:
        super().__init__(resize)
        self.tables = tables
        self._tables: OrderedDict[str, list[int] | None] = OrderedDict()

    def _table(self, path: str) -> list[int] | None:
        """Presentation timestamps of ``path``'s frames in order (None: not usable)."""
        if path in self._tables:
            self._tables.move_to_end(path)
            return self._tables[path]
        _info, pts = packets(path)
        ordered = sorted(pts) if pts and None not in pts else None
        if ordered is not None and len(set(ordered)) != len(ordered):
            ordered = None
        self._tables[path] = ordered
        while len(self._tables) > self.tables:
            self._tables.popitem(last=False)
        return ordered

    def decode(self, path: str, indices: np.ndarray, size: Size, shape: Shape) -> np.ndarray:
        """See :meth:`~vidgen.data.decoders.base.BaseReader.decode`."""
        import av

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
        return np.stack([got[i] for i in indices])

    def _converter(self, stream, size: Size):
        """Frame -> uint8 ``(H, W, 3)`` at :func:`~vidgen.data.decoders.base.decode_size`."""
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
        """The wanted frames, numbered by their timestamps' places in ``table``, decoded from
        the keyframe before the first of them ({} when one is past the table)."""
        if wanted[-1] >= len(table):
            return {}
        position = {pts: i for i, pts in enumerate(table)}
        container.seek(table[wanted[0]], stream=stream, backward=True, any_frame=False)
        numbered = ((position.get(frame.pts), frame) for frame in container.decode(stream))
        return _collect(((i, f) for i, f in numbered if i is not None), wanted, convert)

    @staticmethod
    def _forward_read(container, stream, wanted: list[int], convert) -> dict:
        """The wanted frames, numbered in decode order from frame 0."""
        return _collect(enumerate(container.decode(stream)), wanted, convert)


def _collect(numbered: Iterable[tuple[int, Any]], wanted: list[int], convert) -> dict:
    """``{n: convert(frame)}`` for the wanted ``n`` among ``(n, frame)`` pairs; decoding stops at
    the last wanted frame."""
    todo, got = set(wanted), {}
    for i, frame in numbered:
        if i > wanted[-1]:
            break
        if i in todo:
            got[i] = convert(frame)
            todo.discard(i)
            if not todo:
                break
    return got
