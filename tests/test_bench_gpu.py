"""``benchmarks/bench_gpu.py --quick``: every code path of the GPU benchmark runs on a CPU, with
none of the packages the GPU machine lacks, so the one GPU command cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from behaviour import SIZE, SMALL, packaged_configs, small_model
from tiers import by_tier

ROOT = Path(__file__).resolve().parent.parent
MISSING_THERE = ("jsonargparse", "omegaconf", "decord", "wandb", "av")
"""Packages the GPU machine does not have (vidgen's CLI, decoders and logger need them)."""

RUN_WITHOUT = """
import importlib.abc, importlib.metadata, sys
missing = set(sys.argv.pop(1).split(","))

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in missing:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")

def distribution(name, _real=importlib.metadata.distribution):
    if name.lower() in missing:
        raise importlib.metadata.PackageNotFoundError(name)
    return _real(name)

sys.meta_path.insert(0, Missing())
importlib.metadata.distribution = distribution
import lightning_utilities.core.imports as probes  # what lightning asks before importing
probes.distribution = distribution
probes._version = lambda name: distribution(name).version
sys.path.insert(0, "benchmarks")
import bench_gpu
code = bench_gpu.main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & missing)
assert not loaded, f"imported {loaded}"
sys.exit(code)
"""
"""Runs ``bench_gpu.main`` with the packages of its first argument hidden from imports and
from package metadata (as on a machine without them)."""


@pytest.mark.slow
def test_quick_runs_every_row_without_the_cli_packages(tmp_path: Path) -> None:
    out = tmp_path / "bench_gpu"
    configs = ["demo_paper.yaml", "vae_demo.yaml"]  # the paper's model and the motion code
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = ["--quick", "--configs", *configs, "--out", str(out)]
    command = [sys.executable, "-c", RUN_WITHOUT, ",".join(MISSING_THERE), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["config"], r["setting"]): r for r in results["throughput"]}
    settings = ("fp32", "bf16", "channels_last", "cache", "compile")
    assert set(rows) == {(c, s) for c in configs for s in settings}
    assert all(r["frames_per_s"] > 0 for r in rows.values()), rows
    assert all(rows[c, "cache"]["cache_hit_rate"] > 0 for c in configs)  # hits after warm-up
    assert [r["skipped"] for r in results["syncs"]] == ["skipped: no CUDA"] * len(configs)
    impls = [(r["impl"], r["precision"]) for r in results["deconv"]]
    assert impls == [("direct", "fp32"), ("fft", "fp32"), ("direct", "bf16"), ("fft", "bf16")]
    profiles = {r["config"]: r for r in results["profile"]}
    assert set(profiles) == set(configs) and all(r["step_ms"] > 0 for r in profiles.values())
    assert profiles["vae_demo.yaml"]["ms"]["block matching"] > 0  # the motion functions timed
    stamp = results["provenance"]
    assert stamp["quick"] and stamp["commit"] and "--quick" in stamp["command"]
    table = out.with_suffix(".md").read_text()
    assert "- commit: `" in table and "| demo_paper.yaml | 32 | 2 x 8 |" in table


@pytest.mark.parametrize("config", by_tier(packaged_configs()))
def test_models_built_without_the_cli_are_the_clis(config: str) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from yaml_models import build_model, tiny_overrides

    torch.manual_seed(0)
    model, data = build_model(config, *tiny_overrides(config, SMALL, SIZE))
    torch.manual_seed(0)
    expected = small_model(config)
    assert type(model) is type(expected) and data["image_size"] == model.image_size == SIZE
    state, expected_state = model.state_dict(), expected.state_dict()
    assert state.keys() == expected_state.keys()
    assert all(torch.equal(state[k], expected_state[k]) for k in state)
    assert model.loss.weights == expected.loss.weights
    params = [p for p in model.parameters() if p.requires_grad]
    assert model.optimizer(params).defaults == expected.optimizer(params).defaults
