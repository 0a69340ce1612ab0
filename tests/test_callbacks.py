"""Callbacks: sample videos, W&B offline logging, the evaluation report and `vidgen predict`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import av
import lightning as L
import pytest
import torch
from PIL import Image
from tiny import tiny_args, tiny_predictor

from vidgen import ShapesDataModule
from vidgen.callbacks import EvaluationReport, PredictionWriter, SampleVideos, side_by_side
from vidgen.cli import main


def decoded_frames(path: Path) -> int:
    """Frames of a video file, decoded with PyAV (GIFs through Pillow)."""
    if path.suffix == ".gif":
        with Image.open(path) as img:
            return img.n_frames
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def fake_trainer(root: Path) -> SimpleNamespace:
    return SimpleNamespace(default_root_dir=str(root), current_epoch=3, global_step=7, loggers=[])


def test_side_by_side_layout():
    a, b = torch.zeros(5, 3, 8, 10), torch.ones(5, 3, 8, 10)
    frames = side_by_side(a, b)
    assert frames.shape == (5, 8, 22, 3) and frames.dtype.name == "uint8"
    assert frames[..., :10, :].max() == 0 and frames[..., 12:, :].min() == 255


def test_sample_videos_write_gif_and_mp4(tmp_path):
    outputs = {
        "context": torch.rand(3, 4, 3, 16, 16),
        "target": torch.rand(3, 6, 3, 16, 16),
        "pred": torch.rand(3, 6, 3, 16, 16),
    }
    paths = SampleVideos(num_videos=2).write(fake_trainer(tmp_path), "val", outputs)
    names = sorted(p.name for p in paths)
    assert names == [f"val_epoch003_{i}.{f}" for i in (0, 1) for f in ("gif", "mp4")]
    assert all(decoded_frames(p) == 10 for p in paths)  # context + horizon
    with pytest.raises(ValueError, match="format"):
        SampleVideos(formats=())


def test_prediction_writer_names_and_frame_counts(tmp_path):
    """A VideoVAE-like prediction: no context, more prior samples than clips."""
    prediction = {
        "target": torch.rand(2, 6, 3, 16, 16),
        "pred": torch.rand(2, 6, 3, 16, 16),
        "samples": torch.rand(3, 5, 3, 16, 16),
        "index": torch.tensor([10, 11]),
        "label": torch.tensor([0, 1]),  # not a video: ignored
    }
    writer = PredictionWriter(output_dir=str(tmp_path / "out"), format="gif")
    writer.write_on_batch_end(None, None, prediction, None, None, batch_idx=4)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "000010_compare.gif",
        "000010_metrics.json",
        "000010_pred.gif",
        "000010_samples.gif",
        "000010_target.gif",
        "000011_compare.gif",
        "000011_metrics.json",
        "000011_pred.gif",
        "000011_samples.gif",
        "000011_target.gif",
        "batch00004_002_samples.gif",
    ]
    assert decoded_frames(tmp_path / "out" / "000010_samples.gif") == 5
    assert decoded_frames(tmp_path / "out" / "000011_compare.gif") == 6
    with pytest.raises(ValueError, match="format"):
        PredictionWriter(format="avi")


def test_wandb_offline_run_writes_files(tmp_path):
    """Fit + test with an offline WandbLogger: videos, curves, table and config end up on disk."""
    wandb = pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    model = tiny_predictor()
    data = ShapesDataModule(
        num_train=4, num_val=2, num_test=2, image_size=16, frames=4, eval_frames=10,
        batch_size=2, num_workers=0,
    )  # fmt: skip
    logger = WandbLogger(save_dir=str(tmp_path), project="vidgen-test", offline=True)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=logger,
        callbacks=[SampleVideos(num_videos=1), EvaluationReport()],
        default_root_dir=str(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(model, data)
        trainer.test(model, data)
        run = Path(logger.experiment.dir).parent
    finally:
        wandb.finish()
    assert run.parent == tmp_path / "wandb" and run.name.startswith("offline-run-")
    assert list(run.glob("run-*.wandb"))
    media = run / "files" / "media"
    for stage in ("val", "test"):
        assert list((media / "videos" / stage).glob("videos_*.gif")), stage
        assert list((media / "images" / stage).glob("horizons_plot_*.png")), stage
        assert list((media / "table" / stage).glob("horizons_*.table.json")), stage
        assert list((media / "table" / stage).glob("horizon_psnr_table_*.json")), stage
    assert model.hparams.context_frames == 2  # hyperparameters go to W&B via save_hyperparameters
    assert (tmp_path / "horizons.png").exists() and (tmp_path / "horizons_val.png").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["model/psnr"]) == len(metrics["copy_last/ssim"]) == 8
    assert decoded_frames(tmp_path / "videos" / "test_epoch001_0.mp4") == 10
    assert decoded_frames(tmp_path / "videos" / "val_epoch000_0.gif") == 10


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A 1-step fit of the packaged demo config, run from an empty folder."""
    folder = tmp_path_factory.mktemp("demo")
    previous = Path.cwd()
    os.chdir(folder)
    tiny = tiny_args("demo.yaml", "--data.init_args.num_test=3")
    import wandb

    try:
        main(["fit", *tiny, "--trainer.max_steps=1"])
        wandb.finish()  # flush the offline run before the tests read it
        yield folder, tiny
    finally:
        wandb.finish()
        os.chdir(previous)


