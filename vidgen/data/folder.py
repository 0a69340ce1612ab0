"""Your own videos: ``VideoFolderDataModule`` over any folder (or files) of videos.

This module only finds the files, labels them and splits them; the index, decoding, frame
cache and bad-file handling are the shared base's (:mod:`vidgen.data.file_source`).

Every file under ``root`` (recursively; hidden files and folders skipped) is a candidate when
its extension is a video one (:data:`VIDEO_EXTENSIONS`) or its first bytes are a video
container's (AVI, MP4/MOV, Matroska/WebM, MPEG-PS/TS, FLV, Ogg: :func:`looks_like_video`);
the index then probes each (a candidate that does not decode is reported and left out, and
other files are reported as "not videos"). Labels come from the first sub-folder under
``root`` (sorted names, 0-based); a video directly in ``root``, or every video with
``labels=False``, gets -1.

Split by file, reproducible on every machine: each readable file's relative path is hashed with
the seed, files are ranked by that hash and the first ``round(test_fraction * N)`` go to ``test``,
the next ``round(val_fraction * N)`` to ``val`` (at least one each when the fraction is above 0
and there are enough files), the rest to ``train``. Adding files moves few others. A split given
as a list file (paths relative to ``root``, one per line; anything after the path is ignored)
takes exactly those files instead, and the drawn splits share the files no list names.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import DataLoader

from vidgen.data.file_source import Listing, VideoFileDataModule

VIDEO_EXTENSIONS = frozenset(
    {".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".flv"}
    | {".wmv", ".3gp", ".ogv"}
)


def looks_like_video(path: str | os.PathLike) -> bool:
    """True when the first bytes of ``path`` are those of a video container."""
    try:
        with open(path, "rb") as f:
            head = f.read(400)
    except OSError:
        return False
    return (
        (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free")  # MP4, MOV, 3GP
        or head[:4] == b"\x1a\x45\xdf\xa3"  # Matroska, WebM
        or head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")  # MPEG program/elementary
        or (len(head) > 376 and head[0] == head[188] == head[376] == 0x47)  # MPEG-TS
        or head[:3] == b"FLV"
        or head[:4] == b"OggS"
        or head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")  # ASF / WMV
    )


def find_videos(roots: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """``(video candidates, other files)`` under ``roots`` (files or folders), sorted."""
    videos, others = set(), set()
    for root in roots:
        if root.is_file():
            files = [root]
        else:
            files = []
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [Path(folder) / n for n in names if not n.startswith(".")]
        for file in files:
            if file.suffix.lower() in VIDEO_EXTENSIONS or looks_like_video(file):
                videos.add(file)
            else:
                others.add(str(file))
    return sorted(videos), sorted(others)


def split_rank(rel_path: str, seed: int) -> str:
    """The sort key that orders files for the seeded split (a hash of seed and path)."""
    return hashlib.sha1(f"{seed}:{rel_path}".encode()).hexdigest()


def split_files(
    rel_paths: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """The seeded split of ``rel_paths`` into ``train``/``val``/``test`` (module docstring)."""
    ranked = sorted(rel_paths, key=lambda rel: split_rank(rel, seed))
    n = len(ranked)
    counts = []
    for fraction in (test_fraction, val_fraction):
        k = round(fraction * n)
        if fraction > 0 and k == 0 and n - sum(counts) > 1:
            k = 1  # a small folder still gets one test / val video
        counts.append(min(k, max(0, n - sum(counts) - 1)))
    n_test, n_val = counts
    return {
        "test": sorted(ranked[:n_test]),
        "val": sorted(ranked[n_test : n_test + n_val]),
        "train": sorted(ranked[n_test + n_val :]),
    }


def read_list(path: str | os.PathLike) -> list[str]:
    """Relative paths of a list file (first field of each non-blank line, ``\\`` as ``/``)."""
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    return [line.split()[0].replace("\\", "/") for line in text.splitlines() if line.strip()]


class VideoFolderDataModule(VideoFileDataModule):
    """Clips of any videos: a folder (nested, mixed containers), one file or several.

    ``root`` is a folder, a video file, or a list of them. ``train``/``val``/``test`` are the
    seeded split by file (:mod:`vidgen.data.folder`) or the given list files; ``vidgen predict``
    reads every video found, one clip each from its first frame (``eval_frames`` frames at
    ``frame_skip``), whatever the split. Index (``.vidgen_folder_index.json`` beside the videos,
    or in ``cache_dir`` when the folder is read-only), decoder, resize rule, frame cache and
    bad-file handling: :class:`~vidgen.data.VideoFileDataModule`.

    Args:
        root: a folder, a video file, or a list of folders and files.
        labels: label each video by its first sub-folder under the folder (sorted names,
            0-based; -1 directly in the folder); False: every label is -1.
        val_fraction, test_fraction: shares of the files drawn for validation and test.
        seed: the seed of that draw.
        train_list, val_list, test_list: list files (paths relative to the folder) that define
            a split instead of the draw.
        **kwargs: the :class:`~vidgen.data.VideoFileDataModule` arguments (``decoder``,
            ``resize``, ``cache_dir``, ``frame_cache``, ... and ``frames``, ``eval_frames``,
            ``frame_skip``, ``image_size``, ``batch_size``, ...).
    """

    name = "folder"

    def __init__(
        self,
        root: str | list[str],
        labels: bool = True,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        train_list: str | None = None,
        val_list: str | None = None,
        test_list: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(root=root, **kwargs)
        self.labels = labels
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.lists = {"train": train_list, "val": val_list, "test": test_list}

    def roots(self) -> list[Path]:
        """The folders and files of ``root``; raises ``ValueError`` for one that is missing."""
        roots = [self.root] if isinstance(self.root, (str, os.PathLike)) else list(self.root)
        paths = [Path(r).expanduser() for r in roots]
        for path in paths:
            if not path.exists():
                raise ValueError(
                    f"data.root {path} does not exist: set it to a folder of videos, a video "
                    "file or a list of them"
                )
        if not paths:
            raise ValueError("data.root is empty: give a folder of videos or video files")
        return paths

    def check_config(self) -> None:
        super().check_config()
        for name in ("val_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"data.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("data.val_fraction + data.test_fraction must be below 1")
        self.roots()
        for split, path in self.lists.items():
            if path is not None and not Path(path).is_file():
                raise ValueError(f"data.{split}_list {path} does not exist")

    def empty_split_hint(self, split: str) -> str:
        return (
            f"add videos to {self.root}, lower data.frames/data.eval_frames, raise "
            f"data.{split}_fraction, or give data.{split}_list"
            if split in ("val", "test")
            else f"add videos to {self.root} or lower data.frames/data.eval_frames"
        )

    def list_videos(self) -> Listing:
        """Every video under ``root``, split by the seeded draw or the list files."""
        roots = self.roots()
        folders = [r if r.is_dir() else r.parent for r in roots]
        video_dir = Path(os.path.commonpath([f.resolve() for f in folders]))
        files, others = find_videos([r.resolve() for r in roots])
        if not files:
            raise ValueError(
                f"no video under {self.root} ({len(others)} other files, e.g. "
                f"{others[:3]}): videos are recognised by extension "
                f"({', '.join(sorted(VIDEO_EXTENSIONS))}) or by their container's first bytes"
            )
        rel = {f.relative_to(video_dir).as_posix(): f for f in files}
        folders_of = sorted({r.split("/")[0] for r in rel if "/" in r}) if self.labels else []
        label = {name: i for i, name in enumerate(folders_of)}

        def labelled(names: list[str]) -> list[tuple[Path, int]]:
            return [(rel[r], label.get(r.split("/")[0], -1)) for r in names]

        listed, missing = {}, []
        for split, path in self.lists.items():
            if path is not None:
                names = read_list(path)
                missing += [n for n in names if n not in rel]
                listed[split] = [n for n in names if n in rel]
        taken = {rel[n] for names in listed.values() for n in names}
        name_of = {path: name for name, path in rel.items()}

        def draw(readable: list[Path]) -> dict[str, list[tuple[Path, int]]]:
            names = [name_of[p] for p in readable if p in name_of and p not in taken]
            drawn = split_files(names, self.val_fraction, self.test_fraction, self.seed)
            return {split: labelled(names) for split, names in drawn.items() if split not in listed}

        splits = {split: labelled(names) for split, names in listed.items()}
        splits["predict"] = labelled(list(rel))
        return Listing(
            video_dir,
            splits,
            folders_of,
            missing=missing,
            problems={"files that are not videos (by extension and content)": others},
            draw=draw,
        )

    def predict_dataloader(self) -> DataLoader:
        """Every video found, one clip from its first frame (see the class docstring)."""
        return self.predict_loader("predict")
