"""Every GPU figure in one run: throughput per config and setting, the FFT head against cuDNN,
peak memory, host synchronisations per training step.

Rows, on one GPU:

- **throughput**: frames/s (``batch * frames / step``) of a training step (``training_step``,
  backward, optimiser step) of every packaged config at its own frame size and batch size, on a
  random uint8 batch, in five settings, each against plain fp32 (NCHW backbone):
  ``fp32``; ``bf16`` (``torch.autocast`` bf16 around the forward and loss, as Lightning's
  ``bf16-mixed``); ``channels_last`` (the models' default backbone layout); ``compile``
  (``torch.compile`` of the whole ``training_step``: backbone, core, head, motion, loss; its
  compile seconds are reported beside it; block matching runs eagerly between graphs unless
  ``--compile-matching``: its loop over every displacement unrolls into a graph too large to
  compile in the budget); ``cache`` (the frozen-feature cache, every frame
  cached after the warm-up: a long run's steady state);
- **peak memory**: ``torch.cuda.max_memory_allocated`` of each throughput row;
- **host syncs**: synchronising CUDA calls in one fp32 training step, counted as the warnings of
  ``torch.cuda.set_sync_debug_mode("warn")``, with the lines they come from;
- **profile**: each config's training step by part (``profile_step.py``: backbone, core,
  head, block matching, motion layers, warp, splat, hole fill, loss, backward, optimiser);
- **deconvolution**: :class:`vidgen.models.deconv.Deconv2d` ``impl="fft"`` against ``"direct"``
  (cuDNN's transposed convolution) at the paper head's and the demo heads' sizes, fp32 and bf16
  (``bench_deconv.py``'s rows).

Models are built from the YAML (:mod:`yaml_models`): the device machine has no jsonargparse.
A time budget (``--budget-s``) keeps the run under 8 minutes: rows are ordered cheapest-first
(compile last), a row that would start past the budget is reported as skipped and one still
running :data:`GRACE_S` after it is stopped (reported as such).

    make bench-gpu                           # on the GPU machine (python benchmarks/bench_gpu.py)
    python benchmarks/bench_gpu.py --quick   # any machine: tiny sizes, every code path

On this project's device machine (the repository travels, nothing is carried; its results come
back through ``$OUT``; copy them into ``benchmarks/results/`` here)::

    VIDGEN_COMMIT=<sha> PYTHONUNBUFFERED=1 make bench-gpu ARGS="--out $OUT/bench_gpu_cuda"
    # without make: PYTHONPATH=. python3 benchmarks/bench_gpu.py --out $OUT/bench_gpu_cuda

``--quick`` runs every row at 32 px, 2 clips, one warm-up and one timed step, compile with the
``eager`` backend (graph capture without code generation), and reports the CUDA-only rows
(peak memory, host syncs) as skipped without CUDA; ``tests/test_bench_gpu.py`` runs it.
Writes ``benchmarks/results/bench_gpu_<device>.{md,json}`` (``--out`` elsewhere; ``--quick``: a
temporary folder) and prints the summary table.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import profile_step
import torch
from bench_deconv import QUICK, default_configs, run_config
from common import (
    quick_overrides,
    results_dir,
    step_function,
    synthetic_batch,
    timed,
    write_results,
)
from profile_step import replace_function
from provenance import provenance
from yaml_models import build_model, clip_shape, packaged

SETTINGS = ("fp32", "bf16", "channels_last", "cache", "compile")  # run in this order
NO_CUDA = "skipped: no CUDA"
GRACE_S = 40.0  # a row started inside the budget is stopped this long after it
MATCHING = "vidgen.models.motion_estimation.block_match"  # left out of compiled graphs


def build(config: str, setting: str, quick: bool) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """``config``'s model for ``setting`` (random backbone weights) and its batch shape."""
    overrides = [
        "--model.init_args.backbone_weights=null",
        f"--model.init_args.channels_last={setting == 'channels_last'}",
    ]
    if setting == "cache":
        overrides.append("--model.init_args.feature_cache_gib=4")
    if quick:
        overrides += quick_overrides(config)
    torch.manual_seed(0)
    model, data = build_model(config, *overrides)
    return model, clip_shape(data)


