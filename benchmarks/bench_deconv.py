"""Benchmark Deconv2d: direct (nn.ConvTranspose2d) vs FFT, forward + backward.

Usage::

    python benchmarks/bench_deconv.py --device cpu            # paper + demo sizes
    python benchmarks/bench_deconv.py --device cuda --bf16    # on a GPU, under autocast
    python benchmarks/bench_deconv.py --device cpu --sweep    # kernel-size crossover sweep
    python benchmarks/bench_deconv.py --quick                 # one tiny layer, one step

Each step is ``zero_grad -> y = m(x) -> y.backward(gy)`` in training mode (so the FFT
path never uses its eval-mode spectrum cache).  Both implementations share the same
weights and inputs and are timed side by side (interleaved) in one run, after warm-up; on CUDA every
step is bracketed by ``torch.cuda.synchronize()``.  The median step time is reported.
Results go to ``benchmarks/results/deconv[_crossover]_<device>[_bf16][_cl].md`` and ``.json``
(or ``--out``; ``--quick``: a temporary folder).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from common import add_quick, results_dir, timed, write_results
from provenance import provenance

from vidgen.models.deconv import Deconv2d


@dataclass
class Config:
    name: str
    batch: int
    c_in: int
    c_out: int
    hin: int
    kernel: int

    @property
    def hout(self) -> int:
        return self.hin + self.kernel - 1


QUICK = Config("quick (8->20, k13)", 2, 4, 3, 8, 13)
"""The layer of ``--quick`` runs: tiny, FFT and direct alike."""


def default_configs(device: str, batch: int | None) -> list[Config]:
    paper_b = batch or (128 if device == "cuda" else 8)
    demo_b = batch or 64
    return [
        Config("paper (35->224, k190)", paper_b, 16, 3, 35, 190),
        Config("demo (36->64, k29)", demo_b, 16, 3, 36, 29),
        Config("demo (16->64, k49)", demo_b, 16, 3, 16, 49),
    ]


def make_step(module: Deconv2d, x: torch.Tensor, gy: torch.Tensor, bf16: bool):
    device_type = x.device.type

    def step() -> None:
        module.zero_grad(set_to_none=True)
        xx = x.detach().requires_grad_(True)
        ctx = (
            torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        with ctx:
            y = module(xx)
        y.backward(gy.to(y.dtype))

    return step


def run_config(
    cfg: Config,
    device: torch.device,
    warmup: int,
    repeats: int,
    bf16: bool,
    channels_last: bool,
    impls: tuple[str, ...] = ("direct", "fft"),
) -> list[dict]:
    """Time all ``impls`` on one configuration, interleaving them round by round so that
    load fluctuations on a shared machine hit every implementation alike."""
    torch.manual_seed(0)
    mods = {}
    for impl in impls:
        m = Deconv2d(cfg.c_in, cfg.c_out, cfg.kernel, impl=impl)
        if mods:
            m.load_state_dict(next(iter(mods.values())).state_dict())
        m = m.to(device)
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
        mods[impl] = m.train()
    x = torch.randn(cfg.batch, cfg.c_in, cfg.hin, cfg.hin, device=device)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    gy = torch.randn(cfg.batch, cfg.c_out, cfg.hout, cfg.hout, device=device)
    with torch.no_grad():
        outs = {k: m(x[:1]).float() for k, m in mods.items()}
    steps = {k: make_step(m, x, gy, bf16) for k, m in mods.items()}
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for impl, step in steps.items():
            times[impl].append(timed(step, device)[1] * 1e3)
    ref = outs[impls[0]]
    base_ms = statistics.median(times[impls[0]])
    rows = []
    for impl in impls:
        ms = statistics.median(times[impl])
        err = (outs[impl] - ref).abs().max().item() / max(1.0, ref.abs().max().item())
        rows.append(
            {
                **asdict(cfg),
                "hout": cfg.hout,
                "impl": impl,
                "ms_median": ms,
                "ms_min": min(times[impl]),
                "frames_per_s": cfg.batch / ms * 1e3,
                "speedup_vs_direct": base_ms / ms,
                "max_rel_err_vs_direct": err,
                "repeats": repeats,
            }
        )
        print(
            f"  {cfg.name:24s} {impl:6s} {ms:10.2f} ms median ({min(times[impl]):.2f} min)",
            flush=True,
        )
    return rows


def markdown(rows: list[dict], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        (
            "Forward + backward (training mode); implementations interleaved round by "
            "round; ms / step is the median (min in parentheses) over repeats; "
            "frames / s and speed-up use the median."
        ),
        "",
        (
            "| config | batch | channels | in -> out px | kernel | implementation | "
            "ms / step | frames / s | speed-up vs direct | max rel err |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['batch']} | {r['c_in']}->{r['c_out']} | "
            f"{r['hin']} -> {r['hout']} | {r['kernel']} | {r['impl']} | "
            f"{r['ms_median']:.2f} ({r['ms_min']:.2f}) | {r['frames_per_s']:.1f} | "
            f"{r['speedup_vs_direct']:.2f}x | {r['max_rel_err_vs_direct']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def sweep_configs(batch: int | None) -> list[Config]:
    b = batch or 8
    cfgs = []
    for hin, c_in, c_out, ks in [
        (16, 16, 3, (5, 9, 11, 13, 14, 15, 17)),
        (32, 16, 3, (3, 5, 7, 9, 11, 13, 14, 15, 21, 29)),
        (64, 16, 3, (3, 5, 7, 9, 11, 13, 14, 15, 21, 29)),
        (32, 64, 16, (9, 11, 13, 14, 15, 17)),
        (64, 64, 16, (9, 11, 13, 14, 15, 17)),
    ]:
        cfgs += [Config(f"{hin}px {c_in}->{c_out} k{k}", b, c_in, c_out, hin, k) for k in ks]
    return cfgs


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed steps per implementation (default: 20 cuda, 5 cpu)",
    )
    p.add_argument("--warmup", type=int, default=None, help="default: 3 cuda, 1 cpu")
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="override batch sizes (default paper: 128 cuda / 8 cpu; demo: 64)",
    )
    p.add_argument("--bf16", action="store_true", help="run under bf16 torch.autocast")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="kernel-size crossover sweep (batch 8) instead of paper/demo sizes",
    )
    p.add_argument("--out", type=Path, default=None, help="results path (.md and .json)")
    add_quick(p)
    args = p.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda requested but CUDA is not available")
    device = torch.device(args.device)
    repeats = args.repeats or (20 if device.type == "cuda" else 5)
    warmup = args.warmup if args.warmup is not None else (3 if device.type == "cuda" else 1)
    if args.sweep:
        # min-of-9 style sweep: more repeats, cheap configurations
        repeats = args.repeats or 9
        warmup = args.warmup if args.warmup is not None else 2
    suffix = ("_crossover" if args.sweep else "") + f"_{device.type}"
    suffix += ("_bf16" if args.bf16 else "") + ("_cl" if args.channels_last else "")
    out = args.out or results_dir(args.quick) / f"deconv{suffix}"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    cfgs = sweep_configs(args.batch) if args.sweep else default_configs(device.type, args.batch)
    if args.quick:
        cfgs, repeats, warmup = [QUICK], 1, 1
    rows = []
    for cfg in cfgs:
        rows += run_config(cfg, device, warmup, repeats, args.bf16, args.channels_last)
    title = (
        ("Deconv2d kernel-size crossover" if args.sweep else "Deconv2d benchmark")
        + f" ({device.type}{', bf16 autocast' if args.bf16 else ''}"
        f"{', channels_last' if args.channels_last else ''})"
    )
    print()
    info = provenance(device=device.type, bf16=args.bf16, channels_last=args.channels_last)
    write_results(out, markdown(rows, title), rows, info)


if __name__ == "__main__":
    main()
