"""Sampled futures of vidgen's conditional VAEs, per horizon step, against vidgen's
deterministic predictor, copy-last and mean-frame; whether their things stay whole; figures.

On each embedded dataset of :data:`DATASETS` (``--data``), its VAEs (shapes: ``vae_demo.yaml``,
the MotionVAE, and ``vae_things_demo.yaml``, the ThingMotionVAE; textured: the MotionVAE, whose
config is fitted on the textured data instead, and ``vae_layers_textured.yaml``, the
LayerMotionVAE; the ThingMotionVAE needs a flat background) and
its deterministic MotionPredictor (``demo.yaml``, ``demo_textured.yaml``: the same data and test
clips) train at their configs' budgets (``vidgen fit``). Then, per VAE, one pass over the
held-out clips draws K futures (the VAE's ``predict_samples``) of 16 steps from 4 true
frames of each clip and scores them as ``vidgen test`` does (:mod:`vidgen.sampled_futures`):
best of K (each clip's sample with the best score over the horizon, per metric) and mean of K
per horizon step, each sample index's collapse score and Fréchet distance to the true futures
(in :func:`vidgen.fvd.clip_features`' features); beside them, the same scores of the
predictor's rollout (what ``vidgen test`` scores of it), of the VAE's reconstruction and of the
baselines, and (flat backgrounds only) :mod:`vidgen.wholeness`: the share of the frames whose
things stay whole, and of the frames in which the true clip's are whole. SimVP's per-step
scores on the same test clips come from ``predictors_shapes_textured.json``
(``compare_predictors.py``) where it is there.

    python benchmarks/sampled_futures.py           # the configs' budgets and test clips
    python benchmarks/sampled_futures.py --max-steps 96  # each model at most 96 steps
    python benchmarks/sampled_futures.py --max-steps 96 --full vae_things_demo.yaml  # but it
    python benchmarks/sampled_futures.py --data textured --max-steps 96  # the textured data
    python benchmarks/sampled_futures.py --quick   # a smoke run: 6 training steps, 1 test batch

Writes ``benchmarks/results/sampled_futures.{md,json}`` (``sampled_futures_textured`` with
``--data textured``; a section per VAE) and each VAE's figure in ``docs/`` (two test clips:
context, truth, the predictor's rollout and 4 of the samples); the run folders stay under
``runs/sampled_futures_<config>`` and ``runs/sampled_futures_predictor`` (``_textured_`` after
``sampled_futures`` for the textured data). ``--quick`` writes all to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from common import DOCS, RESULTS, add_quick, fit_only, results_dir, write_results
from filmstrip import sheet
from torch import Tensor

from vidgen.cli import CONFIG_DIR
from vidgen.evaluation import BASELINES, METRICS, HorizonMetrics
from vidgen.fvd import clip_features
from vidgen.sampled_futures import GROUP, LOWER_IS_BETTER, SAMPLED, FutureMetrics, distance
from vidgen.wholeness import TOLERANCE, piece_changes, whole_where_truth_is


@dataclass(frozen=True)
class Dataset:
    """One embedded dataset's comparison."""

    predictor: str
    """The deterministic predictor's config (its batch size differs from the VAEs': 16, 8)."""
    figures: dict[str, str]
    """The VAEs' configs, each with its figure's file name."""
    simvp: dict[str, str]
    """Our name for each of SimVP's rows in ``predictors_shapes_textured.json`` (same clips)."""
    vae_args: tuple[str, ...] = ()
    """Options of the VAEs' fits (the data they are fitted on, where not their config's)."""
    flat: bool = True
    """Shapes over a flat background: whether :mod:`vidgen.wholeness` applies."""


DATASETS = {
    "shapes": Dataset(
        "demo.yaml",
        {"vae_demo.yaml": "futures_demo.png", "vae_things_demo.yaml": "futures_things.png"},
        {"simvp (same steps)": "simvp_demo (vidgen's steps)", "simvp (long)": "simvp_demo (long)"},
    ),
    "textured": Dataset(
        "demo_textured.yaml",
        {"vae_demo.yaml": "futures_textured.png", "vae_layers_textured.yaml": "futures_layers.png"},
        {
            "simvp (same steps)": "simvp_textured (vidgen's steps)",
            "simvp (long)": "simvp_textured (long)",
        },
        ("--data=vidgen.TexturedDataModule",),
        flat=False,
    ),
}
QUICK_FIT = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=6",
    "--trainer.limit_val_batches=2",
    "--trainer.num_sanity_val_steps=0",
]
"""``--quick``: the options of both fits."""
QUICK_BATCHES = 1
"""Test batches of a ``--quick`` run."""
SHOWN_CLIPS = 2
SHOWN_SAMPLES = 4
SHOWN_STEPS = (2, 4, 6, 8, 10, 12, 14, 16)
SOURCES = (*SAMPLED, "deterministic", *BASELINES)
"""The per-step table's sources: the samples', the predictor's rollout, the baselines."""
OTHERS = ("deterministic", "copy_last", "mean_frame")