def reset_memory(device: torch.device) -> None:
    """Start a row's peak-memory count from what it holds itself."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def throughput(config: str, setting: str, device: torch.device, args: argparse.Namespace) -> dict:
    """Median step time, frames/s and peak memory of ``config`` in ``setting``."""
    torch._dynamo.reset()
    reset_memory(device)
    model, shape = build(config, setting, args.quick)
    model = model.to(device).train()
    batch = synthetic_batch(shape, device)
    backend = args.compile_backend if setting == "compile" else None
    step = step_function(model, device, setting == "bf16", backend)
    with contextlib.ExitStack() as stack:
        if setting == "compile" and not args.compile_matching:
            undo = replace_function(MATCHING, torch.compiler.disable)
            if undo is not None:
                stack.callback(undo)
        first = timed(lambda: step(batch), device)[1]  # compile happens here
        for _ in range(args.warmup - 1):
            step(batch)
        times = [timed(lambda: step(batch), device)[1] for _ in range(args.steps)]
    seconds = statistics.median(times)
    row = {
        "config": config,
        "setting": setting,
        "shape": list(shape),
        "step_ms": 1e3 * seconds,
        "frames_per_s": shape[0] * shape[1] / seconds,
        "first_step_s": first,
        "peak_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        ),
    }
    if model.feature_cache is not None:
        row["cache_hit_rate"] = model.feature_cache.hit_rate
    return row


def host_syncs(config: str, device: torch.device, args: argparse.Namespace) -> dict:
    """Synchronising CUDA calls in one fp32 training step of ``config`` (after a warm-up)."""
    if device.type != "cuda":
        return {"config": config, "skipped": NO_CUDA}
    model, shape = build(config, "fp32", args.quick)
    model = model.to(device).train()
    batch = synthetic_batch(shape, device)
    step = step_function(model, device)
    step(batch)
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step(batch)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    where = Counter(f"{Path(w.filename).name}:{w.lineno}" for w in syncs)
    return {"config": config, "syncs": len(syncs), "where": dict(where.most_common())}


def deconv_rows(device: torch.device, args: argparse.Namespace) -> list[dict]:
    """FFT against direct (cuDNN on a GPU) deconvolution, fp32 and bf16 autocast."""
    if args.quick:
        configs = [QUICK]
        warmup, repeats = 1, 1
    else:
        configs = default_configs(device.type, None)
        warmup, repeats = 3, 20
    rows = []
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # cuDNN's best algorithm for each size
    try:
        for bf16 in (False, True):
            for cfg in configs:
                for row in run_config(cfg, device, warmup, repeats, bf16, False):
                    rows.append({**row, "precision": "bf16" if bf16 else "fp32"})
    finally:
        torch.backends.cudnn.benchmark = benchmark
    return rows


class OverBudget(Exception):
    """A row ran past the time budget's grace (:data:`GRACE_S`)."""


def over_budget(signum: int, frame: Any) -> None:
    raise OverBudget


def profile_row(config: str, device: torch.device, args: argparse.Namespace) -> dict:
    """``config``'s training step by part (``profile_step.py``), at its own batch size."""
    small = quick_overrides(config) if args.quick else []
    return profile_step.profile(config, device, None, args.warmup, args.steps, small)


