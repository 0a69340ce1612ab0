"""The UCF101 predictor configs train (fast_dev_run) on a generated UCF101-layout corpus."""

from __future__ import annotations

import pytest
from ucf101_corpus import make_corpus

from vidgen.cli import CONFIG_DIR, main


@pytest.mark.slow
@pytest.mark.parametrize("config", ["predictor_paper.yaml", "predictor.yaml"])
def test_predictor_config_fast_dev_run_on_ucf101_layout(in_tmp, config):
    corpus = make_corpus(in_tmp / "UCF101", lengths=(16, 30))
    cli = main(
        [
            "fit",
            "--config",
            str(CONFIG_DIR / config),
            "--data.init_args.root",
            str(corpus.root),
            "--trainer.fast_dev_run=1",
            # CPU-sized: 64 px frames (the paper's 190 px kernel needs 224 px; 30 fits 64),
            # no ImageNet download, small batches, 8-frame evaluation clips
            "--data.init_args.image_size=64",
            "--model.init_args.head.init_args.kernel_size=30",
            "--model.init_args.backbone_weights=null",
            "--data.init_args.batch_size=2",
            "--data.init_args.eval_frames=8",
            "--data.init_args.num_workers=0",
            "--data.init_args.progress=false",
        ]
    )
    assert cli.trainer.state.finished
    dm = cli.datamodule
    assert type(dm).__name__ == "UCF101DataModule" and dm.frame_skip == 1
    assert dm.frames == (6 if config == "predictor_paper.yaml" else 8)
    assert cli.model.image_size == dm.image_size == 64
    assert (corpus.video_dir / ".vidgen_ucf101_index.json").is_file()
