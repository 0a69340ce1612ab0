"""Sampled futures of vidgen's MotionVAE, per horizon step, against copy-last and mean-frame.

``vae_demo.yaml`` trains (``vidgen fit``), then ``vidgen test`` samples K futures (the config's
``predict_samples``) of 16 steps from 4 true frames of each held-out clip and scores them
(:mod:`vidgen.sampled_futures`): best of K (each clip's sample with the best score over the
horizon, per metric) and mean of K, per horizon step, beside copy-last-frame and mean-frame of
the context; each sample index's collapse score (frame-to-frame change over the truth's) and
Fréchet distance to the true futures (in :func:`vidgen.fvd.clip_features`' features), beside
the baselines' distances.

    python benchmarks/sampled_futures.py           # the config's budget and test clips
    python benchmarks/sampled_futures.py --quick   # a smoke run: 24 training steps, 32 clips

Writes ``benchmarks/results/sampled_futures.{md,json}``; the run folder (metrics.json, videos,
checkpoints) stays under ``runs/sampled_futures``. ``--quick`` writes both to a temporary
folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import add_quick, fit_and_test, results_dir, write_results
from torch import Tensor

from vidgen.cli import CONFIG_DIR
from vidgen.evaluation import BASELINES, METRICS
from vidgen.sampled_futures import GROUP, SOURCES

CONFIG = "vae_demo.yaml"
QUICK = {  # --quick: (options of fit and test, options of fit only)
    "both": ["--trainer.limit_test_batches=4"],
    "fit": [
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=24",
        "--trainer.limit_val_batches=2",
    ],
}


def step_table(results: dict[str, Tensor]) -> list[str]:
    """A markdown row per horizon step: each metric for best-of-K, mean-of-K and the
    baselines."""
    header = " | ".join(f"{m.upper()} {s}" for m in METRICS for s in SOURCES)
    lines = [f"| step | {header} |", "|---" * (1 + len(METRICS) * len(SOURCES)) + "|"]
    horizon = len(results[f"{GROUP}/best_of_k/mse"])
    digits = {"mse": 4, "psnr": 2, "ssim": 3}
    for t in [*range(horizon), None]:
        cells = [
            f"{float(values[t] if t is not None else values.mean()):.{digits[m]}f}"
            for m in METRICS
            for values in (results[f"{GROUP}/{s}/{m}"] for s in SOURCES)
        ]
        lines.append(f"| {'mean' if t is None else t + 1} | {' | '.join(cells)} |")
    return lines


def sample_lines(results: dict[str, Tensor]) -> list[str]:
    """The samples' collapse scores and Fréchet distances, beside the baselines'."""
    prefix = f"{GROUP}/samples/"
    distance = next(
        k[len(prefix) :] for k in results if k.startswith(prefix) and "collapse" not in k
    )
    collapse, sampled = results[f"{prefix}collapse"], results[f"{prefix}{distance}"]
    lines = ["| | collapse | " + distance + " |", "|---|---|---|"]
    for k, (c, d) in enumerate(zip(collapse.tolist(), sampled.tolist(), strict=True)):
        lines.append(f"| sample {k + 1} | {c:.3f} | {d:.4f} |")
    lines.append(f"| samples, mean | {float(collapse.mean()):.3f} | {float(sampled.mean()):.4f} |")
    for b in BASELINES:
        lines.append(f"| {b} | 0.000 | {float(results[f'{GROUP}/{b}/{distance}']):.4f} |")
    return lines


def markdown(results: dict[str, Tensor], setup: dict) -> str:
    lines = [
        f"# Sampled futures of `{CONFIG}`{' (quick)' if setup['quick'] else ''}",
        "",
        "Setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()) + ".",
        "",
        "Per horizon step after the context: best of K (each clip's sample with the best score "
        "over the horizon, per metric), mean of K (the score averaged over the samples), "
        "copy-last-frame and mean-frame of the context.",
        "",
        *step_table(results),
        "",
        "Each sample index (the k-th future of every clip): collapse score (its frame-to-frame "
        "change over the truth's; 0 = frozen) and Fréchet distance to the true futures.",
        "",
        *sample_lines(results),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_quick(parser)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = results_dir(args.quick)
    root = folder / "run" if args.quick else Path("runs") / "sampled_futures"
    both = ["--config", str(CONFIG_DIR / CONFIG), *(QUICK["both"] if args.quick else [])]
    fit, seconds, results = fit_and_test(both, root, *(QUICK["fit"] if args.quick else []))
    model, data = fit.model, fit.datamodule
    setup = {
        "quick": args.quick,
        "training steps": fit.trainer.global_step,
        "fit seconds": round(seconds),
        "K": model.predict_samples,
        "context frames": model.condition_frames,
        "horizon": len(results[f"{GROUP}/best_of_k/mse"]),
        "test clips": data.batch_size * (4 if args.quick else len(data.test_dataloader())),
        "threads": args.threads,
    }
    data_out = {"setup": setup, "results": {k: v.tolist() for k, v in results.items()}}
    write_results(folder / "sampled_futures", markdown(results, setup), data_out)


if __name__ == "__main__":
    main()
