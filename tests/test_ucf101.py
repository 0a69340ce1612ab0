"""UCF101DataModule on generated corpora in the real UCF101 layout (with its quirks)."""

from __future__ import annotations

import logging
import os
import shutil

import pytest
import torch
from ucf101_corpus import CLASSES, dm_for, frame_numbers, make_corpus, read_number

import vidgen.data.index
from vidgen.data import ucf101
from vidgen.data.index import VideoIndex
from vidgen.data.sampling import clip_indices
from vidgen.data.ucf101 import UCF101DataModule

# ------------------------------------------------------------------------------ split files


def test_split_files_crlf_labels_and_case(corpus):
    names, classes = ucf101.read_class_index(corpus.list_dir / "classInd.txt")
    assert names == list(CLASSES)
    assert classes["handstandpushups"] == CLASSES.index("HandstandPushups")
    raw = (corpus.list_dir / "trainlist01.txt").read_bytes()
    assert b"\r\n" in raw and b"v_HandStandPushups_g" in raw and raw.endswith(b"\r\n\r\n")
    train, problems = ucf101.read_split(corpus.list_dir / "trainlist01.txt", classes)
    assert not problems
    for e in train:
        assert e.label == CLASSES.index(e.path.split("/")[0]) and e.group >= 3
    test, _ = ucf101.read_split(corpus.list_dir / "testlist01.txt", classes)
    assert {e.group for e in test} == {1, 2}
    # the label comes from classInd through the folder token, not sorted() or the file name
    hsp = [e for e in test if "HandStand" in e.path]
    assert hsp and all(e.label == 2 for e in hsp)


def test_split_file_problems_are_collected(tmp_path):
    (tmp_path / "list.txt").write_text("Foo/v_Foo_g01_c01.avi 1\nBar/v_Bar_g01_c01.avi 2\n\n")
    entries, problems = ucf101.read_split(tmp_path / "list.txt", {"foo": 0, "bar": 0})
    assert [e.path for e in entries] == ["Foo/v_Foo_g01_c01.avi", "Bar/v_Bar_g01_c01.avi"]
    assert len(problems) == 1 and "listed label 2" in problems[0]
    entries, problems = ucf101.read_split(tmp_path / "list.txt", {"foo": 0})
    assert len(entries) == 1 and "not in classInd" in problems[0]


def test_validation_groups_are_seed_free_and_spread():
    groups = list(range(8, 26))  # fold 1 train groups of the real UCF101
    val = ucf101.validation_groups(groups, 0.1)
    assert val == ucf101.validation_groups(reversed(groups), 0.1) and len(val) == 2
    assert len(ucf101.validation_groups(groups, 0.5)) == 9
    assert ucf101.validation_groups([3], 0.5) == set()


# ------------------------------------------------------------------------------ data module


@pytest.mark.parametrize("verify", [False, True])
def test_splits_by_group_labels_and_bad_input_reported_once(corpus, caplog, tmp_path, verify):
    dm = dm_for(corpus.root, verify_videos=verify, cache_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="vidgen.data"):
        dm.setup("fit")
        dm.setup("test")
    groups = {s: {ucf101.group_of(v.path) for v in dm.datasets[s].videos} for s in dm.datasets}
    assert groups["test"] == corpus.test_groups[1]
    assert groups["val"] and not groups["val"] & groups["train"]
    assert groups["train"] | groups["val"] == {3, 4, 5, 6, 7}
    for split, dataset in dm.datasets.items():
        for video in dataset.videos:
            cls = os.path.basename(os.path.dirname(video.path))
            assert video.label == CLASSES.index(cls), split
    text = caplog.text
    q = corpus.quirks
    assert "1 listed videos missing on disk" in text and q["missing"] in text
    assert "3 unreadable videos" in text
    for kind in ("zero_byte", "header_only", "garbage"):
        assert text.count(os.path.basename(q[kind])) == 1, kind
    assert "train videos shorter than 4 frames" in text
    kept = {os.path.basename(v.path) for s in dm.datasets.values() for v in s.videos}
    assert os.path.basename(q["truncated"]) in kept and os.path.basename(q["b_frames"]) in kept
    assert not kept & {os.path.basename(q[k]) for k in ("zero_byte", "garbage", "short")}
    assert dm.class_names == list(CLASSES)


