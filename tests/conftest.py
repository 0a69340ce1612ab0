"""Shared test settings: no network, no accounts, tiny models."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch
from torchvision.models.vgg import cfgs, make_layers
from tqdm import tqdm

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")
# One thread, here and in the processes tests start, unless OMP_NUM_THREADS says otherwise: at
# test sizes a second thread gains nothing, and on a busy machine its spin-waits cost minutes.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


# No tqdm monitor thread (it wakes every 10 s to check the bars): a test that forks (DataLoader
# workers, the index's and frame cache's process pools) forks a process with fewer threads,
# one fewer whose lock a child could inherit held.
tqdm.monitor_interval = 0


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


class MemoisedVGG16:
    """``torchvision.models.vgg16(weights=None)`` for :class:`~vidgen.models.FrozenVGG16`,
    memoised on the global RNG state: its random init costs seconds (most of it the 120M
    parameters of the classifier, which the backbone drops), and most tests build their models
    from the same seed. A hit returns the same ``features`` weights and leaves the RNG where the
    real call would (``tests/test_backbone.py`` checks both), so every result is unchanged."""

    SIZE = 4  # entries kept, the oldest dropped first (~60 MB each)

    def __init__(self, real) -> None:
        self.real = real
        self.cache: dict[bytes, tuple[dict, torch.Tensor]] = {}

    def __call__(self, *, weights=None, **kwargs):
        if weights is not None or kwargs:
            return self.real(weights=weights, **kwargs)
        key = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).digest()
        if key not in self.cache:
            model = self.real(weights=None)
            state = {k: v.clone() for k, v in model.features.state_dict().items()}
            self.cache[key] = (state, torch.get_rng_state())
            while len(self.cache) > self.SIZE:
                self.cache.pop(next(iter(self.cache)))
            return model
        state, after = self.cache[key]
        with torch.device("meta"):
            features = make_layers(cfgs["D"])
        features = features.to_empty(device="cpu")
        features.load_state_dict(state)
        torch.set_rng_state(after)
        return types.SimpleNamespace(features=features)


@pytest.fixture(autouse=True, scope="session")
def memoised_vgg16():
    """Every test's random-init VGG16 through :class:`MemoisedVGG16`."""
    from vidgen.models import backbone

    memo = MemoisedVGG16(backbone.vgg16)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backbone, "vgg16", memo)
        yield memo
