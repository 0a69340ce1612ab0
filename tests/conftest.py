"""Shared test settings: no network, no accounts, tiny models."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")


@pytest.fixture(autouse=True)
def no_wandb_run_left_open():
    """Finish any W&B run a test leaves open: a later ``WandbLogger`` would join it instead of
    starting its own (as a new ``vidgen`` process would)."""
    yield
    if "wandb" in sys.modules:
        sys.modules["wandb"].finish()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test inside an empty folder (configs write to relative ``runs/``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small generated corpus in the UCF101 layout, with the real data's quirks (read only)."""
    from ucf101_corpus import make_corpus

    return make_corpus(tmp_path_factory.mktemp("ucf101"), big=2)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """Ten 8-10 frame 32x24 videos of 2 classes in the UCF101 layout, no bad files (read only).

    Fold 1 (``val_fraction=0.2``): 4 train, 2 val and 4 test videos."""
    from ucf101_corpus import CLASSES, make_corpus

    root = tmp_path_factory.mktemp("tiny_ucf101")
    return make_corpus(root, CLASSES[:2], groups=5, size=(32, 24), lengths=(8, 10), quirks=False)


@pytest.fixture
def own_corpus(corpus, tmp_path):
    """A private copy of ``corpus`` (tests that change files or caches)."""
    from vidgen.data import ucf101

    root = tmp_path / "ucf"
    shutil.copytree(corpus.root, root, ignore=shutil.ignore_patterns(ucf101.INDEX_FILE))
    return root
