"""UCF101DataModule(frame_cache=True): the same clips as decord, read from decoded frames."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from collections import namedtuple
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from ucf101_corpus import dm_for, frame_numbers, read_number

from vidgen.data import frame_cache
from vidgen.data.decoders import VideoError
from vidgen.data.frame_cache import CachedReader, FrameCache
from vidgen.data.ucf101 import UCF101DataModule


def videos_of(dm) -> list:
    """``(path, info)`` of every video in the module's datasets."""
    return list({v.path: v.info for ds in dm.datasets.values() for v in ds.videos}.items())


@pytest.mark.parametrize("num_workers", [0, 2])
def test_cached_clips_are_the_decoded_clips(own_corpus, tmp_path, num_workers):
    kwargs = dict(frame_skip=1, eval_frames=6, num_workers=num_workers)
    cached = dm_for(own_corpus, frame_cache=True, cache_dir=str(tmp_path / "cache"), **kwargs)
    cached.setup("fit")
    cached.setup("test")
    decoded = dm_for(own_corpus, **kwargs)
    decoded.setup("fit")
    decoded.setup("test")
    directory = cached.frame_cache_dir()
    assert directory.parent == tmp_path / "cache" and directory.name.endswith("_32px")
    files = cached._index["cached"]  # every readable listed video, B-frame and truncated too
    assert sorted(map(str, directory.rglob("*.npy"))) == sorted(files.values())
    assert {path for path, _info in videos_of(cached)} < files.keys()  # + the too short one
    for path, info in videos_of(cached):
        assert np.load(files[path], mmap_mode="r").shape == (
            info.frames,
            32,
            32,
            3,
        )
    for split in ("val", "test"):
        ours, theirs = cached.datasets[split], decoded.datasets[split]
        assert isinstance(ours.reader, CachedReader)
        for i in range(len(ours)):
            item = ours[i]
            assert torch.equal(item["video"], theirs[i]["video"]), (split, i)
            assert frame_numbers(item) == ours.frame_numbers(i).tolist()
    train = cached.datasets["train"]
    for i in range(0, len(train), 2):
        torch.manual_seed(i)
        item = train[i]
        torch.manual_seed(i)
        assert torch.equal(item["video"], decoded.datasets["train"][i]["video"])
    for path, _info in videos_of(cached):  # reads come from the cache, not from the videos
        os.unlink(path)
    batch = next(iter(cached.val_dataloader()))
    for clip, index in zip(batch["video"], batch["index"], strict=True):
        expected = cached.datasets["val"].frame_numbers(int(index))
        assert [read_number(f) for f in clip] == expected.tolist()


def test_frame_cache_is_reused_and_refreshed_per_video(own_corpus, tmp_path):
    dm = dm_for(own_corpus, frame_cache=True, cache_dir=str(tmp_path))
    dm.setup("fit")
    videos = videos_of(dm)
    video_dir = own_corpus / "UCF-101"
    cache = FrameCache(dm.frame_cache_dir(), video_dir, 32, workers=2, progress=False)
    files = cache.build(videos)
    assert cache.decoded == 0 and len(files) == len(videos)
    touched = videos[0][0]
    os.utime(touched, ns=(1, 1))
    stamp = os.stat(files[touched]).st_mtime_ns
    assert cache.build(videos) == files and cache.decoded == 1
    assert os.stat(files[touched]).st_mtime_ns > stamp
    other = FrameCache(tmp_path / "16px", video_dir, 16, workers=1, progress=False)
    assert len(other.build(videos[:3])) == 3 and other.decoded == 3
    assert np.load(other.build(videos[:3])[touched]).shape[1:] == (16, 16, 3)


