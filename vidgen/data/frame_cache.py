"""Decoded-frame cache: each video decoded once at the training size, then read by memory map.

Decoding a clip costs opening the file, seeking to a keyframe, decoding forward and resizing,
whatever the clip's size; that caps what a DataLoader worker delivers (``docs/results.md``).
With ``frame_cache=True`` (any :class:`~vidgen.data.VideoFileDataModule`)
every video is decoded once, by the clip reader itself (same decoder, resize and crop), into a
uint8 ``(frames, S, S, 3)`` ``.npy`` file; a clip is then a copy of its frames out of a memory
map (pixel-identical to what the reader returns). The price is disk: ``3 * S * S`` bytes a
frame, checked against the free space before anything is written.

Files are stamped with their source's size and mtime in ``manifest.json``: a changed video is
decoded again, an unchanged one never. Each stamp is also journaled (:mod:`vidgen.data.journal`)
just before its file is moved into place, so a build killed at any point (SIGKILL included)
loses no finished video: the next build decodes only the videos whose file was not in place.
A video that fails to decode is recorded and read by the fallback reader (the decoder) during
the epoch, where the dataset's failure handling applies.

Builders share a cache directory safely: a build holds an inter-process lock on its ``.lock``
file (:class:`~vidgen.data.locking.FileLock`) from reading the manifest to its last save, so a
second process building the same cache (another DDP rank, another job) waits, then finds every
video fresh and decodes nothing; the manifest is re-read before every save and the entries
merged, never replaced. Every ``.npy`` file and the manifest are written under a temporary name
and moved into place (``os.replace``): a reader never sees a half-written one.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from vidgen.data.decoders import FrameReader, VideoError, VideoInfo, make_reader
from vidgen.data.decoders.base import Shape, Size
from vidgen.data.journal import Journal
from vidgen.data.locking import FileLock
from vidgen.data.parallel import process_map

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
JOURNAL = "journal"  # entries not yet in the manifest: journal.<pid>.jsonl (vidgen.data.journal)
LOCK = ".lock"  # held while a process builds the cache
TMP = ".tmp_"  # files being written (what a killed build leaves is deleted by the next one)
VERSION = 1
CHUNK = 128  # frames decoded per reader call while building


def frame_bytes(image_size: int) -> int:
    """Bytes one cached ``image_size`` x ``image_size`` RGB frame takes."""
    return 3 * image_size * image_size


def decode_video(
    reader: FrameReader, source: str, frames: int, width: int, height: int, size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every frame of ``source`` as ``reader`` gives it at ``size``, :data:`CHUNK` frames a
    read -> ``(frame numbers, uint8 (n, size, size, 3))`` pairs in order (raises
    :class:`~vidgen.data.decoders.VideoError`)."""
    for start in range(0, frames, CHUNK):
        wanted = np.arange(start, min(frames, start + CHUNK))
        yield wanted, reader.read(source, wanted, size, shape=(width, height))


def _decode_job(job: tuple) -> tuple[str, str | None]:
    """Decode one video into its cache file -> ``(source, None)`` or ``(source, error)``.

    The video's manifest entry (``stamp``) goes to the journal before the file is moved into
    place, and an older file of the video is deleted first: a file in place whose entry is in
    the journal or the manifest is whole and fresh, whenever the build was killed."""
    source, target, frames, width, height, size, make, key, stamp, journal = job
    reader = make()
    tmp = None
    try:
        Path(target).unlink(missing_ok=True)
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=Path(target).parent, prefix=TMP, suffix=".npy")
        os.close(fd)
        out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (frames, size, size, 3))
        for wanted, decoded in decode_video(reader, source, frames, width, height, size):
            out[wanted] = decoded
        out.flush()
        del out
        Journal(journal).append(key, stamp)
        os.replace(tmp, target)
        return source, None
    except Exception as err:  # a bad video is recorded, never a crash
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        error = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        Journal(journal).append(key, {**stamp, "error": error})
        return source, error


