"""README "Train on your own videos": fit, test and predict on a file, on generated videos."""

from __future__ import annotations

import json

import pytest
import torch
from test_outputs import decoded_frames
from ucf101_corpus import make_folder

from vidgen.cli import CONFIG_DIR, main

TINY = [  # CPU-sized: 32 px, tiny clips and model, one short epoch
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.limit_test_batches=1",
    "--data.init_args.image_size=32",
    "--data.init_args.frames=4",
    "--data.init_args.eval_frames=8",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--data.init_args.progress=false",
    "--model.init_args.core.init_args.hidden_channels=8",
]


@pytest.mark.slow
def test_readme_commands_on_own_videos(in_tmp):
    make_folder(in_tmp / "my_videos")
    config = str(CONFIG_DIR / "predictor_folder.yaml")
    ckpt = "runs/predictor_folder/checkpoints/last.ckpt"
    # the README's three commands, as written, plus TINY
    main(["fit", "--config", config, "--data.root", "my_videos/", *TINY])
    main(["test", "--config", config, "--data.root", "my_videos/", "--ckpt_path", ckpt, *TINY])
    assert (in_tmp / "runs/predictor_folder/metrics.json").is_file()
    clip = "my_videos/dogs/e.mp4"  # 40 frames: 8 at frame_skip 1 fit
    main(["predict", "--config", config, "--data.root", clip, "--ckpt_path", ckpt, *TINY])
    out = in_tmp / "runs/predictor_folder/predictions"
    for fmt in ("mp4", "gif"):
        assert decoded_frames(out / f"000000_e_pred.{fmt}") == 4  # 8 - 4 context frames
        assert decoded_frames(out / f"000000_e_compare.{fmt}") == 8
    metrics = json.loads((out / "000000_e_metrics.json").read_text())
    assert metrics["source"].endswith("dogs/e.mp4") and metrics["truth_frames"] == 4
    assert len(metrics["model"]["psnr"]) == len(metrics["copy_last"]["ssim"]) == 4
    # a file shorter than the clip: the continuation is whole, the comparison as long as truth
    short = "my_videos/loose.mkv"  # 20 frames: 0, 2, ..., 18 are 10 of the 14 asked for
    main(["predict", "--config", config, "--data.root", short, "--ckpt_path", ckpt, *TINY,
          "--data.init_args.eval_frames=14"])  # fmt: skip
    assert decoded_frames(out / "000000_loose_pred.mp4") == 10
    assert decoded_frames(out / "000000_loose_compare.mp4") == 10  # 4 context + 6 with truth
    assert json.loads((out / "000000_loose_metrics.json").read_text())["truth_frames"] == 6


def test_prediction_writer_limits_truth_to_the_real_frames(tmp_path):
    """Three files: long enough, shorter than the clip, shorter than the context."""
    from vidgen.outputs import PredictionWriter

    prediction = {
        "context": torch.rand(3, 4, 3, 16, 16),
        "target": torch.rand(3, 6, 3, 16, 16),
        "pred": torch.rand(3, 6, 3, 16, 16),
        "index": torch.tensor([0, 1, 2]),
    }
    batch = {"available": torch.tensor([10, 7, 3]), "path": ["a/long.mp4", "short.mkv", "x.avi"]}
    writer = PredictionWriter(output_dir=str(tmp_path), format=["mp4", "gif"])
    with pytest.warns(UserWarning, match="000002_x: the clip has 3 frames, fewer than the 4"):
        writer.write_on_batch_end(None, None, prediction, None, batch, batch_idx=0)
    assert not list(tmp_path.glob("000002_*"))
    assert decoded_frames(tmp_path / "000000_long_compare.mp4") == 10
    assert decoded_frames(tmp_path / "000001_short_compare.gif") == 7  # 4 + 3 with truth
    assert decoded_frames(tmp_path / "000001_short_target.mp4") == 3
    assert decoded_frames(tmp_path / "000001_short_pred.gif") == 6
    metrics = json.loads((tmp_path / "000001_short_metrics.json").read_text())
    assert metrics["truth_frames"] == 3 and metrics["source"] == "short.mkv"
    mse = ((prediction["pred"][1, :3] - prediction["target"][1, :3]) ** 2).flatten(1).mean(1)
    assert metrics["model"]["mse"] == pytest.approx(mse.tolist(), abs=1e-5)
    with pytest.raises(ValueError, match="format"):
        PredictionWriter(format=["mp4", "avi"])