def guarded(fn: Any, label: dict, deadline: float) -> dict:
    """``fn()``, or a row saying why not: past the time budget (not started, or stopped
    :data:`GRACE_S` after it), out of memory, an error."""
    left = deadline - time.perf_counter()
    if left <= 0:
        return {**label, "skipped": "skipped: time budget"}
    previous = signal.signal(signal.SIGALRM, over_budget)
    signal.setitimer(signal.ITIMER_REAL, left + GRACE_S)
    try:
        return fn()
    except OverBudget:
        return {**label, "skipped": f"stopped: ran past the time budget + {GRACE_S:.0f} s"}
    except torch.OutOfMemoryError as error:
        return {**label, "error": "out of memory: " + str(error).splitlines()[0][:200]}
    except Exception as error:  # one row's failure must not lose the others
        return {**label, "error": f"{type(error).__name__}: {error}"[:300]}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def speed(rows: list[dict], config: str, setting: str) -> str:
    """A table cell: frames/s and the ratio to the fp32 row, or why there is none."""
    row = next((r for r in rows if r["config"] == config and r["setting"] == setting), None)
    base = next((r for r in rows if r["config"] == config and r["setting"] == "fp32"), None)
    if row is None:
        return ""
    if "frames_per_s" not in row:
        return row.get("skipped") or "failed"
    cell = f"{row['frames_per_s']:.1f}"
    if setting != "fp32" and base and "frames_per_s" in base:
        cell += f" ({row['frames_per_s'] / base['frames_per_s']:.2f}x)"
    if setting == "compile":
        cell += f", compile {row['first_step_s']:.0f} s"
    return cell


