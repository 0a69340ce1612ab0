"""LitData shards of a file source: every usable video decoded once at the training size and
written with ``litdata.optimize``, one item a frame, in parts that are finished one at a time.

Layout of a shard location (a local folder, or a bucket URL such as ``s3://bucket/ucf101``)::

    vidgen_shards.json              the manifest (below)
    parts/<part>/index.json         one LitData dataset per part of ``videos_per_part`` videos:
    parts/<part>/chunk-*.bin        item ``first + f`` of a part is frame ``f`` of one video

The manifest holds the settings (``image_size``, ``resize``, decoder), the class names, every
split's ``(video, label)`` list as the source module made it, each video's index entry, part
and first item, and the parts that are finished. It is rewritten whole after each part (a
temporary file moved into place on a disk; a single object upload, which is atomic, to a
bucket), so a run killed at any point leaves the manifest of before or after a part, never
part of one. A part the manifest does not list is never read and is written again from
scratch by the next run (``mode="overwrite"``); one it lists is never decoded again. Part names
hash their videos (path, size, mtime, frame count) and the settings, so a changed video or
setting makes new parts while the others are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import psutil

from vidgen.data.decoders import FrameReader, VideoError, choose_decoder
from vidgen.data.frame_cache import decode_video
from vidgen.data.locking import FileLock
from vidgen.data.parallel import start_method

log = logging.getLogger(__name__)

MANIFEST = "vidgen_shards.json"
VERSION = 1
CHUNK_BYTES = "64MB"  # LitData chunk size: a remote reader downloads whole chunks
MISSING = -1  # the id of a frame that did not decode while the shards were written


def litdata() -> ModuleType:
    """The ``litdata`` module, its PyPI version check off (some releases ask PyPI whenever a
    dataset is opened or written: a network request vidgen never needs)."""
    os.environ.setdefault("LITDATA_DISABLE_VERSION_CHECK", "1")
    import litdata
    import litdata.streaming.fs_provider

    return litdata


def is_remote(location: str) -> bool:
    """True for a bucket URL (``s3://``, ``gs://``, ...), False for a local path."""
    return "://" in location and not location.startswith("file://")


def local_path(location: str) -> Path:
    """The folder of a local shard location (``file://`` stripped)."""
    return Path(location.removeprefix("file://"))


def part_location(location: str, part: str) -> str:
    """Where part ``part`` of the shards at ``location`` is (a LitData ``input_dir``)."""
    return f"{location.rstrip('/')}/parts/{part}"


def read_manifest(location: str) -> dict | None:
    """The manifest of the shards at ``location`` (None where there is none yet)."""
    if not is_remote(location):
        try:
            return json.loads((local_path(location) / MANIFEST).read_text())
        except FileNotFoundError:
            return None
    _get_fs_provider = litdata().streaming.fs_provider._get_fs_provider

    url = f"{location.rstrip('/')}/{MANIFEST}"
    provider = _get_fs_provider(url)
    if not provider.exists(url):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        provider.download_file(url, f"{tmp}/{MANIFEST}")
        return json.loads(Path(tmp, MANIFEST).read_text())


def write_manifest(location: str, manifest: dict) -> None:
    """Write the manifest whole: a temporary file moved into place, or one upload."""
    folder = Path(tempfile.gettempdir()) if is_remote(location) else local_path(location)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".vidgen_shards_")
    with os.fdopen(fd, "w") as out:
        json.dump(manifest, out)
    if not is_remote(location):
        os.replace(tmp, folder / MANIFEST)
        return
    _get_fs_provider = litdata().streaming.fs_provider._get_fs_provider

    url = f"{location.rstrip('/')}/{MANIFEST}"
    try:
        _get_fs_provider(url).upload_file(tmp, url)
    finally:
        os.unlink(tmp)


def frame_items(
    video: tuple[str, int, int, int, int], reader: Callable[[], FrameReader], size: int
) -> Iterator[dict[str, Any]]:
    """The items of one video (``(path, frames, width, height, first item)``): ``{"frame":
    uint8 (size, size, 3), "id": item number in its part}``, decoded by the source's reader.
    The ``id`` lets the reader check that LitData kept the order. Frames from the first read
    that fails on are stored black with the id :data:`MISSING`: the video keeps its items
    (the next video's stay where the manifest says) and a clip that needs them is a decode
    failure when read, replaced as the file source replaces it."""
    path, frames, width, height, first = video
    done = 0
    try:
        for numbers, decoded in decode_video(reader(), path, frames, width, height, size):
            for number, frame in zip(numbers.tolist(), decoded, strict=True):
                yield {"frame": frame, "id": first + number}
                done = number + 1
    except VideoError as err:
        log.warning(
            "%s: frames %d to %d do not decode, stored as missing: %s", path, done, frames - 1, err
        )
        blank = np.zeros((size, size, 3), np.uint8)
        for _ in range(done, frames):
            yield {"frame": blank, "id": MISSING}


def _key(path: Path, video_dir: Path) -> str:
    try:
        return path.relative_to(video_dir).as_posix()
    except ValueError:
        return path.as_posix()


def _part_name(number: int, entries: list[tuple[str, dict]], settings: dict) -> str:
    digest = hashlib.sha1(json.dumps([entries, settings], sort_keys=True).encode()).hexdigest()
    return f"part-{number:05d}-{digest[:10]}"


