"""Resume is exact: a fit interrupted mid-epoch (Ctrl-C leaves ``last.ckpt``) and resumed with
``--ckpt_path last`` ends with the weights and metrics of an uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from test_errors import fit_args

from vidgen import MotionPredictor, ShapesDataModule
from vidgen.cli import main


@pytest.mark.slow
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(in_tmp, monkeypatch):
    whole = main(fit_args("--trainer.max_epochs=2", "--trainer.default_root_dir=runs/whole"))
    train = MotionPredictor.training_step

    def interrupted_at_step_3(self, batch, batch_idx):
        if self.global_step == 3:
            raise KeyboardInterrupt
        return train(self, batch, batch_idx)

    monkeypatch.setattr(MotionPredictor, "training_step", interrupted_at_step_3)
    with pytest.raises(SystemExit) as done:  # Lightning's graceful shutdown
        main(fit_args("--trainer.max_epochs=2"))
    assert done.value.code == 1
    last = in_tmp / "runs" / "demo" / "checkpoints" / "last.ckpt"
    assert torch.load(last, mmap=True)["global_step"] == 3  # mid-epoch 1, not epoch 0's
    steps = []

    def counted(self, batch, batch_idx):
        steps.append(self.global_step)
        return train(self, batch, batch_idx)

    monkeypatch.setattr(MotionPredictor, "training_step", counted)
    resumed = main(fit_args("--trainer.max_epochs=2", "--ckpt_path=last"))
    assert steps == [3]  # only the step that was interrupted
    assert resumed.trainer.global_step == 4 and resumed.trainer.current_epoch == 2
    ours, theirs = resumed.model.state_dict(), whole.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    metrics = resumed.trainer.callback_metrics
    assert metrics.keys() == whole.trainer.callback_metrics.keys()
    for key, value in whole.trainer.callback_metrics.items():
        assert torch.equal(metrics[key], value), key


def batches(num_workers: int, epoch: int, state: dict | None = None) -> list[dict]:
    """The training batches of ``epoch`` (from ``state``, a saved place in it) at seed 0."""
    torch.manual_seed(0)
    data = ShapesDataModule(
        num_train=6, image_size=16, frames=4, batch_size=2, num_workers=num_workers
    )
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    if state is not None:
        loader.load_state_dict(state)
    return list(loader)


def test_training_batches_are_a_function_of_seed_epoch_and_place():
    first = batches(0, epoch=1)
    same = batches(1, epoch=1)  # worker processes draw the same clips
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(first, same, strict=True))
    resumed = batches(0, epoch=0, state={"batches": 1, "seed": 0, "epoch": 1})
    assert len(resumed) == 2  # epoch 1 restored, its first batch skipped
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(first[1:], resumed, strict=True))
    other_epoch = batches(0, epoch=2)
    assert not torch.equal(first[0]["video"], other_epoch[0]["video"])
