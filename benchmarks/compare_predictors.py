"""The paper's predictor, vidgen's and a learned peer (SimVP) side by side on both embedded
datasets, against trivial baselines.

For each dataset (``shapes``: bouncing shapes on black; ``textured``: textured shapes over a
panning, zooming 1/f-noise background), the paper's design (``demo_paper.yaml``) and vidgen's
packaged config for that dataset (``demo.yaml``, ``demo_textured.yaml``) train from the same seed
on the same clips for the same number of epochs, then ``vidgen test`` rolls each out from 4 true
frames for 16 steps on the same 128 held-out clips (twice the 8-frame training clips).

SimVP (``simvp_demo.yaml``, ``simvp_textured.yaml``: the same data, seed, clips and batches)
trains once per dataset, for ``--long-epochs``, and is tested at three budgets: at vidgen's
optimiser steps, at vidgen's training time (:class:`~common.TrainClock`: the training batches,
not validation) and at the end of its long fit. Its checkpoints at the first two are saved on
the way (:class:`~common.BudgetCheckpoints`).

The table follows OpenSTL's: per-horizon MSE / PSNR / SSIM, the collapse score, trainable
parameters, optimiser steps, training seconds and the median training step time, with
copy-last-frame and mean-frame on the same clips. "Wins" counts the horizon steps at which a
row beats copy-last, mean-frame and the other models' rows at vidgen's steps on all three
metrics at once.

    python benchmarks/compare_predictors.py                  # both datasets, packaged budgets
    python benchmarks/compare_predictors.py --datasets textured --epochs 2 --long-epochs 8
    python benchmarks/compare_predictors.py --quick          # every code path, tiny, a temp folder

Writes ``benchmarks/results/predictors_<datasets>.{md,json}`` and a filmstrip per dataset
(``docs/filmstrip_<dataset>.png``: truth, the paper's rollout, vidgen's); each run's folder
(videos, ``horizons.png``, checkpoints) stays under ``runs/compare/<dataset>/<config>``.
``--quick`` (the tiny overlay: 2 clips a batch, 2 batches an epoch, 3 epochs of SimVP) writes
all of it to a new temporary folder instead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from common import (
    DOCS,
    BudgetCheckpoints,
    StepTimer,
    TrainClock,
    add_quick,
    evaluate_checkpoint,
    fit_and_test,
    results_dir,
    write_results,
)
from filmstrip import filmstrip

from vidgen.cli import CONFIG_DIR, TINY
from vidgen.evaluation import METRICS

STEPS = (1, 4, 8, 16)  # horizon steps shown in the table (1-based)
DATASETS = {  # dataset -> (data class, vidgen's config for it, SimVP's)
    "shapes": ("vidgen.ShapesDataModule", "demo.yaml", "simvp_demo.yaml"),
    "textured": ("vidgen.TexturedDataModule", "demo_textured.yaml", "simvp_textured.yaml"),
}
PAPER = "demo_paper.yaml"
LONG_EPOCHS = 50  # SimVP's one fit per dataset (its long row); --long-epochs
QUICK_LONG_EPOCHS = 3
BUDGETS = {"steps": "vidgen's steps", "time": "vidgen's time", "long": "long"}
BETTER = {"mse": min, "psnr": max, "ssim": max}


def fit_row(
    config: str, data_class: str, root: Path, quick: bool, *fit_args: str
) -> tuple[Any, dict, list[str]]:
    """Fit ``config`` on ``data_class`` in ``root`` (with the tiny overlay if ``quick``), test
    its last checkpoint: the fit's CLI, its row (results, params, steps, timings) and the test
    arguments."""
    args = ["--config", str(CONFIG_DIR / config), f"--data={data_class}"]
    args += ["--config", str(TINY)] if quick else []
    timer = f"--trainer.callbacks+={StepTimer.__module__}.StepTimer"
    fit, seconds, results = fit_and_test(args, root, *fit_args, timer)
    callbacks = fit.trainer.callbacks
    clock = next(c for c in callbacks if isinstance(c, TrainClock))
    row = {
        "results": results,
        "steps": fit.trainer.global_step,
        "train_seconds": clock.seconds,
        "fit_seconds": seconds,
        "step_ms": 1000 * next(c for c in callbacks if isinstance(c, StepTimer)).median(),
        "params": sum(p.numel() for p in fit.model.parameters() if p.requires_grad),
    }
    return fit, row, args


def run(config: str, data_class: str, epochs: int | None, root: Path, quick: bool) -> dict:
    """``config``'s row after its own epochs (or ``epochs``)."""
    fit_args = [f"--trainer.callbacks+={TrainClock.__module__}.TrainClock"]
    fit_args += [f"--trainer.max_epochs={epochs}"] if epochs else []
    return fit_row(config, data_class, root, quick, *fit_args)[1]


