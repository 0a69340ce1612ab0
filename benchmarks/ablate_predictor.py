"""What each FramePredictor option does: short runs of one config with one option changed.

Each variant trains the dataset's packaged vidgen config (``demo.yaml`` for shapes,
``demo_textured.yaml`` for textured) with the overrides in :data:`VARIANTS`, from the same seed,
for ``--epochs`` epochs (no validation), then rolls out 16 steps from 4 true frames on 64
held-out clips. Every run appends one line to ``results/predictor_ablation.jsonl``; the table
``results/predictor_ablation.md`` is rendered from all lines.

    python benchmarks/ablate_predictor.py --dataset shapes --variants prev ctx ctx+mom
    python benchmarks/ablate_predictor.py --table     # only re-render the table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import RESULTS, fit_and_test, write_results

from vidgen.cli import CONFIG_DIR

M = "--model.init_args"
PLAIN = [  # the packaged config reduced to "ctx+mom": no observed motion, MSE loss only
    f"{M}.observed_motion=false",
    f"{M}.loss=vidgen.models.VideoLoss",
    f"{M}.loss.init_args.ssim=0",
]
VARIANTS = {  # name -> overrides of the packaged config
    "prev": [*PLAIN, f"{M}.warp_from=previous", f"{M}.momentum=false"],
    "ctx": [*PLAIN, f"{M}.momentum=false"],
    "ctx+skip": [*PLAIN, f"{M}.momentum=false", f"{M}.skip=true"],
    "ctx+mom": PLAIN,
    "ctx+mom+skip": [*PLAIN, f"{M}.skip=true"],
    "ctx+mom+composite": [*PLAIN, f"{M}.composite=true"],
    "ctx+mom+observed": [*PLAIN, f"{M}.observed_motion=true"],
    "ctx+mom+ssim": [*PLAIN, f"{M}.loss.init_args.ssim=0.5"],
    "ctx+mom+observed+ssim": [*PLAIN, f"{M}.observed_motion=true", f"{M}.loss.init_args.ssim=0.2"],
    "packaged": [],
    "packaged+splat": [f"{M}.splat=true"],
    "packaged+layers": [f"{M}.motion_layers=8"],
    "packaged+splat+layers": [f"{M}.splat=true", f"{M}.motion_layers=8"],
    "packaged+splat+layers+composite": [
        f"{M}.splat=true",
        f"{M}.motion_layers=8",
        f"{M}.composite=true",
    ],
    "packaged+12frames": ["--data.init_args.frames=12"],
    "packaged+splat+layers+12frames": [
        f"{M}.splat=true",
        f"{M}.motion_layers=8",
        "--data.init_args.frames=12",
    ],
    "packaged+splat+layers+ssim": [
        f"{M}.splat=true",
        f"{M}.motion_layers=8",
        f"{M}.loss=vidgen.models.VideoLoss",
        f"{M}.loss.init_args.ssim=0.2",
    ],
}
CONFIGS = {"shapes": "demo.yaml", "textured": "demo_textured.yaml"}
STEPS = (1, 4, 8, 16)
LOG = RESULTS / "predictor_ablation.jsonl"


def run(dataset: str, variant: str, epochs: int, root: Path) -> dict:
    """Fit and test one variant; its metrics at :data:`STEPS` and their means."""
    args = ["--config", str(CONFIG_DIR / CONFIGS[dataset]), "--data.init_args.num_test=64"]
    _, seconds, results = fit_and_test(
        [*args, *VARIANTS[variant]],
        root,
        f"--trainer.max_epochs={epochs}",
        "--trainer.limit_val_batches=0",
    )
    line: dict = {"name": f"{dataset}_{variant}", "epochs": epochs, "fit_s": round(seconds)}
    for source in ("model", "copy_last", "mean_frame"):
        for metric in ("mse", "psnr", "ssim"):
            values = results[f"{source}/{metric}"]
            line[f"{source}/{metric}"] = [round(float(values[s - 1]), 4) for s in STEPS] + [
                round(float(values.mean()), 4)
            ]
    line["collapse"] = round(float(results["model/collapse"]), 3)
    return line


def table(lines: list[dict]) -> str:
    """Markdown: one row per run, then each dataset's baselines (from its first run)."""
    head = ["run", "epochs", "fit s"]
    for metric in ("MSE", "PSNR", "SSIM"):
        head += [f"{metric} @{s}" for s in STEPS] + [f"{metric} mean"]
    rows = ["| " + " | ".join([*head, "collapse"]) + " |", "|" + "---|" * (len(head) + 1)]
    baselines = {}
    for line in lines:
        cells = [line["name"], str(line.get("epochs", 4)), str(line["fit_s"])]
        for metric, digits in (("mse", 4), ("psnr", 2), ("ssim", 3)):
            cells += [f"{v:.{digits}f}" for v in line[f"model/{metric}"]]
        rows.append("| " + " | ".join([*cells, f"{line['collapse']:.3f}"]) + " |")
        baselines.setdefault(line["name"].split("_")[0], line)
    for dataset, line in baselines.items():
        for source in ("copy_last", "mean_frame"):
            cells = [f"{dataset}: {source.replace('_', '-')}", "", ""]
            for metric, digits in (("mse", 4), ("psnr", 2), ("ssim", 3)):
                cells += [f"{v:.{digits}f}" for v in line[f"{source}/{metric}"]]
            rows.append("| " + " | ".join([*cells, ""]) + " |")
    return "\n".join(rows)


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(CONFIGS), default="shapes")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--runs", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--table", action="store_true", help="only re-render the table")
    args = parser.parse_args()
    if not args.table:
        for variant in args.variants:
            root = args.runs.resolve() / f"{args.dataset}_{variant}"
            line = run(args.dataset, variant, args.epochs, root)
            with LOG.open("a") as f:
                f.write(json.dumps(line) + "\n")
    lines = [json.loads(x) for x in LOG.read_text().splitlines() if x.strip()]
    write_results(
        RESULTS / "predictor_ablation",
        "# FramePredictor options, one at a time (short runs)\n\n"
        "Packaged config per dataset with the variant's overrides, same seed, no validation; "
        "16-step rollouts from 4 true frames on 64 held-out clips; @k = horizon step k; "
        "prev: warp the previous (predicted) frame; ctx: warp the last true frame along the "
        "accumulated flow; mom: momentum; skip: SkipRefine; composite: gate + pixels; observed: "
        "the block-matched velocity of the context seeds the momentum (whole pixels in the runs "
        "marked (integer), subpixel since); ssim: + 0.5 or 0.2 (1 - SSIM) in the loss "
        "(0.2 packaged for textured video); packaged: the dataset's config as it ships (at the "
        "time of the run); splat: pixels of the last true frame splatted forward along their "
        "own velocity; layers: the observed velocity fitted by 8 motion layers (5, all affine, "
        "where marked; 'changes averaged per layer': the head's changes too, not kept). "
        "Removed after "
        "these runs: motion (a conv net's maps of frame differences appended to the core's "
        "input), learned-proposal (a full-resolution conv net proposing the first flow from "
        "the last frame and its difference).\n\n" + table(lines) + "\n",
    )


if __name__ == "__main__":
    main_cli()
