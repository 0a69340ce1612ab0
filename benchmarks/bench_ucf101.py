"""UCF101 pipeline benchmark: vidgen's UCF101DataModule vs torchvision.datasets.UCF101.

Both read the same generated corpus in the official UCF101 layout (a few hundred mpeg4 .avi
files, 320x240, 25 fps, 2-10 s, panning textures) in one run, and report:

- index build: the time to list and probe every video (vidgen: cold cache and cached;
  torchvision: ``VideoClips`` reading every file's timestamps, 2 workers on both sides);
- clip throughput: clips/s from a DataLoader with 2 workers, 8-frame clips at 112x112
  (shorter side resized to 112 and centre crop on both sides; vidgen resizes at decode time,
  torchvision decodes full frames and resizes in its transform);
- vidgen with ``frame_cache=True``: the one-time build (every video decoded into the cache under
  ``<root>/cache``, deleted first), its size on disk and the clips/s read from it;
- vidgen per decoder (``data.decoder``: decord, torchcodec, pyav; those installed): clips/s
  decoding every clip, same loader settings (``--decoders-only`` measures just this).

It needs decord (``pip install -e '.[decord]'``). torchvision 0.28+ decodes through TorchCodec,
which needs the system's FFmpeg libraries: where it does not work the benchmark stops and names
what to install (nothing is installed for you); ``--without-torchvision`` benchmarks vidgen
alone.

    python benchmarks/bench_ucf101.py [--videos 288] [--root /tmp/vidgen_bench_ucf101]
    python benchmarks/bench_ucf101.py --decoders-only   # -> results/decoders_cpu.md
    python benchmarks/bench_ucf101.py --quick           # 16 tiny videos, 32 px clips

Writes ``benchmarks/results/ucf101_cpu.{md,json}`` (``decoders_cpu`` with ``--decoders-only``;
``--quick``: a temporary folder, the corpus in it too).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import add_quick, load_note, results_dir, write_results
from provenance import provenance

FFMPEG = (  # the system FFmpeg libraries TorchCodec loads (Debian/Ubuntu packages)
    "libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev libavdevice-dev"
)
CLASSES = (
    "ApplyEyeMakeup",
    "Archery",
    "BabyCrawling",
    "Basketball",
    "Biking",
    "HandstandPushups",
    "JumpRope",
    "Kayaking",
    "PlayingDhol",
    "Skijet",
    "SkyDiving",
    "YoYo",
)


def say(msg: str) -> None:
    print(msg, flush=True)


def torchcodec_works(sample: Path) -> str | None:
    """None when TorchCodec decodes ``sample``, else the reason."""
    code = (
        "import sys, torchcodec.decoders as d; "
        "v = d.VideoDecoder(sys.argv[1]); assert v.get_frames_at([0]).data.shape[0] == 1"
    )
    run = subprocess.run([sys.executable, "-c", code, str(sample)], capture_output=True, text=True)
    return None if run.returncode == 0 else (run.stderr.strip().splitlines() or ["?"])[-1]


def require_decord() -> None:
    """Stop with what to install where decord (vidgen's default decoder) is missing."""
    if importlib.util.find_spec("decord") is None:
        sys.exit("bench_ucf101.py needs decord: pip install -e '.[decord]' (or pip install decord)")


def require_torchcodec(sample: Path) -> None:
    """Stop with what to install where TorchCodec (torchvision's decoder) fails on ``sample``."""
    reason = torchcodec_works(sample)
    if reason is not None:
        sys.exit(
            f"torchvision's UCF101 decodes through TorchCodec, which fails here ({reason[:160]}). "
            "Install it (pip install -e '.[torchcodec]') and the system FFmpeg libraries it "
            f"loads (Debian/Ubuntu: apt-get install {FFMPEG}), or pass --without-torchvision "
            "to benchmark vidgen alone."
        )


def make(root: Path, videos: int, workers: int, quick: bool) -> list[Path]:
    """The corpus under ``root`` (made once per size: a marker file says it is complete); its
    videos. ``quick``: 2 classes of one short 64x48 video per group."""
    from vidgen.data.fake_ucf101 import make_corpus

    classes = CLASSES[:2] if quick else CLASSES
    per_class_group = 1 if quick else max(1, round(videos / (len(classes) * 8)))
    marker = root / f".complete_{'quick' if quick else videos}"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        say(f"generating ~{videos} videos under {root} ...")
        t0 = time.perf_counter()
        make_corpus(
            root,
            classes=classes,
            groups=8,
            clips=per_class_group,
            size=(64, 48) if quick else (320, 240),
            lengths=(20, 30) if quick else (50, 250),
            content="texture",
            quirks=False,
            workers=workers,
        )
        marker.touch()
        say(f"  generated in {time.perf_counter() - t0:.0f} s")
    return sorted((root / "UCF-101").glob("*/*.avi"))


def loader_rate(loader, batches: int, size: int) -> tuple[float, float]:
    """(seconds to the first batch, clips/s over the next ``batches`` batches)."""
    t0 = time.perf_counter()
    it = iter(loader)
    first = next(it)
    t1 = time.perf_counter()
    clips = 0
    for _ in range(batches):
        try:
            batch = next(it)
        except StopIteration:  # next epoch (persistent workers where the loader has them)
            it = iter(loader)
            batch = next(it)
        clips += len(batch["video"] if isinstance(batch, dict) else batch[0])
    t2 = time.perf_counter()
    del it
    assert (first["video"] if isinstance(first, dict) else first[0]).shape[-1] == size
    return t1 - t0, clips / (t2 - t1)


def vidgen_module(args: argparse.Namespace, **kwargs):
    """The benchmarked UCF101DataModule: 8-frame clips at ``args.size`` px, ``args.workers``
    everywhere, its caches under ``<root>/cache``."""
    from vidgen.data.ucf101 import UCF101DataModule

    return UCF101DataModule(
        str(args.root),
        frames=8,
        frame_skip=0,
        image_size=args.size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        index_workers=args.workers,
        progress=False,
        cache_dir=str(args.root / "cache"),
        **kwargs,
    )


def bench_vidgen(args: argparse.Namespace) -> dict:
    from vidgen.data.index import index_file

    root, batches, repeats = args.root, args.batches, args.repeats
    index = index_file(root / "UCF-101", root / "cache", "ucf101")  # where vidgen_module's lives

    def dm(verify: bool = False, frame_cache: bool = False):
        return vidgen_module(args, verify_videos=verify, frame_cache=frame_cache)

    def cold(verify: bool) -> float:
        times = []
        for _ in range(repeats):
            index.unlink(missing_ok=True)
            module = dm(verify)
            t0 = time.perf_counter()
            module.prepare_data()
            times.append(time.perf_counter() - t0)
            if not index.exists():  # else the next build would not be cold
                raise RuntimeError(f"the index is not at {index}")
        return float(np.median(times))

    out = {"index_verify": cold(True), "index_cold": cold(False)}
    times = []
    for _ in range(repeats):
        module = dm()
        t0 = time.perf_counter()
        module.setup("fit")
        times.append(time.perf_counter() - t0)
    out["index_cached"] = float(np.median(times))
    out["first"], out["rate"] = loader_rate(module.train_dataloader(), batches, args.size)

    module = dm(frame_cache=True)
    cache = module.frame_cache_dir()
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    module.setup("fit")  # the cached index, then every video decoded into the frame cache
    out["cache_build"] = time.perf_counter() - t0 - out["index_cached"]
    out["cache_bytes"] = sum(f.stat().st_size for f in cache.rglob("*.npy"))
    loader = module.train_dataloader()
    out["cache_first"], out["cache_rate"] = loader_rate(loader, 5 * batches, args.size)
    return out


def bench_decoders(args: argparse.Namespace) -> dict:
    """Clips/s of vidgen's UCF101DataModule decoding every clip, per installed decoder: the
    median of ``repeats`` rounds, the decoders taking turns within each round (load drifts)."""
    from vidgen.data.decoders import DECODERS, installed

    rounds: dict[str, list] = {d: [] for d in DECODERS if installed(d)}
    for r in range(args.repeats):
        for decoder, runs in rounds.items():
            module = vidgen_module(args, decoder=decoder)
            module.setup("fit")
            runs.append(loader_rate(module.train_dataloader(), args.batches, args.size))
            say(f"  round {r}, {decoder}: {runs[-1][1]:.1f} clips/s")
    return {
        d: tuple(float(np.median(v)) for v in zip(*runs, strict=True)) for d, runs in rounds.items()
    }


def reader_ms(files: list[Path], size: int, clips: int = 60, repeats: int = 3) -> dict[str, float]:
    """ms per 8-frame clip (stride 2, random start) at ``size`` px in one process, per
    decoder's reader (no DataLoader): the median of ``repeats`` rounds, decoders taking
    turns."""
    from vidgen.data.decoders import DECODERS, installed, make_reader, probe

    infos = {f: probe(f, verify=False) for f in files[:clips]}
    times: dict[str, list[float]] = {d: [] for d in DECODERS if installed(d)}
    for r in range(repeats):
        for decoder, runs in times.items():
            reader, rng = make_reader(decoder), np.random.default_rng(r)
            t0 = time.perf_counter()
            for f, info in infos.items():
                start = int(rng.integers(0, info.frames - 15))
                reader.read(
                    str(f), np.arange(start, start + 16, 2), size, (info.width, info.height)
                )
            runs.append((time.perf_counter() - t0) / len(infos) * 1000)
    return {d: float(np.median(v)) for d, v in times.items()}


def corpus_line(files: list[Path], quick: bool) -> str:
    """What the corpus is, for the tables."""
    frames = "64x48, 25 fps, 20-30 frames" if quick else "320x240, 25 fps, 2-10 s"
    return f"{len(files)} generated mpeg4 .avi videos in the UCF101 layout, {frames}"


def write_decoders(args, files, rates: dict, load: tuple[float, float], ms: dict) -> None:
    versions = {"decord": "decord", "torchcodec": "torchcodec", "pyav": "av"}
    lines = [
        "# Clips/s per decoder (`data.decoder`), CPU",
        "",
        f"Corpus: {corpus_line(files, args.quick)}. "
        f"UCF101DataModule, DataLoader with {args.workers} workers, batch {args.batch_size}, "
        f"8-frame clips at {args.size}x{args.size}, {args.batches} batches timed after the "
        f"first, every clip decoded (no frame cache); median of {args.repeats} rounds, the "
        f"decoders taking turns in each. Last column: one process, no DataLoader, a new file "
        f"each clip (what a worker does), median of {args.reader_repeats} rounds over "
        f"{min(len(files), 60)} files. {load_note(load)}.",
        "",
        "| decoder | version | first batch (s) | clips/s | ms a clip, one process |",
        "|---|---|---|---|---|",
    ]
    for decoder, (first, rate) in rates.items():
        version = __import__(versions[decoder]).__version__
        lines.append(f"| {decoder} | {version} | {first:.2f} | {rate:.1f} | {ms[decoder]:.1f} |")
    data = {"videos": len(files), "rates": rates, "reader_ms": ms, "load": load}
    write_results(args.out, "\n".join([*lines, ""]), data)


def _collate_tv(items):
    videos = torch.stack([video for video, _audio, _label in items])
    labels = torch.tensor([label for _video, _audio, label in items])
    return videos, labels


class _TvTransform:
    """Shorter side to ``size``, centre crop ``size`` (as vidgen does), on a uint8
    (T, C, H, W) clip."""

    def __init__(self, size: int) -> None:
        from torchvision.transforms import v2

        self.t = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])

    def __call__(self, clip):
        return self.t(clip)


