"""``ShardDataModule``: clips read from LitData shards (``vidgen prepare``), local or in a bucket.

The shards hold every frame of every usable video of a file source, decoded once at the
training size (:mod:`vidgen.data.shards`). This module gives the items of that source exactly:
it is a :class:`~vidgen.data.file_source.VideoFileDataModule` whose index is the shards' manifest
and whose frame reader fetches frames from the shards by LitData's random access
(``StreamingDataset[i]``), so sampling, clips, labels, ``frame_ids``, the shuffled and
resumable training order (:mod:`vidgen.data.resumable`) and the DDP split (Lightning's
distributed sampler: each rank its own clips, none twice, none left out) are the file
source's own code, not a second implementation. LitData's ``StreamingDataLoader`` is not
used: its order and resume state are its own, which could not equal the file source's items.

From a bucket, a frame read fetches the LitData chunk holding it into a local cache once
(``cache_dir``); every rank reads only the chunks of its own clips.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from vidgen.data.clips import Video
from vidgen.data.decoders import VideoError, VideoInfo
from vidgen.data.decoders.base import Shape, Size
from vidgen.data.file_source import Listing, VideoFileDataModule
from vidgen.data.shards import MANIFEST, MISSING, litdata, part_location, read_manifest


class ShardReader:
    """:class:`~vidgen.data.decoders.FrameReader` over the shards at ``location``.

    ``videos`` maps a video's key to ``(part, first item)``; each part is opened as a LitData
    ``StreamingDataset`` on first use (inside the DataLoader worker), decoding one item per
    read (``batch_decode=0``: a clip touches a few frames, not a window of them)."""

    def __init__(
        self,
        location: str,
        videos: dict[str, tuple[str, int]],
        image_size: int,
        cache_dir: str | None = None,
    ) -> None:
        self.location = location
        self.videos = videos
        self.image_size = image_size
        self.cache_dir = cache_dir
        self._parts: dict[str, Any] = {}

    def _part(self, name: str) -> Any:
        if name not in self._parts:
            cache = None if self.cache_dir is None else str(Path(self.cache_dir) / name)
            self._parts[name] = litdata().StreamingDataset(
                part_location(self.location, name), cache_dir=cache, batch_decode=0
            )
        return self._parts[name]

    def read(self, path: str, indices: np.ndarray, size: Size, shape: Shape = None) -> np.ndarray:
        """See :class:`~vidgen.data.decoders.FrameReader` (``path`` is the video's key)."""
        if size != self.image_size:
            raise VideoError(f"{path}: the shards hold {self.image_size} px frames, not {size}")
        part, first = self.videos[path]
        dataset = self._part(part)
        wanted = (first + np.asarray(indices, dtype=np.int64)).tolist()
        items = [dataset[i] for i in wanted]
        ids = [int(item["id"]) for item in items]
        if MISSING in ids:
            raise VideoError(f"{path}: frames {indices} did not decode when the shards were made")
        if ids != wanted:
            raise ValueError(
                f"{path}: the items of {part_location(self.location, part)} are "
                "not in the order they were written: write the shards again"
            )
        return np.stack([item["frame"] for item in items])


class ShardDataModule(VideoFileDataModule):
    """Clips from the shards ``vidgen prepare`` wrote: the items of the source they came from.

    ``root`` is the shard location: a folder, or a bucket URL (``s3://bucket/path``,
    ``gs://...``) that every node reads. The splits, labels and frames are those of the source
    module when the shards were written (its fold, split draw and bad-file report);
    ``image_size`` and ``resize`` must be the shards' (an error names them otherwise). The
    source's decoder, index and frame-cache settings play no part here.

    Args:
        root: the shard location (the ``--output`` of ``vidgen prepare``).
        frame_skip: k, source frames dropped between two kept frames (default: the source
            module's ``frame_skip`` when the shards were written).
        cache_dir: where LitData keeps the chunks it downloads from a bucket (default: its own,
            ``~/.lightning/chunks``); unused for a local folder.
        **kwargs: the :class:`~vidgen.data.datamodule.VideoDataModule` arguments (``frames``,
            ``eval_frames``, ``sampling``, ``image_size``, ``batch_size``,
            ``num_workers``, ``clips_per_video``) and ``resize``.
    """

    name = "shards"

    def __init__(
        self,
        root: str,
        frame_skip: int | None = None,
        cache_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(root=root, cache_dir=cache_dir, **kwargs)
        self._manifest: dict | None = None
        if frame_skip is None:  # the source's default (UCF101DataModule: 1)
            frame_skip = self.manifest()["frame_skip"]
        self.frame_skip = frame_skip

    def manifest(self) -> dict:
        """The shards' manifest (read once); ``ValueError`` naming the fix where the shards are
        missing or unfinished."""
        if self._manifest is None:
            manifest = read_manifest(self.root)
            if manifest is None:
                raise ValueError(
                    f"no vidgen shards at {self.root} ({MANIFEST} not found): write them with "
                    f"`vidgen prepare --config <config> --output {self.root}`"
                )
            if set(manifest["done"]) != set(manifest["parts"]):
                raise ValueError(
                    f"the shards at {self.root} are unfinished ({len(manifest['done'])} of "
                    f"{len(manifest['parts'])} parts): run the same `vidgen prepare` again"
                )
            self._manifest = manifest
        return self._manifest

    def check_config(self) -> None:
        super().check_config()
        manifest = self.manifest()
        for name in ("image_size", "resize"):
            if getattr(self, name) != manifest[name]:
                raise ValueError(
                    f"data.{name}={getattr(self, name)!r}, but the shards at {self.root} hold "
                    f"frames made with {name}={manifest[name]!r}: set data.{name} to that, or "
                    "write shards with yours (vidgen prepare)"
                )

    def list_videos(self) -> Listing:
        """The splits the shards were written with (keys: paths relative to the source)."""
        manifest = self.manifest()
        splits = {
            split: [(Path(key), label) for key, label in entries]
            for split, entries in manifest["splits"].items()
        }
        return Listing(Path(), splits, manifest["class_names"])

    def _build_index(self) -> dict:
        """The manifest's videos by split; nothing is probed or decoded."""
        if self._index is None:
            listing = self.list_videos()
            self.class_names = listing.class_names
            entries = self.manifest()["videos"]
            videos = {
                split: [
                    Video(key.as_posix(), label, VideoInfo.from_dict(entries[key.as_posix()]))
                    for key, label in pairs
                ]
                for split, pairs in listing.splits.items()
            }
            self._index = {"videos": videos, "cached": {}, "probed": 0, "decoded": 0}
        return self._index

    def reader_factory(self, cached: dict[str, str] | None = None) -> partial:
        """A picklable factory of the :class:`ShardReader` of these shards."""
        videos = {key: (e["part"], e["first"]) for key, e in self.manifest()["videos"].items()}
        return partial(ShardReader, self.root, videos, self.image_size, self.cache_dir)

    def predict_dataloader(self) -> DataLoader:
        """What the source's ``vidgen predict`` reads: every video, one clip from its first
        frame, where the source had a ``predict`` split (a folder), else the test clips."""
        if "predict" in self.manifest()["splits"]:
            return self.predict_loader("predict")
        return super().predict_dataloader()
