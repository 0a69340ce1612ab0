"""``VideoFileDataModule``: the base of every DataModule whose source is video files.

What any file-based source shares lives here once: the cached video index, the bad-file report,
the decoder choice and resize rule, the optional frame cache and the clip datasets. A concrete
module says only which files make which split (:meth:`VideoFileDataModule.list_videos`, a
:class:`Listing`): :class:`~vidgen.data.ucf101.UCF101DataModule` from UCF101's list files,
:class:`~vidgen.data.folder.VideoFolderDataModule` (:mod:`vidgen.data.folder`) from any folder
of videos.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

from torch.utils.data import DataLoader, Dataset

from vidgen.data.clips import HeadClips, Video, VideoClips, report_bad
from vidgen.data.datamodule import VideoDataModule
from vidgen.data.decoders import Decoder, Resize, VideoInfo, choose_decoder, make_reader
from vidgen.data.index import VideoIndex, default_cache_dir, dir_key
from vidgen.data.sampling import ClipSampler


@dataclass
class Listing:
    """Which files make which split, as a concrete module finds them.

    ``splits`` maps ``train``/``val``/``test`` (and optionally ``predict``) to ``(file, label)``
    pairs; ``missing`` are files named somewhere (lists) but absent; ``problems`` are other
    things to report once (kind -> items). ``draw``, when given, makes more splits once the
    files are indexed, from the readable ones (a split drawn at random among files that turn
    out to be broken could be left empty).
    """

    video_dir: Path
    splits: dict[str, list[tuple[Path, int]]]
    class_names: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)
    draw: Callable[[list[Path]], dict[str, list[tuple[Path, int]]]] | None = None


class VideoFileDataModule(VideoDataModule):
    """Clips of video files: index, bad-file report, decoder, frame cache (shared base).

    Videos are indexed once (frame count, fps, size; in parallel, cached beside the data or in
    ``cache_dir`` when the folder is read-only, refreshed per file by size and mtime). Missing,
    empty, undecodable and too-short videos (fewer frames than a clip) are reported once and
    left out; a clip that fails to decode during an epoch is logged and replaced.

    Args:
        root: where the videos are (what it must hold depends on the module).
        decoder: ``decord``, ``torchcodec`` or ``pyav`` (None: decord where installed, else the
            next installed; see :mod:`vidgen.data.decoders`).
        resize: how frames become ``image_size`` squares: ``crop`` (shorter side to
            ``image_size``, centre square kept) or ``pad`` (longer side to ``image_size``,
            centred on black: the whole frame, aspect ratio kept).
        cache_dir: where the frame cache goes, and the index when the video folder is not
            writable (default ``~/.cache/vidgen``); given explicitly, the index always goes there.
        index_workers: processes probing videos while indexing and decoding them into the
            frame cache (default: all cores, up to 8).
        verify_videos: decode the last frames of every video while indexing. Off (default),
            complete AVI files are indexed from their headers (no decoding) and only the others
            (truncated, other containers) are decoded; a corrupt payload then shows up as a
            logged, replaced decode failure during the epoch instead of at index time.
        frame_cache: decode every video once at ``image_size`` into uint8 ``.npy`` files in
            ``cache_dir`` (:meth:`frame_cache_dir`) and read clips from them: faster than decoding
            each clip (``docs/results.md`` has the measurements), the same pixels,
            ``3 * image_size**2`` bytes of disk a frame (see :mod:`vidgen.data.frame_cache`).
        progress: show progress bars while indexing and caching.
        **kwargs: the :class:`~vidgen.data.datamodule.VideoDataModule` arguments (``frames``,
            ``eval_frames``, ``frame_skip``, ``sampling``, ``image_size``, ``batch_size``,
            ``num_workers``, ``clips_per_video``).
    """

    name: ClassVar[str] = "videos"  # names the index and cache files, and the bad-file report

    def __init__(
        self,
        root: str,
        decoder: Decoder | None = None,
        resize: Resize = "crop",
        cache_dir: str | None = None,
        index_workers: int | None = None,
        verify_videos: bool = False,
        frame_cache: bool = False,
        progress: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.root = root
        self.decoder = decoder
        self.resize = resize
        self.cache_dir = cache_dir
        self.index_workers = index_workers
        self.verify_videos = verify_videos
        self.frame_cache = frame_cache
        self.progress = progress
        self.class_names: list[str] = []
        self._index: dict | None = None
        self._video_dir: Path | None = None

    @abstractmethod
    def list_videos(self) -> Listing:
        """The files of each split (raises ``ValueError`` naming the fix when there are none)."""

    def empty_split_hint(self, split: str) -> str:
        """What to change when ``split`` has no usable video (the end of the error message)."""
        return "check data.root, or lower data.frames/data.eval_frames"

    def check_config(self) -> None:
        super().check_config()
        if self.resize not in ("crop", "pad"):
            raise ValueError(f"data.resize must be 'crop' or 'pad', got {self.resize!r}")
        try:
            choose_decoder(self.decoder)
        except ImportError as err:
            raise ValueError(str(err)) from err

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets of ``stage``; ``predict`` builds what its DataLoader reads, when
        it is asked for (every file for the folder module, the test split for UCF101)."""
        if stage == "predict":
            self.check_config()
            return
        super().setup(stage)

    def prepare_data(self) -> None:
        """Build the video index and, with ``frame_cache``, the frame cache, once per node.

        Lightning calls ``prepare_data`` in one process per node (local rank 0; with
        ``prepare_data_per_node=False``, global rank 0 only), then makes every rank wait at a
        barrier before ``setup``. ``setup`` on every rank runs the same build, which then finds
        the index and every cache file fresh and probes and decodes nothing: it only reads
        files written whole (temporary name, then ``os.replace``). Both caches are also built
        under an inter-process lock (:mod:`vidgen.data.locking`), so that ranks or jobs that
        reach a build together (two runs on the same ``cache_dir``; the ranks of a node that
        has no ``prepare_data`` call of its own when ``prepare_data_per_node=False`` and the
        cache is not on a shared file system) build it once: one builds, the others wait and
        then read it.
        """
        self.check_config()
        self._build_index()

    def _build_index(self) -> dict:
        """List the splits' files, index them and sort out the bad ones (once)."""
        if self._index is not None:
            return self._index
        listing = self.list_videos()
        self.class_names = listing.class_names
        self._video_dir = listing.video_dir
        files = sorted({path for entries in listing.splits.values() for path, _ in entries})
        index = VideoIndex(
            listing.video_dir,
            self.cache_dir,
            self.index_workers,
            self.progress,
            self.verify_videos,
            name=self.name,
            decoder=self.decoder,
        )
        infos = index.update(files)
        broken = sorted(info["error"] for info in infos.values() if "error" in info)
        good = {p: VideoInfo.from_dict(info) for p, info in infos.items() if "error" not in info}
        splits = dict(listing.splits)
        if listing.draw is not None:
            splits.update(listing.draw(sorted(good)))
        videos = {
            split: [Video(str(path), label, good[path]) for path, label in entries if path in good]
            for split, entries in splits.items()
        }
        report_bad(
            {
                "listed videos missing on disk": listing.missing,
                "unreadable videos (empty, truncated or undecodable)": broken,
                **listing.problems,
            },
            self.name,
        )
        cached, decoded = (
            self._cache_frames(listing.video_dir, videos) if self.frame_cache else ({}, 0)
        )
        self._index = {
            "videos": videos,
            "index_file": index.file,
            "cached": cached,
            "probed": index.probed,  # videos this process probed / decoded into the frame
            "decoded": decoded,  # cache (0 where another process had built them)
        }
        return self._index

    def frame_cache_dir(self) -> Path:
        """Where the frame cache of this data, ``image_size``, ``resize`` and decoder lives: in
        ``cache_dir`` (default ``~/.cache/vidgen``), never among the videos (where other tools,
        e.g. torchvision's UCF101, would take it for a class)."""
        video_dir = self._video_dir or self.list_videos().video_dir
        name = f"{self.name}_frames_{dir_key(video_dir)}_{self.image_size}px"
        name += "" if self.resize == "crop" else f"_{self.resize}"
        decoder = choose_decoder(self.decoder)
        name += "" if decoder == "decord" else f"_{decoder}"
        return Path(self.cache_dir or default_cache_dir()) / name

    def _cache_frames(self, video_dir: Path, videos: dict[str, list]) -> tuple[dict[str, str], int]:
        """Decode the splits' videos into the frame cache -> ``({path: cache file}, number of
        videos this process decoded)``."""
        from vidgen.data.frame_cache import FrameCache

        cache = FrameCache(
            self.frame_cache_dir(),
            video_dir,
            self.image_size,
            self.index_workers,
            self.progress,
            reader=self.reader_factory(cached={}),
        )
        unique = {v.path: v.info for split in videos.values() for v in split}
        files = cache.build(list(unique.items()))
        return files, cache.decoded

    def reader_factory(self, cached: dict[str, str] | None = None):
        """A picklable factory of the clip reader: the frame cache where it has the video, the
        chosen decoder otherwise."""
        from vidgen.data.frame_cache import CachedReader

        decode = partial(make_reader, self.decoder, self.resize)
        cached = self._build_index()["cached"] if cached is None else cached
        return partial(CachedReader, cached, self.image_size, decode) if cached else decode

    def usable(self, split: str, frames: int) -> list[Video]:
        """The readable videos of ``split`` with at least ``frames`` frames (the others are
        reported); raises ``ValueError`` naming the fix when none is left."""
        videos = self._build_index()["videos"].get(split, [])
        usable = [v for v in videos if v.info.frames >= frames]
        short = [f"{v.path} ({v.info.frames} frames)" for v in videos if v not in usable]
        report_bad({f"{split} videos shorter than {frames} frames": short}, self.name)
        if not usable:
            raise ValueError(
                f"the {split} split of {type(self).__name__} under {self.root} has no usable "
                f"video ({len(videos)} found and readable, {len(short)} shorter than {frames} "
                f"frames): {self.empty_split_hint(split)}"
            )
        return usable

    def make_dataset(self, split: str, sampler: ClipSampler) -> Dataset:
        usable = self.usable(split, sampler.frames)
        return VideoClips(usable, sampler, self.image_size, self.reader_factory())

    def predict_clips(self, split: str) -> HeadClips:
        """Every usable video of ``split``, one clip from its first frame (:class:`HeadClips`)
        of ``eval_frames`` frames at ``frame_skip``; videos with fewer than 2 frames are left
        out."""
        sampler = ClipSampler(self.eval_frames, self.frame_skip)
        return HeadClips(self.usable(split, 2), sampler, self.image_size, self.reader_factory())

    def predict_loader(self, split: str) -> DataLoader:
        """A DataLoader over :meth:`predict_clips` (in order, every clip)."""
        self.check_config()
        return DataLoader(
            self.predict_clips(split),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
        )
