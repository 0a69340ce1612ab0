"""A journal of finished work that survives a crash: what a killed build had done is kept.

The index and the frame cache save their manifest (one JSON file, rewritten whole and moved into
place) at the end of a build; a build killed before that (SIGKILL, out of memory, a node lost)
would lose the record of everything it finished and redo it. Each finished entry is therefore
also appended, as one JSON line, to ``<prefix>.<pid>.jsonl`` (one file per process: appends from
several worker processes never interleave) the moment it is done. A later build merges the
journal into what it reads; the build that saves the manifest then deletes the journal. A line
cut short by a kill does not parse and is ignored: that entry's work is simply done again.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path


class Journal:
    """Append-only ``{key: entry}`` records beside a manifest, one file per process."""

    def __init__(self, prefix: str | os.PathLike) -> None:
        self.prefix = Path(prefix)

    def _files(self) -> list[Path]:
        return sorted(self.prefix.parent.glob(f"{self.prefix.name}.*.jsonl"))

    def append(self, key: str, entry: dict) -> None:
        """Record ``entry`` of ``key`` (written before returning; a reader may see it at once)."""
        with self.appender() as append:
            append(key, entry)

    @contextlib.contextmanager
    def appender(self) -> Iterator[Callable[[str, dict], None]]:
        """:meth:`append` for many entries, the file opened once: each entry is flushed to the
        operating system before the call returns, so a killed process keeps it all the same."""
        path = self.prefix.with_name(f"{self.prefix.name}.{os.getpid()}.jsonl")
        with open(path, "a") as out:

            def append(key: str, entry: dict) -> None:
                out.write(json.dumps({key: entry}) + "\n")
                out.flush()

            yield append

    def read(self) -> dict[str, dict]:
        """Every whole entry recorded (later ones win), torn lines left out."""
        entries: dict[str, dict] = {}
        for path in self._files():
            with contextlib.suppress(OSError):
                for line in path.read_text().splitlines():
                    try:
                        entries.update(json.loads(line))
                    except ValueError:
                        continue
        return entries

    def clear(self) -> None:
        """Delete the journal (once its entries are in the saved manifest)."""
        for path in self._files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
