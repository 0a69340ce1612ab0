"""Peak GPU memory and step time of a VideoVAE training step at the paper's scale.

The paper's multi-scale decoder "ran out of memory" (section 4.1). This measures the model of
``vidgen/configs/vae.yaml`` (pool5 features, encoder LSTM 1024, z 256, decoder LSTM 2352,
MultiScaleHead with 190 / 29 / 5 px kernels on 7 / 14 / 28 px base maps, 16 channels each)
at 224 px, B=16, S=8, in bf16 autocast (``--precision bf16-mixed`` in Lightning terms):
forward, MSE + KL, backward, Adam step. ``--head paper`` measures ``vae_paper.yaml``'s head.

    python benchmarks/vae_gpu_memory.py                  # multi-scale head
    python benchmarks/vae_gpu_memory.py --head paper     # the paper's single 190 px kernel

Needs CUDA; prints one JSON line per head (peak allocated / reserved GiB, median ms per step)
and writes them to ``benchmarks/results/vae_gpu_memory.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
from common import RESULTS, environment, timed, write_results

from vidgen import VideoVAE
from vidgen.cli import build

CONFIGS = {"multiscale": "vae.yaml", "paper": "vae_paper.yaml"}


def vae(head: str, image_size: int) -> VideoVAE:
    """The model of ``CONFIGS[head]`` at ``image_size``, random backbone weights."""
    return build(
        CONFIGS[head],
        "--model.init_args.backbone_weights=null",
        f"--data.init_args.image_size={image_size}",
    ).model


def measure(head: str, args: argparse.Namespace) -> dict:
    device = torch.device("cuda")
    model = vae(head, args.image_size).to(device)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    video = torch.rand(args.batch, args.frames, 3, args.image_size, args.image_size, device=device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            recon, mu, logvar = model(video)
            terms = model.objective(recon.float(), video, mu.float(), logvar.float(), model.beta)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()

    times = [timed(step, device)[1] for _ in range(args.warmup + args.steps)][args.warmup :]
    deconvs = {type(m).__name__ + ":" + str(getattr(m, "impl", "")) for m in model.head.modules()}
    return {
        "head": head,
        "config": CONFIGS[head],
        **environment(device),
        "image_size": args.image_size,
        "batch": args.batch,
        "frames": args.frames,
        "precision": "bf16 autocast",
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
        "step_ms_median": round(1000 * statistics.median(times), 1),
        "steps_timed": len(times),
        "deconv": sorted(d for d in deconvs if d.startswith("Deconv2d")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", choices=["multiscale", "paper", "both"], default="multiscale")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit(
            "vae_gpu_memory.py measures GPU memory and needs CUDA, but torch.cuda.is_available() "
            "is False on this machine (no GPU or a CPU-only torch build); run it on a GPU machine."
        )
    rows = []
    for head in ("multiscale", "paper") if args.head == "both" else (args.head,):
        try:
            rows.append(measure(head, args))
        except torch.OutOfMemoryError as error:
            rows.append({"head": head, "out_of_memory": str(error).splitlines()[0]})
        print(json.dumps(rows[-1]), flush=True)
        torch.cuda.empty_cache()
    lines = ["# VideoVAE training step on a GPU: peak memory and time", ""]
    lines += ["```", *(json.dumps(row) for row in rows), "```", ""]
    write_results(RESULTS / "vae_gpu_memory", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
