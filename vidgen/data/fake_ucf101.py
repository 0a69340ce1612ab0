"""A fake UCF101: a small corpus in the exact UCF101 layout, with real encoded .avi videos.

For trying the file pipeline (index, decoders, frame cache, ``UCF101DataModule``, ``vidgen fit
--data.root``) without the 6.5 GB download, and for testing it: the tests and the data
benchmarks run on such corpora. ``make_corpus(root)`` writes
``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and
``root/ucfTrainTestlist/{classInd,trainlist0F,testlist0F}.txt`` (CRLF, 1-based labels, blank
lines), including the quirks of the real data: the ``HandstandPushups`` folder holds
``v_HandStandPushups_...`` files and the lists spell them so. With ``quirks=True`` it adds a
zero-byte file, a truncated file, a header-only file, a garbage file, a listed-but-missing file,
a 3-frame video and an AVI with B-frames (decord cannot seek in it), which the data modules
report and leave out.

With ``content="numbers"`` the pixels encode the frame number (:func:`number_frame`,
:func:`read_number`), so a decoded clip shows which frames it holds. ``content="texture"`` is a
panning random texture (realistic for codec and decoding speed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# classInd order (labels); the HandstandPushups folder's files say HandStandPushups
CLASSES = ("ApplyEyeMakeup", "BabyCrawling", "HandstandPushups", "Skijet", "SkyDiving", "YoYo")
FILE_TOKEN = {"HandstandPushups": "HandStandPushups"}
GRID = 4  # the frame number is written as GRID x GRID black/white cells (16 bits)


def number_frame(n: int, width: int, height: int) -> np.ndarray:
    """uint8 ``(H, W, 3)``: the bits of ``n`` as cells of a grid in the centre square."""
    img = np.full((height, width, 3), 128, np.uint8)
    side = min(width, height)
    top, left = (height - side) // 2, (width - side) // 2
    cell = side / GRID
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        value = 255 if (n >> bit) & 1 else 0
        y0, y1 = top + round(r * cell), top + round((r + 1) * cell)
        x0, x1 = left + round(c * cell), left + round((c + 1) * cell)
        img[y0:y1, x0:x1] = value
    return img


def read_number(frame: np.ndarray) -> int:
    """Frame number of a square (centre-cropped) frame, ``(H, W, 3)`` or ``(3, H, W)``."""
    frame = np.asarray(frame)
    if frame.shape[0] == 3 and frame.shape[-1] != 3:
        frame = frame.transpose(1, 2, 0)
    side = frame.shape[0]
    cell = side / GRID
    n = 0
    for bit in range(GRID * GRID):
        r, c = divmod(bit, GRID)
        y, x = int((r + 0.5) * cell), int((c + 0.5) * cell)
        q = max(1, int(cell / 4))
        if frame[y - q : y + q + 1, x - q : x + q + 1].mean() > 127:
            n |= 1 << bit
    return n


def texture_frames(length: int, width: int, height: int, seed: int) -> np.ndarray:
    """uint8 ``(S, H, W, 3)``: a smooth random texture panning across the frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 4, (width + 4 * length) // 8 + 4, 3), np.uint8)
    big = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
    speed = int(rng.integers(1, 4))
    return np.stack([big[:height, t * speed : t * speed + width] for t in range(length)])


def encode_avi(
    path: Path,
    length: int,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    content: str = "numbers",
    seed: int = 0,
    b_frames: int = 0,
) -> None:
    """Write an mpeg4 .avi of ``length`` frames (number-coded or texture)."""
    from vidgen.outputs import write_video

    if content == "numbers":
        frames = np.stack([number_frame(i, width, height) for i in range(length)])
    else:
        frames = texture_frames(length, width, height, seed)
    options = {"g": "12"}
    if b_frames:
        options["bf"] = str(b_frames)
    rate = max(400_000, int(0.3 * width * height * fps))
    write_video(path, frames, fps=fps, codec="mpeg4", bit_rate=rate, options=options)


@dataclass
class Corpus:
    """What :func:`make_corpus` wrote."""

    root: Path
    video_dir: Path
    list_dir: Path
    classes: tuple[str, ...]
    lengths: dict[str, int] = field(default_factory=dict)  # relative path -> frames written
    quirks: dict[str, str] = field(default_factory=dict)  # kind -> relative path
    test_groups: dict[int, set[int]] = field(default_factory=dict)  # fold -> test groups

    def path(self, rel: str) -> Path:
        """The file of a video named by its path relative to ``video_dir``."""
        return self.video_dir / rel


def rel_path(cls: str, group: int, clip: int) -> str:
    """``<Class>/v_<Token>_gXX_cYY.avi``, as UCF101 names a clip (and its lists spell it)."""
    token = FILE_TOKEN.get(cls, cls)
    return f"{cls}/v_{token}_g{group:02d}_c{clip:02d}.avi"


def _write_job(job: tuple) -> None:
    path, length, width, height, fps, content, seed, b_frames = job
    encode_avi(Path(path), length, width, height, fps, content, seed, b_frames)


