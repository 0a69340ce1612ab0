"""Run callbacks: the run checkpoint."""

from __future__ import annotations

from functools import partial

import lightning as L
import torch
from tiny import tiny_predictor

from vidgen import ShapesDataModule
from vidgen.callbacks import RunCheckpoint


def test_last_checkpoint_holds_the_last_epoch_when_the_metric_stops_improving(tmp_path):
    model = tiny_predictor(optimizer=partial(torch.optim.SGD, lr=0.0))  # val/loss never improves
    data = ShapesDataModule(
        num_train=4, num_val=2, num_test=2, image_size=16, frames=4, batch_size=2, num_workers=0
    )
    checkpoint = RunCheckpoint(save_last=True, monitor="val/loss")
    trainer = L.Trainer(
        max_epochs=3,
        logger=False,
        callbacks=[checkpoint],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, data)
    best = torch.load(checkpoint.best_model_path, weights_only=False)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert best["epoch"] == 0  # the monitored checkpoint stayed at the first epoch
    assert last["epoch"] == 2 and last["global_step"] == trainer.global_step == 6
