"""Where a result came from: the code, the machine, the software and the command that made it.

Every results file starts with :func:`header` and stores :func:`provenance` under
``"provenance"`` in its JSON (``common.write_results``, the one writer), so a number can always
be traced to a commit and a machine.

Outside a git checkout (the device machine gets the working tree without ``.git``) the commit
comes from ``VIDGEN_COMMIT``, e.g. ``VIDGEN_COMMIT=$(git rev-parse HEAD)`` written into the
command where it is launched.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    """A git command's output in the repository, or ``None`` where git or ``.git`` is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


OUTPUTS = ("benchmarks/results/", "docs/")
"""Where benchmarks write their results and figures: changes there do not make a run's code
differ from its commit."""


def commit() -> tuple[str, bool | None]:
    """The checkout's commit and whether tracked files other than :data:`OUTPUTS` differ from
    it (``None``: unknown)."""
    head = _git("rev-parse", "HEAD")
    if head is None:
        return os.environ.get("VIDGEN_COMMIT") or "unknown", None
    changed = _git("diff", "--name-only", "HEAD")
    if changed is None:
        return head, None
    return head, any(not path.startswith(OUTPUTS) for path in changed.splitlines())


def cpu_model() -> str:
    """The processor's marketing name (``/proc/cpuinfo`` on Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(**extra: Any) -> dict[str, Any]:
    """What a result depends on besides its inputs: commit (+ dirty), date, CPU, GPU, versions,
    threads and the exact command line; ``extra`` adds the script's own settings."""
    import lightning

    head, dirty = commit()
    return {
        "commit": head,
        "dirty": dirty,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        **extra,
    }


def header(info: dict[str, Any]) -> str:
    """Markdown lines that stamp a results file with ``info`` (from :func:`provenance`)."""
    dirty = {True: " (uncommitted changes)", False: "", None: " (working tree state unknown)"}
    lines = [
        f"- commit: `{info['commit']}`{dirty[info['dirty']]}",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']} ({info['cpu_count']} CPUs, {info['threads']} torch threads)"
        + (f", GPU {info['gpu']}" if info["gpu"] else ", no GPU"),
        f"- software: python {info['python']}, torch {info['torch']}"
        + (f" (CUDA {info['cuda']})" if info["cuda"] else "")
        + f", lightning {info['lightning']}",
        f"- command: `{info['command']}`",
    ]
    shown = {"commit", "dirty", "date", "cpu", "cpu_count", "threads", "gpu", "python"}
    shown |= {"torch", "cuda", "lightning", "command"}
    lines += [f"- {key}: {value}" for key, value in info.items() if key not in shown]
    return "\n".join(lines) + "\n"
