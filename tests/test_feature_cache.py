"""The frozen-feature cache: frame ids in the data, features computed once, equal training."""

from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from tiny import tiny_motion_predictor, tiny_predictor, tiny_vae
from ucf101_corpus import dm_for, frame_numbers

from vidgen import ShapesDataModule, TexturedDataModule
from vidgen.models.feature_cache import FeatureCache


class Counting:
    """A compute function that counts the frames it sees."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Conv2d(3, 2, 3)
        self.frames = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.frames += x.shape[0]
        return self.net(x)


def test_cache_computes_each_frame_once_and_returns_the_same_features():
    compute, cache = Counting(), FeatureCache(max_bytes=2**20)
    frames = torch.rand(6, 3, 8, 8)
    ids = torch.tensor([10, 11, 12, 10, 13, 11])  # repeats inside one batch: computed once
    first = cache(compute, frames[[0, 1, 2, 0, 3, 1]], ids)
    assert compute.frames == 4 and len(cache) == 4 and cache.hits == 2
    with torch.no_grad():
        assert torch.equal(first, compute.net(frames[[0, 1, 2, 0, 3, 1]]))
    again = cache(compute, frames[[3, 0, 4]], torch.tensor([13, 10, 14]))
    assert compute.frames == 5 and not again.requires_grad
    assert torch.equal(again[:2], first[[4, 0]])
    assert cache.hit_rate == pytest.approx(4 / 9)
    with pytest.raises(ValueError, match="ids"):
        cache(compute, frames, torch.arange(3))
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_full_cache_still_returns_right_features():
    compute = Counting()
    row = 2 * 6 * 6 * 4  # bytes of one frame's features
    cache = FeatureCache(max_bytes=3 * row)
    frames = torch.rand(5, 3, 8, 8)
    out = cache(compute, frames, torch.arange(5))  # 5 frames never fit: none stored
    assert len(cache) == 0 and cache.full
    with torch.no_grad():
        assert torch.allclose(out, compute.net(frames))
    assert torch.allclose(cache(compute, frames, torch.arange(5)), out)


def test_changed_pixels_under_one_id_stop_the_run():
    compute, cache = Counting(), FeatureCache(max_bytes=2**20, verify_every=1)
    frames = torch.rand(2, 3, 8, 8)
    cache(compute, frames, torch.tensor([0, 1]))
    cache(compute, frames, torch.tensor([0, 1]))  # same pixels: verified, fine
    with pytest.raises(RuntimeError, match="augmentation"):
        cache(compute, frames.flip(-1), torch.tensor([0, 1]))  # a random flip, say


@pytest.mark.parametrize("data", [ShapesDataModule, TexturedDataModule])
def test_embedded_frame_ids_name_pixels(data):
    dm = data(num_train=3, image_size=16, frames=6, video_length=10, num_workers=0)
    dm.setup("fit")
    train = dm.datasets["train"]
    seen: dict[int, torch.Tensor] = {}
    for _ in range(4):  # random windows: the same frames come back in other clips
        for item in (train[i] for i in range(len(train))):
            assert item["frame_ids"].dtype == torch.int64 and item["frame_ids"].shape == (6,)
            for key, frame in zip(item["frame_ids"].tolist(), item["video"], strict=True):
                assert torch.equal(seen.setdefault(key, frame), frame)
    assert len(seen) > 6 and max(seen) < 3 * 10


def test_file_frame_ids_name_pixels(corpus):
    dm = dm_for(corpus.root)
    dm.setup("fit")
    train = dm.datasets["train"]
    owners: dict[int, int] = {}
    for i in range(len(train)):
        item = train[i]
        video = train.video_number(i)
        numbers = item["frame_ids"] - int(train.offsets[video])
        assert numbers.tolist() == frame_numbers(item)  # the pixels say which frame it is
        for key in item["frame_ids"].tolist():  # ids of different videos never collide
            assert owners.setdefault(key, video) == video


def shapes_batches(n: int = 3, frames: int = 5) -> list[dict]:
    dm = ShapesDataModule(num_train=4, image_size=16, frames=frames, batch_size=4, num_workers=0)
    dm.setup("fit")
    torch.manual_seed(0)  # the random windows
    batches = [next(iter(dm.train_dataloader())) for _ in range(n)]
    return [{**b, "video": b["video"].float() / 255} for b in batches]


def train_losses(model, batches: list[dict], epochs: int = 2) -> list[float]:
    opt = model.configure_optimizers()
    losses = []
    torch.manual_seed(1)  # the VAE's posterior samples
    for _ in range(epochs):
        for batch in batches:
            opt.zero_grad()
            loss = model.training_step(dict(batch), 0)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return losses


MODELS = {
    "teacher-forced": lambda **kw: tiny_predictor(**kw),
    "motion": lambda **kw: tiny_motion_predictor(hidden_size=16, context_frames=2, **kw),
    "vae": lambda **kw: tiny_vae(frames=5, **kw),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_cached_training_equals_uncached(name):
    batches = shapes_batches()
    plain = MODELS[name](optimizer=partial(torch.optim.Adam, lr=1e-3))
    cached = MODELS[name](optimizer=partial(torch.optim.Adam, lr=1e-3), feature_cache_gib=0.01)
    assert cached.feature_cache is not None and plain.feature_cache is None
    expected = train_losses(plain, copy.deepcopy(batches))
    got = train_losses(cached, copy.deepcopy(batches))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert cached.feature_cache.hits > 0  # the second epoch read the cache
    for a, b in zip(plain.parameters(), cached.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_cache_without_frame_ids_is_refused():
    model = tiny_predictor(feature_cache_gib=0.01)
    batch = shapes_batches(1)[0]
    del batch["frame_ids"]
    with pytest.raises(ValueError, match="frame_ids"):
        model.training_step(batch, 0)
    with pytest.raises(ValueError, match="feature_cache_gib"):
        tiny_predictor(feature_cache_gib=-1)
