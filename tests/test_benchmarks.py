"""The benchmarks (``benchmarks/``): the step timer, the training clock and budget checkpoints,
the one writer of results files, what ``make bench`` runs, and every one of its commands in
quick mode, so that none of them rots."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import runpy
import sys
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
HELPERS = {"common.py", "provenance.py", "yaml_models.py", "run_all.py"}
HELPERS |= {"filmstrip.py", "shapes_classifier.py"}  # used by compare_predictors, compare_vaes
GPU_ONLY = {"bench_gpu.py"}  # tests/test_bench_gpu.py runs its --quick without the CLI packages
USER_DOCS = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("docs/models/*.md")]


def load_run_all():
    """``benchmarks/run_all.py`` (standard library only: importable at collection)."""
    spec = importlib.util.spec_from_file_location("run_all", BENCHMARKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_BENCH = load_run_all().BENCHMARKS


def benchmarks_common(monkeypatch: pytest.MonkeyPatch):
    """``benchmarks/common.py`` imported as the scripts import it (their folder on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("common")


def test_step_timer_times_steps_and_periods(monkeypatch):
    common = benchmarks_common(monkeypatch)
    clock = iter([0.0, 1.0, 3.0, 4.0, 10.0, 12.0])  # start, end, start, end, (epoch) start, end
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    timer = common.StepTimer(warmup=0)
    timer.on_train_epoch_start()
    for _ in range(2):
        timer.on_train_batch_start()
        timer.on_train_batch_end()
    timer.on_train_epoch_start()  # the gap across an epoch end is no batch wait
    timer.on_train_batch_start()
    timer.on_train_batch_end()
    assert timer.times == [1.0, 1.0, 2.0] and timer.periods == [3.0]
    assert timer.median() == 1.0 and timer.median(periods=True) == 3.0


def test_budget_checkpoints_save_at_steps_and_training_seconds(monkeypatch, tmp_path):
    """The clock counts training batches, not the gap across an epoch end (validation) nor the
    time a save takes; each budget is saved once, at the first step that reaches it."""
    common = benchmarks_common(monkeypatch)
    # each batch end reads the clock twice (before and after any save): epoch start, batches
    # 1, 2 (a 3 s save) and 3, epoch start 14 s later (validation), batch 4 (a save)
    clock = iter([0.0, 1.0, 1.0, 2.0, 5.0, 6.0, 6.0, 20.0, 21.5, 22.0])
    monkeypatch.setattr(common.time, "perf_counter", lambda: next(clock))
    saved = []
    trainer = SimpleNamespace(global_step=0, save_checkpoint=lambda path: saved.append(path))
    budgets = common.BudgetCheckpoints(str(tmp_path), steps={"two": 2}, seconds={"time": 3.5})
    budgets.on_train_epoch_start()
    for epoch_end in (False, False, True, False):
        trainer.global_step += 1
        budgets.on_train_batch_end(trainer)
        if epoch_end:
            budgets.on_train_epoch_start()
    assert budgets.seconds == 4.5  # 1 + 1 + 1 + 1.5: neither the save nor validation counts
    assert saved == [tmp_path / "budget_two.ckpt", tmp_path / "budget_time.ckpt"]
    assert budgets.reached == {
        "two": {"steps": 2, "seconds": 2.0},
        "time": {"steps": 4, "seconds": 4.5},
    }


def test_results_files_are_stamped_and_replaced(monkeypatch, tmp_path):
    common = benchmarks_common(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--steps", "3"])
    out = tmp_path / "x"
    common.write_results(out, "# Old\n\nstale table\n", {"rows": [1]})
    common.write_results(out, "# Title\n\nThe table.\n", [{"a": 1}])
    markdown = out.with_suffix(".md").read_text()
    assert markdown.startswith("# Title\n\n- commit: `") and "stale" not in markdown
    assert "- command: `python benchmarks/x.py --steps 3`" in markdown
    assert markdown.endswith("\nThe table.\n")
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["rows"] == [{"a": 1}] and set(data) == {"provenance", "rows"}
    stamp = data["provenance"]
    assert {"commit", "dirty", "date", "cpu", "gpu", "torch", "threads", "command"} <= set(stamp)
    assert stamp["command"] == "python benchmarks/x.py --steps 3"


def test_make_bench_runs_every_cpu_benchmark():
    scripts = {path.name for path in BENCHMARKS.glob("*.py")} - HELPERS - GPU_ONLY
    assert {command[0] for command, _ in MAKE_BENCH} == scripts


def cited(doc: Path) -> set[Path]:
    """The results files (without suffix) and figures under ``docs/`` that ``doc`` cites."""
    text = doc.read_text()
    files = {Path(m) for m in re.findall(r"benchmarks/results/\w+(?=\.(?:md|json)\b)", text)}
    files |= {Path(m) for m in re.findall(r"\bdocs/\w+\.png\b", text)}
    for link in re.findall(r"\]\(([^)\s]+\.png)\)", text):
        files.add((doc.parent / link).resolve().relative_to(ROOT))
    return files


def test_make_bench_regenerates_every_cited_results_file_and_figure():
    regenerated = {Path(output) for _, outputs in MAKE_BENCH for output in outputs}
    citations = {(doc.name, str(path)) for doc in USER_DOCS for path in cited(doc)}
    assert {"docs/filmstrip_textured.png", "benchmarks/results/vae_heads"} <= {
        path for _, path in citations
    }  # the patterns find both kinds
    missing = sorted(f"{doc}: {path}" for doc, path in citations if Path(path) not in regenerated)
    assert not missing, "cited, but make bench does not write it:\n" + "\n".join(missing)


def committed_results() -> dict[str, tuple[int, int]]:
    """Size and modification time of every results file and figure in the tree."""
    files = [*(BENCHMARKS / "results").iterdir(), *(ROOT / "docs").glob("*.png")]
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "outputs"), MAKE_BENCH, ids=[" ".join(command) for command, _ in MAKE_BENCH]
)
def test_quick_mode_runs_and_writes_stamped_results(command, outputs, tmp_path, monkeypatch):
    script, *args = command
    if script == "compare_predictors.py":
        pytest.skip("tests/test_compare_predictors.py runs its quick mode, with more checks")
    if script == "bench_ucf101.py" and importlib.util.find_spec("torchcodec") is None:
        args.append("--without-torchvision")  # torchvision's side needs TorchCodec
    committed = committed_results()
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(sys, "argv", [f"benchmarks/{script}", *args, "--quick"])
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            runpy.run_path(str(BENCHMARKS / script), run_name="__main__")
    except SystemExit as done:
        assert not done.code, done.code
    finally:
        torch.set_num_threads(threads)
    (folder,) = tmp_path.glob("vidgen-bench-*")  # one temporary folder for all it wrote
    for output in map(Path, outputs):
        if output.suffix:  # a figure
            assert (folder / output.name).stat().st_size > 0, output
            continue
        markdown = (folder / output.name).with_suffix(".md").read_text()
        assert "\n- commit: `" in markdown and f"benchmarks/{script}" in markdown, output
        stamp = json.loads((folder / output.name).with_suffix(".json").read_text())["provenance"]
        assert stamp["commit"] and stamp["command"].endswith("--quick"), output
    assert committed_results() == committed


def test_a_checkout_changed_only_in_benchmark_outputs_is_clean(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import provenance

    def git(changed: str):
        return lambda *args: "abc123" if args[0] == "rev-parse" else changed

    monkeypatch.setattr(provenance, "_git", git("docs/futures_demo.png\nbenchmarks/results/x.md"))
    assert provenance.commit() == ("abc123", False)
    monkeypatch.setattr(provenance, "_git", git("vidgen/models/things.py\ndocs/a.md"))
    assert provenance.commit() == ("abc123", True)
    monkeypatch.setattr(provenance, "_git", git(""))
    assert provenance.commit() == ("abc123", False)
