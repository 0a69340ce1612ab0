"""Decoded-frame cache: each video decoded once at the training size, then read by memory map.

decord spends about 5 ms on an 8-frame clip of a 320x240 UCF101-style AVI (open, seek to the
keyframe, decode forward, resize), whatever the clip's size; that caps a DataLoader worker near
200 clips/s. With ``frame_cache=True`` (any :class:`~vidgen.data.VideoFileDataModule`)
every video is decoded once, by the clip reader itself (same decoder, resize and crop), into a
uint8 ``(frames, S, S, 3)`` ``.npy`` file; a clip is then a copy of its frames out of a memory
map (pixel-identical to what the reader returns). The price is disk: ``3 * S * S`` bytes a
frame (12 KB at 64 px, 37 KB at 112 px; all of UCF101's ~2.5 million frames take ~30 GB at
64 px), checked against the free space before anything is written.

Files are stamped with their source's size and mtime in ``manifest.json``: a changed video is
decoded again, an unchanged one never. A video that fails to decode is recorded and read by the
fallback reader (the decoder) during the epoch, where the dataset's failure handling applies.

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from vidgen.data.decoders import FrameReader, VideoError, VideoInfo, make_reader
from vidgen.data.locking import FileLock
from vidgen.data.parallel import process_map

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = ".lock"  # held while a process builds the cache
VERSION = 1
CHUNK = 128  # frames decoded per reader call while building
SAVE_EVERY = 64  # videos decoded between two manifest saves


def frame_bytes(image_size: int) -> int:
    """Bytes one cached ``image_size`` x ``image_size`` RGB frame takes."""
    return 3 * image_size * image_size


def _decode_job(job: tuple) -> tuple[str, str | None]:
    """Decode one video into its cache file -> ``(source, None)`` or ``(source, error)``."""
    source, target, frames, width, height, size, make = job
    reader = make()
    tmp = None
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=Path(target).parent, prefix=".tmp_", suffix=".npy")
        os.close(fd)
        out = np.lib.format.open_memmap(tmp, "w+", np.uint8, (frames, size, size, 3))
        for start in range(0, frames, CHUNK):
            wanted = np.arange(start, min(frames, start + CHUNK))
            out[wanted] = reader.read(source, wanted, size, shape=(width, height))
        out.flush()
        del out
        os.replace(tmp, target)
        return source, None
    except Exception as err:  # a bad video is recorded, never a crash
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        return source, str(err).splitlines()[0][:300] if str(err) else type(err).__name__


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

    def _manifest(self) -> dict[str, dict]:
        try:
            data = json.loads((self.directory / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        if data.get("version") != VERSION or data.get("image_size") != self.image_size:
            return {}
        return data.get("videos", {})

    def _save(self, updates: dict[str, dict]) -> dict[str, dict]:
        """Merge ``updates`` into the manifest on disk (re-read now: entries another builder
        wrote are kept) and write it atomically -> the merged entries."""
        entries = {**self._manifest(), **updates}
        payload = {"version": VERSION, "image_size": self.image_size, "videos": entries}
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".manifest_")
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out)
        os.replace(tmp, self.directory / MANIFEST)
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
            jobs.append(
                (source, str(target), info.frames, info.width, info.height, size, self.reader)
            )
        self.decoded = len(jobs)
        if jobs:
            self._check_space(sum(job[2] for job in jobs))
            desc = f"decoding {len(jobs)} videos into the frame cache"
            done = process_map(_decode_job, jobs, self.workers, desc, progress=self.progress)
            updates = {}
            for count, (source, error) in enumerate(done, 1):
                key = self._key(source)
                updates[key] = {**stamps[key], **({"error": error} if error else {})}
                if count % SAVE_EVERY == 0:  # an interrupted build keeps what it decoded
                    self._save(updates)
            entries = self._save(updates)
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

    def read(
        self,
        path: str,
        indices: np.ndarray,
        size: int | None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
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
