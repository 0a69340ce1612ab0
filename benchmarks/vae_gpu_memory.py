"""Peak GPU memory and step time of a VideoVAE training step at the paper's scale.

The paper's multi-scale decoder "ran out of memory" (section 4.1). This measures the model of
``vidgen/configs/vae.yaml`` (pool5 features, encoder LSTM 1024, z 256, decoder LSTM 2352,
MultiScaleHead with 190 / 29 / 5 px kernels on 7 / 14 / 28 px base maps, 16 channels each)
at 224 px, B=16, S=8, in bf16 autocast (``--precision bf16-mixed`` in Lightning terms):
forward, MSE + KL, backward, Adam step. ``--head paper`` measures ``vae_paper.yaml``'s head.

    python benchmarks/vae_gpu_memory.py                  # multi-scale head
    python benchmarks/vae_gpu_memory.py --head paper     # the paper's single 190 px kernel

Needs CUDA; prints one JSON line per head (peak allocated / reserved GiB, median ms per step).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial

import torch

from vidgen import MultiScaleHead, VideoVAE
from vidgen.models import LSTMCore, UpsampleDeconvHead


def build(head: str, image_size: int) -> VideoVAE:
    if head == "paper":  # vae_paper.yaml
        return VideoVAE(
            image_size=image_size,
            encoder=partial(LSTMCore, hidden_size=784),
            decoder=partial(LSTMCore, hidden_size=784),
            head=partial(UpsampleDeconvHead, channels=16, base_size=7, kernel_size=190),
            z_dim=256,
        )
    return VideoVAE(  # vae.yaml
        image_size=image_size,
        encoder=partial(LSTMCore, hidden_size=1024),
        decoder=partial(LSTMCore, hidden_size=2352),
        head=partial(
            MultiScaleHead, kernel_sizes=(190, 29, 5), channels=16, base_sizes=(7, 14, 28)
        ),
        z_dim=256,
        beta=1e-3,
    )


def measure(head: str, args: argparse.Namespace) -> dict:
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build(head, args.image_size).to(device)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    video = torch.rand(args.batch, args.frames, 3, args.image_size, args.image_size, device=device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            recon, mu, logvar = model(video)
            terms = model.objective(recon.float(), video, mu.float(), logvar.float(), model.beta)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    deconvs = {type(m).__name__ + ":" + str(getattr(m, "impl", "")) for m in model.head.modules()}
    return {
        "head": head,
        "gpu": torch.cuda.get_device_name(device),
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
        "torch": torch.__version__,
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
    for head in ("multiscale", "paper") if args.head == "both" else (args.head,):
        try:
            print(json.dumps(measure(head, args)), flush=True)
        except torch.OutOfMemoryError as error:
            print(json.dumps({"head": head, "out_of_memory": str(error).splitlines()[0]}))
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
