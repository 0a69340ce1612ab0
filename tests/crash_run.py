"""A build to kill, run by ``tests/test_crash_safety.py`` in a subprocess (not a test module).

``python tests/crash_run.py WHAT CORPUS CACHE DELAY`` builds, for the UCF101-layout ``CORPUS``
(fold 1), the video index (``index``, every file decoded: ``verify=True``), the frame cache
(``frame_cache``) or the shards (``shards``, in ``CACHE/shards``, 2 videos a part), each video
``DELAY`` seconds slower to probe or decode so that a kill lands in the middle. It prints
``ready`` once imported (the test times its kill from there) and ``done`` at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ucf101_corpus import dm_for

from vidgen.data import frame_cache, index, shards

SETTINGS = dict(image_size=16, index_workers=2)


def slowed(fn, delay: float):
    """``fn``, ``delay`` seconds slower a call."""

    def slow(*args, **kwargs):
        time.sleep(delay)
        return fn(*args, **kwargs)

    return slow


def build(what: str, corpus: str, cache: str) -> None:
    """The build ``what`` of ``corpus`` with its caches in ``cache``."""
    data = dm_for(corpus, cache_dir=cache, frame_cache=what == "frame_cache", **SETTINGS)
    if what == "index":
        files = sorted(Path(corpus).rglob("*.avi"))
        index.VideoIndex(Path(corpus) / "UCF-101", cache, 2, False, True, "ucf101").update(files)
    elif what == "frame_cache":
        data.prepare_data()
    else:
        shards.write_shards(data, str(Path(cache) / "shards"), 2, 2, progress=False)


if __name__ == "__main__":
    what, corpus, cache, delay = sys.argv[1:5]
    if what == "index":  # probes run in forked workers, which inherit the slowed functions
        index.probe = slowed(index.probe, float(delay))
    elif what == "frame_cache":
        frame_cache.decode_video = slowed(frame_cache.decode_video, float(delay))
    else:
        shards.decode_video = slowed(shards.decode_video, float(delay))
    print("ready", flush=True)
    build(what, corpus, cache)
    print("done", flush=True)
