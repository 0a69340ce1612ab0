"""Where the paper predictor's training step spends its time, with the head's deconvolution
computed directly (``ConvTranspose2d``) or as an FFT product (``Deconv2d``'s default).

The model is ``predictor_paper.yaml``'s (224 px, VGG16 to pool5, LSTM 784, 16x7x7 -> 35x35 ->
190x190 deconvolution), random backbone weights; one teacher-forced step, as its
``training_step`` computes it, on a random batch of ``--batch`` clips of ``--frames`` frames is
split into: backbone forward (frozen, no grad), LSTM forward + backward, head forward + backward
with the model's own loss, the step of the config's optimiser. Both implementations run side by
side, alternating, in one process.

    python benchmarks/step_breakdown.py                       # CPU: 2 clips x 6 frames
    python benchmarks/step_breakdown.py --device cuda --batch 16 --frames 8
    python benchmarks/step_breakdown.py --quick               # 32 px, a small head, one step

Writes ``benchmarks/results/step_breakdown_<device>.{md,json}`` (``--quick``: a temporary
folder).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import (
    add_quick,
    optimizer_of,
    quick_overrides,
    results_dir,
    synthetic_batch,
    timed,
    write_results,
)
from provenance import provenance
from yaml_models import build_model, clip_shape

from vidgen import FramePredictor

CONFIG = "predictor_paper.yaml"
PARTS = ("backbone", "lstm", "head", "optimiser")


def step(model: FramePredictor, opt: torch.optim.Optimizer, batch: dict) -> dict[str, float]:
    """One teacher-forced step (``FramePredictor.teacher_forced`` and the model's loss, part
    by part); seconds per part."""
    video = model.on_after_batch_transfer(dict(batch), 0)["video"]
    device = video.device
    opt.zero_grad(set_to_none=True)
    feats, t_backbone = timed(lambda: model.encode(video[:, :-1]), device)
    out, t_core_fwd = timed(lambda: model.core(feats)[0], device)
    z = out.detach().requires_grad_()

    def head_pass() -> None:
        frames = model.render(model.head, z)
        model.loss(frames, video[:, 1:], model.backbone)["loss"].backward()

    _, t_head = timed(head_pass, device)
    _, t_core_bwd = timed(lambda: out.backward(z.grad), device)
    _, t_opt = timed(opt.step, device)
    return {
        "backbone": t_backbone,
        "lstm": t_core_fwd + t_core_bwd,
        "head": t_head,
        "optimiser": t_opt,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    add_quick(parser)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    overrides = [
        "--model.init_args.backbone_weights=null",
        f"--data.init_args.frames={args.frames}",
        *(quick_overrides(CONFIG) if args.quick else []),
    ]
    repeats = 1 if args.quick else args.repeats
    runs = {}
    for impl in ("direct", "fft"):
        torch.manual_seed(0)
        model, data = build_model(CONFIG, *overrides)
        model.head.deconv.impl = impl
        model = model.to(device).train()
        batch = synthetic_batch(clip_shape(data, args.batch), device)
        opt = optimizer_of(model)
        runs[impl] = (model, opt, [])
        step(model, opt, batch)  # warm-up
    for _ in range(repeats):  # alternate, so both see the same machine load
        for model, opt, samples in runs.values():
            samples.append(step(model, opt, batch))
    clips, frames, _, size, _ = batch["video"].shape  # both models' batch: same shape, seed
    lines = [
        f"# Paper predictor: training step by part ({device.type})",
        "",
        f"One teacher-forced step, {clips} clips x {frames} frames at {size} px "
        f"({clips * (frames - 1)} predicted frames), median of {repeats}.",
        "",
        "| head implementation | " + " | ".join(f"{p} ms (share)" for p in PARTS) + " | step ms |",
        "|---|" + "---|" * (len(PARTS) + 1),
    ]
    medians = {}
    for impl, (_, _, samples) in runs.items():
        med = {p: statistics.median(s[p] for s in samples) * 1e3 for p in PARTS}
        total = sum(med.values())
        cells = [f"{med[p]:.0f} ({med[p] / total:.0%})" for p in PARTS]
        lines.append(f"| {impl} | " + " | ".join(cells) + f" | {total:.0f} |")
        medians[impl] = {**med, "step": total}
    out = results_dir(args.quick) / f"step_breakdown_{device.type}"
    data = {"shape": [clips, frames, 3, size, size], "repeats": repeats, "ms": medians}
    write_results(out, "\n".join(lines) + "\n", data, provenance(device=device.type))


if __name__ == "__main__":
    main()
