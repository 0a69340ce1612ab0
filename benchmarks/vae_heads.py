"""VideoVAE: the paper's head vs the multi-scale head, and how much the decoder uses z.

On the embedded shapes data at 32 px, every variant of ``vae_demo_paper.yaml`` (the paper's VAE
at demo size: pool3, LSTMs, one 27 px deconvolution; here with a 128-wide encoder and 6-frame
clips) trains for the same number of steps from the same seed on the same clips; then it
reconstructs held-out clips and (centred clips of) training clips from

- ``z = mu`` (the true latent),
- ``z = 1`` (a vector of ones: the paper's diagnosis, section 4.1, "the decoder was very easily
  able to take a vector of 1s and reconstruct very good representations of the training images"),
- ``z = 0`` (the prior's mean),
- ``z = mu`` of another clip (does z carry what is specific to a clip?),

The heads: the config's own (``paper``) and a multi-scale head (``multiscale``: 27, 7 and 3 px
kernels on 4, 8 and 16 px maps, a 384-wide decoder). Each runs with the paper's sigmoid output
and with the ``clamp`` activation (``+clamp``: values clipped to [0, 1] with a straight-through
gradient, so that no output saturates). The script reports per-frame MSE / PSNR / SSIM, with the
mean-frame baseline (the "average of the input images" the paper's VAE degraded to). A decoder
that uses z loses much quality when z is replaced (large gap); one that ignores z does not.
Training is ``Trainer.fit`` with the model's own loss (:func:`common.train`); the frozen
backbone's features of the training clips are computed once (the model's feature cache).

    PYTHONPATH=. python benchmarks/vae_heads.py            # ~15 min on 2 idle CPU cores
    PYTHONPATH=. python benchmarks/vae_heads.py --quick    # toy size, a temporary folder

Writes ``benchmarks/results/vae_heads.{json,md}`` (``--quick``: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from common import add_quick, results_dir, train, write_results
from torch import Tensor
from yaml_models import build_data, build_model

from vidgen import VideoVAE
from vidgen.evaluation import frame_metrics
from vidgen.models import kl_divergence

CONFIG = "vae_demo_paper.yaml"
FRAMES = 6
MULTISCALE = [
    "--model.init_args.decoder.init_args.hidden_size=384",  # 3 x 128: one part per branch
    '--model.init_args.head={"class_path": "vidgen.models.MultiScaleHead", "init_args": '
    '{"kernel_sizes": [27, 7, 3], "channels": 8, "base_sizes": [4, 8, 16]}}',
]
HEADS = {"paper": [], "multiscale": MULTISCALE}  # paper: vae_demo_paper.yaml's own head
VARIANTS = ("paper", "multiscale", "paper+clamp", "multiscale+clamp")
"""The contenders: a head of :data:`HEADS`; ``<head>+clamp``: with the clamp activation."""
QUICK_VARIANTS = ("paper", "multiscale+clamp")  # both heads, both activations
DATA = [f"--data.init_args.frames={FRAMES}", "--data.init_args.num_workers=0"]


def vae(head: str, beta: float, warmup: int, lr: float) -> VideoVAE:
    """One contender: ``head`` with KL weight ``beta`` warmed up over ``warmup`` steps, a
    128-wide encoder, 6-frame clips, the backbone's features cached."""
    name, _, clamp = head.partition("+")
    torch.manual_seed(0)
    model, _ = build_model(
        CONFIG,
        *DATA,
        "--model.init_args.encoder.init_args.hidden_size=128",
        f"--model.init_args.frames={FRAMES}",
        "--model.init_args.feature_cache_gib=1",
        *HEADS[name],
        f"--model.init_args.head.init_args.activation={'clamp' if clamp else 'sigmoid'}",
        f"--model.init_args.beta={beta}",
        f"--model.init_args.kl_warmup_steps={warmup}",
        f"--model.init_args.optimizer.init_args.lr={lr}",
    )
    return model


def clips(dataset) -> Tensor:
    """All clips of a dataset as one float tensor ``(N, S, C, H, W)`` in [0, 1]."""
    return torch.stack([item["video"] for item in dataset]).float().div_(255)


