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
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from vidgen import FramePredictor
from vidgen.models import LSTMCore, UpsampleDeconvHead

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("backbone", "lstm", "head", "optimiser")


def paper_model(impl: str) -> FramePredictor:
    torch.manual_seed(0)
    model = FramePredictor(
        image_size=224,
        backbone_layer="pool5",
        core=partial(LSTMCore, hidden_size=784),
        head=partial(UpsampleDeconvHead, channels=16, base_size=7, kernel_size=190),
    )
    model.head.deconv.impl = impl
    return model


def timed(fn: Callable[[], object], device: torch.device) -> tuple[object, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


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
    lines = [
        f"# Paper predictor: training step by part ({args.device})",
        "",
        f"One teacher-forced step, {args.batch} clips x {args.frames} frames at 224 px "
        f"({args.batch * (args.frames - 1)} predicted frames), median of {args.repeats}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| head implementation | " + " | ".join(f"{p} ms (share)" for p in PARTS) + " | step ms |",
        "|---|" + "---|" * (len(PARTS) + 1),
    ]
    for impl, (_, _, samples) in runs.items():
        med = {p: statistics.median(s[p] for s in samples) * 1e3 for p in PARTS}
        total = sum(med.values())
        cells = [f"{med[p]:.0f} ({med[p] / total:.0%})" for p in PARTS]
        lines.append(f"| {impl} | " + " | ".join(cells) + f" | {total:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"step_breakdown_{device.type}.md").write_text(text)


if __name__ == "__main__":
    main()
