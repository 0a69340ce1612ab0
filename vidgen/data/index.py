"""The video index: frame count, fps and size of every video file, probed once and cached.

Entries are keyed by the path relative to the video folder and stamped with the file's size and
mtime; the cache lives beside the data, or in a cache dir when the folder is read-only. An update
holds an inter-process lock (``<index file>.lock``, :class:`~vidgen.data.locking.FileLock`) from
re-reading the file to rewriting it, so concurrent updates (DDP ranks, jobs sharing the data)
serialise and merge their entries instead of overwriting each other's. Every probed entry is
also journaled as it comes (:mod:`vidgen.data.journal`): an update killed before it saves the
index loses none of them, and the next one probes only the rest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import Path

from vidgen.data.decoders import VideoError, avi_header, probe
from vidgen.data.journal import Journal
from vidgen.data.locking import FileLock
from vidgen.data.parallel import process_map

log = logging.getLogger(__name__)

INDEX_VERSION = 1
TMP = ".vidgen_index_"  # index files being written (what a killed update leaves is deleted)


def _probe_one(path: str, verify: bool = True, decoder: str | None = None) -> tuple[str, dict]:
    """Probe one file -> (path, info dict or {"error": message}); ``verify``: decode-check."""
    try:
        return path, {**probe(path, verify, decoder).to_dict(), "verified": verify}
    except VideoError as err:
        return path, {"error": str(err)}
    except Exception as err:  # anything else is still a bad file, never a crash
        return path, {"error": f"{path}: {type(err).__name__}: {err}"}


def _writable(directory: Path) -> bool:
    """True when a file can be created in ``directory`` (tried, not guessed from mode bits)."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".vidgen_probe_"):
            return True
    except OSError:
        return False


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vidgen``, else ``~/.cache/vidgen``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidgen"


def dir_key(video_dir: Path) -> str:
    """A short hash of a folder's absolute path: names its caches kept outside it."""
    import hashlib

    return hashlib.sha1(str(video_dir.resolve()).encode()).hexdigest()[:16]


def index_file(video_dir: Path, cache_dir: str | os.PathLike | None = None, name: str = "") -> Path:
    """Where the index of ``video_dir`` lives: ``.vidgen_<name>_index.json`` beside the data,
    else (read-only folder, or ``cache_dir`` given) ``<name>_index_<hash>.json`` in the cache
    dir."""
    if cache_dir is None and _writable(video_dir):
        return video_dir / f".vidgen_{name}_index.json"
    return Path(cache_dir or default_cache_dir()) / f"{name}_index_{dir_key(video_dir)}.json"


class VideoIndex:
    """Cached ``path -> VideoInfo`` (or error) for the files of one video directory.

    Entries are keyed by the path relative to ``video_dir`` and stamped with the file's size and
    mtime; a changed file is probed again, an unchanged one never. ``verify=False`` (default)
    reads complete AVI files from their headers in this process (no decoding) and
    decodes only the others; ``verify=True`` decodes the last frames of every file. Decoding
    probes run in ``workers`` processes with a tqdm progress bar; the cache file is rewritten
    atomically, under a lock (``<file>.lock``) held from re-reading it to writing it, so that a
    concurrent update waits and then probes only what this one did not. ``name`` names the
    cache file (:func:`index_file`); ``decoder`` probes (see
    :func:`vidgen.data.decoders.probe`).
    """

    def __init__(
        self,
        video_dir: str | os.PathLike,
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        progress: bool = True,
        verify: bool = False,
        name: str = "ucf101",
        decoder: str | None = None,
    ) -> None:
        self.video_dir = Path(video_dir)
        self.verify = verify
        self.decoder = decoder
        self.file = index_file(self.video_dir, cache_dir, name)
        self.workers = workers
        self.progress = progress
        self.entries: dict[str, dict] = self._load()
        self.probed = 0  # files probed by the last update (0 = all from the cache)

    @property
    def journal(self) -> Journal:
        """Entries probed since the index file was last saved (:mod:`vidgen.data.journal`)."""
        return Journal(self.file.with_name(self.file.name + ".journal"))

    def _load(self) -> dict[str, dict]:
        """The saved entries and the journal's (those of an update that was killed)."""
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("version") != INDEX_VERSION:
            data = {}
        return {**data.get("videos", {}), **self.journal.read()}

    def _save(self) -> None:
        payload = {"version": INDEX_VERSION, "root": str(self.video_dir), "videos": self.entries}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=TMP)
            with os.fdopen(fd, "w") as out:
                json.dump(payload, out)
            os.replace(tmp, self.file)
            self.journal.clear()
        except OSError as err:
            log.warning("could not write the video index cache %s: %s", self.file, err)

    def key(self, path: Path) -> str:
        """The entry name of ``path``: relative to the video folder where it is inside."""
        try:
            return path.relative_to(self.video_dir).as_posix()
        except ValueError:
            return str(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the index's lock; without one (its folder is not writable, so the index cannot
        be saved there either) go on unlocked."""
        lock = FileLock(self.file.with_name(self.file.name + ".lock"), f"video index {self.file}")
        try:
            lock.acquire()
        except OSError as err:
            log.debug("video index %s: no lock (%s)", self.file, err)
        try:
            yield
        finally:
            lock.release()

    def update(self, paths: Sequence[Path]) -> dict[Path, dict]:
        """Info dicts (``frames, fps, width, height, seekable`` or ``error``) of ``paths``."""
        with self._locked():
            for leftover in self.file.parent.glob(f"{TMP}*"):  # of an update that was killed
                leftover.unlink(missing_ok=True)
            self.entries = {**self.entries, **self._load()}  # what another process added
            return self._update(paths)

    def _update(self, paths: Sequence[Path]) -> dict[Path, dict]:
        stale: list[Path] = []
        stamps: dict[Path, tuple[int, int]] = {}
        keys = {str(path): self.key(path) for path in paths}
        for path in paths:
            st = path.stat()
            stamps[path] = (st.st_size, st.st_mtime_ns)
            cached = self.entries.get(keys[str(path)])
            if (
                cached is None
                or (cached.get("size"), cached.get("mtime_ns")) != stamps[path]
                or (self.verify and not cached.get("verified", True))
            ):
                stale.append(path)
        self.probed = len(stale)
        if stale:
            with contextlib.ExitStack() as stack:
                try:
                    journal = stack.enter_context(self.journal.appender())
                except OSError:  # unwritable: _save warns
                    journal = None
                for path, info in self._probe(stale):
                    size, mtime = stamps[Path(path)]
                    key = keys[path]
                    self.entries[key] = {**info, "size": size, "mtime_ns": mtime}
                    if journal is not None:
                        with contextlib.suppress(OSError):
                            journal(key, self.entries[key])  # kept if this process is killed
            self._save()
        return {path: self.entries[keys[str(path)]] for path in paths}

    def _probe(self, paths: list[Path]) -> Iterable[tuple[str, dict]]:
        names = [str(p) for p in paths]
        if not self.verify:  # complete AVI files: header only, here (no decord, no pool)
            rest = []
            for name in names:
                info = avi_header(name)
                if info is None:
                    rest.append(name)
                else:
                    yield name, {**info.to_dict(), "verified": False}
            names = rest
        desc = f"indexing {len(names)} videos"
        probe_one = partial(_probe_one, decoder=self.decoder)
        yield from process_map(probe_one, names, self.workers, desc, progress=self.progress)
