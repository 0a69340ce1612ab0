"""An inter-process file lock (stdlib only) around the builds of the shared caches.

The video index and the frame cache are built by whichever process needs them first: under
DDP, local rank 0 in ``prepare_data`` while the other ranks wait at Lightning's barrier, but
also two jobs started on the same data, or the ranks of a node that has no ``prepare_data``
call of its own (``prepare_data_per_node=False`` with node-local caches). Their builds are
serialised by :class:`FileLock` on a lock file beside the cache: the second builder waits,
then re-reads the cache and finds everything the first one wrote fresh. Each cache file is
still written to a temporary name and moved into place (``os.replace``), so a reader that does
not take the lock never sees a half-written file either.

Where ``fcntl`` exists (Linux, macOS), the lock is ``flock(LOCK_EX)`` on ``<path>``: the
kernel releases it when its holder exits, even killed, so a crashed build never leaves the
cache locked; the lock file itself stays (removing it would let a third process lock a new
file while a second still waits on the old one). On NFS, Linux maps ``flock`` to NFS byte-range
locks; Lustre needs the ``flock`` mount option. Elsewhere (Windows) the lock is the existence
of ``<path>``, created with ``O_EXCL`` and removed on release; a holder killed without
releasing leaves it behind, and the waiters then log, every :data:`REPORT_EVERY` seconds, the
file to delete (or give up after ``timeout``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows: O_EXCL lock files
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

POLL = 0.05  # seconds between two tries when a timeout is set, or without fcntl
REPORT_EVERY = 60.0  # seconds between two "still waiting" messages


class LockTimeout(TimeoutError):
    """The lock was still held by another process after ``timeout`` seconds."""


class FileLock:
    """An exclusive lock between processes, held as a context manager::

        with FileLock(cache_dir / ".lock", what="the frame cache"):
            ...  # read the cache, build what is missing, write it

    Args:
        path: the lock file (created, with its folder, where missing).
        what: names what is locked in the log messages of a process that has to wait.
        timeout: seconds to wait before raising :class:`LockTimeout` (None: wait for ever).

    Not reentrant: a second ``FileLock`` on the same path in the same process waits for the
    first like another process would (``flock`` locks an open file, not a process).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        what: str = "a shared cache",
        timeout: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.what = what
        self.timeout = timeout
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True between :meth:`acquire` and :meth:`release`."""
        return self._fd is not None

    def acquire(self) -> None:
        """Wait until the lock is ours (raises :class:`LockTimeout`, or ``OSError`` when the
        lock file cannot be created)."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._try()
        if fd is None:
            hint = "" if fcntl else "; delete it if no process is"
            log.info(
                "%s: waiting for another process building it (lock %s%s)",
                self.what,
                self.path,
                hint,
            )
            start = time.monotonic()
            fd = self._wait(start, hint)
            log.info(
                "%s: lock %s acquired after %.1f s waiting",
                self.what,
                self.path,
                time.monotonic() - start,
            )
        self._fd = fd

    def _wait(self, start: float, hint: str) -> int:
        """Wait for the lock -> its file descriptor: in ``flock`` itself where it can block
        for ever, else by polling (timeout, or no ``fcntl``)."""
        if fcntl is not None and self.timeout is None:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            return fd
        reported = start
        while True:
            time.sleep(POLL)
            fd = self._try()
            if fd is not None:
                return fd
            now = time.monotonic()
            if self.timeout is not None and now - start >= self.timeout:
                raise LockTimeout(
                    f"{self.what}: another process still holds the lock {self.path} after "
                    f"{self.timeout:g} s{hint}"
                )
            if now - reported >= REPORT_EVERY:
                reported = now
                log.info(
                    "%s: still waiting for the lock %s (%.0f s%s)",
                    self.what,
                    self.path,
                    now - start,
                    hint,
                )

    def _try(self) -> int | None:
        """The lock's file descriptor if it could be taken without waiting, else None."""
        if fcntl is None:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return None
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        """Give the lock up (a no-op when it is not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if fcntl is None:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        try:  # LOCK_UN unlocks even where a forked child still holds a copy of fd
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