def fit_model(
    config: str, root: Path, quick: bool, max_steps: int | None = None, *options: str
) -> tuple[torch.nn.Module, dict]:
    """``vidgen fit`` of a packaged ``config`` (and ``options``) in ``root`` (at most
    ``max_steps`` optimiser steps if given): the trained model (eval mode), its data module and
    its setup line."""
    budget = QUICK_FIT * quick + [f"--trainer.max_steps={max_steps}"] * (max_steps is not None)
    fit, seconds = fit_only(["--config", str(CONFIG_DIR / config), *options], root, *budget)
    steps = fit.trainer.global_step
    return fit.model.eval(), {"steps": steps, "fit seconds": round(seconds), "data": fit.datamodule}


class Scores:
    """Everything one pass over the test clips accumulates: the sampled futures'
    :class:`FutureMetrics`, the rollout's and the reconstruction's :class:`HorizonMetrics`,
    their features for the Fréchet distance, and (``flat``: a flat background) every source's
    :func:`piece_changes`."""

    def __init__(self, horizon: int, flat: bool = True) -> None:
        self.flat = flat
        self.name, self.net = clip_features()
        self.futures = FutureMetrics(horizon, (self.name, self.net))
        self.metrics = {s: HorizonMetrics(horizon) for s in ("deterministic", "reconstruction")}
        self.features: dict[str, list[Tensor]] = {"real": [], **{s: [] for s in self.metrics}}
        self.changes: dict[str, list[Tensor]] = {}  # (2, B, [K,] T): pieces and area

    def update(self, video: Tensor, predictions: dict[str, Tensor], samples: Tensor) -> None:
        """Score one batch: ``video`` ``(B, c + T, C, H, W)``, ``predictions`` ``(B, T, ...)``
        per source, ``samples`` ``(B, K, T, C, H, W)``."""
        c = video.shape[1] - samples.shape[2]
        context, target = video[:, :c], video[:, c:]
        self.futures.update(samples, target, context)
        self.features["real"].append(self.net(target).float())
        for source, metrics in self.metrics.items():
            metrics.update(predictions[source], target, context)
            self.features[source].append(self.net(predictions[source]).float())
        if not self.flat:
            return
        reference = video[:, 0]  # every source's piece changes against the clip's first frame
        frames = {"truth": target, **predictions, "copy_last": context[:, -1:].expand_as(target)}
        for source, clip in frames.items():
            self.changes.setdefault(source, []).append(torch.stack(piece_changes(clip, reference)))
        k = samples.shape[1]
        changes = piece_changes(samples.flatten(0, 1), reference.repeat_interleave(k, 0))
        changes = torch.stack([c.unflatten(0, (len(video), k)) for c in changes])
        self.changes.setdefault("samples", []).append(changes)

    def compute(self) -> dict[str, Tensor]:
        """``futures/<source>/<metric>`` ``(T,)``, collapse and Fréchet distances (as
        :class:`FutureMetrics` names them, plus the rollout's and the reconstruction's) and
        ``wholeness/<source>/{whole,kept,steps}``."""
        out = {f"{GROUP}/{k}": v for k, v in self.futures.compute().items()}
        real = torch.cat(self.features["real"])
        for source, metrics in self.metrics.items():
            results = metrics.compute()
            out |= {f"{GROUP}/{source}/{m}": results[f"model/{m}"] for m in METRICS}
            out[f"{GROUP}/{source}/collapse"] = results["model/collapse"]
            fake = torch.cat(self.features[source])
            out[f"{GROUP}/{source}/{self.name}"] = torch.tensor(distance(real, fake))
        return out | (self.wholeness() if self.flat else {})

    def wholeness(self) -> dict[str, Tensor]:
        """``wholeness/<source>/<what>``: ``whole``, the share of the frames whole; ``kept``,
        ``kept_pieces``, ``kept_area``, ``kept_fewer``, ``kept_more``, the share of the frames
        in which the truth is whole where the source is whole, has as many pieces, has the
        area, has fewer pieces (things merged: overlapping, or one lost), has more (a thing
        torn, or one that was covered in the first frame shown); ``steps``, the share whole
        per step; one per sample index (K,) for the samples."""
        out, tests = {}, {}
        for source, parts in self.changes.items():
            pieces, area = torch.cat(parts, 1)  # (B, T), or (B, K, T) for the samples
            pieces, area = (v.transpose(0, 1) if v.ndim == 3 else v[None] for v in (pieces, area))
            tests[source] = {"pieces": pieces == 0, "area": area.abs() <= TOLERANCE}
            tests[source]["whole"] = tests[source]["pieces"] & tests[source]["area"]
            tests[source] |= {"fewer": pieces < 0, "more": pieces > 0}
        truth = tests["truth"]["whole"][0]
        for source, t in tests.items():  # each (K or 1, B, T)
            one = (lambda v: v) if source == "samples" else (lambda v: v[0])
            out[f"wholeness/{source}/steps"] = t["whole"].float().mean((0, 1))
            out[f"wholeness/{source}/whole"] = one(t["whole"].float().mean((1, 2)))
            for name, test in t.items():
                kept = torch.stack([whole_where_truth_is(p, truth) for p in test])
                out[f"wholeness/{source}/kept" + ("" if name == "whole" else f"_{name}")] = one(
                    kept
                )
        return out