def run_budgets(
    config: str, data_class: str, vidgen: dict, epochs: int, root: Path, quick: bool
) -> dict[str, dict]:
    """``config``'s rows at vidgen's steps, at vidgen's training time and after ``epochs``
    (long), from one fit; a budget it does not reach within ``epochs`` has no row."""
    budgets = {
        "class_path": f"{BudgetCheckpoints.__module__}.BudgetCheckpoints",
        "init_args": {
            "folder": str(root / "checkpoints"),
            "steps": {"steps": vidgen["steps"]},
            "seconds": {"time": vidgen["train_seconds"]},
        },
    }
    fit, long, args = fit_row(
        config,
        data_class,
        root,
        quick,
        f"--trainer.callbacks+={json.dumps(budgets)}",
        f"--trainer.max_epochs={epochs}",
    )
    saver = next(c for c in fit.trainer.callbacks if isinstance(c, BudgetCheckpoints))
    rows = {}
    for name, reached in saver.reached.items():
        results = evaluate_checkpoint(args, root, saver.path(name))
        row = {**long, "results": results, "steps": reached["steps"]}
        rows[name] = {**row, "train_seconds": reached["seconds"], "fit_seconds": None}
    return {**{n: rows[n] for n in ("steps", "time") if n in rows}, "long": long}


def wins(rows: dict[str, dict], name: str) -> int:
    """Horizon steps at which ``name`` beats every baseline and every other model's row at
    vidgen's steps on all metrics."""
    own = rows[name]["results"]
    rivals = [
        row["results"]
        for row in rows.values()
        if row["model"] != rows[name]["model"] and row["budget"] == "steps"
    ]
    rivals += [
        {f"model/{m}": own[f"{b}/{m}"] for m in METRICS} for b in ("copy_last", "mean_frame")
    ]
    horizon = len(own["model/mse"])
    won = torch.ones(horizon, dtype=torch.bool)
    for metric in METRICS:
        best = torch.stack([r[f"model/{metric}"] for r in rivals])
        pick = best.min(0).values if BETTER[metric] is min else best.max(0).values
        mine = own[f"model/{metric}"]
        won &= mine < pick if BETTER[metric] is min else mine > pick
    return int(won.sum())


