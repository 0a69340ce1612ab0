"""The paper's VideoVAE vs the improved one: reconstruction, use of z, and generated clips.

Both models are built from their packaged configs (``vae_demo_paper.yaml``: the paper's VAE at
demo size; ``vae_demo.yaml``: the improved one), on the same data (the configs' embedded
shapes, 32 px, 8 frames), from the same seed, for the same number of optimiser steps of the
same batch size, through ``Trainer.fit`` with each model's own loss (:func:`common.train`; the
training videos as fixed centred clips, their frozen-backbone features computed once by the
model's feature cache: on a shared 2-core CPU the backbone is most of a step). Then, on the
held-out test clips:

- reconstruction PSNR / SSIM from z = mu, beside the clip's mean frame (the paper's failure);
- the z gaps: PSNR(own z) - PSNR(z replaced by another clip's z / by ones / by zeros);
- the KL of q(z | clip) to the prior, in nats per clip;
- prior samples (a conditional model continues each clip's first frame): their collapse score
  (frame-to-frame change vs the real clips'; 0 = frozen) and their Fréchet distance to the real
  clips in the features of a small video classifier trained on the shapes data
  (``shapes_classifier.py``), beside reference "generators": each clip's mean frame repeated,
  its first frame repeated (copy-last of the context) and other real clips (the floor).

Metrics of reconstructions are over frames 2..8 (a conditional model is given frame 1): the
MotionVAE runs here conditioned on one frame, on 8-frame test clips (:data:`ONE_FRAME`), and
``sampled_futures.py`` scores it as packaged, from 4 context frames over 16 steps.

    PYTHONPATH=. python benchmarks/compare_vaes.py --steps 300    # the table in docs/results.md
    PYTHONPATH=. python benchmarks/compare_vaes.py --quick        # toy size, a temporary folder

Writes ``benchmarks/results/vae_compare.{md,json}`` and ``docs/vae_samples.png`` (``--quick``:
both in a temporary folder).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import DOCS, add_quick, results_dir, train, write_results
from shapes_classifier import train_classifier
from torch import Tensor
from yaml_models import build_data, build_model

from vidgen.evaluation import collapse_score, frame_metrics
from vidgen.fvd import frechet_distance, video_features
from vidgen.models.vae_base import VAEModule

MODELS = {"paper": "vae_demo_paper.yaml", "improved": "vae_demo.yaml"}
ONE_FRAME = [  # the MotionVAE given its clips' first frame, on the paper VAE's 8-frame clips
    "--model.init_args.condition_frames=1",
    "--data.init_args.eval_frames=8",
]
SKIP = 1  # reconstructions are scored after the first frame (a conditional model is given it)
QUICK_DATA = [  # --quick: a few clips of each split
    "--data.init_args.num_train=4",
    "--data.init_args.num_val=4",
    "--data.init_args.num_test=4",
    "--data.init_args.batch_size=2",
]


def clips(source) -> Tensor:
    """Every clip of a data loader or dataset as floats in [0, 1]."""
    if isinstance(source, torch.utils.data.Dataset):
        return torch.stack([item["video"] for item in source]).float().div_(255)
    return torch.cat([batch["video"] for batch in source]).float().div_(255)


def scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Mean PSNR / SSIM / MSE over frames ``SKIP:``."""
    values = frame_metrics(pred[:, SKIP:], target[:, SKIP:])
    return {name: float(v.mean()) for name, v in values.items()}


@torch.no_grad()
def evaluate(model: VAEModule, video: Tensor, features, seed: int) -> dict:
    """Reconstruction, z gaps, KL and the prior samples' collapse and Fréchet distance."""
    model.eval()
    mu, logvar = model.posterior(video)
    context = model.context(video)
    frames = video.shape[1]
    recon = {
        "own": model.decode(mu, frames, context),
        "other": model.decode(mu.roll(1, 0), frames, context),
        "ones": model.decode(torch.ones_like(mu), frames, context),
        "zeros": model.decode(torch.zeros_like(mu), frames, context),
    }
    result = {f"z={k}": scores(v, video) for k, v in recon.items()}
    for k in ("other", "ones", "zeros"):
        result[f"gap_{k}"] = result["z=own"]["psnr"] - result[f"z={k}"]["psnr"]
    result["kl_per_clip"] = float(model.kl(mu, logvar, context))
    samples = model.sample(len(video), frames, torch.Generator().manual_seed(seed), context=context)
    result["sample_collapse"] = float(collapse_score(samples, video))
    result["sample_fd"] = frechet_distance(features(video), features(samples))
    return result | {"samples": samples[:6], "reconstructions": recon["own"][:6]}


@torch.no_grad()
def references(video: Tensor, other: Tensor, features) -> dict[str, dict[str, float]]:
    """The reference "generators": scores and Fréchet distance to the real clips."""
    gens = {
        "mean frame (still)": video.mean(1, keepdim=True).expand_as(video),
        "copy first frame (still)": video[:, :1].expand_as(video),
        "other real clips": other,
    }
    real = features(video)
    out = {}
    for name, gen in gens.items():
        out[name] = {
            "collapse": float(collapse_score(gen, video)),
            "fd": frechet_distance(real, features(gen)),
            **(
                scores(gen, video)
                if gen.shape == video.shape and name != "other real clips"
                else {}
            ),
        }
    return out


