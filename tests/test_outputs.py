"""Run outputs: video files, sample videos, W&B offline logging, the evaluation report and
`vidgen predict`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import av
import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from tiny import tiny_args, tiny_predictor
from ucf101_corpus import number_frame, read_number

from vidgen import ShapesDataModule
from vidgen.cli import main
from vidgen.data.decoders import make_reader, probe
from vidgen.outputs import (
    EvaluationReport,
    PredictionWriter,
    SampleVideos,
    side_by_side,
    to_uint8_frames,
    write_video,
)


def decoded_frames(path: Path, fps: float = 4) -> int:
    """Frames of a video file, decoded with PyAV; a GIF's (written at ``fps``) counted by its
    total duration, as Pillow stores identical consecutive frames as one longer frame."""
    if path.suffix == ".gif":
        with Image.open(path) as img:
            total = 0
            for index in range(img.n_frames):
                img.seek(index)
                total += img.info["duration"]
        return round(total / round(1000 / fps))
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


def test_write_video_layouts_and_formats(tmp_path):
    chw = np.stack([number_frame(i, 64, 48) for i in range(6)]).transpose(0, 3, 1, 2)
    assert to_uint8_frames(chw).shape == (6, 48, 64, 3)
    assert np.array_equal(to_uint8_frames(torch.from_numpy(chw)), to_uint8_frames(chw))
    floats = torch.from_numpy(chw).float() / 255
    assert np.abs(to_uint8_frames(floats).astype(int) - to_uint8_frames(chw)).max() <= 1
    for suffix in (".mp4", ".avi"):
        path = write_video(tmp_path / f"v{suffix}", floats, fps=10)
        info = probe(path)
        assert (info.frames, info.fps, info.width, info.height) == (6, 10.0, 64, 48)
        frames = make_reader().read(str(path), np.arange(6), 48)
        assert [read_number(f) for f in frames] == list(range(6))
    gif = write_video(tmp_path / "v.gif", chw.transpose(0, 2, 3, 1), fps=10)
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 6 and im.size == (64, 48)
    odd = write_video(tmp_path / "odd.mp4", np.zeros((3, 1, 33, 47), np.uint8))
    assert probe(odd).frames == 3
    with pytest.raises(ValueError):
        write_video(tmp_path / "v.webm", chw)


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
    data = written(record, b"vidgen.outputs.PredictionWriter")
    assert b'"eval_frames":20' in data and b"vidgen.outputs.PredictionWriter" in data


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