class FrameCache:
    """Decoded uint8 frames of the videos under ``video_dir`` at ``image_size``, in ``directory``.

    ``build(videos)`` decodes the missing and stale ones in ``workers`` processes (with a tqdm
    bar) and returns ``{source path: cache file}`` for every video that decoded. ``reader``
    makes the (picklable) reader that decodes.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        video_dir: str | os.PathLike,
        image_size: int,
        workers: int | None = None,
        progress: bool = True,
        reader: Callable[[], FrameReader] = make_reader,
    ) -> None:
        self.directory = Path(directory)
        self.reader = reader
        self.video_dir = Path(video_dir)
        self.image_size = image_size
        self.workers = workers
        self.progress = progress
        self.decoded = 0  # videos decoded by the last build (0 = all from the cache)

    def _key(self, source: str) -> str:
        try:
            return Path(source).relative_to(self.video_dir).as_posix()
        except ValueError:
            return Path(source).resolve().as_posix().lstrip("/")

    def _target(self, key: str) -> Path:
        return self.directory / Path(key).with_suffix(".npy")

    @property
    def journal(self) -> Journal:
        """Entries of the videos decoded since the manifest was last saved."""
        return Journal(self.directory / JOURNAL)

    def _manifest(self) -> dict[str, dict]:
        """The saved manifest's entries and the journal's (those of a build that was killed)."""
        try:
            data = json.loads((self.directory / MANIFEST).read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("version") != VERSION or data.get("image_size") != self.image_size:
            data = {}
        return {**data.get("videos", {}), **self.journal.read()}

    def _save(self) -> dict[str, dict]:
        """Write the manifest with the journal's entries atomically, then drop the journal ->
        the entries."""
        entries = self._manifest()
        payload = {"version": VERSION, "image_size": self.image_size, "videos": entries}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=TMP)
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out)
        os.replace(tmp, self.directory / MANIFEST)
        self.journal.clear()
        return entries

    def build(self, videos: Sequence[tuple[str, VideoInfo]]) -> dict[str, str]:
        """Cache files of ``videos`` (``(path, info)`` pairs), decoding what is missing.

        Holds the cache's lock throughout: a concurrent build of the same directory waits for
        this one, then decodes only what this one did not."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(self.directory / LOCK, what=f"frame cache {self.directory}"):
            entries = self._build(videos)
        files, failed = {}, []
        for source, _info in videos:
            key = self._key(source)
            if "error" in entries[key]:
                failed.append(f"{source}: {entries[key]['error']}")
            else:
                files[source] = str(self._target(key))
        if failed:
            log.warning(
                "frame cache: %d videos did not decode and are read by the decoder instead "
                "(first: %s)",
                len(failed),
                failed[0],
            )
        return files

    def _build(self, videos: Sequence[tuple[str, VideoInfo]]) -> dict[str, dict]:
        """Decode the missing and stale ``videos`` (lock held) -> the manifest's entries."""
        for leftover in self.directory.rglob(f"{TMP}*"):  # of a build killed while writing
            leftover.unlink(missing_ok=True)
        entries = self._manifest()
        size = self.image_size
        jobs, stamps = [], {}
        for source, info in videos:
            key, st = self._key(source), os.stat(source)
            stamps[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": info.frames}
            target = self._target(key)
            cached = entries.get(key)
            fresh = cached is not None and all(cached.get(k) == v for k, v in stamps[key].items())
            if fresh and ("error" in cached or target.is_file()):
                continue
            job = (source, str(target), info.frames, info.width, info.height, size, self.reader)
            jobs.append((*job, key, stamps[key], str(self.journal.prefix)))
        self.decoded = len(jobs)
        if jobs:
            self._check_space(sum(job[2] for job in jobs))
            desc = f"decoding {len(jobs)} videos into the frame cache"
            for _ in process_map(_decode_job, jobs, self.workers, desc, progress=self.progress):
                pass  # each job journals its entry (an interrupted build keeps what it did)
            entries = self._save()
        return entries

    def _check_space(self, frames: int) -> None:
        """Raise ``OSError(ENOSPC)`` naming the fixes when ``frames`` frames do not fit."""
        self.directory.mkdir(parents=True, exist_ok=True)
        needed = frames * frame_bytes(self.image_size)
        free = shutil.disk_usage(self.directory).free
        gib = 2.0**30
        log.info(
            "frame cache: %d frames at %d px = %.2f GiB into %s",
            frames,
            self.image_size,
            needed / gib,
            self.directory,
        )
        if needed > free:
            raise OSError(
                errno.ENOSPC,
                f"the frame cache needs {needed / gib:.1f} GiB for {frames} frames at "
                f"{self.image_size} px but {self.directory} has {free / gib:.1f} GiB free: set "
                "data.cache_dir to a larger disk, lower data.image_size, or set "
                "data.frame_cache=false to decode every clip",
            )


class CachedReader:
    """:class:`~vidgen.data.decoders.FrameReader` over a frame cache.

    ``files`` maps source paths to cache files made at ``image_size``; a video it lacks (or a
    read at another size) goes to ``fallback()`` (the default decoder unless given).
    """

    def __init__(
        self,
        files: Mapping[str, str],
        image_size: int,
        fallback: Callable[[], FrameReader] = make_reader,
    ) -> None:
        self.files = dict(files)
        self.image_size = image_size
        self._make_fallback = fallback
        self._fallback: FrameReader | None = None

    def read(self, path: str, indices: np.ndarray, size: Size, shape: Shape = None) -> np.ndarray:
        """See :class:`~vidgen.data.decoders.FrameReader`."""
        target = self.files.get(path) if size == self.image_size else None
        if target is None:
            if self._fallback is None:
                self._fallback = self._make_fallback()
            return self._fallback.read(path, indices, size, shape)
        indices = np.asarray(indices, dtype=np.int64)
        try:
            frames = np.load(target, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise VideoError(f"{path}: frame cache file {target} unreadable ({err})") from err
        if indices.size and (indices.min() < 0 or indices.max() >= len(frames)):
            raise VideoError(f"{path}: frames {indices.tolist()} not in its {len(frames)} frames")
        return np.ascontiguousarray(frames[indices])
