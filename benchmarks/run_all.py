"""``make bench``: every CPU benchmark, one after the other; results in ``benchmarks/results/``.

Speed and memory targets live here, never in timed tests. Each script compares its contenders
side by side in one run (these machines are noisy: read ratios, not absolute times). The GPU
benchmarks (``bench_gpu.py``, ``make bench-gpu``: every GPU row in one run;
``bench_deconv.py --device cuda``, ``vae_gpu_memory.py``) need a CUDA machine and are not run
here.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ["bench_deconv.py", "--device", "cpu"],  # FFT vs direct deconvolution (~2 min)
    ["step_breakdown.py"],  # the paper predictor's step by part, direct vs FFT head (~1 min)
    ["profile_step.py"],  # every packaged config's step by part (~2 min; 224 px: 2 clips, 1 step)
    ["graph_breaks.py"],  # torch.compile's graph breaks per config (~17 min: unrolled loops)
    # paper vs vidgen vs baselines, the README's 4-epoch budget (~12 min each)
    ["compare_predictors.py", "--datasets", "shapes", "--epochs", "4"],
    ["compare_predictors.py", "--datasets", "textured", "--epochs", "4"],
    ["vae_heads.py"],  # VAE heads, activations and the decoder's use of z (~15 min)
    ["compare_vaes.py", "--steps", "300"],  # paper vs improved VideoVAE, z gaps, samples' FD
    ["sampled_futures.py"],  # vae_demo's 10 sampled futures per step: best/mean of K, FD
    ["throughput.py"],  # frames/s of every packaged config and setting, cache (~25 min)
    ["bench_ucf101.py"],  # UCF101 pipeline vs torchvision (installs TorchCodec + FFmpeg libs)
]


def main() -> int:
    failed = []
    for script, *args in BENCHMARKS:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        print(f"=== {script}: exit {code}, {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
