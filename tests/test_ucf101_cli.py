"""The UCF101 predictor configs train (fast_dev_run) on a generated UCF101-layout corpus."""

from __future__ import annotations

import pytest
from ucf101_corpus import fit_on_corpus


@pytest.mark.slow
@pytest.mark.parametrize("config", ["predictor_paper.yaml", "predictor.yaml"])
def test_predictor_config_fast_dev_run_on_ucf101_layout(in_tmp, config):
    # the paper's 190 px kernel needs 224 px frames; 30 fits 64; 8-frame evaluation clips;
    # vidgen's config reads its clips from the frame cache
    cache = in_tmp / "cache"
    cached = [f"--data.init_args.cache_dir={cache}", "--data.init_args.frame_cache=true"]
    cli, corpus = fit_on_corpus(
        in_tmp,
        config,
        "--model.init_args.head.init_args.kernel_size=30",
        "--data.init_args.eval_frames=8",
        *(cached if config == "predictor.yaml" else []),
    )
    assert cli.trainer.state.finished
    dm = cli.datamodule
    assert type(dm).__name__ == "UCF101DataModule" and dm.frame_skip == 1
    assert dm.frames == (6 if config == "predictor_paper.yaml" else 8)
    assert cli.model.image_size == dm.image_size == 64
    if config == "predictor.yaml":
        assert len(list(dm.frame_cache_dir().rglob("*.npy"))) >= len(dm.datasets["train"].videos)
        assert len(list(cache.glob("ucf101_index_*.json"))) == 1  # an explicit cache_dir
    else:
        assert (corpus.video_dir / ".vidgen_ucf101_index.json").is_file()
