"""Clips/s from LitData shards vs the frame cache vs decoding every clip, on one generated corpus.

The corpus is in the UCF101 layout (:mod:`vidgen.data.fake_ucf101`: mpeg4 .avi, 320x240, 25 fps,
panning textures). Each source is vidgen's own DataModule over it: ``UCF101DataModule``
(decord, every clip decoded), the same with ``frame_cache=True``, and ``ShardDataModule`` over
the shards ``vidgen prepare`` wrote from it (a local folder). All give the same items (the
script checks the first batch); the loaders are the training loaders (shuffled, random clips),
8-frame clips at 112 px, with 1 and 2 DataLoader worker processes. Also reported: the one-time
frame-cache and shard builds, and the bytes on disk of the videos, the cache and the shards.

    python benchmarks/bench_streaming.py [--classes 6] [--root /tmp/vidgen_bench_streaming]
    python benchmarks/bench_streaming.py --quick    # 16 tiny videos, 32 px clips, batches of 2

Writes ``benchmarks/results/streaming_cpu.{md,json}`` (``--quick``: a temporary folder, the
corpus in it too).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import torch
from bench_ucf101 import CLASSES, loader_rate
from common import add_quick, load_note, results_dir, write_results
from provenance import provenance


def module(root: Path, workers: int, size: int, batch: int, **kwargs):
    """The benchmarked source over ``root``: 8-frame clips at ``size`` px, ``batch`` a batch."""
    from vidgen.data import ShardDataModule, UCF101DataModule

    clips = dict(frames=8, frame_skip=0, image_size=size, batch_size=batch, num_workers=workers)
    if kwargs.pop("shards", False):
        return ShardDataModule(str(root), **clips)
    return UCF101DataModule(str(root), progress=False, index_workers=2, **clips, **kwargs)


def bytes_under(folder: Path, pattern: str) -> int:
    return sum(f.stat().st_size for f in folder.rglob(pattern))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=6, help="classes (of 12)")
    parser.add_argument("--groups", type=int, default=8, help="groups per class (fold 1 tests 1-7)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/vidgen_bench_streaming"))
    parser.add_argument("--batches", type=int, default=30, help="batches timed decoding clips")
    parser.add_argument("--out", type=Path, help="results path without suffix")
    add_quick(parser)
    args = parser.parse_args(argv)
    from vidgen.data import make_corpus
    from vidgen.data.shards import shard_bytes, write_shards

    folder = results_dir(args.quick)
    out = args.out or folder / "streaming_cpu"
    size, batch, frame_size, lengths = 112, 8, (320, 240), (50, 150)
    if args.quick:
        args.root, args.classes, args.batches = folder / "corpus", 2, 1
        size, batch, frame_size, lengths = 32, 2, (64, 48), (20, 30)
    shutil.rmtree(args.root, ignore_errors=True)
    t0 = time.perf_counter()
    corpus = make_corpus(
        args.root / "ucf101",
        classes=CLASSES[: args.classes],
        groups=args.groups,
        size=frame_size,
        lengths=lengths,
        content="texture",
        quirks=False,
        workers=2,
    )
    videos = sorted(corpus.video_dir.rglob("*.avi"))
    frames = sum(corpus.lengths.values())
    print(f"corpus: {len(videos)} videos, {frames} frames ({time.perf_counter() - t0:.0f} s)")
    cache = args.root / "cache"
    load = [os.getloadavg()[0]]

    source = module(corpus.root, 2, size, batch, cache_dir=cache)
    source.prepare_data()  # the index, outside every timing
    t0 = time.perf_counter()
    write_shards(source, str(args.root / "shards"), workers=2, progress=False)
    shard_build = time.perf_counter() - t0
    cached = module(corpus.root, 2, size, batch, cache_dir=cache, frame_cache=True)
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
            data = module(location, workers, size, batch, **kwargs)
            data.setup("fit")
            batches = args.batches if "decoding" in name else 5 * args.batches
            loader = data.train_dataloader()
            if workers == 1:
                firsts.append(next(iter(loader)))
            rates[name][workers] = loader_rate(loader, batches, size)[1]
            print(f"{name}, {workers} worker(s): {rates[name][workers]:.0f} clips/s")
    same = all(torch.equal(f["video"], firsts[0]["video"]) for f in firsts)
    load.append(os.getloadavg()[0])
    sizes = {
        "videos (.avi)": sum(v.stat().st_size for v in videos),
        "frame cache (.npy)": bytes_under(cached.frame_cache_dir(), "*.npy"),
        "shards (.bin)": shard_bytes(str(args.root / "shards")),
    }
    data = {
        "videos": len(videos),
        "frame_size": frame_size,
        "lengths": lengths,
        "size": size,
        "batch": batch,
        "frames": frames,
        "load": load,
        "clips_per_s": rates,
        "build_s": {"frame cache": cache_build, "shards": shard_build},
        "bytes": sizes,
        "same_first_batch": same,
    }
    import litdata

    write_results(out, table(data), data, provenance(litdata=litdata.__version__))


def table(data: dict) -> str:
    """The results as Markdown."""
    gib = 2.0**30
    rates, sizes = data["clips_per_s"], data["bytes"]
    decode = rates["decoding every clip (decord)"]
    (width, height), (shortest, longest) = data["frame_size"], data["lengths"]
    lines = [
        "# Clips/s: LitData shards vs the frame cache vs decoding (CPU)",
        "",
        f"{load_note(data['load'])}.",
        "",
        f"Corpus: {data['videos']} generated mpeg4 .avi videos in the UCF101 layout, "
        f"{width}x{height}, 25 fps, {shortest}-{longest} frames ({data['frames']} frames). "
        f"Training loader of each source: batches of {data['batch']} shuffled 8-frame clips at "
        f"{data['size']} px, random positions. First batch identical across the three sources: "
        f"{'yes' if data['same_first_batch'] else 'NO'}.",
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
