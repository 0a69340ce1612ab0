"""What the benchmarks share: the results folder, timing, the environment line, results files.

Scripts run as ``python benchmarks/<script>.py`` (this folder is then on ``sys.path``) with
vidgen installed (``make venv``) or ``PYTHONPATH=.``.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

RESULTS = Path(__file__).resolve().parent / "results"
"""Where every benchmark writes ``<name>.md`` (quoted in the docs) and ``<name>.json``."""

T = TypeVar("T")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """``fn()`` and its wall time in seconds, the device's queued work included."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - start


def environment(device: torch.device, **extra: Any) -> dict[str, Any]:
    """What a result depends on besides the code: versions, threads, CPU or GPU."""
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        **extra,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def write_results(path: Path, markdown: str, data: Any = None) -> None:
    """Print ``markdown``; write it to ``path`` with suffix ``.md`` and ``data`` (if any) to
    ``.json`` beside it."""
    print(markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".md").write_text(markdown)
    written = [path.with_suffix(".md")]
    if data is not None:
        path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
        written.append(path.with_suffix(".json"))
    print("wrote " + " and ".join(str(p) for p in written))


def fit_and_test(args: list[str], root: Path, *fit_args: str) -> tuple[Any, float, dict]:
    """``vidgen fit`` (plus ``fit_args``) then ``vidgen test`` of its ``last.ckpt``, both with
    ``args`` in run folder ``root``, no logger: the fit's CLI, its wall seconds and the test's
    per-horizon results (``metrics.json``)."""
    from vidgen.cli import main
    from vidgen.evaluation import load_results

    common = [
        *args,
        f"--trainer.default_root_dir={root}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]
    shutil.rmtree(root / "checkpoints", ignore_errors=True)  # test this fit's, no older one
    start = time.perf_counter()
    fit = main(["fit", *common, *fit_args])
    seconds = time.perf_counter() - start
    main(["test", *common, f"--ckpt_path={root / 'checkpoints' / 'last.ckpt'}"])
    return fit, seconds, load_results(root / "metrics.json")


def synthetic_batch(shape: tuple[int, ...], device: torch.device, seed: int = 0) -> dict:
    """A training batch of random uint8 clips ``shape`` ``(B, S, C, H, W)`` with frame ids (for
    the feature cache) and clip indices, on ``device``: what a DataLoader delivers, no data
    needed."""
    b, s = shape[:2]
    generator = torch.Generator().manual_seed(seed)
    return {
        "video": torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(device),
        "frame_ids": torch.arange(b * s, device=device).view(b, s),
        "index": torch.arange(b, device=device),
    }


def optimizer_of(model: Any) -> torch.optim.Optimizer:
    """The optimiser that ``model.configure_optimizers()`` returns (without its scheduler)."""
    opt = model.configure_optimizers()
    return opt["optimizer"] if isinstance(opt, dict) else opt
