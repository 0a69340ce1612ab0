"""Where each packaged config's training step spends its time, part by part.

Every config's model is built from its YAML (:mod:`yaml_models`, random backbone weights) at its
own frame size and fed a random uint8 batch of its clip shape (no data needed; the batch goes
through the model's own uint8 -> float conversion). One step is ``training_step`` (forward and
loss), ``backward``, optimiser step; the forward is split into parts by timers wrapped, for the
run only, around the model's modules and vidgen's motion functions (nothing in ``vidgen/`` is
edited):

- backbone: ``model.backbone`` (frozen VGG16; the perceptual loss's pass counts as loss);
- core: ``model.core`` / ``encoder`` / ``decoder``; head: ``model.head`` (``forward``, ``logits``);
- block matching, motion layers: :mod:`vidgen.models.motion_estimation`'s functions;
- warp (backward warping, flow composition), splat (forward splatting, ``splat_over``,
  ``carry``), hole fill (``push_pull``): :mod:`vidgen.models.motion_transport`'s;
- prior: :mod:`vidgen.models.priors` (the motion VAE's correlated prior and its KL);
- loss: ``model.loss``; other forward: the rest of the forward (glue, KL, logging).

Each part's time is its own (exclusive): a timed function called inside another counts only
for itself. On CUDA every timer synchronises the device (the parts add up; the step is slower
than unprofiled). The timers also open ``torch.profiler.record_function`` ranges of the same
names, so a ``torch.profiler`` trace of a run shows them.

    python benchmarks/profile_step.py                              # CPU, every config
    python benchmarks/profile_step.py --configs demo.yaml predictor.yaml
    python benchmarks/profile_step.py --device cuda                # each config's own batch

On a CPU the 224 px configs run 2 clips a batch and one step without warm-up (a step of
``predictor.yaml`` takes tens of seconds there); the embedded-data configs run their own batch,
one warm-up step and 3 timed ones. ``--quick``: ``common.QUICK_CONFIGS`` at 32 px, 2 clips,
one step. Writes ``benchmarks/results/profile_<device>.{md,json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from common import (
    QUICK_CONFIGS,
    add_quick,
    optimizer_of,
    quick_overrides,
    results_dir,
    sync,
    synthetic_batch,
    timed,
    write_results,
)
from provenance import provenance
from yaml_models import build_model, clip_shape, packaged, read_config

FORWARD_PARTS = (
    "backbone",
    "core",
    "head",
    "block matching",
    "motion layers",
    "warp",
    "splat",
    "hole fill",
    "prior",
    "loss",
    "other forward",
)
PARTS = (*FORWARD_PARTS, "backward", "optimizer")
FUNCTIONS = {  # vidgen function -> part; a function that is not there (renamed) is skipped
    "vidgen.models.motion_estimation.block_match": "block matching",
    "vidgen.models.motion_estimation.motion_layers": "motion layers",
    "vidgen.models.motion_transport.warp": "warp",
    "vidgen.models.motion_transport.compose_flows": "warp",
    "vidgen.models.motion_transport.splat": "splat",
    "vidgen.models.motion_transport.splat_over": "splat",
    "vidgen.models.motion_transport.carry": "splat",
    "vidgen.models.motion_transport.push_pull": "hole fill",
    "vidgen.models.priors.affinity_scale_tril": "prior",
    "vidgen.models.priors.correlated_kl": "prior",
    "vidgen.models.priors.sample_correlated": "prior",
}
MODULES = {  # model attribute -> part, methods timed on it
    "backbone": ("backbone", ("forward",)),
    "core": ("core", ("forward",)),
    "encoder": ("core", ("forward",)),
    "decoder": ("core", ("forward",)),
    "head": ("head", ("forward", "logits")),
    "loss": ("loss", ("forward",)),
}
LARGE = 128  # frames above this many pixels a side count as "large" (CPU defaults below)


class PartTimer:
    """Exclusive wall time per part of functions wrapped by :meth:`wrap`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.children: list[float] = []  # per open timer: time spent in timers inside it

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed as ``part`` (its own time only: timed calls inside it are theirs)."""

        @functools.wraps(fn)
        def timed_fn(*args: Any, **kwargs: Any) -> Any:
            sync(self.device)
            start = time.perf_counter()
            self.children.append(0.0)
            try:
                with torch.profiler.record_function(part):
                    return fn(*args, **kwargs)
            finally:
                sync(self.device)
                elapsed = time.perf_counter() - start
                self.seconds[part] += elapsed - self.children.pop()
                if self.children:
                    self.children[-1] += elapsed

        return timed_fn


def replace_function(
    path: str, replacement: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Callable[[], None] | None:
    """Put ``replacement(original)`` in place of the vidgen function ``path`` (dotted) in
    every vidgen module that holds it (also those that imported it by name); returns what undoes
    that, or ``None`` if there is no such function."""
    module_name, _, name = path.rpartition(".")
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    original = getattr(module, name, None)
    if original is None:
        return None
    new = replacement(original)
    places = [
        (holder, attr)
        for key, holder in list(sys.modules.items())
        if key.startswith("vidgen")
        for attr, value in list(vars(holder).items())
        if value is original
    ]
    for holder, attr in places:
        setattr(holder, attr, new)

    def undo() -> None:
        for holder, attr in places:
            setattr(holder, attr, original)

    return undo


@contextlib.contextmanager
def patched(model: torch.nn.Module, timer: PartTimer) -> Iterator[list[str]]:
    """Timers around ``model``'s modules and vidgen's motion functions (every module that
    imported a function by name included), removed on exit; yields what was not found."""
    undo: list[Callable[[], None]] = []
    missing = []
    for path, part in FUNCTIONS.items():
        found = replace_function(path, lambda original, part=part: timer.wrap(part, original))
        if found is None:
            missing.append(path)
        else:
            undo.append(found)
    for attr, (part, methods) in MODULES.items():
        module = getattr(model, attr, None)
        if not isinstance(module, torch.nn.Module):
            continue
        for method in methods:
            if hasattr(module, method):
                object.__setattr__(module, method, timer.wrap(part, getattr(module, method)))
                undo.append(functools.partial(object.__delattr__, module, method))
    try:
        yield missing
    finally:
        for step in reversed(undo):
            step()


def profile(
    config: str,
    device: torch.device,
    batch: int | None,
    warmup: int,
    steps: int,
    overrides: Sequence[str] = (),
) -> dict:
    """Median milliseconds per part of ``steps`` training steps of ``config`` (after
    ``warmup`` untimed ones; ``overrides``: CLI-style changes to the config)."""
    torch.manual_seed(0)
    model, data = build_model(config, "--model.init_args.backbone_weights=null", *overrides)
    model = model.to(device).train()
    shape = clip_shape(data, batch)
    clips = synthetic_batch(shape, device)
    opt = optimizer_of(model)
    timer = PartTimer(device)
    samples = []
    with patched(model, timer) as missing:
        for i in range(warmup + steps):
            timer.seconds.clear()
            opt.zero_grad(set_to_none=True)
            step_batch = model.on_after_batch_transfer(dict(clips), 0)
            loss, forward = timed(lambda b=step_batch: model.training_step(b, 0), device)
            _, backward = timed(loss.backward, device)
            _, optimizer = timed(opt.step, device)
            if i < warmup:
                continue
            parts = dict(timer.seconds)
            parts["other forward"] = forward - sum(parts.values())
            parts.update(backward=backward, optimizer=optimizer)
            samples.append(parts)
    ms = {p: 1e3 * statistics.median(s.get(p, 0.0) for s in samples) for p in PARTS}
    return {
        "config": config,
        "model": type(model).__name__,
        "shape": list(shape),
        "warmup": warmup,
        "steps": steps,
        "ms": ms,
        "step_ms": sum(ms.values()),
        "not_found": missing,
    }


EXPLAINED = (
    "One training step (forward with loss, backward, optimiser step) of each packaged config's "
    "model, random backbone weights, on a random uint8 batch of B clips x S frames (`batch` "
    "column); median over the timed steps (`steps`, after `warmup` untimed ones). Each cell: "
    "ms (share of the step). Parts are exclusive (a timed function inside another counts once, "
    "for itself); `other forward` is the forward's untimed rest; `-`: the config has no such "
    "part."
)


def table(rows: list[dict]) -> list[str]:
    """Markdown lines of the profile table: ms and share of the step per part, a row per
    config."""
    done = [r for r in rows if "ms" in r]
    shown = [p for p in PARTS if any(r["ms"][p] >= 0.05 for r in done)]
    lines = [
        "| config | px | batch | warmup/steps | step ms | " + " | ".join(shown) + " | frames/s |",
        "|---|---|---|---|---|" + "---|" * (len(shown) + 1),
    ]
    for r in rows:
        if "ms" not in r:
            lines.append(f"| {r['config']} | {r.get('error') or r.get('skipped')} |")
            continue
        b, s, _, px, _ = r["shape"]
        cells = [
            f"{r['ms'][p]:.0f} ({r['ms'][p] / r['step_ms']:.0%})" if r["ms"][p] >= 0.05 else "-"
            for p in shown
        ]
        fps = b * s / r["step_ms"] * 1e3
        lines.append(
            f"| {r['config']} | {px} | {b} x {s} | {r['warmup']}/{r['steps']} | "
            f"{r['step_ms']:.0f} | " + " | ".join(cells) + f" | {fps:.1f} |"
        )
    missing = sorted({m for r in rows for m in r.get("not_found", [])})
    if missing:
        lines += ["", "Not found (not timed): " + ", ".join(f"`{m}`" for m in missing)]
    return lines


PAIRS = (  # vidgen's config and the paper's at the same size: their time per frame compared
    ("predictor.yaml", "predictor_paper.yaml"),
    ("vae.yaml", "vae_paper.yaml"),
    ("demo.yaml", "demo_paper.yaml"),
    ("vae_demo.yaml", "vae_demo_paper.yaml"),
)


def per_frame_ratios(rows: list[dict]) -> list[str]:
    """Markdown lines: for each of :data:`PAIRS` in ``rows``, each config's ms per training
    frame and their ratio."""
    per_frame = {
        r["config"]: r["step_ms"] / (r["shape"][0] * r["shape"][1]) for r in rows if "ms" in r
    }
    lines = [
        f"- `{ours}`: {per_frame[ours]:.0f} ms a frame, `{paper}`: {per_frame[paper]:.0f} ms: "
        f"**{per_frame[ours] / per_frame[paper]:.2f}x** the paper's time per frame"
        for ours, paper in PAIRS
        if ours in per_frame and paper in per_frame
    ]
    return ["", "Per frame, vidgen's design against the paper's:", "", *lines] if lines else []


def markdown(rows: list[dict], device: str) -> str:
    """The profile as a results file."""
    title = f"# Training step by part ({device})"
    body = [title, "", EXPLAINED, "", *table(rows), *per_frame_ratios(rows)]
    return "\n".join(body) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=packaged(), help="default: every one")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, help="clips a batch (default: see above)")
    parser.add_argument("--warmup", type=int, help="untimed steps (default: see above)")
    parser.add_argument("--steps", type=int, help="timed steps (default: see above)")
    parser.add_argument("--out", default=None, help="results path without suffix")
    add_quick(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    rows = []
    for config in args.configs or (QUICK_CONFIGS if args.quick else packaged()):
        rows.append(run_one(config, device, args))
        print(f"{config}: {rows[-1].get('step_ms', rows[-1].get('error'))}", flush=True)
    info = provenance(device=device.type)
    out = results_dir(args.quick) / (args.out or f"profile_{device.type}")
    write_results(out, markdown(rows, device.type), rows, info)


def run_one(config: str, device: torch.device, args: argparse.Namespace) -> dict:
    """One config's profile with the defaults of its size and device; errors become a row."""
    size = int(read_config(config)["data"]["init_args"]["image_size"])
    large_on_cpu = device.type == "cpu" and size > LARGE
    cpu = device.type == "cpu"
    batch = args.batch or (2 if large_on_cpu else None)
    warmup = args.warmup if args.warmup is not None else (0 if large_on_cpu else 1 if cpu else 3)
    steps = args.steps or (1 if large_on_cpu else 3 if cpu else 10)
    small = quick_overrides(config) if args.quick else []
    if args.quick:
        warmup, steps = 0, 1
    try:
        return profile(config, device, batch, warmup, steps, small)
    except Exception as error:  # one config's failure must not lose the others' rows
        return {"config": config, "error": f"{type(error).__name__}: {error}"[:300]}


if __name__ == "__main__":
    main()
