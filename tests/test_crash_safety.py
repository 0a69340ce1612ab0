"""Builds killed with SIGKILL at seeded random points (the index, the frame cache, the shards)
leave nothing a rerun takes for finished work: the rerun completes, does again only what was
not finished at the kill, and its result equals an uninterrupted build's.

Each kill runs ``tests/crash_run.py`` in its own process group, every video slowed down so the
kill lands mid-build, and kills the group (the build's worker processes too, as a lost node or
an out-of-memory kill of a job would).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from crash_run import SETTINGS, build
from ucf101_corpus import dm_for

from vidgen.data import ShardDataModule, frame_cache
from vidgen.data.index import VideoIndex
from vidgen.data.journal import Journal
from vidgen.data.shards import read_manifest

DRIVER = Path(__file__).with_name("crash_run.py")
DELAY = 0.1  # seconds added to each video's probe or decode in the killed build
SEEDED = random.Random(27)
EARLY, LATE = (round(SEEDED.uniform(start, start + 0.5), 3) for start in (0.05, 0.55))
KILLS = [pytest.param(after, marks=pytest.mark.slow) for after in (EARLY, LATE)]  # s after ready


def killed_build(what: str, corpus: Path, cache: Path, after: float) -> None:
    """Run the build ``what`` and SIGKILL its process group ``after`` seconds after it is
    ready; it must not have ended before (the kill would test nothing)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(DRIVER.parent), env.get("PYTHONPATH", "")])
    command = [sys.executable, str(DRIVER), what, str(corpus), str(cache), str(DELAY)]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(after)
        assert child.poll() is None, f"the {what} build ended before the kill ({child.returncode})"
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)


@pytest.fixture(scope="module")
def reference(tiny_corpus, tmp_path_factory) -> Path:
    """Cache folders (``<folder>/<build>``) of uninterrupted builds of the index, the frame
    cache and shards."""
    folder = tmp_path_factory.mktemp("reference")
    for what in ("index", "frame_cache", "shards"):
        build(what, str(tiny_corpus.root), str(folder / what))
    return folder


def index_of(corpus, cache: Path) -> VideoIndex:
    return VideoIndex(corpus.video_dir, cache, 2, False, True, "ucf101")


def test_journal_appender_writes_each_entry_at_once(tmp_path):
    """What a process killed mid-build has appended is readable: each entry is written out
    before ``append`` returns, the file held open or not."""
    journal, reader = Journal(tmp_path / "index.journal"), Journal(tmp_path / "index.journal")
    with journal.appender() as append:
        append("a.avi", {"frames": 3})
        assert reader.read() == {"a.avi": {"frames": 3}}
        append("b.avi", {"frames": 4})
        append("a.avi", {"frames": 5})
        assert reader.read() == {"a.avi": {"frames": 5}, "b.avi": {"frames": 4}}
    journal.append("c.avi", {"frames": 6})
    assert set(reader.read()) == {"a.avi", "b.avi", "c.avi"}
    journal.clear()
    assert reader.read() == {} and not list(tmp_path.iterdir())


@pytest.mark.parametrize("after", KILLS)
def test_killed_index_build(tiny_corpus, reference, tmp_path, after):
    killed_build("index", tiny_corpus.root, tmp_path, after)
    finished = set(index_of(tiny_corpus, tmp_path)._load())
    files = sorted(tiny_corpus.root.rglob("*.avi"))
    rerun = index_of(tiny_corpus, tmp_path)
    entries = rerun.update(files)
    assert rerun.probed == len(files) - len(finished)  # nothing finished is probed again
    assert entries == index_of(tiny_corpus, reference / "index").update(files)
    assert not list(tmp_path.glob("*.journal.*")) and not list(tmp_path.glob(".vidgen_index_*"))


@pytest.mark.parametrize("after", KILLS)
def test_killed_frame_cache_build(tiny_corpus, reference, tmp_path, after):
    killed_build("frame_cache", tiny_corpus.root, tmp_path, after)
    data = dm_for(tiny_corpus.root, cache_dir=tmp_path, frame_cache=True, **SETTINGS)
    directory = data.frame_cache_dir()
    finished = {p for p in directory.rglob("*.npy") if not p.name.startswith(".")}
    data.prepare_data()
    assert data._index["decoded"] == len(tiny_corpus.lengths) - len(finished)
    ref = dm_for(
        tiny_corpus.root, cache_dir=reference / "frame_cache", frame_cache=True, **SETTINGS
    )
    ref_dir = ref.frame_cache_dir()
    files = sorted(p.relative_to(directory) for p in directory.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ref_dir) for p in ref_dir.rglob("*") if p.is_file())
    for file in files:
        if file.suffix == ".npy":
            assert np.array_equal(np.load(directory / file), np.load(ref_dir / file)), file
    manifest = json.loads((directory / frame_cache.MANIFEST).read_text())
    assert manifest == json.loads((ref_dir / frame_cache.MANIFEST).read_text())


@pytest.mark.parametrize("after", KILLS)
def test_killed_shard_build(tiny_corpus, reference, tmp_path, after):
    killed_build("shards", tiny_corpus.root, tmp_path, after)
    output = tmp_path / "shards"
    finished = set((read_manifest(str(output)) or {"done": []})["done"])
    data = dm_for(tiny_corpus.root, cache_dir=tmp_path, **SETTINGS)
    from vidgen.data.shards import write_shards

    counts = write_shards(data, str(output), 2, 2, progress=False)
    assert counts["written_parts"] == counts["parts"] - len(finished)
    assert read_manifest(str(output)) == read_manifest(str(reference / "shards" / "shards"))
    ours = ShardDataModule(str(output), image_size=16).reader_factory()()
    theirs = ShardDataModule(str(reference / "shards" / "shards"), image_size=16).reader_factory()()
    for key, (_, frames) in _frames(ours).items():
        assert np.array_equal(
            ours.read(key, np.arange(frames), 16), theirs.read(key, np.arange(frames), 16)
        ), key


def _frames(reader) -> dict[str, tuple[str, int]]:
    manifest = read_manifest(reader.location)
    return {k: (e["part"], e["frames"]) for k, e in manifest["videos"].items()}
