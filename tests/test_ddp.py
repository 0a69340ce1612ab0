"""DDP on CPU with 2 processes: metrics gathered across ranks equal a single-process run.

``ddp_spawn`` tests a tiny FramePredictor on shapes; ``ddp`` (what ``--trainer.strategy ddp``
picks, run by ``tests/ddp_run.py`` in a subprocess) fits and tests both tiny models on shapes and
on a generated UCF101 corpus read through the frame cache, which rank 0 builds once while rank 1
waits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from ddp_run import RUNS
from ddp_run import build as build_run
from tiny import tiny_predictor

from vidgen import ShapesDataModule


def build():
    model = tiny_predictor()
    data = ShapesDataModule(
        num_train=4,
        num_val=4,
        num_test=8,
        image_size=16,
        frames=4,
        eval_frames=6,
        batch_size=2,
        num_workers=0,
    )
    return model, data


def run_test(strategy: str, devices: int) -> dict[str, float]:
    model, data = build()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return {k: float(v) for k, v in trainer.test(model, data, verbose=False)[0].items()}


@pytest.mark.slow
def test_ddp_two_processes_match_one():
    single = run_test("auto", 1)
    ddp = run_test("ddp_spawn", 2)
    for key in (
        "test/model/mse",
        "test/model/psnr",
        "test/model/ssim",
        "test/copy_last/mse",
        "test/model/collapse",
    ):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key


# ------------------------------------------------------------ ddp: fit + test, both models, data

DRIVER = Path(__file__).with_name("ddp_run.py")
LAUNCH_ENV = ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(scope="module")
def ddp_runs(tiny_corpus, tmp_path_factory) -> Path:
    """Every run of ``ddp_run.RUNS`` fitted and tested by 2 ``ddp`` processes, once -> the
    folder of their reports (the frame cache in ``<folder>/cache``)."""
    out = tmp_path_factory.mktemp("ddp")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in LAUNCH_ENV and not k.startswith(("SLURM_", "TORCHELASTIC_", "PL_"))
    }  # a fresh launch, whatever launched pytest
    env.setdefault("OMP_NUM_THREADS", "1")
    command = [sys.executable, str(DRIVER), str(out), str(tiny_corpus.root), str(out / "cache")]
    done = subprocess.run(
        command + list(RUNS), cwd=out, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def reports(out: Path, run: str) -> list[dict]:
    return [json.loads((out / run / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("run", RUNS)
def test_ddp_fit_and_test_match_one_process(ddp_runs, tiny_corpus, run):
    """Each rank trains and tests on its own clips (disjoint, together all of them); the test
    metrics of the 2 ranks (synced) equal one process testing the same weights."""
    ranks = reports(ddp_runs, run)
    model, data = build_run(run, str(tiny_corpus.root), str(ddp_runs / "cache"))
    model.load_state_dict(torch.load(ddp_runs / run / "model.pt"))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=ddp_runs,
    )
    single = {k: float(v) for k, v in trainer.test(model, data, verbose=False)[0].items()}
    data.setup("fit")
    for stage in ("train", "test"):
        seen = [rank["seen"][stage] for rank in ranks]
        assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1]), (stage, seen)
        assert sorted(seen[0] + seen[1]) == list(range(len(data.datasets[stage]))), stage
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert ranks[0]["metrics"].keys() == single.keys()
    for key, value in single.items():
        assert ranks[0]["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    if run.endswith("ucf101"):  # everything came from the cache the DDP run built
        assert data._index["probed"] == data._index["decoded"] == 0
        assert len(data._index["cached"]) == len(tiny_corpus.lengths)


@pytest.mark.slow
def test_ddp_builds_index_and_frame_cache_once_per_node(ddp_runs, tiny_corpus):
    """Rank 0 (``prepare_data``) probes and decodes every video once; rank 1 waits, then its
    ``setup`` reads the finished index and frame cache: it probes and decodes nothing."""
    runs = [run for run in RUNS if run.endswith("ucf101")]
    first, *later = [reports(ddp_runs, run) for run in runs]
    videos = len(tiny_corpus.lengths)
    assert [(r["probed"], r["decoded"], r["cached"]) for r in first] == [
        (videos, videos, videos),
        (0, 0, videos),
    ]
    for ranks in later:  # a later run on the same cache_dir: nothing to build
        assert [(r["probed"], r["decoded"], r["cached"]) for r in ranks] == [(0, 0, videos)] * 2
