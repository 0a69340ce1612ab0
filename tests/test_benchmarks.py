"""What the benchmarks share (``benchmarks/common.py``): the step timer."""

from __future__ import annotations

import importlib
from pathlib import Path

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
