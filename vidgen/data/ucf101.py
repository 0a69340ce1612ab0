"""UCF101: split files, the cached video index and the clip Dataset.

Layout (as extracted from the official archives)::

    root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi     (or the class folders directly in root)
    root/ucfTrainTestlist/classInd.txt              "1 ApplyEyeMakeup" (1-based)
    root/ucfTrainTestlist/trainlist0{1,2,3}.txt     "<Class>/v_<Class>_gXX_cYY.avi 1"
    root/ucfTrainTestlist/testlist0{1,2,3}.txt      "<Class>/v_<Class>_gXX_cYY.avi"

Labels come from each entry's folder token through ``classInd.txt`` (0-based), matched
case-insensitively; paths are resolved case-insensitively too (the lists and files spell
``HandStandPushups`` where the folder and ``classInd.txt`` say ``HandstandPushups``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vidgen.data.parallel import process_map
from vidgen.data.sampling import ClipSampler
from vidgen.data.video import (
    DecordReader,
    FrameReader,
    VideoError,
    VideoInfo,
    avi_header,
    probe_video,
)

log = logging.getLogger(__name__)

LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"
INDEX_FILE = ".vidgen_ucf101_index.json"
INDEX_VERSION = 1
FOLDS = (1, 2, 3)
_GROUP = re.compile(r"_g(\d+)_c(\d+)", re.IGNORECASE)


class UCF101ConfigError(ValueError):
    """A UCF101 root, fold or split that cannot work; the message names the fix."""


@dataclass(frozen=True)
class Entry:
    """One line of a split list: the listed relative path, its 0-based label and its group."""

    path: str
    label: int
    group: int


# ------------------------------------------------------------------------------ split files


def _lines(path: Path) -> list[str]:
    """Non-blank, stripped lines (CRLF, BOM and trailing blanks tolerated)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_layout(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(video_dir, list_dir)`` of a UCF101 root; raises :class:`UCF101ConfigError`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UCF101ConfigError(
            f"UCF101 root {root} does not exist: set data.root to the folder where UCF101.rar "
            f"and UCF101TrainTestSplits-RecognitionTask.zip were extracted"
        )
    video_dir = root / VIDEO_DIR if (root / VIDEO_DIR).is_dir() else root
    for candidate in (root / LIST_DIR, video_dir / LIST_DIR, root.parent / LIST_DIR):
        if (candidate / "classInd.txt").is_file():
            return video_dir, candidate
    raise UCF101ConfigError(
        f"no {LIST_DIR}/classInd.txt under {root}: extract "
        f"UCF101TrainTestSplits-RecognitionTask.zip into {root} so that {root / LIST_DIR} "
        f"holds classInd.txt, trainlist0{{1,2,3}}.txt and testlist0{{1,2,3}}.txt"
    )


def read_class_index(path: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """``classInd.txt`` -> (class names in label order, lower-cased name -> 0-based label)."""
    pairs = []
    for line in _lines(Path(path)):
        number, _, name = line.partition(" ")
        if not number.isdigit() or not name.strip():
            raise UCF101ConfigError(f"{path}: bad line {line!r}; expected '<number> <Class>'")
        pairs.append((int(number) - 1, name.strip()))
    pairs.sort()
    if [label for label, _ in pairs] != list(range(len(pairs))):
        raise UCF101ConfigError(f"{path}: class numbers must run 1..N without gaps")
    names = [name for _, name in pairs]
    return names, {name.lower(): label for label, name in pairs}


def group_of(path: str) -> int:
    """The group number ``XX`` of ``.../v_<Class>_gXX_cYY.avi`` (-1 when absent)."""
    match = _GROUP.search(Path(path).name)
    return int(match.group(1)) if match else -1


def read_split(path: str | os.PathLike, classes: dict[str, int]) -> tuple[list[Entry], list[str]]:
    """A train/test list -> (entries, problems). Labels come from the folder token through
    ``classes``; a listed 1-based label that disagrees is reported as a problem, folder wins."""
    entries, problems = [], []
    for line in _lines(Path(path)):
        parts = line.replace("\\", "/").split()
        rel = parts[0]
        token = rel.split("/")[0] if "/" in rel else rel.split("_")[1] if "_" in rel else rel
        label = classes.get(token.lower())
        if label is None:
            problems.append(f"{rel}: class {token!r} is not in classInd.txt")
            continue
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) - 1 != label:
            problems.append(f"{rel}: listed label {parts[1]} != classInd label {label + 1}")
        entries.append(Entry(rel, label, group_of(rel)))
    return entries, problems


def split_lists(list_dir: Path, fold: int) -> tuple[Path, Path]:
    """``(trainlist0F.txt, testlist0F.txt)`` of ``fold``; raises :class:`UCF101ConfigError`."""
    if fold not in FOLDS:
        raise UCF101ConfigError(f"data.fold={fold}: UCF101 has folds 1, 2 and 3")
    files = (list_dir / f"trainlist0{fold}.txt", list_dir / f"testlist0{fold}.txt")
    for file in files:
        if not file.is_file():
            raise UCF101ConfigError(
                f"{file} is missing: fold {fold} needs it; re-extract "
                f"UCF101TrainTestSplits-RecognitionTask.zip or choose another data.fold"
            )
    return files


def validation_groups(groups: Iterable[int], fraction: float) -> set[int]:
    """Seed-free choice of about ``fraction`` of ``groups``, evenly spread over their order.

    ``k = max(1, round(fraction * G))`` groups: the middle one of each of k equal runs of the
    sorted groups. Deterministic and the same on every machine and rank.
    """
    ordered = sorted(set(groups))
    if not ordered or fraction <= 0:
        return set()
    k = min(len(ordered) - 1, max(1, round(fraction * len(ordered))))
    if k < 1:
        return set()
    return {ordered[int((j + 0.5) * len(ordered) / k)] for j in range(k)}


def resolve_paths(video_dir: Path, rel_paths: Iterable[str]) -> dict[str, Path | None]:
    """Listed relative path -> file on disk (matched case-insensitively), None when missing."""
    by_lower: dict[str, Path] = {}
    wanted = {rel.lower() for rel in rel_paths}
    folders = {rel.split("/")[0] for rel in wanted if "/" in rel}
    with os.scandir(video_dir) as it:
        class_dirs = [e for e in it if e.is_dir() and e.name.lower() in folders]
    for class_dir in class_dirs:
        with os.scandir(class_dir.path) as it:
            for entry in it:
                by_lower[f"{class_dir.name}/{entry.name}".lower()] = Path(entry.path)
    for rel in wanted - by_lower.keys():
        if (video_dir / rel).is_file():  # flat or unusual layouts
            by_lower[rel] = video_dir / rel
    return {rel: by_lower.get(rel.lower()) for rel in rel_paths}


# ------------------------------------------------------------------------------ video index


def _probe_one(path: str, verify: bool = True) -> tuple[str, dict]:
    """Probe one file -> (path, info dict or {"error": message}); ``verify``: decode-check."""
    try:
        return path, {**probe_video(path, verify=verify).to_dict(), "verified": verify}
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
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidgen"


def dir_key(video_dir: Path) -> str:
    """A short hash of a folder's absolute path: names its caches kept outside it."""
    import hashlib

    return hashlib.sha1(str(video_dir.resolve()).encode()).hexdigest()[:16]


def index_file(video_dir: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the index of ``video_dir`` lives: beside the data, else in the cache dir."""
    if cache_dir is None and _writable(video_dir):
        return video_dir / INDEX_FILE
    return Path(cache_dir or default_cache_dir()) / f"ucf101_index_{dir_key(video_dir)}.json"


class VideoIndex:
    """Cached ``path -> VideoInfo`` (or error) for the files of one video directory.

    Entries are keyed by the path relative to ``video_dir`` and stamped with the file's size and
    mtime; a changed file is probed again, an unchanged one never. ``verify=False`` (default)
    reads complete AVI files from their headers in this process (about 0.05 ms a file) and
    decodes only the others; ``verify=True`` decodes the last frames of every file. Decoding
    probes run in ``workers`` processes with a tqdm progress bar; the cache file is rewritten
    atomically.
    """

    def __init__(
        self,
        video_dir: str | os.PathLike,
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        progress: bool = True,
        verify: bool = False,
    ) -> None:
        self.video_dir = Path(video_dir)
        self.verify = verify
        self.file = index_file(self.video_dir, cache_dir)
        self.workers = workers
        self.progress = progress
        self.entries: dict[str, dict] = self._load()
        self.probed = 0  # files probed by the last update (0 = all from the cache)

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        if data.get("version") != INDEX_VERSION:
            return {}
        return data.get("videos", {})

    def _save(self) -> None:
        payload = {"version": INDEX_VERSION, "root": str(self.video_dir), "videos": self.entries}
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".vidgen_index_")
            with os.fdopen(fd, "w") as out:
                json.dump(payload, out)
            os.replace(tmp, self.file)
        except OSError as err:
            log.warning("could not write the video index cache %s: %s", self.file, err)

    def key(self, path: Path) -> str:
        try:
            return path.relative_to(self.video_dir).as_posix()
        except ValueError:
            return str(path)

    def update(self, paths: Sequence[Path]) -> dict[Path, dict]:
        """Info dicts (``frames, fps, width, height, seekable`` or ``error``) of ``paths``."""
        stale: list[Path] = []
        stamps: dict[Path, tuple[int, int]] = {}
        for path in paths:
            st = path.stat()
            stamps[path] = (st.st_size, st.st_mtime_ns)
            cached = self.entries.get(self.key(path))
            if (
                cached is None
                or (cached.get("size"), cached.get("mtime_ns")) != stamps[path]
                or (self.verify and not cached.get("verified", True))
            ):
                stale.append(path)
        self.probed = len(stale)
        if stale:
            for path, info in self._probe(stale):
                size, mtime = stamps[Path(path)]
                self.entries[self.key(Path(path))] = {**info, "size": size, "mtime_ns": mtime}
            self._save()
        return {path: self.entries[self.key(path)] for path in paths}

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
        yield from process_map(_probe_one, names, self.workers, desc, progress=self.progress)


# --------------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Video:
    """One usable video of a split."""

    path: str
    label: int
    info: VideoInfo


class UCF101Clips(Dataset):
    """Clips of a list of indexed videos; items follow the dataset contract.

    An item is ``{"video": uint8 (S, 3, image_size, image_size), "label": int, "index": i}``.
    A clip that fails to decode is logged once per file and replaced by the same clip number of
    the next video (deterministic); after ``max_retries`` failures in a row the error is raised.
    """

    def __init__(
        self,
        videos: Sequence[Video],
        sampler: ClipSampler,
        image_size: int | None = 64,
        reader: Callable[[], FrameReader] = DecordReader,
        max_retries: int = 10,
    ) -> None:
        self.videos = list(videos)
        self.sampler = sampler
        self.image_size = image_size
        self._make_reader = reader
        self._reader: FrameReader | None = None
        self.max_retries = max_retries
        self.failed: set[str] = set()

    def __len__(self) -> int:
        return len(self.videos) * self.sampler.clips_per_video

    @property
    def reader(self) -> FrameReader:
        if self._reader is None:  # created lazily, i.e. inside the DataLoader worker
            self._reader = self._make_reader()
        return self._reader

    def frame_numbers(self, item: int) -> np.ndarray:
        """Frame numbers of item ``item`` (random in training, see :class:`ClipSampler`)."""
        video = self.videos[self.sampler.video_of(item)]
        return self.sampler(item, video.info.frames)

    def load(self, item: int) -> tuple[np.ndarray, np.ndarray]:
        """``(frame numbers, uint8 (S, H, W, 3) frames)`` of item ``item``; may raise."""
        video = self.videos[self.sampler.video_of(item)]
        numbers = self.frame_numbers(item)
        shape = (video.info.width, video.info.height)
        frames = self.reader.read(video.path, numbers, self.image_size, shape=shape)
        return numbers, frames

    def __getitem__(self, item: int) -> dict:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} clips")
        cpv = self.sampler.clips_per_video
        source = item
        for attempt in range(self.max_retries + 1):
            try:
                _, frames = self.load(source)
                break
            except VideoError as err:
                path = self.videos[self.sampler.video_of(source)].path
                if path not in self.failed:
                    self.failed.add(path)
                    log.warning("decode failure, item replaced by the next video's clip: %s", err)
                if attempt == self.max_retries:
                    raise
                source = (source + cpv) % len(self)
        video = self.videos[self.sampler.video_of(source)]
        # numpy's transpose copy: torch's permute().contiguous() on uint8 was 10-50x slower here
        clip = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
        return {"video": clip, "label": video.label, "index": item}


def report_bad(problems: dict[str, list[str]], limit: int = 5) -> None:
    """Log each kind of problem once: count and the first ``limit`` paths."""
    for kind, items in problems.items():
        if items:
            shown = "\n  ".join(items[:limit])
            more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
            log.warning("UCF101: %d %s, left out:\n  %s%s", len(items), kind, shown, more)
