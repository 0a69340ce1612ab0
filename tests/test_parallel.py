"""``vidgen.data.parallel``: child processes that do not inherit a lock another thread holds."""

from __future__ import annotations

import sys
import threading

import pytest

from vidgen.data.parallel import process_map, start_method

HELD = threading.Lock()  # a thread of the test holds it while the workers run


def takes_the_lock(item: int) -> tuple[int, bool]:
    """``(item, whether this process could take HELD within 5 s)``."""
    got = HELD.acquire(timeout=5)
    if got:
        HELD.release()
    return item, got


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the Linux default")
def test_workers_started_while_a_thread_holds_a_lock_can_take_it():
    """A W&B run leaves threads (and their locks) in the process that later builds an index:
    forked workers would inherit a held lock with no thread to release it and wait forever.
    With another thread alive the workers come from a forkserver and take the lock."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with HELD:
            taken.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        taken.wait()
        assert start_method() == "forkserver"
        results = sorted(process_map(takes_the_lock, [0, 1, 2], 2, "locks", progress=False))
    finally:
        release.set()
        holder.join()
    assert results == [(0, True), (1, True), (2, True)]


def test_one_thread_forks(monkeypatch):
    """With no other thread alive a fork is safe, and costs no imports."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert start_method() == "fork"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert start_method() == "spawn"
