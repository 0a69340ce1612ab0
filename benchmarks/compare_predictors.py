"""FramePredictor configs side by side: the paper's setup, the improved one, and baselines.

Every config trains from the same seed on the same embedded shapes data for the same number of
epochs (its own packaged settings otherwise), then ``vidgen test`` rolls it out from 4 true
frames for 16 steps on the same 128 held-out clips — twice the 8-frame training clips — and
reports per-horizon MSE / PSNR / SSIM of the model, of copy-last-frame and of mean-frame, and
the collapse score (0 = the paper's "sequence collapse").

    python benchmarks/compare_predictors.py                      # packaged demo configs
    python benchmarks/compare_predictors.py --epochs 2           # quicker, rougher

Writes ``benchmarks/results/predictors_shapes.{md,json}``; each run's folder (videos,
``horizons.png``, checkpoints) stays under ``runs/compare/<config>``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from vidgen.cli import CONFIG_DIR, main
from vidgen.evaluation import load_results

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = (1, 4, 8, 16)  # horizon steps shown in the table (1-based)


def run(config: Path, epochs: int | None, root: Path) -> tuple[dict, float]:
    """Fit ``config`` (optionally for ``epochs``), test its last checkpoint; metrics + fit time."""
    common = [
        "--config",
        str(config),
        f"--trainer.default_root_dir={root}",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
    ]
    start = time.perf_counter()
    main(["fit", *common, *([f"--trainer.max_epochs={epochs}"] if epochs else [])])
    seconds = time.perf_counter() - start
    main(["test", *common, f"--ckpt_path={root / 'checkpoints' / 'last.ckpt'}"])
    return load_results(root / "metrics.json"), seconds


def table(rows: dict[str, tuple[dict, float]]) -> str:
    """Markdown: one row per (config, source) with metrics at ``STEPS`` and their means."""
    head = ["config", "source", "fit s"]
    for metric in ("mse", "psnr", "ssim"):
        head += [f"{metric} @{s}" for s in STEPS] + [f"{metric} mean"]
    head.append("collapse")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = True
    for name, (results, seconds) in rows.items():
        sources = ("model", "copy_last", "mean_frame") if first else ("model",)
        for source in sources:
            cells = [
                name if source == "model" else "(baseline)",
                source,
                f"{seconds:.0f}" if source == "model" else "",
            ]
            for metric in ("mse", "psnr", "ssim"):
                values = results[f"{source}/{metric}"]
                digits = 4 if metric == "mse" else 2 if metric == "psnr" else 3
                cells += [f"{float(values[s - 1]):.{digits}f}" for s in STEPS]
                cells.append(f"{float(values.mean()):.{digits}f}")
            collapse = results["model/collapse"] if source == "model" else None
            cells.append(f"{float(collapse):.3f}" if collapse is not None else "")
            lines.append("| " + " | ".join(cells) + " |")
        first = False
    return "\n".join(lines)


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["demo_paper.yaml", "demo.yaml"])
    parser.add_argument("--epochs", type=int, default=None, help="default: each config's own")
    parser.add_argument("--out", type=Path, default=RESULTS / "predictors_shapes.md")
    parser.add_argument("--runs", type=Path, default=Path("runs/compare"))
    args = parser.parse_args()
    rows = {}
    for name in args.configs:
        config = Path(name) if Path(name).is_file() else CONFIG_DIR / name
        rows[config.stem] = run(config, args.epochs, args.runs.resolve() / config.stem)
    text = table(rows)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    epochs = f"{args.epochs} epochs each" if args.epochs else "each config's own epochs"
    args.out.write_text(
        f"# FramePredictor configs on the shapes data ({epochs})\n\n"
        "Rollout from 4 true frames, 16 steps, 128 held-out clips; @k = horizon step k.\n\n"
        f"{text}\n"
    )
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                k: {"seconds": s, **{m: v.tolist() for m, v in r.items()}}
                for k, (r, s) in rows.items()
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main_cli()
