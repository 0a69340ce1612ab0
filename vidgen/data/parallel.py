"""Map a function over many files in child processes, with a progress bar."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def start_method() -> str:
    """How to start child processes here: ``fork`` (fast: nothing to import) when this process
    runs one thread, else ``forkserver`` (``spawn`` off Linux).

    A forked child inherits every lock as it was at the fork, held ones included, but none of
    the threads that would release them: after a W&B run (its service threads, its hooks on
    ``sys.stdout``/``sys.stderr``) a forked worker can wait forever on one. A forkserver child
    is forked from a server process started with one thread, whose ``vidgen.data`` import is
    shared by every later child.
    """
    if not sys.platform.startswith("linux"):
        return "spawn"
    if threading.active_count() == 1:
        return "fork"
    mp.set_forkserver_preload(["vidgen.data"])
    return "forkserver"


def process_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int | None,
    desc: str,
    unit: str = "video",
    progress: bool = True,
) -> Iterator[R]:
    """``fn(item)`` for every item, computed in up to ``workers`` child processes (unordered;
    None: one per core, at most 8).

    Work that opens decord readers runs here and never in the calling process: a DataLoader
    forked from a parent holding decord state can hang (dmlc/decord#294). Results are yielded
    as they finish while a tqdm bar (stderr, off with ``progress=False``) counts them.
    """
    from tqdm.auto import tqdm

    if not items:
        return
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, file=sys.stderr)
    try:
        with mp.get_context(start_method()).Pool(max(1, min(workers, len(items)))) as pool:
            for result in pool.imap_unordered(fn, items, chunksize=4 if len(items) > 64 else 1):
                yield result
                bar.update()
    finally:
        bar.close()
