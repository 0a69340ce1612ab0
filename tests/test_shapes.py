import numpy as np
import pytest
import torch

from vidgen.data import ClipSampler, ShapesDataModule, ShapesVideos


def make(seed=0, random=False, **kw):
    sampler = ClipSampler(frames=6, frame_skip=1, random=random)
    return ShapesVideos(num_videos=5, sampler=sampler, image_size=32, seed=seed, **kw)


def test_shapes_on_black():
    video = make()[3]["video"]
    assert video.max() > 0 and (video == 0).any()


def test_shapes_move_and_stay_inside():
    ds = make(num_shapes=1)
    video = ds.render(0, np.arange(40))
    assert video.shape == (40, 3, 32, 32)
    masses = (video.sum(1) > 0).reshape(40, -1).sum(1)
    assert masses.min() > 0  # never leaves the frame
    centres = [np.argwhere(f.sum(0) > 0).mean(0) for f in video]
    assert np.abs(np.diff(centres, axis=0)).sum() > 10  # it moves


def test_training_clips_vary_eval_clips_do_not():
    torch.manual_seed(0)
    train = make(random=True)
    draws = {train[0]["video"].float().sum().item() for _ in range(10)}
    assert len(draws) > 1
    evals = make()
    assert torch.equal(evals[0]["video"], evals[0]["video"])


def test_out_of_range_item():
    with pytest.raises(IndexError):
        make()[5]


def test_datamodule_batches_and_splits():
    dm = ShapesDataModule(
        num_train=8,
        num_val=4,
        num_test=4,
        image_size=32,
        frames=4,
        eval_frames=6,
        batch_size=4,
        num_workers=0,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 4, 3, 32, 32) and batch["video"].dtype == torch.uint8
    val = next(iter(dm.val_dataloader()))["video"]
    assert val.shape == (4, 6, 3, 32, 32)
    test = next(iter(dm.test_dataloader()))["video"]
    assert not torch.equal(val[:, :4], test[:, :4])  # different seeds per split


def test_workers_deliver_the_same_eval_clips():
    kw = dict(num_train=4, num_val=4, num_test=4, image_size=16, frames=3, batch_size=4)
    serial = ShapesDataModule(num_workers=0, **kw)
    parallel = ShapesDataModule(num_workers=2, **kw)
    a = next(iter(serial.val_dataloader()))["video"]
    b = next(iter(parallel.val_dataloader()))["video"]
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "bad", [dict(frames=1), dict(eval_frames=1), dict(batch_size=0), dict(sampling="random")]
)
def test_bad_config_fails_at_setup_with_fix(bad):
    dm = ShapesDataModule(num_workers=0, **bad)
    with pytest.raises(ValueError, match="data\\."):
        dm.setup("fit")
