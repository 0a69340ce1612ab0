"""UCF101: its split files, class index and groups, and ``UCF101DataModule``.

This module only reads UCF101's lists and names; the index, decoding, frame cache and bad-file
handling are the shared base's (:mod:`vidgen.data.file_source`).

Layout (as extracted from the official archives)::

    root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi     (or the class folders directly in root)
    root/ucfTrainTestlist/classInd.txt              "1 ApplyEyeMakeup" (1-based)
    root/ucfTrainTestlist/trainlist0{1,2,3}.txt     "<Class>/v_<Class>_gXX_cYY.avi 1"
    root/ucfTrainTestlist/testlist0{1,2,3}.txt      "<Class>/v_<Class>_gXX_cYY.avi"

Labels come from each entry's folder token through ``classInd.txt`` (0-based), matched
case-insensitively; paths are resolved case-insensitively too (the lists and files spell
``HandStandPushups`` where the folder and ``classInd.txt`` say ``HandstandPushups``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vidgen.data.file_source import Listing, VideoFileDataModule

LIST_DIR = "ucfTrainTestlist"
VIDEO_DIR = "UCF-101"
INDEX_FILE = ".vidgen_ucf101_index.json"  # the index beside the videos (VideoFileDataModule)
FOLDS = (1, 2, 3)
_GROUP = re.compile(r"_g(\d+)_c(\d+)", re.IGNORECASE)


class UCF101ConfigError(ValueError):
    """A UCF101 root, fold or split that cannot work; the message names the fix."""


@dataclass(frozen=True)
class Entry:
    """One line of a split list: the listed relative path, its 0-based label and its group."""

    path: str
    label: int
    group: int


# ------------------------------------------------------------------------------ split files


def _lines(path: Path) -> list[str]:
    """Non-blank, stripped lines (CRLF, BOM and trailing blanks tolerated)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_layout(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(video_dir, list_dir)`` of a UCF101 root; raises :class:`UCF101ConfigError`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UCF101ConfigError(
            f"UCF101 root {root} does not exist: set data.root to the folder where UCF101.rar "
            f"and UCF101TrainTestSplits-RecognitionTask.zip were extracted"
        )
    video_dir = root / VIDEO_DIR if (root / VIDEO_DIR).is_dir() else root
    for candidate in (root / LIST_DIR, video_dir / LIST_DIR, root.parent / LIST_DIR):
        if (candidate / "classInd.txt").is_file():
            return video_dir, candidate
    raise UCF101ConfigError(
        f"no {LIST_DIR}/classInd.txt under {root}: extract "
        f"UCF101TrainTestSplits-RecognitionTask.zip into {root} so that {root / LIST_DIR} "
        f"holds classInd.txt, trainlist0{{1,2,3}}.txt and testlist0{{1,2,3}}.txt"
    )


def read_class_index(path: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
    """``classInd.txt`` -> (class names in label order, lower-cased name -> 0-based label)."""
    pairs = []
    for line in _lines(Path(path)):
        number, _, name = line.partition(" ")
        if not number.isdigit() or not name.strip():
            raise UCF101ConfigError(f"{path}: bad line {line!r}; expected '<number> <Class>'")
        pairs.append((int(number) - 1, name.strip()))
    pairs.sort()
    if [label for label, _ in pairs] != list(range(len(pairs))):
        raise UCF101ConfigError(f"{path}: class numbers must run 1..N without gaps")
    names = [name for _, name in pairs]
    return names, {name.lower(): label for label, name in pairs}


def group_of(path: str) -> int:
    """The group number ``XX`` of ``.../v_<Class>_gXX_cYY.avi`` (-1 when absent)."""
    match = _GROUP.search(Path(path).name)
    return int(match.group(1)) if match else -1


def read_split(path: str | os.PathLike, classes: dict[str, int]) -> tuple[list[Entry], list[str]]:
    """A train/test list -> (entries, problems). Labels come from the folder token through
    ``classes``; a listed 1-based label that disagrees is reported as a problem, folder wins."""
    entries, problems = [], []
    for line in _lines(Path(path)):
        parts = line.replace("\\", "/").split()
        rel = parts[0]
        token = rel.split("/")[0] if "/" in rel else rel.split("_")[1] if "_" in rel else rel
        label = classes.get(token.lower())
        if label is None:
            problems.append(f"{rel}: class {token!r} is not in classInd.txt")
            continue
        if len(parts) > 1 and parts[1].isdigit() and int(parts[1]) - 1 != label:
            problems.append(f"{rel}: listed label {parts[1]} != classInd label {label + 1}")
        entries.append(Entry(rel, label, group_of(rel)))
    return entries, problems


def split_lists(list_dir: Path, fold: int) -> tuple[Path, Path]:
    """``(trainlist0F.txt, testlist0F.txt)`` of ``fold``; raises :class:`UCF101ConfigError`."""
    if fold not in FOLDS:
        raise UCF101ConfigError(f"data.fold={fold}: UCF101 has folds 1, 2 and 3")
    files = (list_dir / f"trainlist0{fold}.txt", list_dir / f"testlist0{fold}.txt")
    for file in files:
        if not file.is_file():
            raise UCF101ConfigError(
                f"{file} is missing: fold {fold} needs it; re-extract "
                f"UCF101TrainTestSplits-RecognitionTask.zip or choose another data.fold"
            )
    return files


def validation_groups(groups: Iterable[int], fraction: float) -> set[int]:
    """Seed-free choice of about ``fraction`` of ``groups``, evenly spread over their order.

    ``k = max(1, round(fraction * G))`` groups: the middle one of each of k equal runs of the
    sorted groups. Deterministic and the same on every machine and rank.
    """
    ordered = sorted(set(groups))
    if not ordered or fraction <= 0:
        return set()
    k = min(len(ordered) - 1, max(1, round(fraction * len(ordered))))
    if k < 1:
        return set()
    return {ordered[int((j + 0.5) * len(ordered) / k)] for j in range(k)}


def resolve_paths(video_dir: Path, rel_paths: Iterable[str]) -> dict[str, Path | None]:
    """Listed relative path -> file on disk (matched case-insensitively), None when missing."""
    by_lower: dict[str, Path] = {}
    wanted = {rel.lower() for rel in rel_paths}
    folders = {rel.split("/")[0] for rel in wanted if "/" in rel}
    with os.scandir(video_dir) as it:
        class_dirs = [e for e in it if e.is_dir() and e.name.lower() in folders]
    for class_dir in class_dirs:
        with os.scandir(class_dir.path) as it:
            for entry in it:
                by_lower[f"{class_dir.name}/{entry.name}".lower()] = Path(entry.path)
    for rel in wanted - by_lower.keys():
        if (video_dir / rel).is_file():  # flat or unusual layouts
            by_lower[rel] = video_dir / rel
    return {rel: by_lower.get(rel.lower()) for rel in rel_paths}


# ------------------------------------------------------------------------------ data module


class UCF101DataModule(VideoFileDataModule):
    """UCF101 clips from the official archives, with the official folds.

    ``root`` holds ``UCF-101/`` (class folders of ``v_<Class>_gXX_cYY.avi``) and
    ``ucfTrainTestlist/`` (``classInd.txt``, ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt``);
    class folders directly in ``root`` work too. ``train`` is the fold's train list minus the
    validation groups, ``val`` those groups (no group is in both), ``test`` the fold's test list.
    Index, decoder, frame cache and bad-file handling: :class:`VideoFileDataModule`.

    Args:
        root: the UCF101 folder.
        fold: official split 1, 2 or 3.
        val_fraction: share of the train list's groups (``gXX``) held out for validation.
        frame_skip: k, source frames dropped between two kept frames (default 1 here).
        **kwargs: the :class:`VideoFileDataModule` arguments.
    """

    name = "ucf101"

    def __init__(
        self,
        root: str,
        fold: int = 1,
        val_fraction: float = 0.1,
        frame_skip: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(root=root, frame_skip=frame_skip, **kwargs)
        self.fold = fold
        self.val_fraction = val_fraction

    def check_config(self) -> None:
        super().check_config()
        if not 0.0 < self.val_fraction < 1.0:
            raise UCF101ConfigError(
                f"data.val_fraction={self.val_fraction}: set it in (0, 1), e.g. 0.1"
            )
        _, list_dir = find_layout(self.root)
        split_lists(list_dir, self.fold)

    def empty_split_hint(self, split: str) -> str:
        return (
            f"fold {self.fold}: check data.root and the list files, lower "
            "data.frames/data.eval_frames, or raise data.val_fraction for an empty val split"
        )

    def list_videos(self) -> Listing:
        """The fold's lists: train minus the validation groups, those groups, and test."""
        video_dir, list_dir = find_layout(self.root)
        train_list, test_list = split_lists(list_dir, self.fold)
        class_names, classes = read_class_index(list_dir / "classInd.txt")
        train, bad_train = read_split(train_list, classes)
        test, bad_test = read_split(test_list, classes)
        val_groups = validation_groups((e.group for e in train), self.val_fraction)
        entries = {
            "train": [e for e in train if e.group not in val_groups],
            "val": [e for e in train if e.group in val_groups],
            "test": test,
        }
        located = resolve_paths(video_dir, [e.path for e in train + test])
        return Listing(
            video_dir,
            {
                split: [(located[e.path], e.label) for e in listed if located[e.path]]
                for split, listed in entries.items()
            },
            class_names,
            missing=sorted(rel for rel, path in located.items() if path is None),
            problems={"list lines with unknown classes or labels": bad_train + bad_test},
        )
