"""What the benchmarks share: the results folder, timing, the environment line, results files,
fitting and testing a config.

Scripts run as ``python benchmarks/<script>.py`` (this folder is then on ``sys.path``) with
vidgen installed (``make venv``) or ``PYTHONPATH=.``.
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
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


class StepTimer(L.Callback):
    """Wall time of every training step (forward, backward, optimiser step), in seconds, and
    of every period from one step's end to the next's (the step plus waiting for its batch).

    ``--trainer.callbacks+=common.StepTimer`` from a benchmark script; after ``fit``,
    :meth:`median` skips the first ``warmup`` steps (allocations, first-call overheads).
    """

    def __init__(self, warmup: int = 5) -> None:
        self.warmup = warmup
        self.times: list[float] = []
        self.periods: list[float] = []
        self._start = 0.0
        self._end: float | None = None

    def on_train_epoch_start(self, *args: Any) -> None:
        self._end = None  # validation and epoch ends are not a batch's wait

    def on_train_batch_start(self, *args: Any) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        now = time.perf_counter()
        self.times.append(now - self._start)
        if self._end is not None:
            self.periods.append(now - self._end)
        self._end = now

    def median(self, periods: bool = False) -> float:
        """Median step time (or with ``periods`` median period) in seconds, ``nan`` before
        any."""
        times = self.periods if periods else self.times
        times = times[self.warmup :] or times
        return statistics.median(times) if times else float("nan")


class TrainClock(L.Callback):
    """Seconds of training: the training batches (waiting for each, forward, backward,
    optimiser step), not validation, checkpoints or epoch ends. What a comparison at equal
    training time equalises (``--trainer.callbacks+=common.TrainClock``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._mark = 0.0

    def on_train_epoch_start(self, *args: Any) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        now = time.perf_counter()
        self.seconds += now - self._mark
        self._mark = now


class BudgetCheckpoints(TrainClock):
    """Saves ``<folder>/budget_<name>.ckpt`` when training reaches each budget, in optimiser
    ``steps`` or in training ``seconds`` (:class:`TrainClock`'s; the first step at or past it),
    so that one fit gives its model at every budget of a comparison. :attr:`reached`: each saved
    budget's steps and seconds. Saving is not counted as training time."""

    def __init__(
        self,
        folder: str,
        steps: dict[str, int] | None = None,
        seconds: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.steps = steps or {}
        self.budget_seconds = seconds or {}
        self.reached: dict[str, dict[str, float]] = {}

    def path(self, name: str) -> Path:
        """Where budget ``name``'s checkpoint is saved."""
        return self.folder / f"budget_{name}.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_batch_end()
        due = [n for n, s in self.steps.items() if trainer.global_step >= s]
        due += [n for n, s in self.budget_seconds.items() if self.seconds >= s]
        for name in due:
            if name not in self.reached:
                trainer.save_checkpoint(self.path(name))
                self.reached[name] = {"steps": trainer.global_step, "seconds": self.seconds}
        self._mark = time.perf_counter()


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
    ``.json`` beside it, both stamped with their provenance (:mod:`provenance`: commit, date,
    machine, versions, threads, command) under the markdown's title line."""
    from provenance import header, provenance

    info = provenance()
    title, _, rest = markdown.partition("\n")
    markdown = f"{title}\n\n{header(info)}{rest}"
    if isinstance(data, dict):
        data = {"provenance": info, **data}
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

    shutil.rmtree(root / "checkpoints", ignore_errors=True)  # test this fit's, no older one
    start = time.perf_counter()
    fit = main(["fit", *run_args(args, root), *fit_args])
    seconds = time.perf_counter() - start
    return fit, seconds, evaluate_checkpoint(args, root, root / "checkpoints" / "last.ckpt")


def evaluate_checkpoint(args: list[str], root: Path, checkpoint: Path) -> dict:
    """``vidgen test`` of ``checkpoint`` with ``args`` in run folder ``root``, no logger: the
    per-horizon results (``metrics.json``)."""
    from vidgen.cli import main
    from vidgen.evaluation import load_results

    main(["test", *run_args(args, root), f"--ckpt_path={checkpoint}"])
    return load_results(root / "metrics.json")


def run_args(args: list[str], root: Path) -> list[str]:
    """``args`` in run folder ``root``, without logger or progress bar."""
    return [
        *args,
        f"--trainer.default_root_dir={root}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]


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
