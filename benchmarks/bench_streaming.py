"""Clips/s from LitData shards vs the frame cache vs decoding every clip, on one generated corpus.

The corpus is in the UCF101 layout (:mod:`vidgen.data.fake_ucf101`: mpeg4 .avi, 320x240, 25 fps,
panning textures). Each source is vidgen's own DataModule over it: ``UCF101DataModule``
(decord, every clip decoded), the same with ``frame_cache=True``, and ``ShardDataModule`` over
the shards ``vidgen prepare`` wrote from it (a local folder). All give the same items (the
script checks the first batch); the loaders are the training loaders (shuffled, random clips),
8-frame clips at 112 px, with 1 and 2 DataLoader worker processes. Also reported: the one-time
frame-cache and shard builds, and the bytes on disk of the videos, the cache and the shards.

    python benchmarks/bench_streaming.py [--classes 6] [--root /tmp/vidgen_bench_streaming]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from bench_ucf101 import CLASSES, loader_rate
from common import RESULTS, write_results

SIZE = 112


def provenance(argv: list[str]) -> dict[str, str]:
    """Commit (and whether the tree had changes), date, CPU, versions, threads, command."""
    import litdata

    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if os.path.exists("/proc/cpuinfo") else open(os.devnull) as info:
        names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip(),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no").strip()),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": names[0] if names else cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "litdata": litdata.__version__,
        "threads": torch.get_num_threads(),
        "command": " ".join(["python", "benchmarks/bench_streaming.py", *argv]),
    }


def module(root: Path, workers: int, **kwargs):
    """The benchmarked source over ``root``: 8-frame clips at 112 px, batches of 8."""
    from vidgen.data import ShardDataModule, UCF101DataModule

    clips = dict(frames=8, frame_skip=0, image_size=SIZE, batch_size=8, num_workers=workers)
    if kwargs.pop("shards", False):
        return ShardDataModule(str(root), **clips)
    return UCF101DataModule(str(root), progress=False, index_workers=2, **clips, **kwargs)


def bytes_under(folder: Path, pattern: str) -> int:
    return sum(f.stat().st_size for f in folder.rglob(pattern))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=6, help="classes (of 12)")
    parser.add_argument("--groups", type=int, default=8, help="groups per class (fold 1 tests 1-7)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/vidgen_bench_streaming"))
    parser.add_argument("--batches", type=int, default=30, help="batches timed decoding clips")
    parser.add_argument("--out", type=Path, default=RESULTS / "streaming_cpu.md")
    args = parser.parse_args(argv)
    from vidgen.data import make_corpus
    from vidgen.data.shards import shard_bytes, write_shards

    meta = provenance(argv)
    shutil.rmtree(args.root, ignore_errors=True)
    t0 = time.perf_counter()
    corpus = make_corpus(
        args.root / "ucf101",
        classes=CLASSES[: args.classes],
        groups=args.groups,
        size=(320, 240),
        lengths=(50, 150),
        content="texture",
        quirks=False,
        workers=2,
    )
    videos = sorted(corpus.video_dir.rglob("*.avi"))
    frames = sum(corpus.lengths.values())
    print(f"corpus: {len(videos)} videos, {frames} frames ({time.perf_counter() - t0:.0f} s)")
    cache = args.root / "cache"
    load = [os.getloadavg()[0]]

    source = module(corpus.root, 2, cache_dir=cache)
    source.prepare_data()  # the index, outside every timing
    t0 = time.perf_counter()
    write_shards(source, str(args.root / "shards"), workers=2, progress=False)
    shard_build = time.perf_counter() - t0
    cached = module(corpus.root, 2, cache_dir=cache, frame_cache=True)
    t0 = time.perf_counter()
    cached.prepare_data()
    cache_build = time.perf_counter() - t0

    sources = {
        "decoding every clip (decord)": dict(cache_dir=cache),
        "frame cache (`frame_cache=True`)": dict(cache_dir=cache, frame_cache=True),
        "LitData shards (`ShardDataModule`, local)": dict(shards=True),
    }
    rates: dict[str, dict[int, float]] = {}
    firsts = []
    for name, kwargs in sources.items():
        rates[name] = {}
        location = args.root / "shards" if kwargs.get("shards") else corpus.root
        for workers in (1, 2):
            torch.manual_seed(0)
            data = module(location, workers, **kwargs)
            data.setup("fit")
            batches = args.batches if "decoding" in name else 5 * args.batches
            loader = data.train_dataloader()
            if workers == 1:
                firsts.append(next(iter(loader)))
            rates[name][workers] = loader_rate(loader, batches)[1]
            print(f"{name}, {workers} worker(s): {rates[name][workers]:.0f} clips/s")
    same = all(torch.equal(f["video"], firsts[0]["video"]) for f in firsts)
    load.append(os.getloadavg()[0])
    sizes = {
        "videos (.avi)": sum(v.stat().st_size for v in videos),
        "frame cache (.npy)": bytes_under(cached.frame_cache_dir(), "*.npy"),
        "shards (.bin)": shard_bytes(str(args.root / "shards")),
    }
    data = {
        **meta,
        "videos": len(videos),
        "frames": frames,
        "load": load,
        "clips_per_s": rates,
        "build_s": {"frame cache": cache_build, "shards": shard_build},
        "bytes": sizes,
        "same_first_batch": same,
    }
    write_results(args.out, table(data), data)


def table(data: dict) -> str:
    """The results as Markdown, provenance first."""
    gib = 2.0**30
    rates, sizes = data["clips_per_s"], data["bytes"]
    decode = rates["decoding every clip (decord)"]
    lines = [
        "# Clips/s: LitData shards vs the frame cache vs decoding (CPU)",
        "",
        f"Commit {data['commit']}{' (with uncommitted changes)' if data['dirty'] else ''}, "
        f"{data['date']}; {data['cpu']}, {data['cores']} cores; torch {data['torch']}, "
        f"litdata {data['litdata']}, {data['threads']} torch threads in the main process; "
        f"1-minute load average {data['load'][0]:.1f} before / {data['load'][1]:.1f} after "
        "(the cores were shared with other jobs).",
        f"Command: `{data['command']}`",
        "",
        f"Corpus: {data['videos']} generated mpeg4 .avi videos in the UCF101 layout, 320x240, "
        f"25 fps, 50-150 frames ({data['frames']} frames). Training loader of each source: "
        f"batches of 8 shuffled 8-frame clips at {SIZE} px, random positions. First batch "
        f"identical across the three sources: {'yes' if data['same_first_batch'] else 'NO'}.",
        "",
        "| source | clips/s, 1 worker | clips/s, 2 workers | vs decoding (2 workers) |",
        "|---|---|---|---|",
    ]
    for name, rate in rates.items():
        lines.append(f"| {name} | {rate[1]:.0f} | {rate[2]:.0f} | {rate[2] / decode[2]:.1f}x |")
    lines += [
        "",
        "| on disk | bytes | GiB | vs the videos |",
        "|---|---|---|---|",
    ]
    for name, size in sizes.items():
        lines.append(
            f"| {name} | {size} | {size / gib:.3f} | {size / sizes['videos (.avi)']:.1f}x |"
        )
    builds = data["build_s"]
    lines += [
        "",
        f"One-time builds (2 processes): frame cache {builds['frame cache']:.1f} s, "
        f"shards {builds['shards']:.1f} s (`vidgen prepare`, local folder).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
