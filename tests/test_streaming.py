"""LitData shards (``vidgen prepare``, ``ShardDataModule``): the items of the file source they
were written from (UCF101 fold and split, a folder), written once, resumed exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch
from ucf101_corpus import dm_for, make_folder

from vidgen.cli import CONFIG_DIR, entry_point
from vidgen.data import ShardDataModule, VideoFolderDataModule, shards
from vidgen.data.shards import MANIFEST, read_manifest, write_manifest
from vidgen.prepare import main as prepare

CLIPS = dict(frames=4, batch_size=2, num_workers=0)


def prepare_args(source: str, output: Path, **init_args) -> list[str]:
    args = ["--data", source, f"--output={output}", "--workers=2", "--videos_per_part=3"]
    args += ["--progress=false", "--data.init_args.progress=false"]
    return args + [f"--data.init_args.{k}={v}" for k, v in init_args.items()]


@pytest.fixture(scope="module")
def ucf101_shards(tiny_corpus, tmp_path_factory) -> Path:
    """Shards of the tiny corpus's fold 1 at 16 px, written by ``vidgen prepare``."""
    folder = tmp_path_factory.mktemp("shards")
    args = dict(root=tiny_corpus.root, image_size=16, val_fraction=0.2, cache_dir=folder)
    counts = prepare(prepare_args("UCF101DataModule", folder / "out", **args))
    assert counts == {"videos": 10, "parts": 4, "written_videos": 10, "written_parts": 4}
    return folder / "out"


def ucf101_source(tiny_corpus, ucf101_shards: Path):
    return dm_for(tiny_corpus.root, image_size=16, cache_dir=ucf101_shards.parent, **CLIPS)


def assert_same_items(ours, theirs) -> None:
    """Items of two datasets or batches of two loaders: equal, key by key."""
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key != "path":  # the source's absolute path vs the key under its folder
                assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


def loaders(data, stage: str) -> list:
    torch.manual_seed(3)  # the training loader's seed (seed_everything's)
    data.setup(stage)
    if stage == "fit":
        return [data.train_dataloader(), data.val_dataloader()]
    return [data.test_dataloader(), data.predict_dataloader()]


def test_ucf101_shards_give_the_items_of_the_file_source(tiny_corpus, ucf101_shards):
    source = ucf101_source(tiny_corpus, ucf101_shards)
    shards = ShardDataModule(str(ucf101_shards), image_size=16, **CLIPS)
    assert shards.frame_skip == source.frame_skip == 1  # UCF101's default, from the manifest
    for stage in ("fit", "test"):
        for ours, theirs in zip(loaders(shards, stage), loaders(source, stage), strict=True):
            assert_same_items(ours, theirs)
    assert shards.class_names == source.class_names
    for epoch in (1, 2):  # other epochs: other orders and random clips, still the same
        batches = []
        for data in (shards, source):
            loader = data.train_dataloader()
            loader.sampler.set_epoch(epoch)
            batches.append(list(loader))
        assert_same_items(*batches)


def test_a_rerun_writes_nothing_and_settings_must_match(tiny_corpus, ucf101_shards):
    args = dict(root=tiny_corpus.root, image_size=16, val_fraction=0.2)
    counts = prepare(prepare_args("UCF101DataModule", ucf101_shards, **args))
    assert counts["written_videos"] == counts["written_parts"] == 0
    with pytest.raises(ValueError, match=r"image_size=32.*image_size=16"):
        ShardDataModule(str(ucf101_shards), image_size=32).setup("fit")
    with pytest.raises(ValueError, match="vidgen prepare"):
        ShardDataModule(str(ucf101_shards.parent / "none"))


def test_unfinished_shards_are_refused(ucf101_shards, tmp_path):
    manifest = read_manifest(str(ucf101_shards))
    write_manifest(str(tmp_path), {**manifest, "done": manifest["done"][:1]})
    assert (tmp_path / MANIFEST).is_file()
    with pytest.raises(ValueError, match=r"unfinished.*1 of 4 parts"):
        ShardDataModule(str(tmp_path))


def test_training_from_shards_resumes_mid_epoch_exactly(ucf101_shards):
    """A loader restored from a mid-epoch state gives the rest of that epoch's batches."""

    def batches(state: dict | None = None) -> list[dict]:
        torch.manual_seed(0)
        data = ShardDataModule(str(ucf101_shards), image_size=16, frames=4, batch_size=1)
        data.num_workers = 0
        loader = data.train_dataloader()
        loader.sampler.set_epoch(1)
        if state is not None:
            loader.load_state_dict(state)
        return list(loader)

    whole = batches()
    assert len(whole) == 4
    assert_same_items(batches({"batches": 2, "seed": 0, "epoch": 1}), whole[2:])


