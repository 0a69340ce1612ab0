import numpy as np
import pytest
import torch

from vidgen.data import ClipSampler, TexturedDataModule, TexturedVideos
from vidgen.data.textured import pink_noise, sample_wrapped


def make(seed=0, **kw):
    sampler = ClipSampler(frames=6, frame_skip=0, random=False)
    return TexturedVideos(num_videos=4, sampler=sampler, image_size=32, seed=seed, **kw)


def test_texture_everywhere():
    video = make()[1]["video"]
    assert (video.float().sum(1) > 0).all()  # no black background
    assert video.float().std(dim=(2, 3)).min() > 5  # texture, not flat colour, in every frame


def test_camera_moves_the_background_and_shapes_occlude_it():
    ds = make(num_shapes=1)
    frames = np.arange(0, 40, 4)
    moving = ds.render(0, frames).astype(np.float32)
    still = ds.background(0, np.zeros(len(frames), np.float32)).astype(np.float32)
    assert np.abs(np.diff(still, axis=0)).max() == 0  # a still camera: the same background
    background = ds.background(0, frames.astype(np.float32)).astype(np.float32)
    assert np.abs(np.diff(background, axis=0)).mean() > 1  # pan / zoom change every pixel
    covered = (moving != background.transpose(0, 3, 1, 2)).any(1)
    assert 0.02 < covered.mean() < 0.5  # the shape hides part of the background


def test_pink_noise_is_periodic_and_normalised():
    noise = pink_noise(np.random.default_rng(0), 16, 2)
    assert noise.shape == (16, 16, 2) and noise.min() == 0 and noise.max() == 1
    image = np.arange(16.0).reshape(4, 4, 1)
    assert sample_wrapped(image, np.array([1.0]), np.array([2.0]))[0, 0] == image[1, 2, 0]
    assert sample_wrapped(image, np.array([4.0]), np.array([0.5]))[0, 0] == 0.5  # wraps


def test_datamodule_batches():
    dm = TexturedDataModule(
        num_train=4, num_val=2, num_test=2, image_size=16, frames=4, batch_size=2, num_workers=0
    )
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 16, 16) and batch["video"].dtype == torch.uint8
    with pytest.raises(ValueError, match="image_size"):
        TexturedVideos(num_videos=1, sampler=ClipSampler(frames=2), image_size=4)
