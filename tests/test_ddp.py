"""DDP on CPU with 2 processes: metrics gathered across ranks equal a single-process run."""

from __future__ import annotations

import lightning as L
import pytest
from tiny import tiny_predictor

from vidgen import ShapesDataModule


def build():
    model = tiny_predictor()
    data = ShapesDataModule(
        num_train=4,
        num_val=4,
        num_test=8,
        image_size=16,
        frames=4,
        eval_frames=6,
        batch_size=2,
        num_workers=0,
    )
    return model, data


def run_test(strategy: str, devices: int) -> dict[str, float]:
    model, data = build()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return {k: float(v) for k, v in trainer.test(model, data, verbose=False)[0].items()}


@pytest.mark.slow
def test_ddp_two_processes_match_one():
    single = run_test("auto", 1)
    ddp = run_test("ddp_spawn", 2)
    for key in (
        "test/model/mse",
        "test/model/psnr",
        "test/model/ssim",
        "test/copy_last/mse",
        "test/model/collapse",
    ):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key
