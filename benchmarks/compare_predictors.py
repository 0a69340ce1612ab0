"""The paper's predictor and vidgen's side by side on both embedded datasets, against trivial
baselines.

For each dataset (``shapes``: bouncing shapes on black; ``textured``: textured shapes over a
panning, zooming 1/f-noise background), the paper's design (``demo_paper.yaml``) and vidgen's
packaged config for that dataset (``demo.yaml``, ``demo_textured.yaml``) train from the same seed
on the same clips for the same number of epochs, then ``vidgen test`` rolls each out from 4 true
frames for 16 steps on the same 128 held-out clips (twice the 8-frame training clips). The table
follows OpenSTL's: per-horizon MSE / PSNR / SSIM, the collapse score, trainable parameters and
the median training step time, with copy-last-frame and mean-frame on the same clips; "wins"
counts the horizon steps at which the model beats every other row of its dataset (copy-last,
mean-frame and the other config) on all three metrics at once.

    python benchmarks/compare_predictors.py                  # both datasets, packaged budgets
    python benchmarks/compare_predictors.py --datasets textured --epochs 2   # quicker, rougher
    python benchmarks/compare_predictors.py --quick   # the tiny overlay, 1 epoch, a temp folder

Writes ``benchmarks/results/predictors_<datasets>.{md,json}`` and a filmstrip per dataset
(``docs/filmstrip_<dataset>.png``: truth, the paper's rollout, vidgen's); each run's folder
(videos, ``horizons.png``, checkpoints) stays under ``runs/compare/<dataset>/<config>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from common import DOCS, StepTimer, add_quick, fit_and_test, results_dir, write_results
from filmstrip import filmstrip

from vidgen.cli import CONFIG_DIR, TINY
from vidgen.evaluation import METRICS

STEPS = (1, 4, 8, 16)  # horizon steps shown in the table (1-based)
DATASETS = {  # dataset -> (data class, vidgen's config for it)
    "shapes": ("vidgen.ShapesDataModule", "demo.yaml"),
    "textured": ("vidgen.TexturedDataModule", "demo_textured.yaml"),
}
PAPER = "demo_paper.yaml"
BETTER = {"mse": min, "psnr": max, "ssim": max}
QUICK_DATA = ["--data.init_args.num_val=2", "--data.init_args.num_test=2"]  # one batch each


def run(config: str, data_class: str, epochs: int | None, root: Path, *overrides: str) -> dict:
    """Fit ``config`` on ``data_class``, test its last checkpoint; metrics, params, timings."""
    epochs_arg = [f"--trainer.max_epochs={epochs}"] if epochs else []
    fit, seconds, results = fit_and_test(
        ["--config", str(CONFIG_DIR / config), f"--data={data_class}", *overrides],
        root,
        *epochs_arg,
        f"--trainer.callbacks+={StepTimer.__module__}.StepTimer",
    )
    timer = next(c for c in fit.trainer.callbacks if isinstance(c, StepTimer))
    return {
        "results": results,
        "fit_seconds": seconds,
        "step_ms": 1000 * timer.median(),
        "params": sum(p.numel() for p in fit.model.parameters() if p.requires_grad),
    }


def wins(rows: dict[str, dict], name: str) -> int:
    """Horizon steps at which ``name`` beats every baseline and every other config on all
    metrics."""
    own = rows[name]["results"]
    rivals = [rows[n]["results"] for n in rows if n != name]
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
    """Markdown rows: each config's model, then the baselines (from the last config's run)."""
    lines = []
    last = list(rows)[-1]
    entries = [(name, "model") for name in rows] + [(last, "copy_last"), (last, "mean_frame")]
    for name, source in entries:
        r = rows[name]
        res = r["results"]
        is_model = source == "model"
        cells = [dataset, name if is_model else source.replace("_", "-")]
        cells += [f"{r['params'] / 1e6:.2f} M", f"{r['step_ms']:.0f}"] if is_model else ["", ""]
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
    head = ["data", "config", "params", "step ms"]
    for metric in METRICS:
        head += [f"{metric.upper()} @{s}" for s in STEPS] + [f"{metric.upper()} mean"]
    head += ["collapse", "wins"]
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=None, help="default: each config's own")
    parser.add_argument("--out", type=Path, help="default: results/predictors_<datasets>.md")
    parser.add_argument("--filmstrips", type=Path, default=DOCS, help="folder for the PNGs")
    parser.add_argument("--runs", type=Path, default=Path("runs/compare"))
    add_quick(parser)
    args = parser.parse_args()
    folder = results_dir(args.quick)
    overrides = ["--config", str(TINY), *QUICK_DATA] if args.quick else []
    if args.quick:
        args.epochs, args.filmstrips, args.runs = 1, folder, folder / "runs"
    out = args.out or folder / f"predictors_{'_'.join(args.datasets)}.md"
    lines, raw = header(), {}
    for dataset in args.datasets:
        data_class, config = DATASETS[dataset]
        rows = {}
        for name in (PAPER, config):
            root = args.runs.resolve() / dataset / Path(name).stem
            rows[Path(name).stem] = run(name, data_class, args.epochs, root, *overrides)
        lines += table(dataset, rows)
        checkpoints = {
            name: args.runs.resolve() / dataset / name / "checkpoints" / "last.ckpt"
            for name in rows
        }
        filmstrip(config, checkpoints, args.filmstrips / f"filmstrip_{dataset}.png")
        raw[dataset] = {
            name: {
                **{k: v for k, v in r.items() if k != "results"},
                **{k: v.tolist() for k, v in r["results"].items()},
            }
            for name, r in rows.items()
        }
    budget = f"{args.epochs} epochs each" if args.epochs else "each config's own epochs"
    markdown = (
        f"# Predictors on the embedded datasets ({budget})\n\n"
        "Rollout from 4 true frames, 16 steps, 128 held-out clips; @k = horizon step k; "
        "step ms: median training step on this machine; wins: horizon steps where the model "
        "beats every other row of its dataset on MSE, PSNR and SSIM at once.\n\n"
        + "\n".join(lines)
        + "\n"
    )
    write_results(out, markdown, raw)


if __name__ == "__main__":
    main_cli()