def plan(source: Any, videos_per_part: int) -> tuple[dict, dict[str, str]]:
    """The manifest of ``source``'s shards with no part done yet, and each video key's source
    path. Builds the source's index (its bad files reported and left out, as in training)."""
    source.check_config()
    videos = source._build_index()["videos"]
    settings = {
        "image_size": source.image_size,
        "resize": source.resize,
        "decoder": choose_decoder(source.decoder),
    }
    video_dir = Path(source._video_dir)
    key = {v.path: _key(Path(v.path), video_dir) for split in videos.values() for v in split}
    infos = {key[v.path]: v.info for split in videos.values() for v in split}
    paths = {k: path for path, k in key.items()}
    keys = sorted(infos)
    parts: dict[str, list[str]] = {}
    entries: dict[str, dict] = {}
    for number, start in enumerate(range(0, len(keys), videos_per_part)):
        stamped = []
        for k in keys[start : start + videos_per_part]:
            st = os.stat(paths[k])
            stamped.append((k, {"size": st.st_size, "mtime_ns": st.st_mtime_ns}))
            stamped[-1][1].update(infos[k].to_dict())
        name = _part_name(number, stamped, settings)
        parts[name] = [k for k, _ in stamped]
        first = 0
        for k, entry in stamped:
            entries[k] = {**entry, "part": name, "first": first}
            first += entry["frames"]
    manifest = {
        "version": VERSION,
        **settings,
        "source": type(source).__name__,
        "frame_skip": source.frame_skip,  # the source's sampling default
        "class_names": list(source.class_names),
        "splits": {split: [[key[v.path], v.label] for v in vs] for split, vs in videos.items()},
        "videos": entries,
        "parts": parts,
        "done": [],
    }
    return manifest, paths


def write_shards(
    source: Any,
    output: str,
    workers: int | None = None,
    videos_per_part: int = 64,
    progress: bool = True,
) -> dict[str, int]:
    """Write (or finish) the shards of ``source`` (a
    :class:`~vidgen.data.file_source.VideoFileDataModule`) at ``output`` -> counts: ``videos``,
    ``parts``, and the ``written_videos`` / ``written_parts`` of this run (0: all were done).

    Every readable video of every split is decoded by the source's reader (its decoder and
    resize rule, or its frame cache) in ``workers`` LitData worker processes (default: all
    cores, up to 8), a part at a time. Frames that fail to decode are logged and stored as
    missing (:func:`frame_items`).
    Two runs on one local ``output`` take turns (:class:`~vidgen.data.locking.FileLock`).
    """
    from tqdm.auto import tqdm

    manifest, paths = plan(source, videos_per_part)
    remote = is_remote(output)
    lock = nullcontext() if remote else FileLock(local_path(output) / ".lock", f"shards {output}")
    with lock:
        old = read_manifest(output) or {}
        if old.get("version") == VERSION:
            manifest["done"] = [p for p in old["done"] if p in manifest["parts"]]
        write_manifest(output, manifest)
        parts = manifest["parts"]
        todo = [p for p in parts if p not in manifest["done"]]
        bar = tqdm(
            total=len(paths),
            initial=len(paths) - sum(len(parts[p]) for p in todo),
            desc=f"writing shards of {len(paths)} videos",
            unit="video",
            disable=not progress,
            file=sys.stderr,
        )
        with bar:
            for name in todo:
                _write_part(source, output, name, manifest, paths, workers)
                manifest["done"].append(name)
                write_manifest(output, manifest)
                bar.update(len(parts[name]))
        if not remote:  # parts of earlier settings or videos: never read again
            for folder in (local_path(output) / "parts").glob("*"):
                if folder.name not in parts:
                    shutil.rmtree(folder, ignore_errors=True)
    return {
        "videos": len(paths),
        "parts": len(parts),
        "written_videos": sum(len(parts[p]) for p in todo),
        "written_parts": len(todo),
    }


def _write_part(
    source: Any,
    output: str,
    name: str,
    manifest: dict,
    paths: dict[str, str],
    workers: int | None,
) -> None:
    """Decode the videos of part ``name`` into its LitData dataset (``litdata.optimize``)."""
    optimize = litdata().optimize
    entries = manifest["videos"]
    inputs = [
        (
            paths[k],
            entries[k]["frames"],
            entries[k]["width"],
            entries[k]["height"],
            entries[k]["first"],
        )
        for k in manifest["parts"][name]
    ]
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    try:
        optimize(
            partial(frame_items, reader=source.reader_factory(), size=source.image_size),
            inputs,
            output_dir=part_location(output, name),
            chunk_bytes=CHUNK_BYTES,
            num_workers=max(1, min(workers or min(8, os.cpu_count() or 1), len(inputs))),
            keep_data_ordered=True,  # items in input order: item = first + frame number
            reorder_files=False,
            mode="overwrite",  # what a killed run left of this part goes
            start_method=start_method(),
            verbose=False,
        )
    except BaseException:  # LitData leaves its workers (and theirs) running: exit would wait
        left = [c for c in psutil.Process().children(recursive=True) if c.pid not in before]
        for child in left:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(left, timeout=10)
        raise


def shard_bytes(location: str) -> int:
    """Bytes the chunks of a local shard location take on disk."""
    return sum(f.stat().st_size for f in (local_path(location) / "parts").rglob("*.bin"))
