"""Test helpers over generated videos: UCF101-layout corpora (:mod:`vidgen.data.fake_ucf101`,
shared with the benchmarks), data modules sized for tests, and a folder of own videos."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidgen.data.fake_ucf101 import (  # noqa: F401  (re-exported for the tests)
    CLASSES,
    FILE_TOKEN,
    GRID,
    Corpus,
    encode_avi,
    make_corpus,
    number_frame,
    read_number,
    rel_path,
    texture_frames,
    write_lists,
)


def dm_for(root: str | os.PathLike, **kwargs):
    """A :class:`UCF101DataModule` of ``root`` sized for tests (4-frame 32 px clips)."""
    from vidgen.data.ucf101 import UCF101DataModule

    args = dict(frames=4, image_size=32, batch_size=4, num_workers=0, val_fraction=0.2)
    args.update(progress=False, index_workers=2)
    args.update(kwargs)
    return UCF101DataModule(str(root), **args)


def frame_numbers(item: dict) -> list[int]:
    """The frame numbers encoded in the pixels of a dataset item's clip."""
    return [read_number(frame) for frame in item["video"]]


def fit_on_corpus(folder: Path, config: str, *overrides: str) -> tuple[object, Corpus]:
    """``vidgen fit --config <packaged config> --trainer.fast_dev_run=1`` on a small generated
    corpus in ``folder``, CPU-sized: 64 px frames, 2-clip batches, random VGG16 weights.
    ``overrides`` shrink what the config itself makes too large for 64 px (e.g. head kernels)."""
    from tiny import tiny_run

    corpus = make_corpus(folder / "UCF101", lengths=(16, 30))
    cli = tiny_run(
        "fit",
        config,
        f"--data.init_args.root={corpus.root}",
        "--trainer.fast_dev_run=1",
        "--data.init_args.image_size=64",
        "--data.init_args.progress=false",
        "--model.init_args.backbone_weights=null",
        *overrides,
    )
    return cli, corpus


# ------------------------------------------------------------------- a folder of own videos


@dataclass
class Folder:
    """What :func:`make_folder` wrote: good videos (relative path -> frames) and bad files."""

    root: Path
    videos: dict[str, int] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)  # kind -> relative path


def encode_video(path: Path, length: int, width: int, height: int, fps: float) -> None:
    """A number-coded video in ``path``'s container (avi: mpeg4; mp4/mkv/mov: libx264 with
    B-frames where available)."""
    from vidgen.outputs import write_video

    frames = np.stack([number_frame(i, width, height) for i in range(length)])
    options = {"g": "12"} if path.suffix == ".avi" else {"g": "12", "bf": "2"}
    codec = "mpeg4" if path.suffix == ".avi" else None
    rate = max(400_000, int(0.3 * width * height * fps))
    write_video(path, frames, fps=fps, codec=codec, bit_rate=rate, options=options)


FOLDER_VIDEOS = {  # relative path -> (frames, width, height, fps)
    "cats/a.avi": (30, 64, 48, 25),
    "cats/b.mp4": (26, 80, 48, 30),
    "cats/deep/c.mkv": (24, 48, 64, 12),
    "dogs/d.mov": (28, 64, 64, 24),
    "dogs/e.mp4": (40, 96, 54, 29.97),
    "dogs/f.avi": (22, 64, 48, 25),
    "loose.mkv": (20, 64, 48, 25),
    "fish/no_extension": (25, 64, 48, 25),  # an mp4 without extension: found by content
}


def make_folder(root: str | os.PathLike) -> Folder:
    """A folder of own videos: mixed containers (avi, mp4, mkv, mov), sizes and fps, nested
    class folders, a video in the root, one without an extension, and bad files: zero-byte,
    truncated, garbage with a video extension, a too-short video and a text file."""
    root = Path(root)
    folder = Folder(root)
    for rel, (length, width, height, fps) in FOLDER_VIDEOS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        target = path if path.suffix else path.with_suffix(".mp4")
        encode_video(target, length, width, height, fps)
        if target != path:
            target.rename(path)
        folder.videos[rel] = length
    folder.bad = {
        "zero_byte": "cats/empty.mp4",
        "truncated": "dogs/cut.mkv",
        "garbage": "fish/garbage.avi",
        "short": "fish/short.mp4",
        "not_video": "notes/readme.txt",
    }
    encode_video(root / folder.bad["truncated"], 30, 64, 48, 25)
    data = (root / folder.bad["truncated"]).read_bytes()
    (root / folder.bad["truncated"]).write_bytes(data[: len(data) // 3])
    (root / folder.bad["zero_byte"]).write_bytes(b"")
    (root / folder.bad["garbage"]).write_bytes(np.random.default_rng(1).bytes(5000))
    encode_video(root / folder.bad["short"], 2, 64, 48, 25)
    (root / "notes").mkdir()
    (root / folder.bad["not_video"]).write_text("not a video\n")
    return folder
