"""VideoFolderDataModule on a generated folder of own videos (mixed containers, bad files)."""

from __future__ import annotations

import logging

import pytest
import torch
from ucf101_corpus import FOLDER_VIDEOS, frame_numbers, make_folder

import vidgen.data.index
from vidgen import VideoFolderDataModule
from vidgen.data.folder import looks_like_video, split_files
from vidgen.data.sampling import clip_indices


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("own") / "videos")


def module(root, **kwargs) -> VideoFolderDataModule:
    args = dict(frames=4, image_size=32, batch_size=2, num_workers=0, progress=False)
    return VideoFolderDataModule(root, **{**args, **kwargs})


def relative(dm, split: str) -> list[str]:
    root = str(dm.roots()[0].resolve()) + "/"
    return sorted(v.path.removeprefix(root) for v in dm.datasets[split].videos)


def test_finds_every_video_labels_by_folder_and_reports_bad_files(folder, tmp_path, caplog):
    dm = module(str(folder.root), cache_dir=str(tmp_path), eval_frames=6)
    with caplog.at_level(logging.WARNING, logger="vidgen.data"):
        dm.setup("fit")
        dm.setup("test")
    splits = {s: relative(dm, s) for s in ("train", "val", "test")}
    assert sorted(n for names in splits.values() for n in names) == sorted(
        FOLDER_VIDEOS
    )  # once each, bad ones out
    assert splits["val"] and splits["test"]
    assert dm.class_names == ["cats", "dogs", "fish"]
    for split, dataset in dm.datasets.items():
        for video in dataset.videos:
            rel = video.path.split("/videos/")[1]
            expected = dm.class_names.index(rel.split("/")[0]) if "/" in rel else -1
            assert video.label == expected, (split, rel)
            assert video.info.frames == FOLDER_VIDEOS[rel][0]
    text = caplog.text
    assert "3 unreadable videos" in text and "1 files that are not videos" in text
    for kind, rel in folder.bad.items():
        assert text.count(rel) == 1, kind
    assert "shorter than 4 frames" in text or "shorter than 6 frames" in text
    for split in ("val", "test"):  # the sampled frames, whatever the container
        ds = dm.datasets[split]
        for i in range(len(ds)):
            expected = clip_indices(ds.videos[i].info.frames, 6)
            assert frame_numbers(ds[i]) == expected.tolist()
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 32, 32) and batch["video"].dtype == torch.uint8


def test_split_is_reproducible_disjoint_and_stable():
    names = [f"c{i % 3}/v{i:03d}.mp4" for i in range(200)]
    one = split_files(names, 0.1, 0.2, seed=0)
    assert one == split_files(list(reversed(names)), 0.1, 0.2, seed=0)
    assert [len(one[s]) for s in ("train", "val", "test")] == [140, 20, 40]
    assert not set(one["train"]) & set(one["val"]) and not set(one["val"]) & set(one["test"])
    assert sorted(n for names in one.values() for n in names) == sorted(names)
    assert split_files(names, 0.1, 0.2, seed=1) != one
    more = split_files([*names, "c0/new.mp4"], 0.1, 0.2, seed=0)
    where = {n: s for s, names in more.items() for n in names}
    moved = [n for s, names in one.items() for n in names if where[n] != s]
    assert len(moved) <= 2  # adding a file moves at most the files at the split boundaries
    assert [len(v) for v in split_files(names[:3], 0.1, 0.1, 0).values()] == [1, 1, 1]


def test_list_files_define_splits(folder, tmp_path):
    (tmp_path / "test.txt").write_text("cats/a.avi\r\ndogs/d.mov 1\r\n\r\nmissing/x.mp4\n")
    dm = module(str(folder.root), cache_dir=str(tmp_path), test_list=str(tmp_path / "test.txt"))
    dm.setup("fit")
    dm.setup("test")
    assert relative(dm, "test") == ["cats/a.avi", "dogs/d.mov"]
    assert not {"cats/a.avi", "dogs/d.mov"} & set(relative(dm, "train") + relative(dm, "val"))
    same = module(str(folder.root), cache_dir=str(tmp_path), test_list=str(tmp_path / "test.txt"))
    same.setup("fit")
    assert relative(same, "train") == relative(dm, "train")


def test_content_detection(folder):
    assert looks_like_video(folder.root / "fish/no_extension")
    assert not looks_like_video(folder.root / folder.bad["not_video"])
    assert not looks_like_video(folder.root / folder.bad["zero_byte"])


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nowhere", "does not exist"),
        ("empty", "no video under"),
        ("only_text", "no video under"),
        ("fractions", "val_fraction \\+ data.test_fraction"),
        ("decoder", "data.decoder must be one of"),
        ("too_short", "has no usable video"),
    ],
)
def test_bad_input_fails_at_setup_with_the_fix(folder, tmp_path, case, message):
    root, kwargs = tmp_path / "root", {}
    root.mkdir()
    if case == "nowhere":
        root = tmp_path / "nowhere"
    elif case == "only_text":
        (root / "a.txt").write_text("x")
    elif case == "fractions":
        root, kwargs = folder.root, {"val_fraction": 0.5, "test_fraction": 0.5}
    elif case == "decoder":
        root, kwargs = folder.root, {"decoder": "opencv"}
    elif case == "too_short":
        root, kwargs = folder.root, {"frames": 100}
    with pytest.raises(ValueError, match=message):
        module(str(root), cache_dir=str(tmp_path / "cache"), **kwargs).setup("fit")


def test_read_only_root_puts_the_index_in_the_cache_dir(folder, tmp_path, monkeypatch):
    monkeypatch.setattr(vidgen.data.index, "_writable", lambda directory: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dm = module(str(folder.root))
    dm.setup("fit")
    assert dm._index["index_file"].parent == tmp_path / "xdg" / "vidgen"
    assert dm._index["index_file"].name.startswith("folder_index_")


def test_one_file_several_files_and_pad(folder, tmp_path):
    one = str(folder.root / "dogs/e.mp4")  # 96 x 54
    dm = module(one, cache_dir=str(tmp_path), resize="pad", eval_frames=5, frame_skip=9)
    batch = next(iter(dm.predict_dataloader()))
    assert batch["path"] == [one] and batch["available"].tolist() == [4]  # 0, 10, 20, 30
    clip = batch["video"][0]
    assert clip.shape == (5, 3, 32, 32)
    assert clip[:, :, :6].max() == 0 and clip[:, :, -6:].max() == 0  # letterbox bars
    assert clip[:, :, 10:22].float().mean() > 20
    two = module([one, str(folder.root / "cats")], cache_dir=str(tmp_path))
    paths = [p for b in two.predict_dataloader() for p in b["path"]]
    assert len(paths) == 4 and paths[0].endswith("cats/a.avi")