@torch.no_grad()
def evaluate(model: VideoVAE, video: Tensor, batch: int = 32) -> dict[str, dict[str, float]]:
    """Mean per-frame metrics of reconstructions from z = mu / ones / zeros, and the baseline."""
    model.eval()
    sums: dict[str, dict[str, float]] = {}
    kl = 0.0
    for i in range(0, len(video), batch):
        target = video[i : i + batch]
        mu, logvar = model.posterior(target)
        kl += float(kl_divergence(mu, logvar)) * len(target)
        frames = target.shape[1]
        candidates = {
            "z=mu": model.decode(mu, frames),
            "z=ones": model.decode(torch.ones_like(mu), frames),
            "z=zeros": model.decode(torch.zeros_like(mu), frames),
            "z=other": model.decode(mu.roll(1, dims=0), frames),  # another clip's latent
            "mean_frame": target.mean(1, keepdim=True).expand_as(target),
        }
        for name, pred in candidates.items():
            for metric, values in frame_metrics(pred, target).items():
                sums.setdefault(name, {}).setdefault(metric, 0.0)
                sums[name][metric] += float(values.mean(1).sum())
    out = {name: {m: v / len(video) for m, v in ms.items()} for name, ms in sums.items()}
    out["kl_per_clip"] = {"nats": kl / len(video)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--betas", type=float, nargs="+", default=[0.0, 1e-3])
    parser.add_argument("--train-videos", type=int, default=512)
    parser.add_argument("--held-out-videos", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    add_quick(parser)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch_size, args.betas = 2, 2, [0.0]
        args.train_videos = args.held_out_videos = 4
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()

    # Fixed, centred clips: the training set is exactly the "training clips" evaluated below.
    dm = build_data(
        CONFIG,
        *DATA,
        f"--data.init_args.num_train={args.train_videos}",
        f"--data.init_args.num_val={args.held_out_videos}",
    )
    datasets = {
        "train": dm.make_dataset("train", dm.sampler("val")),
        "held_out": dm.make_dataset("val", dm.sampler("val")),
    }
    data = {name: clips(dataset) for name, dataset in datasets.items()}

    runs = []
    for beta in args.betas:
        for head in QUICK_VARIANTS if args.quick else VARIANTS:
            model = vae(head, beta, warmup=args.steps // 2, lr=args.lr)
            params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            losses, seconds = train(model, datasets["train"], args.steps, args.batch_size)
            run = {
                "head": head,
                "beta": beta,
                "steps": args.steps,
                "trainable_params": params,
                "train_seconds": round(seconds, 1),
                "final_train_loss": sum(losses[-10:]) / len(losses[-10:]),
                **{name: evaluate(model, video) for name, video in data.items()},
            }
            runs.append(run)
            print(json.dumps(run), flush=True)

    setup = {
        "data": f"ShapesDataModule, {dm.image_size} px, {FRAMES}-frame centred clips, "
        f"{args.train_videos} training / {args.held_out_videos} held-out videos",
        "model": "pool3 (random weights, features cached) -> LSTM 128 -> z 32 -> LSTM decoder "
        "-> head",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "optimizer": f"Adam lr {args.lr}",
        "kl_warmup_steps": args.steps // 2,
        "threads": args.threads,
        "total_seconds": round(time.perf_counter() - begin),
    }
    out = results_dir(args.quick) / "vae_heads"
    write_results(out, markdown(setup, runs), {"setup": setup, "runs": runs})


def markdown(setup: dict, runs: list[dict]) -> str:
    lines = [
        "# VideoVAE heads: reconstruction and dependence on z",
        "",
        "Setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()) + ".",
        "",
        "Reconstruction from z = mu; MSE and SSIM per frame, PSNR in dB. "
        "Gap = PSNR(z = mu) - PSNR(z replaced); large = the decoder uses z.",
        "",
        "| head | beta | params | clips | MSE | PSNR | SSIM | mean-frame PSNR "
        "| PSNR z=1 | PSNR z=0 | PSNR other z | gap z=1 | gap z=0 | gap other z | KL/clip |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for split in ("train", "held_out"):
            r = run[split]
            mu, ones, zeros, other = r["z=mu"], r["z=ones"], r["z=zeros"], r["z=other"]
            lines.append(
                f"| {run['head']} | {run['beta']:g} | {run['trainable_params'] / 1e6:.2f} M "
                f"| {split.replace('_', '-')} | {mu['mse']:.4f} | {mu['psnr']:.2f} "
                f"| {mu['ssim']:.3f} | {r['mean_frame']['psnr']:.2f} | {ones['psnr']:.2f} "
                f"| {zeros['psnr']:.2f} | {other['psnr']:.2f} | {mu['psnr'] - ones['psnr']:.2f} "
                f"| {mu['psnr'] - zeros['psnr']:.2f} | {mu['psnr'] - other['psnr']:.2f} "
                f"| {r['kl_per_clip']['nats']:.1f} |"
            )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
