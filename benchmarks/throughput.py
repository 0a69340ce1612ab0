"""Training throughput of the packaged configs: frames/s, step time, peak memory.

Every row builds a packaged config's model and data module from its YAML
(:mod:`yaml_models`: nothing re-typed; random backbone weights) and times training steps in a
fresh process (so that peak memory is the row's own) in one of two modes:

- ``model``: a loop of :func:`common.step_function` (``training_step`` with the model's own
  loss, backward, the model's optimiser) on one synthetic uint8 batch already on the device:
  what the model costs, the input pipeline left out. With the feature cache every frame of that
  batch is cached after the first step (the steady state of a long run).
- ``fit``: ``Trainer.fit`` with the config's own DataModule (embedded data only, as many
  training videos as one epoch's batches take), timed from one step's end to the next (the
  step plus waiting for its batch). Beside the ``model`` row it shows the input pipeline's
  share. The cache row runs 3 epochs and times the last: a frame is cached from its second
  visit, and random windows of 8 out of a video's 48 frames come back only partly (its hit
  rate is in the table).

Settings, one at a time against plain fp32 (NCHW): ``bf16-mixed`` autocast, ``channels_last``
backbone (the models' default since these rows showed it winning on every config measured),
``torch.compile`` of the backbone (``compile``), the frozen-feature cache (``cache``).
Frames/s counts every frame of a clip, ``batch * frames / step time``.

    python benchmarks/throughput.py                        # CPU rows (make bench), minutes
    python benchmarks/throughput.py --device cuda          # GPU rows at the configs' own sizes
    python benchmarks/throughput.py --configs demo --settings fp32 cache --modes model
    python benchmarks/throughput.py --quick    # QUICK_CONFIGS with the cache, 2 clips, 1 step

``--quick`` runs its rows in this process and writes to a temporary folder; otherwise the
results are ``benchmarks/results/throughput_<device>.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from common import (
    QUICK_CONFIGS,
    StepTimer,
    add_quick,
    results_dir,
    step_function,
    sync,
    synthetic_batch,
    trainer,
    write_results,
)
from provenance import provenance
from yaml_models import build_data, build_model, clip_shape, read_config

EMBEDDED = ("demo", "demo_paper", "demo_textured", "vae_demo", "vae_demo_paper")
FULL = ("predictor_paper", "predictor", "vae_paper", "vae")
SETTINGS = ("fp32", "bf16", "channels_last", "compile", "cache")
CPU_SETTINGS = ("fp32", "channels_last", "compile", "cache")  # bf16: once, see CPU_PLAN
CPU_PLAN = {  # config -> settings run on a CPU by default (the full configs at a small batch)
    "demo": SETTINGS,  # bf16 autocast without bf16 units: 17x slower (measured), so only here
    "demo_paper": CPU_SETTINGS,
    "demo_textured": ("fp32", "cache"),
    "vae_demo": ("fp32", "cache"),
    "vae_demo_paper": ("fp32", "cache"),
    "predictor_paper": CPU_SETTINGS,
    "predictor": ("fp32", "cache"),
    "vae_paper": ("fp32", "cache"),
    "vae": ("fp32", "cache"),
}
CPU_FULL_BATCH = 2  # clips per batch of the 224 px configs on a CPU
QUICK_SETTINGS = ("cache",)


def overrides(row: dict) -> list[str]:
    """Command-line overrides of a row's config."""
    args = [
        "--model.init_args.backbone_weights=null",
        f"--data.init_args.batch_size={row['batch']}",
        f"--data.init_args.num_workers={row['workers']}",
    ]
    if row["mode"] == "fit":  # the clips of one epoch's batches, seen every epoch
        args.append(f"--data.init_args.num_train={row['batch'] * (row['warmup'] + row['steps'])}")
    # every row but one runs the backbone in NCHW: each setting is measured against plain fp32
    args.append(f"--model.init_args.channels_last={row['setting'] == 'channels_last'}")
    if row["setting"] == "cache":
        args.append("--model.init_args.feature_cache_gib=4")
    return args


def peak_memory(device: torch.device) -> float:
    """GiB: the device's peak allocation (CUDA) or the process's peak resident set (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def model_steps(model: L.LightningModule, shape: tuple[int, ...], row: dict) -> dict:
    """Median seconds of ``row['steps']`` training steps on one synthetic batch."""
    device = torch.device(row["device"])
    model = model.to(device).train()
    batch = synthetic_batch(shape, device)
    step = step_function(model, device, bf16=row["setting"] == "bf16")
    times = []
    for i in range(row["warmup"] + row["steps"]):
        sync(device)
        start = time.perf_counter()
        step(batch)
        sync(device)
        if i >= row["warmup"]:
            times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times), "frames": shape[0] * shape[1]}


class LastEpoch(L.Callback):
    """The feature cache's hits and misses before the last epoch."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs
        self.before = (0, 0)

    def on_train_epoch_start(self, trainer: L.Trainer, model: L.LightningModule) -> None:
        cache = model.feature_cache
        if cache is not None and trainer.current_epoch == self.epochs - 1:
            self.before = (cache.hits, cache.misses)


def fit_steps(model: L.LightningModule, data: L.LightningDataModule, row: dict) -> dict:
    """Median seconds from one step's end to the next's in ``Trainer.fit`` on the real data,
    in the last epoch."""
    per_epoch = row["warmup"] + row["steps"]
    timer = StepTimer(warmup=(row["epochs"] - 1) * (per_epoch - 1) + row["warmup"])
    last = LastEpoch(row["epochs"])
    with tempfile.TemporaryDirectory() as tmp:
        trainer(
            accelerator="gpu" if row["device"] == "cuda" else "cpu",
            max_epochs=row["epochs"],
            limit_train_batches=per_epoch,
            callbacks=[timer, last],
            default_root_dir=tmp,
        ).fit(model, data)
    out = {"step_s": timer.median(periods=True), "frames": row["batch"] * data.frames}
    cache = model.feature_cache
    if cache is not None:
        hits, misses = cache.hits - last.before[0], cache.misses - last.before[1]
        out["hit_rate"] = round(hits / max(1, hits + misses), 3)
    return out


