"""What the benchmarks share: where results go, the one writer of results files, the training
loops, timing and the quick mode.

Scripts run as ``python benchmarks/<script>.py`` (this folder is then on ``sys.path``) with
vidgen installed (``make venv``) or ``PYTHONPATH=.``. Each builds its models from a packaged
config through :mod:`yaml_models` (no jsonargparse needed, so the GPU machine runs them too) or
runs the ``vidgen`` CLI itself (``compare_predictors.py``, ``real_footage.py``), trains with the
model's own ``training_step`` and loss, through ``Trainer.fit`` (:func:`train`) or, where steps
are timed one by one, :func:`step_function`, and writes every results file through
:func:`write_results`. ``--quick`` (:func:`add_quick`) runs a benchmark at toy size into a
temporary folder: ``tests/test_benchmarks.py`` runs every quick mode.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from yaml_models import tiny_overrides

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
"""Where every benchmark writes ``<name>.md`` (quoted in the docs) and ``<name>.json``."""
DOCS = ROOT / "docs"
"""Where the figures that the README and the docs show are written."""
QUICK_SIZE = 32
"""Frame side of ``--quick`` runs."""
QUICK_CONFIGS = ["demo_paper.yaml"]
"""The packaged configs of the ``--quick`` runs that go over configs: the paper's predictor
takes seconds everywhere (vidgen's motion models take minutes to trace for torch.compile)."""

T = TypeVar("T")


def add_quick(parser: argparse.ArgumentParser) -> None:
    """The ``--quick`` option: toy sizes, a step or two, results in a temporary folder."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help="toy size (32 px or less, 1-2 steps), written to a temporary folder: checks that "
        "the benchmark runs, measures nothing",
    )


def results_dir(quick: bool) -> Path:
    """:data:`RESULTS`, or for a ``--quick`` run a new temporary folder (toy numbers never
    replace the committed results)."""
    return Path(tempfile.mkdtemp(prefix="vidgen-bench-")) if quick else RESULTS


def small_overrides() -> dict[str, list[str]]:
    """``tests/behaviour.py``'s overrides that fit the 224 px models into 32 px."""
    sys.path.insert(0, str(ROOT / "tests"))
    from behaviour import SMALL

    return SMALL


def quick_overrides(config: str) -> list[str]:
    """Overrides that shrink ``config`` to :data:`QUICK_SIZE` px and 2 clips (random backbone
    weights; small heads for the 224 px models)."""
    return tiny_overrides(config, small_overrides(), QUICK_SIZE)


def write_results(
    path: Path, markdown: str, data: Any = None, info: dict[str, Any] | None = None
) -> None:
    """The one writer of results files: ``markdown`` to ``path`` with suffix ``.md`` and
    ``data`` (if any) to ``.json`` beside it, both stamped with ``info``
    (:func:`provenance.provenance`: commit and whether the tree was dirty, date, CPU and GPU,
    versions, threads, the command; taken now by default), under the markdown's title line and
    as ``"provenance"`` in the JSON (a ``data`` that is not a dict goes under ``"rows"``).
    Files are replaced, never appended to; the markdown is printed too."""
    from provenance import header, provenance

    info = info or provenance()
    title, _, rest = markdown.partition("\n")
    markdown = f"{title}\n\n{header(info)}{rest}"
    print(markdown)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".md").write_text(markdown)
    written = [path.with_suffix(".md")]
    if data is not None:
        data = {"provenance": info, **(data if isinstance(data, dict) else {"rows": data})}
        path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
        written.append(path.with_suffix(".json"))
    print("wrote " + " and ".join(str(p) for p in written))


SHARED_LOAD = 1.5
"""A 1-minute load average above this before a benchmark starts means other jobs ran."""


def load_note(load: tuple[float, float] | list[float]) -> str:
    """The 1-minute load average before and after a timed run, and whether other jobs shared
    the cores (judged by the load before it: after, the run's own workers count)."""
    before, after = load
    shared = " (other jobs shared the cores)" if before > SHARED_LOAD else " (no other jobs)"
    return f"1-minute load average {before:.1f} before / {after:.1f} after{shared}"


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


class Losses(L.Callback):
    """The loss of every training step, as ``training_step`` returned it."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, model: Any, outputs: Any, *args: Any) -> None:
        self.losses.append(float(outputs["loss"]))


def trainer(**settings: Any) -> L.Trainer:
    """A Trainer that only trains, on the CPU unless ``settings`` say otherwise: no logger,
    checkpoints, progress bar, model summary or validation (a benchmark times or scores the
    model itself, not a run's outputs)."""
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "limit_val_batches": 0,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**defaults, **settings})


def train(
    model: L.LightningModule, dataset: Dataset, steps: int, batch_size: int, seed: int = 0
) -> tuple[list[float], float]:
    """``steps`` optimiser steps of ``Trainer.fit`` (the model's own ``training_step``, loss and
    optimiser) on ``dataset`` in minibatches shuffled by ``seed``, epoch after epoch: models
    trained with the same seed see the same clips in the same order. Returns every step's loss
    and the wall seconds of the fit."""
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size, shuffle=True, drop_last=True, generator=order)
    losses = Losses()
    start = time.perf_counter()
    trainer(max_steps=steps, max_epochs=-1, callbacks=[losses]).fit(model, loader)
    return losses.losses, time.perf_counter() - start


def step_function(
    model: Any, device: torch.device, bf16: bool = False, compile_backend: str | None = None
) -> Callable[[dict], torch.Tensor]:
    """One training step of ``model`` as ``Trainer.fit`` runs it, for loops that time steps one
    by one: ``step(batch) -> loss`` passes the batch through ``on_after_batch_transfer`` and
    ``training_step`` (the model's own loss; under bf16 autocast with ``bf16``, compiled with
    ``compile_backend`` if given), backward, then steps the model's own optimiser."""
    opt = optimizer_of(model)
    forward = model.training_step
    if compile_backend is not None:
        forward = torch.compile(model.training_step, backend=compile_backend)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step(batch: dict) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        batch = model.on_after_batch_transfer(dict(batch), 0)
        with autocast:
            loss = forward(batch, 0)
        loss.backward()
        opt.step()
        return loss

    return step


def fit_and_test(args: list[str], root: Path, *fit_args: str) -> tuple[Any, float, dict]:
    """``vidgen fit`` (plus ``fit_args``) then ``vidgen test`` of its ``last.ckpt``, both with
    ``args`` in run folder ``root``, no logger: the fit's CLI, its wall seconds and the test's
    per-horizon results (``metrics.json``)."""
    fit, seconds = fit_only(args, root, *fit_args)
    return fit, seconds, evaluate_checkpoint(args, root, root / "checkpoints" / "last.ckpt")


def fit_only(args: list[str], root: Path, *fit_args: str) -> tuple[Any, float]:
    """``vidgen fit`` with ``args`` (plus ``fit_args``) in run folder ``root``, no logger, from
    scratch (older checkpoints there are removed first): the fit's CLI and its wall seconds."""
    from vidgen.cli import main

    shutil.rmtree(root / "checkpoints", ignore_errors=True)
    start = time.perf_counter()
    fit = main(["fit", *run_args(args, root), *fit_args])
    return fit, time.perf_counter() - start


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