def make_corpus(
    root: str | os.PathLike,
    classes: tuple[str, ...] = CLASSES,
    groups: int = 7,
    clips: int = 1,
    size: tuple[int, int] = (64, 48),
    lengths: tuple[int, int] = (24, 48),
    fps: int = 25,
    content: str = "numbers",
    quirks: bool = True,
    nested: bool = True,
    seed: int = 0,
    workers: int = 1,
    big: int = 0,
) -> Corpus:
    """Write a UCF101-layout corpus under ``root`` (see the module docstring).

    Args:
        groups, clips: groups ``g01..`` per class and clips ``c01..`` per group.
        size: ``(width, height)`` of the videos; ``big`` of them are 320x240 instead.
        lengths: frame counts are drawn uniformly from this closed range.
        nested: class folders under ``root/UCF-101`` (official) or directly in ``root``.
        workers: encode in this many processes.
    """
    root = Path(root)
    video_dir = root / "UCF-101" if nested else root
    list_dir = root / "ucfTrainTestlist"
    list_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corpus = Corpus(root, video_dir, list_dir, tuple(classes))
    jobs = []
    for cls in classes:
        (video_dir / cls).mkdir(parents=True, exist_ok=True)
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                rel = rel_path(cls, g, c)
                length = int(rng.integers(lengths[0], lengths[1] + 1))
                w, h = (320, 240) if len(jobs) < big else size
                corpus.lengths[rel] = length
                jobs.append((str(video_dir / rel), length, w, h, fps, content, seed + len(jobs), 0))
    if quirks:
        jobs += quirk_jobs(corpus, groups, size, fps, content)
    if workers > 1:
        from vidgen.data.parallel import process_map

        for _ in process_map(_write_job, jobs, workers, "writing videos", progress=False):
            pass
    else:
        for job in jobs:
            _write_job(job)
    if quirks:
        damage_quirks(corpus)
    write_lists(corpus, groups, list(corpus.quirks.values()))
    return corpus


def quirk_jobs(
    corpus: Corpus, groups: int, size: tuple[int, int], fps: int, content: str
) -> list[tuple]:
    """Name the problem clips (c90+, in the last group: never a test group) in
    ``corpus.quirks`` and return the encoding jobs of those that start as real videos."""
    classes, g = corpus.classes, groups
    extra = {
        "zero_byte": rel_path(classes[0], g, 91),
        "truncated": rel_path(classes[1], g, 92),
        "header_only": rel_path(classes[2], g, 93),
        "garbage": rel_path(classes[3], g, 94),
        "missing": rel_path(classes[4], g, 95),
        "short": rel_path(classes[0], g, 96),
        "b_frames": rel_path(classes[1], g, 97),
    }
    corpus.quirks = extra
    corpus.lengths[extra["short"]] = 3
    corpus.lengths[extra["b_frames"]] = 40
    where = {name: str(corpus.video_dir / rel) for name, rel in extra.items()}
    return [
        (where["truncated"], 60, *size, fps, content, 1, 0),
        (where["header_only"], 30, *size, fps, content, 2, 0),
        (where["short"], 3, *size, fps, content, 3, 0),
        (where["b_frames"], 40, *size, fps, content, 4, 2),
    ]


def damage_quirks(corpus: Corpus) -> None:
    """Make the problem clips what their names say (empty, cut short, garbage)."""
    path = {name: corpus.video_dir / rel for name, rel in corpus.quirks.items()}
    path["zero_byte"].write_bytes(b"")
    data = path["truncated"].read_bytes()
    path["truncated"].write_bytes(data[: len(data) // 2])
    path["header_only"].write_bytes(path["header_only"].read_bytes()[:600])
    path["garbage"].write_bytes(np.random.default_rng(5).bytes(20_000))


def write_lists(corpus: Corpus, groups: int, extra: list[str]) -> None:
    """classInd.txt and the three folds' lists (CRLF, trailing blank lines), like the real ones.

    Fold ``f`` tests on groups ``2f-1`` and ``2f`` (UCF101: groups 1-7, 8-14, 15-25).
    """
    label = {cls: i for i, cls in enumerate(corpus.classes)}
    ind = "".join(f"{i + 1} {cls}\r\n" for i, cls in enumerate(corpus.classes))
    (corpus.list_dir / "classInd.txt").write_bytes(ind.encode())
    listed = sorted(corpus.lengths) + extra
    for fold in (1, 2, 3):
        test_groups = {2 * fold - 1, 2 * fold}
        corpus.test_groups[fold] = test_groups
        train, test = [], []
        for rel in dict.fromkeys(listed):
            cls = rel.split("/")[0]
            group = int(rel.split("_g")[1][:2])
            if group in test_groups:
                test.append(f"{rel}\r\n")
            else:
                train.append(f"{rel} {label[cls] + 1}\r\n")
        (corpus.list_dir / f"trainlist0{fold}.txt").write_bytes(("".join(train) + "\r\n").encode())
        (corpus.list_dir / f"testlist0{fold}.txt").write_bytes(("".join(test) + "\r\n").encode())