def test_cli_logs_the_resolved_config(demo_run):
    folder, _ = demo_run
    run_dir = folder / "runs" / "demo"
    assert (run_dir / "config.yaml").exists() and (run_dir / "checkpoints" / "last.ckpt").exists()
    (record,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    data = written(record, b"vidgen.callbacks.PredictionWriter")
    assert b'"eval_frames":20' in data and b"vidgen.callbacks.PredictionWriter" in data


def written(path: Path, marker: bytes, seconds: float = 60.0) -> bytes:
    """``path``'s bytes once ``marker`` is in them, or after ``seconds``: the file may hold only
    its header for a while after ``wandb.finish()`` returns (seen twice, while other jobs logging
    to W&B shared the machine's 2 cores)."""
    deadline = time.monotonic() + seconds
    while marker not in (data := path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return data


def test_cli_test_prints_table_and_writes_plot(demo_run, capsys):
    folder, tiny = demo_run
    os.chdir(folder)
    ckpt = "runs/demo/checkpoints/last.ckpt"
    main(["test", *tiny, "--ckpt_path", ckpt])
    out = capsys.readouterr()
    assert "PSNR (dB, higher is better)" in out.out + out.err
    assert "beyond the training length" in out.out + out.err
    metrics = json.loads((folder / "runs/demo/metrics.json").read_text())
    assert len(metrics["model/ssim"]) == 16  # eval_frames 20 - 4 context: 2x the 8 trained
    assert (folder / "runs/demo/horizons.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_predict_writes_decodable_videos(demo_run):
    folder, tiny = demo_run
    os.chdir(folder)
    main(["predict", *tiny, "--ckpt_path", "runs/demo/checkpoints/last.ckpt"])
    out = folder / "runs" / "demo" / "predictions"
    for index in range(3):  # num_test=3 clips, over two batches
        assert decoded_frames(out / f"{index:06d}_context.mp4") == 4
        assert decoded_frames(out / f"{index:06d}_target.mp4") == 16
        assert decoded_frames(out / f"{index:06d}_pred.mp4") == 16
        assert decoded_frames(out / f"{index:06d}_compare.gif") == 20
    with av.open(str(out / "000000_pred.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.height, stream.width) == (32, 32)


def test_last_checkpoint_holds_the_last_epoch_when_the_metric_stops_improving(tmp_path):
    from functools import partial

    from vidgen.callbacks import RunCheckpoint

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


def test_step_timer_times_steps_and_periods(monkeypatch):
    from vidgen.callbacks import StepTimer

    clock = iter([0.0, 1.0, 3.0, 4.0, 10.0, 12.0])  # start, end, start, end, (epoch) start, end
    monkeypatch.setattr("vidgen.callbacks.time.perf_counter", lambda: next(clock))
    timer = StepTimer(warmup=0)
    timer.on_train_epoch_start()
    for _ in range(2):
        timer.on_train_batch_start()
        timer.on_train_batch_end()
    timer.on_train_epoch_start()  # the gap across an epoch end is no batch wait
    timer.on_train_batch_start()
    timer.on_train_batch_end()
    assert timer.times == [1.0, 1.0, 2.0] and timer.periods == [3.0]
    assert timer.median() == 1.0 and timer.median(periods=True) == 3.0
