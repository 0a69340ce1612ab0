"""Resume is exact: a fit interrupted mid-epoch (Ctrl-C leaves ``last.ckpt``) and resumed with
``--ckpt_path last`` ends with the weights and metrics of an uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from test_errors import fit_args

from vidgen import FramePredictor
from vidgen.cli import main


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(in_tmp, monkeypatch):
    whole = main(fit_args("--trainer.max_epochs=2", "--trainer.default_root_dir=runs/whole"))
    train = FramePredictor.training_step

    def interrupted_at_step_3(self, batch, batch_idx):
        if self.global_step == 3:
            raise KeyboardInterrupt
        return train(self, batch, batch_idx)

    monkeypatch.setattr(FramePredictor, "training_step", interrupted_at_step_3)
    with pytest.raises(SystemExit) as done:  # Lightning's graceful shutdown
        main(fit_args("--trainer.max_epochs=2"))
    assert done.value.code == 1
    last = in_tmp / "runs" / "demo" / "checkpoints" / "last.ckpt"
    assert torch.load(last, mmap=True)["global_step"] == 3  # mid-epoch 1, not epoch 0's
    steps = []

    def counted(self, batch, batch_idx):
        steps.append(self.global_step)
        return train(self, batch, batch_idx)

    monkeypatch.setattr(FramePredictor, "training_step", counted)
    resumed = main(fit_args("--trainer.max_epochs=2", "--ckpt_path=last"))
    assert steps == [3]  # only the step that was interrupted
    assert resumed.trainer.global_step == 4 and resumed.trainer.current_epoch == 2
    ours, theirs = resumed.model.state_dict(), whole.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    metrics = resumed.trainer.callback_metrics
    assert metrics.keys() == whole.trainer.callback_metrics.keys()
    for key, value in whole.trainer.callback_metrics.items():
        assert torch.equal(metrics[key], value), key