@torch.no_grad()
def evaluate(
    vae: torch.nn.Module,
    predictor: torch.nn.Module,
    loader,
    batches: int | None,
    seed: int = 0,
    flat: bool = True,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One pass over ``loader``'s clips (the first ``batches``): the :class:`Scores`' results
    (wholeness where the background is ``flat``) and the first clips' frames for the figure.
    The samples are drawn from ``seed``."""
    c = vae.condition_frames
    if predictor.context_frames != c:
        raise ValueError(f"the predictor sees {predictor.context_frames} frames, the VAE {c}")
    generator = torch.Generator().manual_seed(seed)
    scores, shown = None, {}
    for i, batch in enumerate(loader):
        if batches is not None and i >= batches:
            break
        video = batch["video"].float() / 255
        horizon = video.shape[1] - c
        samples = vae.sample_futures(video[:, :c], horizon, vae.predict_samples, generator)
        predictions = {
            "deterministic": predictor.rollout(video[:, :c], horizon),
            "reconstruction": vae.reconstruct(video)[:, c:],
        }
        scores = scores or Scores(horizon, flat)
        scores.update(video, predictions, samples)
        if not shown:
            n = SHOWN_CLIPS
            shown = {"video": video[:n], "predictor": predictions["deterministic"][:n]}
            shown["samples"] = samples[:n, :SHOWN_SAMPLES]
    return scores.compute(), shown


def figure(shown: dict[str, Tensor], out: Path) -> None:
    """Per clip: its context and true future, the predictor's rollout and the first samples,
    at :data:`SHOWN_STEPS`; written to ``out``."""
    video, c = shown["video"], shown["video"].shape[1] - shown["predictor"].shape[1]
    steps = [s for s in SHOWN_STEPS if s <= shown["predictor"].shape[1]]
    rows, labels = [], []
    for i in range(len(video)):
        rows.append([*video[i, :c], *(video[i, c + s - 1] for s in steps)])
        labels.append("truth")
        futures = [("predictor", shown["predictor"][i])]
        futures += [(f"sample {k + 1}", f) for k, f in enumerate(shown["samples"][i])]
        for label, future in futures:
            rows.append([None] * c + [future[s - 1] for s in steps])
            labels.append(label)
    titles = [f"c{j + 1}" for j in range(c)] + [f"t+{s}" for s in steps]
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet(rows, labels, titles).save(out)


def simvp_rows(data: str) -> dict[str, dict[str, Tensor]]:
    """SimVP's per-step scores on the test clips of dataset ``data``, from
    ``compare_predictors.py``'s results (empty where they are missing), with that run's
    copy-last (to check the clips are ours)."""
    path = RESULTS / "predictors_shapes_textured.json"
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text()).get(data, {})
    return {
        name: {k: torch.tensor(v) for k, v in rows[row].items() if k.count("/") == 1}
        for name, row in DATASETS[data].simvp.items()
        if row in rows
    }


def beats(results: dict[str, Tensor], other: dict[str, Tensor]) -> dict[str, Tensor]:
    """Per step, whether best of K beats ``other`` (``"<metric>": (T,)``) on each metric and on
    all of them at once (``"all"``)."""
    out = {}
    for m in METRICS:
        best = results[f"{GROUP}/best_of_k/{m}"]
        out[m] = best < other[m] if m in LOWER_IS_BETTER else best > other[m]
    out["all"] = torch.stack([out[m] for m in METRICS]).all(0)
    return out


def step_table(results: dict[str, Tensor]) -> list[str]:
    """A markdown row per horizon step: each metric for best-of-K, mean-of-K, the predictor's
    rollout and the baselines."""
    header = " | ".join(f"{m.upper()} {s}" for m in METRICS for s in SOURCES)
    lines = [f"| step | {header} |", "|---" * (1 + len(METRICS) * len(SOURCES)) + "|"]
    horizon = len(results[f"{GROUP}/best_of_k/mse"])
    digits = {"mse": 4, "psnr": 2, "ssim": 3}
    for t in [*range(horizon), None]:
        cells = [
            f"{float(values[t] if t is not None else values.mean()):.{digits[m]}f}"
            for m in METRICS
            for values in (results[f"{GROUP}/{s}/{m}"] for s in SOURCES)
        ]
        lines.append(f"| {'mean' if t is None else t + 1} | {' | '.join(cells)} |")
    return lines


def win_lines(results: dict[str, Tensor], simvp: dict[str, dict[str, Tensor]]) -> list[str]:
    """At how many steps best of K beats each other source, per metric and on all three."""
    others = {s: {m: results[f"{GROUP}/{s}/{m}"] for m in METRICS} for s in OTHERS}
    others |= {name: {m: row[f"model/{m}"] for m in METRICS} for name, row in simvp.items()}
    lines = ["| best of K vs | MSE | PSNR | SSIM | all three |", "|---|---|---|---|---|"]
    for name, other in others.items():
        won = beats(results, other)
        cells = [f"{int(won[m].sum())}/{len(won[m])}" for m in (*METRICS, "all")]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def sample_lines(results: dict[str, Tensor]) -> list[str]:
    """The samples' collapse scores and Fréchet distances, beside the other sources'."""
    prefix = f"{GROUP}/samples/"
    distance_name = next(
        k[len(prefix) :] for k in results if k.startswith(prefix) and "collapse" not in k
    )
    collapse, sampled = results[f"{prefix}collapse"], results[f"{prefix}{distance_name}"]
    lines = ["| | collapse | " + distance_name + " |", "|---|---|---|"]
    for k, (c, d) in enumerate(zip(collapse.tolist(), sampled.tolist(), strict=True)):
        lines.append(f"| sample {k + 1} | {c:.3f} | {d:.4f} |")
    lines.append(f"| samples, mean | {float(collapse.mean()):.3f} | {float(sampled.mean()):.4f} |")
    for s in ("deterministic", "reconstruction"):
        c, d = (float(results[f"{GROUP}/{s}/{n}"]) for n in ("collapse", distance_name))
        lines.append(f"| {s} | {c:.3f} | {d:.4f} |")
    for b in BASELINES:
        lines.append(f"| {b} | 0.000 | {float(results[f'{GROUP}/{b}/{distance_name}']):.4f} |")
    return lines


def wholeness_lines(results: dict[str, Tensor]) -> list[str]:
    """Per source, the share of the frames whole, and of the truth's whole frames the share
    kept whole, with as many pieces, with the area, with fewer pieces, with more."""
    names = ("whole", "kept", "kept_pieces", "kept_area", "kept_fewer", "kept_more")
    lines = [
        "| | frames whole | where the truth is whole: whole | same pieces | same area "
        "| fewer pieces | more pieces |",
        "|---|---|---|---|---|---|---|",
    ]
    for source in ("truth", "reconstruction", "deterministic", "copy_last"):
        cells = [f"{float(results[f'wholeness/{source}/{n}']):.3f}" for n in names]
        lines.append(f"| {source} | {' | '.join(cells)} |")
    values = [results[f"wholeness/samples/{n}"].reshape(-1) for n in names]
    for k, row in enumerate(zip(*(v.tolist() for v in values), strict=True)):
        lines.append(f"| sample {k + 1} | {' | '.join(f'{v:.3f}' for v in row)} |")
    means = [f"{float(v.mean()):.3f}" for v in values]
    lines.append(f"| samples, mean | {' | '.join(means)} |")
    return lines


def section(
    config: str, results: dict[str, Tensor], setup: str, simvp: dict, predictor: str
) -> list[str]:
    """The markdown section of one VAE: its setup and every table (wholeness where measured)."""
    wholeness = []
    if "wholeness/truth/whole" in results:
        wholeness = [
            "Wholeness (`vidgen.wholeness`): a frame is whole when it has as many connected "
            "foreground pieces as the clip's first frame and their area is within 20 % of its; "
            "share of the future frames whole, and share of the frames in which the true clip is "
            "whole where the source is whole too, has as many pieces, has the area, has fewer "
            "pieces (things merged: overlapping, or one lost) and has more (a thing torn, or one "
            "covered in the first frame shown).",
            "",
            *wholeness_lines(results),
            "",
        ]
    return [
        f"## `{config}`",
        "",
        f"Trained: {setup}.",
        "",
        "Per horizon step after the context: best of K (each clip's sample with the best score "
        "over the horizon, per metric), mean of K (the score averaged over the samples), the "
        f"deterministic predictor's rollout (`{predictor}`), copy-last-frame and mean-frame of "
        "the context.",
        "",
        *step_table(results),
        "",
        "Steps at which best of K beats each other source (SimVP: its per-step scores in "
        "`predictors_shapes_textured.json`, the same test clips, where present):",
        "",
        *win_lines(results, simvp),
        "",
        "Collapse score (frame-to-frame change over the truth's; 0 = frozen) and Fréchet "
        "distance to the true futures: each sample index (the k-th future of every clip), the "
        "predictor's rollout, the VAE's reconstruction (z from the whole clip) and the "
        "baselines.",
        "",
        *sample_lines(results),
        "",
        *wholeness,
    ]


def markdown(
    results: dict[str, dict[str, Tensor]], setup: dict, simvp: dict, predictor: str
) -> str:
    """The results file: the shared setup, then a :func:`section` per VAE."""
    trained = {config: setup.pop(config) for config in results}
    title = f"# Sampled futures of vidgen's conditional VAEs, {setup['data']} data"
    title += " (quick)" * setup["quick"]
    lines = [title, "", "Setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()) + ".", ""]
    for config, scores in results.items():
        lines += section(config, scores, trained[config], simvp, predictor)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_quick(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", choices=list(DATASETS), default="shapes")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="train each model at most this many optimiser steps (default: the configs' "
        "epochs), for machines where the configs' budgets take too long",
    )
    parser.add_argument(
        "--full",
        action="append",
        default=[],
        choices=sorted({c for d in DATASETS.values() for c in (d.predictor, *d.figures)}),
        help="a config trained at its own budget despite --max-steps (repeatable)",
    )
    args = parser.parse_args()
    data = DATASETS[args.data]
    torch.set_num_threads(args.threads)
    folder = results_dir(args.quick)
    root = folder / "run" if args.quick else Path("runs")
    name = "sampled_futures" + ("" if args.data == "shapes" else f"_{args.data}")

    def cap(config: str) -> int | None:
        return None if config in args.full else args.max_steps

    predictor, predictor_setup = fit_model(
        data.predictor, root / f"{name}_predictor", args.quick, cap(data.predictor)
    )
    predictor_setup.pop("data")
    batches = QUICK_BATCHES if args.quick else None
    results, setup, simvp = {}, {"data": args.data, "quick": args.quick}, simvp_rows(args.data)
    for config, figure_name in data.figures.items():
        run = root / f"{name}_{Path(config).stem}"
        vae, vae_setup = fit_model(config, run, args.quick, cap(config), *data.vae_args)
        loader = vae_setup.pop("data").test_dataloader()
        torch.manual_seed(0)
        results[config], shown = evaluate(vae, predictor, loader, batches, flat=data.flat)
        figure(shown, (folder if args.quick else DOCS) / figure_name)
        setup[config] = ", ".join(f"{k} {v}" for k, v in vae_setup.items())
        setup |= {
            "K": vae.predict_samples,
            "context frames": vae.condition_frames,
            "horizon": len(results[config][f"{GROUP}/best_of_k/mse"]),
            "test clips": loader.batch_size * (batches or len(loader)),
        }
    copy_last = [r[f"{GROUP}/copy_last/mse"] for r in results.values()]
    if any(not torch.equal(copy_last[0], c) for c in copy_last):
        raise RuntimeError("the VAEs' test clips differ: their copy-last scores do")
    copy_gap = max(
        (float((row["copy_last/mse"] - copy_last[0]).abs().max()) for row in simvp.values()),
        default=math.nan,
    )
    setup |= {
        data.predictor: ", ".join(f"{k} {v}" for k, v in predictor_setup.items()),
        "SimVP's copy-last MSE minus ours, largest step": f"{copy_gap:.1e}",
        "threads": args.threads,
    }
    data_out = {
        "setup": setup,
        "results": {c: {k: v.tolist() for k, v in r.items()} for c, r in results.items()},
    }
    text = markdown(results, dict(setup), simvp, data.predictor)
    write_results(folder / name, text, data_out)


if __name__ == "__main__":
    main()
