import numpy as np
import pytest

from vidgen.data.sampling import ClipSampler, clip_indices, clip_span, part_range


def test_span_matches_definition():
    assert clip_span(8, 0) == 8
    assert clip_span(8, 1) == 15  # stride 2
    assert clip_span(4, 3) == 13  # stride 4


def test_stride_eval_is_centred_window():
    idx = clip_indices(100, 5, frame_skip=1, mode="stride")
    assert idx.tolist() == [45, 47, 49, 51, 53]  # span 9, slack 91 -> start 45
    assert np.array_equal(idx, clip_indices(100, 5, frame_skip=1, mode="stride"))


def test_stride_training_is_random_but_valid():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = clip_indices(50, 6, frame_skip=2, mode="stride", rng=rng)
        assert np.all(np.diff(idx) == 3)
        assert idx[0] >= 0 and idx[-1] <= 49
        starts.add(int(idx[0]))
    assert starts == set(range(0, 50 - 16 + 1))  # every start of the 35 possible is drawn


def test_short_video_shrinks_stride_then_repeats_last():
    # span with skip 3 would be 22 > 12 frames: stride shrinks to (12-1)//(8-1) = 1
    assert clip_indices(12, 8, frame_skip=3).tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert clip_indices(20, 4, frame_skip=9).tolist() == [0, 6, 12, 18]  # stride 6, slack 1
    assert clip_indices(3, 5, frame_skip=0).tolist() == [0, 1, 2, 2, 2]
    assert clip_indices(1, 4).tolist() == [0, 0, 0, 0]
    rng = np.random.default_rng(1)
    assert clip_indices(3, 5, rng=rng).tolist() == [0, 1, 2, 2, 2]


def test_segments_cover_the_video():
    assert clip_indices(100, 4, mode="segments").tolist() == [12, 37, 62, 87]
    rng = np.random.default_rng(0)
    for _ in range(100):
        idx = clip_indices(100, 4, mode="segments", rng=rng)
        assert [i // 25 for i in idx] == [0, 1, 2, 3]  # one frame from each quarter
    assert clip_indices(3, 5, mode="segments").tolist() == [0, 0, 1, 1, 2]


def test_parts_are_disjoint_and_cover():
    ranges = [part_range(100, p, 3) for p in range(3)]
    assert ranges == [(0, 33), (33, 66), (66, 100)]
    clips = [set(clip_indices(100, 8, 1, part=p, parts=3).tolist()) for p in range(3)]
    assert not (clips[0] & clips[1]) and not (clips[1] & clips[2])
    assert part_range(2, 3, 4) == (1, 2)  # more parts than frames still gives a frame


def test_clip_sampler_maps_items_to_videos():
    sampler = ClipSampler(frames=4, frame_skip=0, clips_per_video=2)
    assert [sampler.video_of(i) for i in range(5)] == [0, 0, 1, 1, 2]
    first, second = sampler(0, 40), sampler(1, 40)
    assert first.max() < 20 <= second.min()
    assert np.array_equal(sampler(0, 40), first)  # deterministic when not random


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_frames=0, frames=4),
        dict(num_frames=10, frames=0),
        dict(num_frames=10, frames=4, frame_skip=-1),
        dict(num_frames=10, frames=4, mode="bogus"),
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        clip_indices(**kwargs)
