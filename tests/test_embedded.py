"""What both embedded datasets (shapes, textured) promise: the item contract and seeded,
reproducible videos."""

import pytest
import torch

from vidgen.data import ClipSampler, ShapesVideos, TexturedVideos


@pytest.mark.parametrize("videos", [ShapesVideos, TexturedVideos])
def test_item_contract_and_seeds(videos):
    def make(seed: int):
        sampler = ClipSampler(frames=6, frame_skip=1, random=False)
        return videos(num_videos=4, sampler=sampler, image_size=32, seed=seed)

    item = make(0)[3]
    assert item["video"].dtype == torch.uint8 and item["video"].shape == (6, 3, 32, 32)
    assert item["index"] == 3 and 0 <= item["label"] < 3
    a, b, c = make(1)[2]["video"], make(1)[2]["video"], make(2)[2]["video"]
    assert torch.equal(a, b)  # the same seed, the same video
    assert not torch.equal(a, c)
