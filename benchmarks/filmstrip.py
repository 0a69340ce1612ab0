"""Filmstrips of held-out clips: the truth above each model's rollout, a PNG for the README.

Columns: the last context frame, then the horizon steps :data:`COLUMNS`; rows per clip: the
truth, then one row per checkpoint. Used by ``compare_predictors.py``; on its own:

    python benchmarks/filmstrip.py out.png demo.yaml runs/demo/checkpoints/last.ckpt [name=ckpt ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from yaml_models import build_data

from vidgen.checkpoint import load_class, read_checkpoint

COLUMNS = (1, 3, 5, 8, 12, 16)  # horizon steps shown (1-based)
SCALE = 3  # nearest-neighbour upscaling of each frame
LABEL_WIDTH = 78


def to_image(frame: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float in [0, 1] -> uint8 ``(H*SCALE, W*SCALE, 3)``."""
    array = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return array.repeat(SCALE, 0).repeat(SCALE, 1)


def checkpoint_class(path: Path) -> type:
    """The model class that wrote the checkpoint at ``path``."""
    return load_class(read_checkpoint(path)["hyper_parameters"]["_class_path"])


def filmstrip(
    config: str, checkpoints: dict[str, Path], out: Path, clips: tuple[int, ...] = (0, 1)
) -> None:
    """Roll every checkpoint out on test ``clips`` of ``config``'s data; write ``out``."""
    data = build_data(config)
    data.setup("test")
    videos = torch.stack([data.datasets["test"][i]["video"] for i in clips]).float() / 255
    models = {
        name: checkpoint_class(path).load_from_checkpoint(path, map_location="cpu").eval()
        for name, path in checkpoints.items()
    }
    context = next(iter(models.values())).context_frames
    horizon = max(COLUMNS)
    with torch.no_grad():
        preds = {name: model(videos[:, :context], horizon) for name, model in models.items()}
    rows, labels = [], []
    for i in range(len(clips)):
        truth = [videos[i, context - 1]] + [videos[i, context + s - 1] for s in COLUMNS]
        rows.append(truth)
        labels.append("truth")
        for name, pred in preds.items():
            rows.append([videos[i, context - 1]] + [pred[i, s - 1] for s in COLUMNS])
            labels.append(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet(rows, labels, ["context", *(f"t+{s}" for s in COLUMNS)]).save(out)


def sheet(
    rows: list[list[torch.Tensor | None]], labels: list[str], titles: list[str]
) -> Image.Image:
    """A grid of frames ``(C, H, W)`` (``None``: an empty cell), a label left of each row and a
    title above each column, frames upscaled :data:`SCALE` times."""
    side = next(f for row in rows for f in row if f is not None).shape[-1] * SCALE
    gap = 2
    image = Image.new(
        "RGB",
        (LABEL_WIDTH + (side + gap) * len(titles), 14 + (side + gap) * len(rows)),
        "white",
    )
    draw = ImageDraw.Draw(image)
    for c, title in enumerate(titles):
        draw.text((LABEL_WIDTH + c * (side + gap) + 2, 1), title, fill="black")
    for r, (row, label) in enumerate(zip(rows, labels, strict=True)):
        y = 14 + r * (side + gap)
        draw.text((2, y + side // 2 - 5), label, fill="black")
        for c, frame in enumerate(row):
            if frame is not None:
                image.paste(Image.fromarray(to_image(frame)), (LABEL_WIDTH + c * (side + gap), y))
    return image


if __name__ == "__main__":
    out, config, *pairs = sys.argv[1:]
    named = dict(p.split("=", 1) if "=" in p else (Path(p).parent.parent.name, p) for p in pairs)
    filmstrip(config, {k: Path(v) for k, v in named.items()}, Path(out))