def test_a_video_that_does_not_cache_is_read_by_decord_and_replaced(own_corpus, tmp_path, caplog):
    intact = dm_for(own_corpus, cache_dir=str(tmp_path))
    intact.setup("fit")  # indexes the intact corpus
    path = intact.datasets["val"].videos[0].path
    st = os.stat(path)
    with open(path, "r+b") as f:  # same size and mtime: the index still takes it as good
        f.write(b"\0" * st.st_size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    dm = dm_for(own_corpus, frame_cache=True, cache_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="vidgen.data"):
        dm.setup("fit")
        item = dm.datasets["val"][0]
    assert "frame cache: 1 videos did not decode" in caplog.text and path in caplog.text
    assert "decode failure" in caplog.text
    assert frame_numbers(item) == dm.datasets["val"].frame_numbers(1).tolist()
    assert item["label"] == dm.datasets["val"].videos[1].label


def test_frame_cache_checks_free_space_first(own_corpus, tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(frame_cache.shutil, "disk_usage", lambda _path: usage(10**6, 0, 10**6))
    dm = dm_for(own_corpus, frame_cache=True, cache_dir=str(tmp_path))
    with pytest.raises(OSError, match=r"GiB free: set data\.cache_dir to a larger disk") as err:
        dm.setup("fit")
    assert "data.frame_cache=false" in str(err.value)
    assert not list(tmp_path.rglob("*.npy"))


def test_cached_reader_checks_indices_and_falls_back_for_other_sizes(own_corpus, tmp_path):
    dm = dm_for(own_corpus, frame_cache=True, cache_dir=str(tmp_path))
    dm.setup("fit")
    video = dm.datasets["val"].videos[0]
    reader = CachedReader(dm._index["cached"], 32)
    shape = (video.info.width, video.info.height)
    with pytest.raises(VideoError, match="not in its"):
        reader.read(video.path, np.array([0, video.info.frames]), 32, shape)
    full = reader.read(video.path, np.array([2, 0]), 16, shape)  # not cached at 16 px: decord
    assert full.shape == (2, 16, 16, 3) and reader._fallback is not None
    assert [read_number(f) for f in full] == [2, 0]


def test_an_interrupted_build_keeps_what_it_decoded(own_corpus, tmp_path, monkeypatch):
    dm = dm_for(own_corpus)
    dm.setup("fit")
    videos = videos_of(dm)
    real = frame_cache.process_map

    def interrupted(*args, **kwargs):
        for count, result in enumerate(real(*args, **kwargs)):
            if count == 5:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(frame_cache, "process_map", interrupted)
    cache = FrameCache(tmp_path, own_corpus / "UCF-101", 32, workers=1, progress=False)
    with pytest.raises(KeyboardInterrupt):
        cache.build(videos)
    finished = len([p for p in tmp_path.rglob("*.npy") if not p.name.startswith(".")])
    assert finished >= 5  # the worker may have finished more before the pool was stopped
    monkeypatch.setattr(frame_cache, "process_map", real)
    assert len(cache.build(videos)) == len(videos)
    assert cache.decoded == len(videos) - finished  # every finished video kept (journal)


# ------------------------------------------------------------------- concurrent builders

DECODE_DELAY = 0.1  # seconds added to each video's decode: the builds surely overlap


class SlowReader:
    """The reader ``make()`` makes, ``DECODE_DELAY`` slower a read."""

    def __init__(self, make) -> None:
        self.reader = make()

    def read(self, *args, **kwargs):
        time.sleep(DECODE_DELAY)
        return self.reader.read(*args, **kwargs)


class SlowDecoding(UCF101DataModule):
    """Builds its frame cache with :class:`SlowReader` (reads clips the usual way)."""

    def reader_factory(self, cached=None):
        factory = super().reader_factory(cached)
        return partial(SlowReader, factory) if cached == {} else factory


def build_at_once(root: str, cache: str, start, results) -> None:
    """One of two builders: index and frame cache of ``root`` in ``cache``, started together."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger("vidgen.data.locking").addHandler(handler)
    logging.getLogger("vidgen.data.locking").setLevel(logging.INFO)
    dm = SlowDecoding(
        root, frames=4, image_size=16, val_fraction=0.2, frame_cache=True, cache_dir=cache
    )
    dm.progress, dm.index_workers = False, 1
    start.wait(120)
    dm.prepare_data()
    index = dm._index
    results.put({k: index[k] for k in ("probed", "decoded", "cached")} | {"log": messages})


def test_concurrent_builders_build_once_and_agree(tiny_corpus, tmp_path):
    """Two processes build the same index and frame cache at once: one probes and decodes
    every video, the other waits for its lock, then reads it all; the files equal a
    single-process build and the manifest lists every video."""
    # Forked, not spawned: a spawned child imports torch and Lightning again (~15 s on 2 cores).
    # The builders still contend as two jobs would: each opens the lock file itself (flock
    # locks an open file), and neither decodes in its own process (process_map's pool does).
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    cache = tmp_path / "shared"
    args = (str(tiny_corpus.root), str(cache), start, results)
    builders = [ctx.Process(target=build_at_once, args=args) for _ in range(2)]
    for builder in builders:
        builder.start()
    done = sorted((results.get(timeout=300) for _ in builders), key=lambda r: -r["decoded"])
    for builder in builders:
        builder.join(60)
        assert builder.exitcode == 0
    videos = len(tiny_corpus.lengths)  # each step done by one builder, whichever came first
    assert sorted(r["probed"] for r in done) == [0, videos]
    assert [r["decoded"] for r in done] == [videos, 0]
    waited = [m for m in done[1]["log"] if "waiting for another process building it" in m]
    assert any(m.startswith("frame cache") for m in waited), done[1]["log"]
    assert done[0]["cached"] == done[1]["cached"] and len(done[0]["cached"]) == videos
    single = dm_for(tiny_corpus.root, image_size=16, frame_cache=True, cache_dir=tmp_path / "one")
    single.prepare_data()
    reference = single._index["cached"]
    assert reference.keys() == done[0]["cached"].keys()
    directory = Path(next(iter(done[0]["cached"].values()))).parent.parent
    for path, file in done[0]["cached"].items():
        assert np.array_equal(np.load(file), np.load(reference[path])), path
    manifest = json.loads((directory / frame_cache.MANIFEST).read_text())
    assert sorted(manifest["videos"]) == sorted(tiny_corpus.lengths)
    assert not any("error" in entry for entry in manifest["videos"].values())
    leftovers = [p.name for p in cache.rglob(".*") if p.name.startswith((".tmp_", ".manifest_"))]
    assert not leftovers


def test_manifest_saves_merge_with_what_another_builder_wrote(tiny_corpus, tmp_path):
    """A build re-reads the manifest under the lock and every save merges into what is on
    disk: entries another builder wrote are never dropped."""
    dm = dm_for(tiny_corpus.root, image_size=16)
    dm.setup("fit")
    dm.setup("test")
    videos = videos_of(dm)
    first = FrameCache(tmp_path, tiny_corpus.video_dir, 16, workers=1, progress=False)
    second = FrameCache(tmp_path, tiny_corpus.video_dir, 16, workers=1, progress=False)
    half = len(videos) // 2
    first.build(videos[:half])
    second.build(videos[half:])
    assert first.decoded == half and second.decoded == len(videos) - half
    assert len(json.loads((tmp_path / frame_cache.MANIFEST).read_text())["videos"]) == len(videos)
    first.journal.append("late/entry.avi", {"size": 1, "mtime_ns": 1, "frames": 1})
    merged = first._save()
    assert len(merged) == len(videos) + 1  # the second build's entries kept
    again = FrameCache(tmp_path, tiny_corpus.video_dir, 16, workers=1, progress=False)
    assert len(again.build(videos)) == len(videos) and again.decoded == 0