def summary(results: dict, info: dict) -> str:
    """The results as markdown: one summary table, the deconvolution table, host sync sites."""
    rows, syncs = results["throughput"], {r["config"]: r for r in results["syncs"]}
    configs = list(dict.fromkeys(r["config"] for r in rows))
    settings = [s for s in SETTINGS if any(r["setting"] == s for r in rows)]
    lines = [
        f"# GPU benchmarks ({info['device']}{', quick' if info['quick'] else ''})",
        "",
        "Training step (forward + loss, backward, optimiser step) on a random uint8 batch at "
        "each config's own frame size and batch size (`--quick`: 32 px, 2 clips), random "
        "backbone weights. Frames/s = batch x frames / median step; (x): against the fp32 "
        "row; compile: `torch.compile` of the whole training step"
        + ("" if info["compile_matching"] else " (block matching eager, between graphs)")
        + f", backend {info['compile_backend']}, and the seconds of its first (compiling) step."
        " Peak GiB: "
        "`torch.cuda.max_memory_allocated` of the fp32 / bf16 rows. Host syncs: "
        "synchronising CUDA calls in one fp32 step (`torch.cuda.set_sync_debug_mode`).",
        "",
        "| config | px | batch x frames | "
        + " | ".join(f"{s} frames/s" for s in settings)
        + " | peak GiB fp32 / bf16 | host syncs |",
        "|---|---|---|" + "---|" * (len(settings) + 2),
    ]
    for config in configs:
        own = {r["setting"]: r for r in rows if r["config"] == config}
        shape = next((r["shape"] for r in own.values() if "shape" in r), None)
        size = f"{shape[3]} | {shape[0]} x {shape[1]}" if shape else " | "
        peaks = [own.get(s, {}).get("peak_gib") for s in ("fp32", "bf16")]
        peak = " / ".join("-" if p is None else f"{p:.2f}" for p in peaks)
        if all(p is None for p in peaks):
            peak = NO_CUDA if info["device"] != "cuda" else "-"
        sync_row = syncs.get(config, {})
        sync_cell = str(sync_row.get("syncs", sync_row.get("skipped", sync_row.get("error", ""))))
        cells = " | ".join(speed(rows, config, s) for s in settings)
        lines.append(f"| {config} | {size} | {cells} | {peak} | {sync_cell} |")
    lines += [
        "",
        "## Deconvolution: FFT against direct (cuDNN's transposed convolution on a GPU)",
        "",
        "Forward + backward of `Deconv2d`, median ms of the repeats (bench_deconv.py's rows).",
        "",
        "| size | precision | batch | direct ms | fft ms | fft speed-up | max rel err |",
        "|---|---|---|---|---|---|---|",
    ]
    deconv = results["deconv"]
    for i in range(0, len(deconv) - 1, 2):
        direct, fft = deconv[i], deconv[i + 1]
        if "ms_median" not in direct or "ms_median" not in fft:
            lines.append(f"| {direct.get('error') or direct.get('skipped')} | | | | | | |")
            continue
        lines.append(
            f"| {direct['name']} | {direct['precision']} | {direct['batch']} | "
            f"{direct['ms_median']:.2f} | {fft['ms_median']:.2f} | "
            f"{fft['speedup_vs_direct']:.2f}x | {fft['max_rel_err_vs_direct']:.1e} |"
        )
    lines += ["", "## Training step by part", "", profile_step.EXPLAINED, ""]
    lines += profile_step.table(results["profile"])
    failed = [r for r in rows + results["syncs"] + results["profile"] if "error" in r]
    if failed:
        lines += ["", "## Failures", ""]
        lines += [f"- {r['config']} {r.get('setting', '')}: {r['error']}" for r in failed]
    sites = [r for r in results["syncs"] if r.get("where")]
    if sites:
        lines += ["", "## Where the host syncs are (file:line: count)", ""]
        for r in sites:
            where = ", ".join(f"{k}: {v}" for k, v in r["where"].items())
            lines.append(f"- {r['config']}: {where}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, any device")
    parser.add_argument("--configs", nargs="+", choices=packaged(), default=packaged())
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--warmup", type=int, help="untimed steps (default 2; quick 1)")
    parser.add_argument("--steps", type=int, help="timed steps (default 3; quick 1)")
    parser.add_argument(
        "--budget-s", type=float, default=400.0, help="seconds: no row starts after"
    )
    parser.add_argument("--compile-backend", help="torch.compile backend (inductor; quick eager)")
    parser.add_argument(
        "--compile-matching", action="store_true", help="compile block matching's loop too"
    )
    parser.add_argument("--out", type=Path, help="results path without suffix")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        parser.error("no CUDA device here: run on a GPU machine, or add --quick")
    device = torch.device("cuda" if cuda else "cpu")
    args.warmup = max(1, args.warmup or (1 if args.quick else 2))
    args.steps = args.steps or (1 if args.quick else 3)
    args.compile_backend = args.compile_backend or ("eager" if args.quick else "inductor")
    warnings.filterwarnings("ignore", message=".*self.log.*")
    deadline = time.perf_counter() + args.budget_s
    start = time.perf_counter()
    results: dict[str, list[dict]] = {"throughput": [], "syncs": [], "deconv": [], "profile": []}
    for setting in [s for s in SETTINGS if s in args.settings]:  # compile last: the slowest
        for config in args.configs:
            label = {"config": config, "setting": setting}
            row = guarded(
                lambda c=config, s=setting: throughput(c, s, device, args), label, deadline
            )
            results["throughput"].append(row)
            print(f"{config} {setting}: {row.get('frames_per_s', row)}", flush=True)
        if setting == "fp32":  # syncs, deconvolution, profile before the other settings' rows
            for config in args.configs:
                label = {"config": config}
                fn = lambda c=config: host_syncs(c, device, args)  # noqa: E731
                results["syncs"].append(guarded(fn, label, deadline))
            label = {"config": "deconv"}
            deconv = guarded(lambda: {"rows": deconv_rows(device, args)}, label, deadline)
            results["deconv"] = deconv.get("rows", [deconv, deconv])
            for config in args.configs:
                fn = lambda c=config: profile_row(c, device, args)  # noqa: E731
                results["profile"].append(guarded(fn, {"config": config}, deadline))
    info = provenance(
        device=device.type,
        quick=args.quick,
        compile_backend=args.compile_backend,
        compile_matching=args.compile_matching,
        warmup=args.warmup,
        steps=args.steps,
        seconds=round(time.perf_counter() - start, 1),
    )
    out = args.out or results_dir(args.quick) / f"bench_gpu_{device.type}"
    write_results(out, summary(results, info), results, info)
    errors = [r for rows in results.values() for r in rows if "error" in r]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