def run_row(row: dict) -> dict:
    """Build the row's config and time it, in this process."""
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    model, data = build_model(row["config"], *overrides(row))
    if row["setting"] == "compile":
        model.backbone.compile()
    if row["mode"] == "fit":
        timing = fit_steps(model, build_data(row["config"], *overrides(row)), row)
    else:
        timing = model_steps(model, clip_shape(data), row)
    return {
        **row,
        **timing,
        "image_size": int(data["image_size"]),
        "clip_frames": clip_shape(data)[1],
        "frames_per_s": timing["frames"] / timing["step_s"],
        "peak_gib": peak_memory(torch.device(row["device"])),
    }


def in_subprocess(row: dict) -> dict:
    """:func:`run_row` in a fresh interpreter (its own peak memory, its own compile caches)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, __file__, "--row", json.dumps(row)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {**row, "error": " | ".join(tail)[:300]}
    return json.loads(lines[-1])


def plan(args: argparse.Namespace) -> list[dict]:
    """The rows to run."""
    cuda = args.device == "cuda"
    rows = []
    quick = tuple(Path(config).stem for config in QUICK_CONFIGS)
    configs = args.configs or (quick if args.quick else EMBEDDED + FULL)
    for config in configs:
        default = SETTINGS if cuda else CPU_PLAN.get(config, ("fp32",))
        settings = args.settings or (QUICK_SETTINGS if args.quick else default)
        for setting in settings:
            for mode in args.modes:
                if mode == "fit" and config not in EMBEDDED:
                    continue  # the UCF101 configs need the dataset
                if mode == "fit" and setting not in ("fp32", "cache"):
                    continue
                batch = args.batch or (CPU_FULL_BATCH if config in FULL and not cuda else 0)
                cache_fit = mode == "fit" and setting == "cache"
                rows.append(
                    {
                        "config": config,
                        "mode": mode,
                        "setting": setting,
                        "device": args.device,
                        "batch": batch,
                        "workers": args.workers,
                        "warmup": args.warmup,
                        "steps": args.steps,
                        # the cache pays from the second visit of a frame: time epoch 3 of 3
                        "epochs": 3 if cache_fit else 1,
                    }
                )
    return rows


def fill_batch(row: dict) -> dict:
    """A row whose batch is 0 takes its config's own batch size."""
    if row["batch"]:
        return row
    return {**row, "batch": clip_shape(read_config(row["config"])["data"]["init_args"])[0]}


def table(rows: list[dict], device: str) -> str:
    """Markdown of the rows, with the fp32 row of each config and mode as the 1.00x."""
    base = {
        (r["config"], r["mode"]): r["frames_per_s"]
        for r in rows
        if r["setting"] == "fp32" and "error" not in r
    }
    lines = [
        f"# Training throughput ({device})",
        "",
        "Random backbone weights; median of the timed steps after warm-up. model: synthetic "
        "batch on the device; fit: `Trainer.fit` on the config's DataModule (the step plus the "
        "wait for its batch). x fp32: against the fp32 row of the same config and mode; "
        "fit / model: the fit row against the model-only fp32 row. Peak memory: CUDA peak "
        "allocation, or the process's peak resident set on a CPU.",
        "",
        "| config | mode | px | batch x frames | setting | frames/s | step ms | x fp32 | "
        "fit / model | peak GiB | cache hits |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['config']} | {r['mode']} | | | {r['setting']} | failed: {r['error']} "
                "| | | | | |"
            )
            continue
        fp32, model = base.get((r["config"], r["mode"])), base.get((r["config"], "model"))
        ratio = f"{r['frames_per_s'] / fp32:.2f}" if fp32 else ""  # no fp32 row: no ratio
        fit_fp32 = r["mode"] == "fit" and r["setting"] == "fp32"
        share = f"{r['frames_per_s'] / model:.0%}" if fit_fp32 and model else ""
        hits = f"{r['hit_rate']:.0%}" if "hit_rate" in r else ""
        lines.append(
            f"| {r['config']} | {r['mode']} | {r['image_size']} | {r['batch']} x "
            f"{r['clip_frames']} | {r['setting']} | {r['frames_per_s']:.1f} | "
            f"{1000 * r['step_s']:.0f} | {ratio} | {share} | {r['peak_gib']:.2f} | {hits} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--configs", nargs="+", choices=EMBEDDED + FULL)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS)
    parser.add_argument("--modes", nargs="+", choices=("model", "fit"), default=["model", "fit"])
    parser.add_argument("--batch", type=int, default=0, help="clips a batch (0: the config's)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of fit rows")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    add_quick(parser)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return
    if args.quick:
        args.batch, args.warmup, args.steps = args.batch or 2, 1, 1
    rows = []
    for row in map(fill_batch, plan(args)):
        result = run_row(row) if args.quick else in_subprocess(row)
        print(
            json.dumps(
                {k: result.get(k) for k in ("config", "mode", "setting", "frames_per_s", "error")}
            ),
            flush=True,
        )
        rows.append(result)
    out = results_dir(args.quick) / f"throughput_{args.device}"
    write_results(out, table(rows, args.device), rows, provenance(device=args.device))


if __name__ == "__main__":
    main()