def test_ddp_ranks_read_disjoint_clips_that_cover_the_split(ucf101_shards):
    """Lightning's distributed sampler over the shards' loader (what each DDP rank reads): no
    clip on two ranks, none left out."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    torch.manual_seed(0)
    data = ShardDataModule(str(ucf101_shards), image_size=16, **CLIPS)
    loader = data.train_dataloader()
    seen = []
    for rank in (0, 1):
        sampler = DistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=rank)
        tickets = list(sampler)
        seen.append([loader.dataset[t]["index"] for t in tickets])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(len(loader.dataset)))


def test_folder_shards_give_the_items_of_the_folder(tmp_path):
    """A folder of mixed containers with bad files: the same splits, clips and predict clips.

    PyAV decodes: decord fails on some frame batches of these H.264 files at 16 px and not on
    others, so its clips depend on how frames are batched (the frame cache's too)."""
    folder = make_folder(tmp_path / "videos")
    common = dict(image_size=16, cache_dir=tmp_path / "cache", index_workers=2, decoder="pyav")
    args = prepare_args("VideoFolderDataModule", tmp_path / "shards", root=folder.root, **common)
    prepare(["--config", "predictor_folder", *args[2:]])  # its data: section, frame_skip 1
    source = VideoFolderDataModule(
        str(folder.root), frame_skip=1, progress=False, **common, **CLIPS
    )
    shards = ShardDataModule(str(tmp_path / "shards"), image_size=16, **CLIPS)
    for stage in ("fit", "test"):
        for ours, theirs in zip(loaders(shards, stage), loaders(source, stage), strict=True):
            assert_same_items(ours, theirs)
    ours = next(iter(shards.predict_dataloader()))["path"]
    theirs = next(iter(source.predict_dataloader()))["path"]
    assert ours == [Path(p).relative_to(source._video_dir).as_posix() for p in theirs]


def test_prepare_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        entry_point(
            [
                "prepare",
                "--data=UCF101DataModule",
                f"--data.root={tmp_path}/none",
                f"--output={tmp_path}/shards",
            ]
        )
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("vidgen: error:")


@pytest.mark.slow
def test_a_packaged_config_fits_on_its_shards(in_tmp):
    """``vidgen prepare`` on predictor.yaml's data section, then ``vidgen fit`` of the same
    config through the shards overlay, with only the root changed (the sizes as in
    ``tests/test_ucf101_cli.py``). ``prepare`` runs as ``python -m vidgen prepare``, a process
    of its own: its LitData workers are forked, and this late in the suite the test process
    runs threads (W&B's, of earlier in-process runs) whose locks a forked worker can inherit
    held and wait on for ever (it did once in a full run here)."""
    from tiny import tiny_run
    from ucf101_corpus import make_corpus

    corpus = make_corpus(in_tmp / "UCF101", lengths=(16, 30))
    size = "--data.init_args.image_size=64"
    source = [f"--data.init_args.root={corpus.root}", f"--data.init_args.cache_dir={in_tmp}"]
    output = [f"--output={in_tmp / 'shards'}", "--progress=false"]
    args = ["--config", "predictor", *source, size, "--data.init_args.progress=false", *output]
    command = [sys.executable, "-m", "vidgen", "prepare", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    cli = tiny_run(
        "fit",
        "predictor.yaml",
        "--config",
        str(CONFIG_DIR / "overlays" / "shards.yaml"),
        f"--data.init_args.root={in_tmp / 'shards'}",
        "--trainer.fast_dev_run=1",
        size,
        "--data.init_args.eval_frames=8",
        "--model.init_args.backbone_weights=null",
        "--model.init_args.head.init_args.kernel_size=30",
    )
    assert cli.trainer.state.finished
    data = cli.datamodule
    assert type(data).__name__ == "ShardDataModule" and data.frame_skip == 1 and data.frames == 8


def broken_reader() -> None:
    """A reader factory that fails in the worker (picklable, so any start method gets it)."""
    raise RuntimeError("broken decoder")


def test_a_failed_write_raises_and_leaves_no_worker_running(tiny_corpus, tmp_path, monkeypatch):
    """An error in a LitData worker (here: every reader) ends ``write_shards`` with it, its
    workers stopped (LitData leaves them running, and the interpreter would wait for them)."""
    source = dm_for(tiny_corpus.root, image_size=16, cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(source, "reader_factory", lambda: broken_reader)
    before = {child.pid for child in psutil.Process().children(recursive=True)}  # e.g. W&B's
    with pytest.raises(RuntimeError):
        shards.write_shards(source, str(tmp_path / "out"), 2, 5, progress=False)
    left = [c for c in psutil.Process().children(recursive=True) if c.pid not in before]
    assert left == []
    assert read_manifest(str(tmp_path / "out"))["done"] == []
