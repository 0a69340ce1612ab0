"""FileLock: one holder at a time across processes, flock and the O_EXCL fallback."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from pathlib import Path

import pytest

from vidgen.data import locking
from vidgen.data.locking import FileLock, LockTimeout


@pytest.fixture(params=["flock", "o_excl"])
def mode(request, monkeypatch) -> str:
    """Both implementations: ``flock`` where fcntl exists, else an ``O_EXCL`` lock file."""
    if request.param == "o_excl":
        monkeypatch.setattr(locking, "fcntl", None)
        monkeypatch.setattr(locking, "POLL", 0.01)
    elif locking.fcntl is None:
        pytest.skip("no fcntl on this platform")
    return request.param


def hold_then_die(path: str, held, hold_s: float, stamp: str) -> None:
    """Take the lock, say so, hold it, then exit without releasing it (as if killed)."""
    FileLock(path).acquire()
    held.set()
    time.sleep(hold_s)
    Path(stamp).write_text(repr(time.time()))
    os._exit(0)


@pytest.mark.skipif(locking.fcntl is None, reason="flock only (O_EXCL locks outlive a crash)")
def test_second_process_waits_until_the_holder_is_gone(tmp_path):
    """Another process holds the lock: acquiring blocks until that one has exited without
    releasing it (flock is released by the kernel; a fork is enough: the child only locks)."""
    ctx = mp.get_context("fork")
    held, stamp = ctx.Event(), tmp_path / "exited"
    child = ctx.Process(target=hold_then_die, args=(str(tmp_path / "lock"), held, 0.5, str(stamp)))
    child.start()
    assert held.wait(30)
    with FileLock(tmp_path / "lock"):
        acquired = time.time()
        assert stamp.is_file() and acquired >= float(stamp.read_text())
    child.join(30)


def test_second_holder_waits_for_release(tmp_path, mode):
    """Two FileLocks on one file (as two processes would): the second blocks in ``acquire``
    until the first releases; after both, the lock is free again."""
    path = tmp_path / "cache" / ".lock"  # the folder is created
    first, second = FileLock(path), FileLock(path)
    first.acquire()
    order: list[str] = []

    def take() -> None:
        with second:
            order.append("second acquired")

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.3)
    assert order == [] and thread.is_alive()  # still waiting
    order.append("first released")
    first.release()
    thread.join(10)
    assert order == ["first released", "second acquired"]
    assert not first.held and not second.held
    with FileLock(path, timeout=0):
        pass
    assert path.exists() == (mode == "flock")  # flock keeps its file, O_EXCL removes it


def test_timeout_names_the_lock(tmp_path, mode):
    waiting = FileLock(tmp_path / ".lock", what="frame cache X", timeout=0.1)
    message = r"frame cache X: .*\.lock after 0\.1 s"
    with FileLock(tmp_path / ".lock"), pytest.raises(LockTimeout, match=message) as err:
        waiting.acquire()
    assert ("delete it" in str(err.value)) == (mode == "o_excl")
    lock = FileLock(tmp_path / ".lock", timeout=0.1)
    lock.acquire()  # free again
    with pytest.raises(RuntimeError, match="already held"):
        lock.acquire()
    lock.release()
    lock.release()  # a no-op
