"""A NaN loss stops the run with a clear message, before it touches weights or checkpoints."""

from __future__ import annotations

import pytest
import torch
from test_errors import fit_args, user_error

from vidgen import MotionPredictor


def test_nan_loss_stops_before_the_update(in_tmp, capsys, monkeypatch):
    train = MotionPredictor.training_step

    def nan_at_step_3(self, batch, batch_idx):
        if self.global_step == 3:
            batch["video"] = batch["video"] * float("nan")
        return train(self, batch, batch_idx)

    monkeypatch.setattr(MotionPredictor, "training_step", nan_at_step_3)
    line = user_error(capsys, fit_args("--trainer.max_epochs=3"))
    assert "the training loss is nan at step 3 (epoch 1): train/mse=nan, train/loss=nan" in line
    assert "--trainer.gradient_clip_val" in line and "lower learning rate" in line
    last = torch.load(in_tmp / "runs" / "demo" / "checkpoints" / "last.ckpt", mmap=True)
    assert last["global_step"] == 2  # epoch 0's, not overwritten
    assert all(torch.isfinite(w).all() for w in last["state_dict"].values())


@pytest.mark.parametrize("value", [float("inf"), 1.0])
def test_finite_losses_pass_and_inf_stops(value):
    """The check itself: inf stops, a finite loss passes (no trainer run needed)."""
    from unittest.mock import MagicMock

    from vidgen.callbacks import FiniteLoss
    from vidgen.errors import NonFiniteLossError

    trainer = MagicMock(global_step=7, current_epoch=0, default_root_dir=".", _results={})
    trainer.strategy.reduce_boolean_decision = lambda decision, all: decision
    guard = FiniteLoss()
    if value == 1.0:
        guard.on_before_backward(trainer, None, torch.tensor(value))
    else:
        with pytest.raises(NonFiniteLossError, match="loss is inf at step 7"):
            guard.on_before_backward(trainer, None, torch.tensor(value))
