"""A small video classifier of the embedded shapes data, whose features measure generated clips.

FVD needs I3D weights that cannot be downloaded here; a Fréchet distance in the features of a
network trained on the data itself is reproducible offline. This 3-D ConvNet learns two labels
of a clip from its pixels: the first shape's kind (square / disc / triangle) and its direction of
motion over the clip (the signs of its x and y displacement: 4 classes). Its 32 pooled features
(before the two linear heads) see appearance and motion, so clips whose shapes blur, vanish or
stand still land far from real clips.

Training is seeded and short (clips from their own seed, disjoint from the VAE's data):

    PYTHONPATH=. python benchmarks/shapes_classifier.py   # trains, prints held-out accuracy
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.data.sampling import ClipSampler
from vidgen.data.shapes import ShapesVideos, shape_positions

SEED = 12345  # the classifier's own videos: not those the VAEs train or are tested on


class ShapesClassifier(nn.Module):
    """Three 3-D convolutions -> 32 pooled features -> shape kind (3) and direction (4) logits."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv3d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool3d(2),
            nn.Conv3d(2 * width, 4 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
        )
        self.kind = nn.Linear(4 * width, 3)
        self.direction = nn.Linear(4 * width, 4)

    def forward(self, videos: Tensor) -> Tensor:
        """Features ``(B, 32)`` of float videos ``(B, T, C, H, W)`` in [0, 1]."""
        return self.body(videos.transpose(1, 2) * 2 - 1)

    def logits(self, videos: Tensor) -> tuple[Tensor, Tensor]:
        features = self(videos)
        return self.kind(features), self.direction(features)


def labelled_clips(
    num_videos: int, image_size: int, frames: int, seed: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Centred clips ``(N, T, C, H, W)`` in [0, 1] of ``num_videos`` videos, the first shape's
    kind and its direction class."""
    sampler = ClipSampler(frames=frames)
    data = ShapesVideos(num_videos, sampler, image_size=image_size, seed=seed)
    videos, kinds, directions = [], [], []
    for item in range(len(data)):
        sample = data[item]
        scene = data.scene(sample["index"])
        numbers = np.asarray(sampler(item, data.video_length), dtype=np.float32)
        ends = shape_positions(scene, numbers[[0, -1]], image_size)[:, 0]  # first shape (y, x)
        dy, dx = ends[1] - ends[0]
        videos.append(sample["video"])
        kinds.append(int(scene["kind"][0]))
        directions.append(2 * int(dy > 0) + int(dx > 0))
    return torch.stack(videos).float() / 255, torch.tensor(kinds), torch.tensor(directions)


def train_classifier(
    image_size: int = 32,
    frames: int = 8,
    num_videos: int = 1024,
    steps: int = 400,
    batch_size: int = 16,
    seed: int = SEED,
    held_out: int = 256,
) -> tuple[ShapesClassifier, dict[str, float]]:
    """Train (seeded) and return the classifier (eval mode) and its accuracies on ``held_out``
    other videos."""
    torch.manual_seed(seed)
    video, kind, direction = labelled_clips(num_videos, image_size, frames, seed)
    net = ShapesClassifier()
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(video), (batch_size,), generator=order)
        k, d = net.logits(video[idx])
        loss = F.cross_entropy(k, kind[idx]) + F.cross_entropy(d, direction[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    video, kind, direction = labelled_clips(held_out, image_size, frames, seed + 1)
    with torch.no_grad():
        k, d = net.logits(video)
    return net, {
        "kind_accuracy": float((k.argmax(1) == kind).float().mean()),
        "direction_accuracy": float((d.argmax(1) == direction).float().mean()),
        "train_seconds": round(time.perf_counter() - start, 1),
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, report = train_classifier(steps=args.steps)
    print(report)


if __name__ == "__main__":
    main()
