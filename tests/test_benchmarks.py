"""What the benchmarks share (``benchmarks/common.py``): the step timer, the training clock and
the budget checkpoints."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmarks_common(monkeypatch: pytest.MonkeyPatch):
    """``benchmarks/common.py`` imported as the scripts import it (their folder on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("common")


def test_step_timer_times_steps_and_periods(monkeypatch):
    common = benchmarks_common(monkeypatch)
    clock = iter([0.0, 1.0, 3.0, 4.0, 10.0, 12.0])  # start, end, start, end, (epoch) start, end
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    timer = common.StepTimer(warmup=0)
    timer.on_train_epoch_start()
    for _ in range(2):
        timer.on_train_batch_start()
        timer.on_train_batch_end()
    timer.on_train_epoch_start()  # the gap across an epoch end is no batch wait
    timer.on_train_batch_start()
    timer.on_train_batch_end()
    assert timer.times == [1.0, 1.0, 2.0] and timer.periods == [3.0]
    assert timer.median() == 1.0 and timer.median(periods=True) == 3.0


def test_budget_checkpoints_save_at_steps_and_training_seconds(monkeypatch, tmp_path):
    """The clock counts training batches, not the gap across an epoch end (validation) nor the
    time a save takes; each budget is saved once, at the first step that reaches it."""
    common = benchmarks_common(monkeypatch)
    # each batch end reads the clock twice (before and after any save): epoch start, batches
    # 1, 2 (a 3 s save) and 3, epoch start 14 s later (validation), batch 4 (a save)
    clock = iter([0.0, 1.0, 1.0, 2.0, 5.0, 6.0, 6.0, 20.0, 21.5, 22.0])
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    saved = []
    trainer = SimpleNamespace(global_step=0, save_checkpoint=lambda path: saved.append(path))
    budgets = common.BudgetCheckpoints(str(tmp_path), steps={"two": 2}, seconds={"time": 3.5})
    budgets.on_train_epoch_start()
    for epoch_end in (False, False, True, False):
        trainer.global_step += 1
        budgets.on_train_batch_end(trainer)
        if epoch_end:
            budgets.on_train_epoch_start()
    assert budgets.seconds == 4.5  # 1 + 1 + 1 + 1.5: neither the save nor validation counts
    assert saved == [tmp_path / "budget_two.ckpt", tmp_path / "budget_time.ckpt"]
    assert budgets.reached == {
        "two": {"steps": 2, "seconds": 2.0},
        "time": {"steps": 4, "seconds": 4.5},
    }
