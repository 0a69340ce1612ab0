"""Whether things stay whole: the connected pieces of a frame's foreground against a reference.

A generated future can move the right amount and still tear a shape apart, smear it or let it
shrink away; pixel scores and collapse do not tell. On a flat background (the embedded shapes
data: shapes drawn over black), a frame's foreground is the set of pixels whose colour differs
from the background's; its connected pieces (:func:`connected_pieces`) are the things in view.
A frame is *whole* (:func:`whole_frames`) when it has as many pieces as the clip's reference
frame (its first) and their total area is within a tolerance of the reference's.

Real clips are not always whole either (things overlap and merge into one piece), so a model's
futures are read against the truth's: the share of the frames in which the true clip is whole
where the generated one is whole too (:func:`whole_where_truth_is`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

THRESHOLD = 0.1
"""Largest channel difference to the background (frames in [0, 1]) still counted background."""
MIN_AREA = 4
"""Pieces of fewer pixels are ignored: resampling leaves stray pixels that are no thing."""
TOLERANCE = 0.2
"""Relative difference of foreground area to the reference's that a whole frame may have."""


def background_colour(frames: Tensor) -> Tensor:
    """``(N, C, 1, 1)``: the channel-wise median colour of each frame ``(N, C, H, W)``, the
    background's where a flat background covers more than half of the frame."""
    return frames.flatten(2).median(-1).values[..., None, None]


def foreground(frames: Tensor, background: Tensor, threshold: float = THRESHOLD) -> Tensor:
    """Boolean ``(N, H, W)``: pixels of ``frames`` ``(N, C, H, W)`` whose colour differs from
    ``background`` (broadcast to ``frames``) by more than ``threshold`` in some channel."""
    return (frames.float() - background.float()).abs().amax(1) > threshold


def connected_pieces(
    mask: Tensor, connectivity: int = 8, min_area: int = MIN_AREA
) -> tuple[Tensor, Tensor]:
    """The number of connected pieces of each mask ``(N, H, W)`` and their total area in
    pixels, both ``(N,)``, over pieces of at least ``min_area`` pixels.

    Pixels are joined to their 8 neighbours (or the 4 along the axes, ``connectivity=4``).
    Label propagation in torch: every foreground pixel starts with its own label and takes the
    largest among its neighbours' until none changes; a piece is then the pixels sharing a
    label. No SciPy; any batch at once.
    """
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")
    if mask.ndim != 3:
        raise ValueError(f"expected masks (N, H, W), got {tuple(mask.shape)}")
    n, h, w = mask.shape
    keep = mask.float()[:, None]
    own = torch.arange(1, h * w + 1, dtype=torch.float32, device=mask.device)
    labels = own.view(1, 1, h, w) * keep
    while True:
        rows = F.max_pool2d(labels, (3, 1), 1, (1, 0))
        if connectivity == 8:  # a 3 x 3 neighbourhood, as two passes of 3
            grown = F.max_pool2d(rows, (1, 3), 1, (0, 1))
        else:
            grown = torch.maximum(rows, F.max_pool2d(labels, (1, 3), 1, (0, 1)))
        grown = grown * keep
        if torch.equal(grown, labels):
            break
        labels = grown
    flat = labels.view(n, h * w).long()  # 0: background; else the piece's largest pixel index
    sizes = torch.zeros(n, h * w + 1, device=mask.device).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float32)
    )[:, 1:]
    pieces = sizes >= max(min_area, 1)
    return pieces.sum(1), (sizes * pieces).sum(1)


def piece_changes(
    frames: Tensor, reference: Tensor, threshold: float = THRESHOLD
) -> tuple[Tensor, Tensor]:
    """How each of ``frames`` ``(B, T, C, H, W)`` differs from its clip's ``reference`` frame
    ``(B, C, H, W)``: the change in the number of connected foreground pieces and the relative
    change of their total area, both ``(B, T)``. The background is the reference's median
    colour (:func:`background_colour`); frames are floats in [0, 1]."""
    b, t = frames.shape[:2]
    background = background_colour(reference.float())
    ref_count, ref_area = connected_pieces(foreground(reference, background, threshold))
    mask = foreground(frames.flatten(0, 1), background.repeat_interleave(t, 0), threshold)
    count, area = (v.view(b, t) for v in connected_pieces(mask))
    return count - ref_count[:, None], (area - ref_area[:, None]) / ref_area[:, None]


def whole_frames(
    frames: Tensor,
    reference: Tensor,
    tolerance: float = TOLERANCE,
    threshold: float = THRESHOLD,
) -> Tensor:
    """Boolean ``(B, T)``: whether each of ``frames`` ``(B, T, C, H, W)`` shows its clip's things
    whole: as many connected foreground pieces as the clip's ``reference`` frame ``(B, C, H,
    W)`` and a total area within ``tolerance`` (relative) of the reference's
    (:func:`piece_changes`)."""
    count, area = piece_changes(frames, reference, threshold)
    return (count == 0) & (area.abs() <= tolerance)


def whole_where_truth_is(whole: Tensor, truth_whole: Tensor) -> Tensor:
    """The share of the frames in which the truth is whole (``truth_whole``, ``(B, T)``) where
    ``whole`` (``(B, T)`` or ``(B, K, T)``, K futures of each clip) is whole too: 1 keeps
    everything the truth keeps whole; NaN where the truth is never whole."""
    truth = truth_whole if whole.ndim == truth_whole.ndim else truth_whole[:, None]
    truth = truth.expand_as(whole)
    return (whole & truth).sum() / truth.sum()