def table(dataset: str, rows: dict[str, dict]) -> list[str]:
    """Markdown rows: each model's, then the baselines (from the last row's run)."""
    lines = []
    last = list(rows)[-1]
    entries = [(name, "model") for name in rows] + [(last, "copy_last"), (last, "mean_frame")]
    for name, source in entries:
        r = rows[name]
        res = r["results"]
        is_model = source == "model"
        cells = [dataset, name if is_model else source.replace("_", "-")]
        if is_model:
            cells += [f"{r['params'] / 1e6:.2f} M", str(r["steps"]), f"{r['train_seconds']:.0f}"]
            cells.append(f"{r['step_ms']:.0f}")
        else:
            cells += ["", "", "", ""]
        for metric in METRICS:
            digits = {"mse": 4, "psnr": 2, "ssim": 3}[metric]
            values = res[f"{source}/{metric}"]
            cells += [f"{float(values[s - 1]):.{digits}f}" for s in STEPS]
            cells.append(f"{float(values.mean()):.{digits}f}")
        cells.append(f"{float(res['model/collapse']):.2f}" if is_model else "")
        cells.append(f"{wins(rows, name)}/{len(res['model/mse'])}" if is_model else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header() -> list[str]:
    head = ["data", "config", "params", "steps", "train s", "step ms"]
    for metric in METRICS:
        head += [f"{metric.upper()} @{s}" for s in STEPS] + [f"{metric.upper()} mean"]
    head += ["collapse", "wins"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def compare(dataset: str, args: argparse.Namespace) -> tuple[dict[str, dict], list[str]]:
    """Every row of ``dataset`` (name -> row, with its ``model`` and ``budget``), and a note
    for each SimVP budget not reached; writes the dataset's filmstrip."""
    data_class, config, simvp = DATASETS[dataset]
    rows, notes = {}, []
    for model, name in (("paper", PAPER), ("vidgen", config)):
        row = run(name, data_class, args.epochs, args.runs / dataset / Path(name).stem, args.quick)
        rows[Path(name).stem] = {**row, "model": model, "budget": "steps"}
    vidgen = rows[Path(config).stem]
    root = args.runs / dataset / Path(simvp).stem
    budgets = run_budgets(simvp, data_class, vidgen, args.long_epochs, root, args.quick)
    for budget, what in BUDGETS.items():
        if budget in budgets:
            rows[f"{Path(simvp).stem} ({what})"] = {
                **budgets[budget],
                "model": "simvp",
                "budget": budget,
            }
        else:
            notes.append(f"{dataset}: SimVP did not reach {what} within {args.long_epochs} epochs")
    checkpoints = {
        Path(name).stem: args.runs / dataset / Path(name).stem / "checkpoints" / "last.ckpt"
        for name in (PAPER, config)
    }
    filmstrip(config, checkpoints, args.filmstrips / f"filmstrip_{dataset}.png")
    return rows, notes


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=None, help="default: each config's own")
    parser.add_argument(
        "--long-epochs", type=int, help=f"SimVP's one fit (default {LONG_EPOCHS}; quick 3)"
    )
    add_quick(parser)
    parser.add_argument("--out", type=Path, help="default: results/predictors_<datasets>.md")
    parser.add_argument("--filmstrips", type=Path, help="folder for the PNGs (default: docs)")
    parser.add_argument("--runs", type=Path, help="default: runs/compare (quick: temporary)")
    args = parser.parse_args()
    folder = results_dir(args.quick)
    args.runs = (args.runs or (folder / "runs" if args.quick else Path("runs/compare"))).resolve()
    args.long_epochs = args.long_epochs or (QUICK_LONG_EPOCHS if args.quick else LONG_EPOCHS)
    args.filmstrips = args.filmstrips or (folder if args.quick else DOCS)
    out = args.out or folder / f"predictors_{'_'.join(args.datasets)}.md"
    lines, notes, raw = header(), [], {}
    for dataset in args.datasets:
        rows, missed = compare(dataset, args)
        lines += table(dataset, rows)
        notes += missed
        raw[dataset] = {
            name: {
                **{k: v for k, v in r.items() if k != "results"},
                **{k: v.tolist() for k, v in r["results"].items()},
            }
            for name, r in rows.items()
        }
    budget = f"{args.epochs} epochs each" if args.epochs else "each config's own epochs"
    budget += f"; SimVP up to {args.long_epochs}" + ("; quick: tiny runs" if args.quick else "")
    markdown = (
        f"# Predictors on the embedded datasets ({budget})\n\n"
        "Rollout from 4 true frames, 16 steps, 128 held-out clips; @k = horizon step k; "
        "steps: optimiser steps; train s: seconds in training batches (not validation); "
        "step ms: median training step on this machine; SimVP trains once and is tested at "
        "vidgen's steps, at vidgen's training time and at the end (long); wins: horizon steps "
        "where the row beats copy-last, mean-frame and the other models' rows at vidgen's steps "
        "on MSE, PSNR and SSIM at once.\n\n"
        + "\n".join(lines)
        + "\n"
        + "".join(f"\n- {note}" for note in notes)
        + ("\n" if notes else "")
    )
    write_results(out, markdown, raw)


if __name__ == "__main__":
    main_cli()