def bench_torchvision(args: argparse.Namespace) -> dict:
    from torch.utils.data import DataLoader, RandomSampler
    from torchvision.datasets import UCF101

    root, workers, batch_size, batches = args.root, args.workers, args.batch_size, args.batches
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ds = UCF101(
            str(root / "UCF-101"),
            str(root / "ucfTrainTestlist"),
            frames_per_clip=8,
            step_between_clips=8,
            fold=1,
            train=True,
            transform=_TvTransform(args.size),
            num_workers=workers,
            output_format="TCHW",
        )
        times.append(time.perf_counter() - t0)
    index = float(np.median(times))
    sampler = RandomSampler(ds, num_samples=(batches + 2) * batch_size)
    loader = DataLoader(
        ds, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=_collate_tv
    )
    first, rate = loader_rate(loader, batches, args.size)
    return {"index_cold": index, "first": first, "rate": rate, "clips": len(ds)}


def bench_strategies(files: list[Path], size: int, repeats: int = 60) -> dict[str, float]:
    """ms per 8-frame clip (stride 2) at ``size`` px on seekable AVI, three ways of asking
    decord."""
    import decord

    width = round(size * 4 / 3)  # the corpus is 4:3
    out = {}
    for name in ("get_batch(indices)", "get_batch(range) + select", "seek per frame"):
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for f in files[:6]:  # one open reader at a time (open idle readers cost CPU)
            vr = decord.VideoReader(str(f), width=width, height=size, num_threads=1)
            for _ in range(repeats // 6):
                start = int(rng.integers(0, len(vr) - 15))
                idx = list(range(start, start + 16, 2))
                if name == "get_batch(indices)":
                    vr.get_batch(idx).asnumpy()
                elif name.startswith("get_batch(range)"):
                    vr.get_batch(list(range(start, start + 15))).asnumpy()[::2]
                else:
                    np.stack([vr[i].asnumpy() for i in idx])
            del vr
        out[name] = (time.perf_counter() - t0) / (repeats // 6 * 6) * 1000
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=288)
    parser.add_argument("--root", type=Path, default=Path("/tmp/vidgen_bench_ucf101"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="index builds timed (median)")
    parser.add_argument("--out", type=Path, help="results path without suffix")
    parser.add_argument("--without-torchvision", action="store_true", help="benchmark vidgen alone")
    parser.add_argument("--decoders-only", action="store_true", help="clips/s per decoder only")
    add_quick(parser)
    args = parser.parse_args(argv)
    folder = results_dir(args.quick)
    args.out = args.out or folder / ("decoders_cpu" if args.decoders_only else "ucf101_cpu")
    args.size, args.reader_repeats, strategy_repeats = 112, 3, 60
    if args.quick:
        args.root = folder / "corpus"
        args.videos, args.workers, args.batch_size, args.batches, args.repeats = 16, 1, 2, 1, 1
        args.size, args.reader_repeats, strategy_repeats = 32, 1, 6
    require_decord()

    files = make(args.root, args.videos, args.workers, args.quick)
    if args.decoders_only:
        load_before = os.getloadavg()[0]
        rates = bench_decoders(args)
        ms = reader_ms(files, args.size, repeats=args.reader_repeats)
        write_decoders(args, files, rates, (load_before, os.getloadavg()[0]), ms)
        return
    if not args.without_torchvision:
        require_torchcodec(files[0])
    seconds = [0.0]
    import decord

    for f in files:
        vr = decord.VideoReader(str(f), width=32, height=32)
        seconds.append(len(vr) / vr.get_avg_fps())
        del vr
    say(f"corpus: {len(files)} videos, {sum(seconds) / 60:.1f} min of video")

    load_before = os.getloadavg()[0]
    strategies = bench_strategies(files, args.size, strategy_repeats)
    say(f"decord strategies (ms/clip): {strategies}")
    ours = bench_vidgen(args)
    say(f"vidgen: {ours}")
    ours["decoders"] = bench_decoders(args)
    tv = None if args.without_torchvision else bench_torchvision(args)
    say(f"torchvision: {tv}")
    load = (load_before, os.getloadavg()[0])
    write_table(args, files, sum(seconds), ours, tv, strategies, load)


def versions() -> dict[str, str]:
    """The versions of the video packages the table depends on (those installed)."""
    import decord
    import torchvision

    out = {"torchvision": torchvision.__version__, "decord": decord.__version__}
    if importlib.util.find_spec("torchcodec") is not None:
        import torchcodec

        out["torchcodec"] = torchcodec.__version__
    return out


def write_table(args, files, seconds, ours, tv, strategies, load=(0.0, 0.0)) -> None:
    def ratio(a, b, faster_is_smaller=True):
        if tv is None:
            return "n/a"
        return f"{(b / a if faster_is_smaller else a / b):.1f}x"

    tv_cell = (lambda key, fmt: fmt.format(tv[key])) if tv else (lambda key, fmt: "n/a")
    classes = len({f.parent.name for f in files})
    size = args.size
    lines = [
        "# UCF101 pipeline: vidgen vs torchvision (CPU)",
        "",
        f"Corpus: {corpus_line(files, args.quick)} ({seconds / 60:.1f} min in all), "
        f"{classes} classes, fold 1.",
        f"DataLoader: {args.workers} workers, batch {args.batch_size}, 8-frame "
        f"clips at {size}x{size} (shorter side to {size} + centre crop), {args.batches} "
        f"batches timed ({5 * args.batches} with the frame cache) "
        f"after the first. Index times: median of {args.repeats} builds. {load_note(load)}.",
        "",
        "| measure | vidgen UCF101DataModule (decord) | torchvision UCF101 (TorchCodec) "
        "| vidgen advantage |",
        "|---|---|---|---|",
        f"| index build, cold (s) | {ours['index_cold']:.3f} "
        f"| {tv_cell('index_cold', '{:.3f}')} "
        f"| {ratio(ours['index_cold'], tv['index_cold'] if tv else 0)} |",
        f"| index build, cold, `verify_videos=True` (s) | {ours['index_verify']:.3f} "
        f"| {tv_cell('index_cold', '{:.3f}')} "
        f"| {ratio(ours['index_verify'], tv['index_cold'] if tv else 0)} |",
        f"| index, cached (s) | {ours['index_cached']:.3f} "
        f"| {tv_cell('index_cold', '{:.3f}')} (no cache) "
        f"| {ratio(ours['index_cached'], tv['index_cold'] if tv else 0)} |",
        f"| first batch (s) | {ours['first']:.2f} | {tv_cell('first', '{:.2f}')} | |",
        f"| clips/s, decoding every clip | {ours['rate']:.1f} | {tv_cell('rate', '{:.1f}')} "
        f"| {ratio(ours['rate'], tv['rate'] if tv else 0, faster_is_smaller=False)} |",
        f"| frame cache: one-time build (s) | {ours['cache_build']:.1f} "
        f"({ours['cache_bytes'] / 2**30:.2f} GiB on disk) | | |",
        f"| first batch, frame cache (s) | {ours['cache_first']:.2f} | | |",
        f"| clips/s, `frame_cache=True` | {ours['cache_rate']:.1f} | {tv_cell('rate', '{:.1f}')} "
        f"| {ratio(ours['cache_rate'], tv['rate'] if tv else 0, faster_is_smaller=False)} |",
        "",
        "Targets: index build >= 10x faster, clip throughput >= 2x higher.",
        "",
        "clips/s per decoder, decoding every clip (same loader): "
        + ", ".join(f"{d} {rate:.1f}" for d, (_first, rate) in ours["decoders"].items()),
        "",
        f"decord, ms per 8-frame clip (stride 2) at {size} px on these AVI files (one process):",
        "",
        "| " + " | ".join(strategies) + " |",
        "|" + "---|" * len(strategies),
        "| " + " | ".join(f"{v:.1f}" for v in strategies.values()) + " |",
        "",
    ]
    data = {"videos": len(files), "vidgen": ours, "torchvision": tv, "decord": strategies}
    info = provenance(**versions())
    write_results(args.out, "\n".join(lines), data | {"load": load}, info)


if __name__ == "__main__":
    main()
