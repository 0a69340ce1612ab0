"""Where the paper predictor's training step spends its time, with the head's deconvolution
computed directly (``ConvTranspose2d``) or as an FFT product (``Deconv2d``'s default).

The model is ``predictor_paper.yaml``'s (224 px, VGG16 to pool5, LSTM 784, 16x7x7 -> 35x35 ->
190x190 deconvolution), random backbone weights; one teacher-forced step on a batch of
``--batch`` clips of ``--frames`` frames is split into: backbone forward (frozen, no grad),
LSTM forward + backward, head forward + backward, optimiser step. Both implementations run
side by side, alternating, in one process.

    python benchmarks/step_breakdown.py                       # CPU: 2 clips x 6 frames
    python benchmarks/step_breakdown.py --device cuda --batch 16 --frames 8

Writes ``benchmarks/results/step_breakdown_<device>.md``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import RESULTS, environment, timed, write_results

from vidgen import FramePredictor
from vidgen.cli import build

PARTS = ("backbone", "lstm", "head", "optimiser")


def paper_model(impl: str) -> FramePredictor:
    """``predictor_paper.yaml``'s model (random backbone weights), its head computed ``impl``."""
    model = build("predictor_paper", "--model.init_args.backbone_weights=null").model
    model.head.deconv.impl = impl
    return model


def step(model: FramePredictor, opt: torch.optim.Optimizer, video: torch.Tensor) -> dict:
    """One teacher-forced step; seconds per part."""
    device = video.device
    opt.zero_grad(set_to_none=True)
    feats, t_backbone = timed(lambda: model.encode(video[:, :-1]), device)
    out, t_core_fwd = timed(lambda: model.core(feats)[0], device)
    z = out.detach().requires_grad_()

    def head_pass() -> None:
        frames = model.render(model.head, z)
        torch.nn.functional.mse_loss(frames, video[:, 1:]).backward()

    _, t_head = timed(head_pass, device)
    _, t_core_bwd = timed(lambda: out.backward(z.grad), device)
    _, t_opt = timed(opt.step, device)
    return {
        "backbone": t_backbone,
        "lstm": t_core_fwd + t_core_bwd,
        "head": t_head,
        "optimiser": t_opt,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    video = torch.rand(args.batch, args.frames, 3, 224, 224, device=device)
    runs = {}
    for impl in ("direct", "fft"):
        model = paper_model(impl).to(device)
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        runs[impl] = (model, opt, [])
        step(model, opt, video)  # warm-up
    for _ in range(args.repeats):  # alternate, so both see the same machine load
        for model, opt, samples in runs.values():
            samples.append(step(model, opt, video))
    env = environment(device)
    lines = [
        f"# Paper predictor: training step by part ({args.device})",
        "",
        f"One teacher-forced step, {args.batch} clips x {args.frames} frames at 224 px "
        f"({args.batch * (args.frames - 1)} predicted frames), median of {args.repeats}; "
        + ", ".join(f"{k} {v}" for k, v in env.items())
        + ".",
        "",
        "| head implementation | " + " | ".join(f"{p} ms (share)" for p in PARTS) + " | step ms |",
        "|---|" + "---|" * (len(PARTS) + 1),
    ]
    for impl, (_, _, samples) in runs.items():
        med = {p: statistics.median(s[p] for s in samples) * 1e3 for p in PARTS}
        total = sum(med.values())
        cells = [f"{med[p]:.0f} ({med[p] / total:.0%})" for p in PARTS]
        lines.append(f"| {impl} | " + " | ".join(cells) + f" | {total:.0f} |")
    write_results(RESULTS / f"step_breakdown_{device.type}", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
