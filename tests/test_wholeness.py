"""Wholeness: connected pieces of a frame's foreground in torch, and whether a frame keeps its
clip's things whole (as many pieces, about as much area) against a reference frame."""

from __future__ import annotations

import pytest
import torch

from vidgen.data.sampling import ClipSampler
from vidgen.data.shapes import ShapesVideos
from vidgen.wholeness import (
    background_colour,
    connected_pieces,
    foreground,
    piece_changes,
    whole_frames,
    whole_where_truth_is,
)


def canvas(*boxes: tuple[int, int, int, int], size: int = 16) -> torch.Tensor:
    """A boolean ``(size, size)`` mask with the boxes ``(top, left, bottom, right)`` set."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = True
    return mask


def test_a_square_is_one_piece_and_a_split_square_two():
    square = canvas((4, 4, 10, 10))
    split = square.clone()
    split[:, 7] = False  # a gap one pixel wide down the middle
    count, area = connected_pieces(torch.stack([square, split]))
    assert count.tolist() == [1, 2] and area.tolist() == [36, 30]


def test_neighbourhoods_and_specks():
    diagonal = canvas((2, 2, 6, 6), (6, 6, 10, 10))  # two squares touching at a corner
    assert connected_pieces(diagonal[None])[0].item() == 1
    assert connected_pieces(diagonal[None], connectivity=4)[0].item() == 2
    with_speck = canvas((2, 2, 8, 8), (12, 12, 13, 14))  # a 2-pixel speck: no thing
    count, area = connected_pieces(with_speck[None])
    assert (count.item(), area.item()) == (1, 36)
    assert connected_pieces(with_speck[None], min_area=1)[0].item() == 2
    empty = torch.zeros(1, 16, 16, dtype=torch.bool)
    assert connected_pieces(empty)[0].item() == 0
    snake = canvas(*[(r, 0, r + 1, 16) for r in range(0, 16, 2)])  # 8 rows, joined at
    ends = [15 * (r % 4 == 1) for r in range(1, 15, 2)]  # alternate ends: one long path
    snake |= canvas(*[(r, c, r + 1, c + 1) for r, c in zip(range(1, 15, 2), ends, strict=True)])
    cut = snake.clone()
    cut[8, 5] = False
    assert connected_pieces(torch.stack([snake, cut]))[0].tolist() == [1, 2]  # long paths
    with pytest.raises(ValueError, match="connectivity"):
        connected_pieces(empty, connectivity=6)


def frames_of(*masks: torch.Tensor, colour: float = 0.8) -> torch.Tensor:
    """A clip ``(1, T, 3, H, W)`` of the masks painted ``colour`` on black."""
    return torch.stack(masks)[None, :, None].float().expand(-1, -1, 3, -1, -1) * colour


def test_a_frame_is_whole_with_as_many_pieces_and_about_the_area():
    square = canvas((2, 2, 10, 10))  # 64 px
    moved = canvas((5, 6, 13, 14))
    halved = canvas((2, 2, 6, 10))  # lost half its area
    split = square & ~canvas((0, 5, 16, 6))
    grown = canvas((2, 2, 10, 11))  # 72 px: within 20 %
    video = frames_of(square, moved, halved, split, grown)
    whole = whole_frames(video, video[:, 0])
    assert whole.tolist() == [[True, True, False, False, True]]
    count, area = piece_changes(video, video[:, 0])
    assert count.tolist() == [[0, 0, 0, 1, 0]]
    assert area[0].tolist() == pytest.approx([0, 0, -0.5, -0.125, 0.125])
    dim = frames_of(moved, colour=0.05)  # below the threshold: gone
    assert whole_frames(dim, video[:, 0]).tolist() == [[False]]


def test_real_clips_are_whole_where_shapes_are_apart_and_a_batch_is_scored_per_clip():
    shapes = ShapesVideos(4, ClipSampler(frames=12), image_size=32)
    video = torch.stack([shapes[i]["video"] for i in range(4)]).float() / 255
    whole = whole_frames(video, video[:, 0])
    assert whole.shape == (4, 12) and whole[:, 0].all()
    assert whole.float().mean() > 0.5  # not all: two shapes in 32 px often touch, one piece
    background = background_colour(video[:, 0])
    assert torch.equal(background, torch.zeros(4, 3, 1, 1))
    assert foreground(video[:, 0], background).any((1, 2)).all()
    blurred = video.mean(1, keepdim=True).expand(-1, 12, -1, -1, -1)  # ghosts of every place
    assert whole_frames(blurred, video[:, 0]).float().mean() < whole.float().mean()
    per_clip = [whole_frames(video[i : i + 1], video[i : i + 1, 0]) for i in range(4)]
    assert torch.equal(torch.cat(per_clip), whole)


def test_whole_where_truth_is_counts_only_the_truths_whole_frames():
    truth = torch.tensor([[True, True, False, True]])
    model = torch.tensor([[True, False, False, True]])
    assert whole_where_truth_is(model, truth).item() == pytest.approx(2 / 3)
    samples = torch.stack([model, truth, ~truth], 1)  # (1, 3, 4): K = 3 futures
    assert whole_where_truth_is(samples, truth).item() == pytest.approx(5 / 9)
    assert whole_where_truth_is(model, torch.zeros_like(truth)).isnan()