def figure(real: Tensor, runs: dict[str, dict], path: Path) -> None:
    """Rows: real clips, then each model's reconstructions and prior samples (first 3 clips)."""
    from matplotlib.figure import Figure

    rows = [("real clip", real[:3])]
    for name, run in runs.items():
        rows += [(f"{name}: reconstruction", run["reconstructions"][:3])]
        rows += [(f"{name}: prior sample", run["samples"][:3])]
    frames = real.shape[1]
    fig = Figure(figsize=(frames * 3 * 0.42 + 2.2, len(rows) * 0.5 + 0.4), layout="constrained")
    axes = fig.subplots(len(rows), 1)
    for ax, (label, videos) in zip(axes, rows, strict=True):
        strip = torch.cat(
            [torch.cat([*v.clamp(0, 1)], dim=-1) for v in videos], dim=-1
        )  # clips side by side
        ax.imshow(strip.permute(1, 2, 0).numpy())
        ax.set_yticks([])
        ax.set_xticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Three held-out clips (8 frames each): real, reconstructed, sampled", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def markdown(setup: dict, runs: dict[str, dict], refs: dict, classifier: dict) -> str:
    lines = [
        "# VideoVAE: the paper's vs the improved one (same data, seed and steps)",
        "",
        "Setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()) + ".",
        "",
        "Reconstructions from z = mu over frames 2-8 of the held-out clips; gap = PSNR(own z) "
        "- PSNR(z replaced); collapse = frame-to-frame change of prior samples / that of the "
        "real clips; FD = Fréchet distance to the real clips in the shapes classifier's "
        f"features (held-out accuracy: kind {classifier['kind_accuracy']:.2f}, direction "
        f"{classifier['direction_accuracy']:.2f}).",
        "",
        "| model | steps | train s | PSNR | SSIM | mean-frame PSNR | vs mean frame | gap other z "
        "| gap z=1 | gap z=0 | KL/clip | sample collapse | sample FD |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mean = refs["mean frame (still)"]
    for name, r in runs.items():
        own = r["z=own"]
        lines.append(
            f"| {name} | {r['steps']} | {r['train_seconds']:.0f} | {own['psnr']:.2f} "
            f"| {own['ssim']:.3f} | {mean['psnr']:.2f} | {own['psnr'] - mean['psnr']:+.2f} "
            f"| {r['gap_other']:.2f} | {r['gap_ones']:.2f} | {r['gap_zeros']:.2f} "
            f"| {r['kl_per_clip']:.1f} | {r['sample_collapse']:.2f} | {r['sample_fd']:.3f} |"
        )
    lines += ["", "| reference generator | PSNR | SSIM | collapse | FD |", "|---|---|---|---|---|"]
    for name, r in refs.items():
        psnr = f"{r['psnr']:.2f}" if "psnr" in r else "-"
        ssim = f"{r['ssim']:.3f}" if "ssim" in r else "-"
        lines.append(f"| {name} | {psnr} | {ssim} | {r['collapse']:.2f} | {r['fd']:.3f} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--classifier-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    add_quick(parser)
    args = parser.parse_args()
    quick = QUICK_DATA if args.quick else []
    if args.quick:
        args.steps, args.classifier_steps = 2, 1
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    classifier, report = train_classifier(
        steps=args.classifier_steps, **({"num_videos": 8, "held_out": 8} if args.quick else {})
    )

    def features(videos: Tensor) -> Tensor:
        return video_features(classifier, videos)

    runs: dict[str, dict] = {}
    for name, config in MODELS.items():
        torch.manual_seed(0)
        one_frame = ONE_FRAME if name == "improved" else []
        model, _ = build_model(config, "--model.init_args.feature_cache_gib=1", *one_frame, *quick)
        dm = build_data(config, *one_frame, *quick)
        dm.setup("fit")
        dm.setup("test")
        test, other = clips(dm.test_dataloader()), clips(dm.val_dataloader())
        # the training videos as fixed, centred clips (as evaluated)
        dataset = dm.make_dataset("train", dm.sampler("val"))
        losses, seconds = train(model, dataset, args.steps, dm.batch_size)
        run = evaluate(model, test, features, seed=0)
        run |= {"config": config, "steps": args.steps, "batch_size": dm.batch_size}
        run |= {
            "train_seconds": round(seconds, 1),
            "final_train_loss": sum(losses[-20:]) / len(losses[-20:]),
        }
        runs[name] = run
        print(name, {k: v for k, v in run.items() if k not in ("samples", "reconstructions")})
    refs = references(test, other[: len(test)], features)
    setup = {
        "data": f"{type(dm).__name__}, {dm.image_size} px, {test.shape[1]}-frame clips, "
        f"{len(test)} held-out test clips ({len(other)} validation clips as 'other real clips')",
        "steps": args.steps,
        "batch_size": dm.batch_size,
        "classifier": report,
        "threads": args.threads,
        "total_seconds": round(time.perf_counter() - begin),
    }
    plain = {
        n: {k: v for k, v in r.items() if k not in ("samples", "reconstructions")}
        for n, r in runs.items()
    }
    out = results_dir(args.quick)
    data = {"setup": setup, "runs": plain, "references": refs}
    write_results(out / "vae_compare", markdown(setup, runs, refs, report), data)
    figure(test, runs, (out if args.quick else DOCS) / "vae_samples.png")


if __name__ == "__main__":
    main()