@pytest.mark.parametrize(
    ("sampling", "frame_skip", "clips_per_video", "eval_frames"),
    [("stride", 1, 1, None), ("stride", 0, 2, 6), ("segments", 0, 1, 5), ("stride", 7, 1, 8)],
)
def test_clip_frames_are_the_sampled_frames(
    corpus, sampling, frame_skip, clips_per_video, eval_frames
):
    dm = dm_for(
        corpus.root,
        sampling=sampling,
        frame_skip=frame_skip,
        clips_per_video=clips_per_video,
        eval_frames=eval_frames,
    )
    dm.setup("fit")
    dm.setup("test")
    for split in ("val", "test"):  # deterministic: exactly the sampling math
        ds = dm.datasets[split]
        s = dm.eval_frames
        for i in range(len(ds)):
            video = ds.videos[i // clips_per_video]
            expected = clip_indices(
                video.info.frames,
                s,
                frame_skip,
                sampling,
                None,
                i % clips_per_video,
                clips_per_video,
            )
            item = ds[i]
            assert item["video"].shape == (s, 3, 32, 32) and item["video"].dtype == torch.uint8
            assert frame_numbers(item) == expected.tolist(), (split, video.path)
            assert item["index"] == i and item["label"] == video.label
    train = dm.datasets["train"]
    for i in range(0, len(train), 3):  # random: what the sampler draws from torch's RNG
        torch.manual_seed(i)
        item = train[i]
        torch.manual_seed(i)
        expected = train.sampler(i, train.videos[i // clips_per_video].info.frames)
        assert frame_numbers(item) == expected.tolist()


def test_training_clips_are_random_eval_clips_fixed(corpus):
    dm = dm_for(corpus.root, frames=3)
    dm.setup("fit")
    long = max(
        range(len(dm.datasets["train"])), key=lambda i: dm.datasets["train"].videos[i].info.frames
    )
    starts = {frame_numbers(dm.datasets["train"][long])[0] for _ in range(8)}
    assert len(starts) > 1
    assert frame_numbers(dm.datasets["val"][0]) == frame_numbers(dm.datasets["val"][0])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloaders(corpus, num_workers):
    dm = dm_for(corpus.root, num_workers=num_workers)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.datasets["train"]) // 4
    batch = batches[0]
    assert batch["video"].shape == (4, 4, 3, 32, 32) and batch["video"].dtype == torch.uint8
    val = next(iter(dm.val_dataloader()))
    for clip, index in zip(val["video"], val["index"], strict=True):
        expected = dm.datasets["val"].frame_numbers(int(index))
        assert [read_number(f) for f in clip] == expected.tolist()


def test_flat_layout_and_num_workers_default(tmp_path):
    corpus = make_corpus(tmp_path, classes=("Archery", "YoYo"), quirks=False, nested=False)
    dm = UCF101DataModule(str(corpus.root), frames=2, image_size=16, progress=False)
    dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 2 * 5
    assert dm.num_workers >= 0


# ------------------------------------------------------------------------------ index cache


def test_index_is_cached_and_refreshed_by_size_and_mtime(own_corpus):
    dm = dm_for(own_corpus)
    dm.setup("fit")
    cache = own_corpus / "UCF-101" / ucf101.INDEX_FILE
    assert cache.is_file()
    index = VideoIndex(own_corpus / "UCF-101", progress=False)
    files = sorted((own_corpus / "UCF-101").glob("*/*.avi"))
    index.update(files)
    assert index.probed == 0
    os.utime(files[0], ns=(1, 1))
    index.update(files)
    assert index.probed == 1
    files[1].write_bytes(files[1].read_bytes()[:-100])
    index = VideoIndex(own_corpus / "UCF-101", progress=False)
    index.update(files)
    assert index.probed == 1
    header_only = sum(info.get("verified") is False for info in index.update(files).values())
    assert header_only > len(files) // 2
    verified = VideoIndex(own_corpus / "UCF-101", progress=False, verify=True)
    infos = verified.update(files)
    assert verified.probed == header_only  # header-only entries get decoded once
    assert all(info.get("verified", "error" in info) for info in infos.values())
    assert VideoIndex(own_corpus / "UCF-101", verify=True).update(files) == infos


def test_read_only_root_puts_the_index_in_the_cache_dir(own_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(vidgen.data.index, "_writable", lambda directory: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    dm = dm_for(own_corpus)
    dm.setup("fit")
    assert not (own_corpus / "UCF-101" / ucf101.INDEX_FILE).exists()
    assert dm._index["index_file"].parent == tmp_path / "xdg" / "vidgen"
    dm = dm_for(own_corpus, cache_dir=str(tmp_path / "explicit"))
    dm.setup("fit")
    assert dm._index["index_file"].parent == tmp_path / "explicit"


def test_index_built_in_parallel_matches_serial(own_corpus, tmp_path):
    files = sorted((own_corpus / "UCF-101").glob("*/*.avi"))
    one = VideoIndex(own_corpus / "UCF-101", tmp_path / "a", workers=1, progress=False)
    two = VideoIndex(own_corpus / "UCF-101", tmp_path / "b", workers=2, progress=True)
    assert one.update(files) == two.update(files)


# ------------------------------------------------------------------------- failures, config


def test_decode_failure_mid_epoch_is_logged_and_replaced(own_corpus, caplog):
    dm = dm_for(own_corpus, num_workers=0)
    dm.setup("fit")
    ds = dm.datasets["val"]
    victim = ds.videos[0].path
    with open(victim, "wb") as f:
        f.write(b"\0" * 1000)
    with caplog.at_level(logging.WARNING, logger="vidgen.data"):
        first, second = ds[0], ds[0]
    assert caplog.text.count("decode failure") == 1 and victim in caplog.text
    assert torch.equal(first["video"], second["video"]) and first["index"] == 0
    assert first["label"] == ds.videos[1].label
    assert frame_numbers(first) == ds.frame_numbers(1).tolist()
    assert len(list(dm.val_dataloader())) == -(-len(ds) // 4)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_root", "does not exist"),
        ("no_lists", "UCF101TrainTestSplits"),
        ("fold", "folds 1, 2 and 3"),
        ("no_fold_file", "testlist02.txt is missing"),
        ("empty_split", "no usable video"),
        ("frames", "data.frames >= 2"),
        ("val_fraction", "data.val_fraction"),
    ],
)
def test_configuration_errors_fail_at_setup(own_corpus, change, message):
    kwargs = {}
    root = own_corpus
    lists = own_corpus / "ucfTrainTestlist"
    if change == "no_root":
        root = own_corpus / "nowhere"
    elif change == "no_lists":
        shutil.rmtree(lists)
    elif change == "fold":
        kwargs["fold"] = 4
    elif change == "no_fold_file":
        (lists / "testlist02.txt").unlink()
        kwargs["fold"] = 2
    elif change == "empty_split":
        (lists / "testlist01.txt").write_text("\r\n\r\n")
    elif change == "frames":
        kwargs["frames"] = 1
    else:
        kwargs["val_fraction"] = 1.5
    dm = dm_for(root, **kwargs)
    with pytest.raises(ValueError, match=message):
        dm.setup("test" if change == "empty_split" else "fit")


def test_every_fold_works(corpus):
    for fold in (1, 2, 3):
        dm = dm_for(corpus.root, fold=fold)
        dm.setup("test")
        groups = {ucf101.group_of(v.path) for v in dm.datasets["test"].videos}
        assert groups == corpus.test_groups[fold]
