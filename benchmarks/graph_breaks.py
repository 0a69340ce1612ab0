"""Where ``torch.compile`` splits each packaged config's training step, and why.

``torch._dynamo.explain`` traces ``model.training_step`` (backbone, core, head, motion
estimation and transport, loss: the function ``bench_gpu.py`` compiles) of every packaged
config built small (32 px, 2 clips, ``tests/behaviour.py``'s overrides for the 224 px models;
the code paths are the full-size ones) and lists each graph break with its cause and the line
of vidgen (or, outside vidgen, of the caller) where it happens, deduplicated with counts.

    python benchmarks/graph_breaks.py                       # every config (CPU, minutes)
    python benchmarks/graph_breaks.py --configs demo.yaml
    python benchmarks/graph_breaks.py --quick               # common.QUICK_CONFIGS only

Writes ``benchmarks/results/graph_breaks.{md,json}`` (``--quick``: a temporary folder).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from pathlib import Path

import torch
from common import (
    QUICK_CONFIGS,
    QUICK_SIZE,
    add_quick,
    quick_overrides,
    results_dir,
    synthetic_batch,
    write_results,
)
from provenance import provenance
from yaml_models import build_model, clip_shape, packaged

VIDGEN = Path(__file__).resolve().parent.parent / "vidgen"


def where(stack: list) -> str:
    """The innermost frame of ``stack`` in vidgen (else the innermost), as ``file:line``."""
    frames = [f for f in stack if str(VIDGEN) in f.filename] or stack
    if not frames:
        return "?"
    frame = frames[-1]
    name = Path(frame.filename)
    shown = name.relative_to(VIDGEN.parent) if name.is_relative_to(VIDGEN.parent) else name.name
    return f"{shown}:{frame.lineno} `{(frame.line or '').strip()[:80]}`"


def cause(reason: str) -> str:
    """A break reason's first informative line, shortened."""
    lines = [x.strip() for x in reason.splitlines() if x.strip()]
    return " ".join(lines[:2])[:220].replace("|", "/")


def explain(config: str) -> dict:
    """Graphs, graph breaks (cause, place, count) and ops of ``config``'s training step."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, data = build_model(config, *quick_overrides(config))
    model.train()
    batch = model.on_after_batch_transfer(synthetic_batch(clip_shape(data), torch.device("cpu")), 0)
    start = time.perf_counter()
    out = torch._dynamo.explain(model.training_step)(batch, 0)
    breaks = Counter((cause(r.reason), where(r.user_stack)) for r in out.break_reasons)
    return {
        "config": config,
        "graphs": out.graph_count,
        "graph_breaks": out.graph_break_count,
        "ops": out.op_count,
        "seconds": round(time.perf_counter() - start, 1),
        "breaks": [{"cause": c, "where": w, "count": n} for (c, w), n in breaks.most_common()],
    }


def markdown(rows: list[dict]) -> str:
    """Per config: graphs, breaks, then each break's cause and place."""
    lines = [
        "# Graph breaks of the training step under torch.compile",
        "",
        "`torch._dynamo.explain(model.training_step)` on a random batch, each packaged config "
        "built at 32 px with 2 clips (the full-size code paths). A break splits the step into "
        "separately compiled graphs with Python in between; `count`: how often that cause at "
        "that place broke the graph in one step.",
        "",
        "Reading it: `self.log_dict` breaks because Lightning warns that no Trainer is attached "
        "(the step is called bare, as `bench_gpu.py` times it); `nn.LSTM` is not traced by "
        "dynamo (each `LSTMCore` call runs eagerly between graphs). Few breaks is not the "
        "whole story: thousands of `ops in graphs` mean a Python loop was unrolled into the "
        "graph (block matching's loop over every displacement, motion layers' fitting "
        "iterations), which inductor then compiles for minutes, if at all.",
        "",
        "| config | graphs | graph breaks | ops in graphs | explain s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} | | | |")
        else:
            lines.append(
                f"| {r['config']} | {r['graphs']} | {r['graph_breaks']} | {r['ops']} | "
                f"{r['seconds']} |"
            )
    for r in rows:
        if r.get("breaks"):
            lines += ["", f"## {r['config']}", "", "| count | cause | where |", "|---|---|---|"]
            lines += [f"| {b['count']} | {b['cause']} | {b['where']} |" for b in r["breaks"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=packaged(), help="default: every one")
    parser.add_argument("--out", type=Path, help="results path without suffix")
    add_quick(parser)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for config in args.configs or (QUICK_CONFIGS if args.quick else packaged()):
        try:
            rows.append(explain(config))
        except Exception as error:  # one config's failure must not lose the others' rows
            rows.append({"config": config, "error": f"{type(error).__name__}: {error}"[:300]})
        print(f"{config}: {rows[-1].get('graph_breaks', rows[-1].get('error'))}", flush=True)
    out = args.out or results_dir(args.quick) / "graph_breaks"
    write_results(out, markdown(rows), rows, provenance(device="cpu", size=QUICK_SIZE))


if __name__ == "__main__":
    main()
