"""``benchmarks/compare_predictors.py --quick``: every code path of the predictor comparison
(the paper's, vidgen's and SimVP's fits, SimVP's budget checkpoints and their tests, the table,
the filmstrip) runs on tiny runs, so the full comparison cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_compares_every_model_at_every_budget(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "compare_predictors.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(script), "--quick", "--datasets", "textured"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (runs,) = tmp_path.glob("vidgen-bench-*")  # the quick run's temporary folder
    rows = json.loads((runs / "predictors_textured.json").read_text())["textured"]
    budgets = {(row["model"], row["budget"]): row for row in rows.values()}
    expected = {("paper", "steps"), ("vidgen", "steps"), ("simvp", "steps"), ("simvp", "long")}
    assert expected <= set(budgets)
    vidgen, long = budgets["vidgen", "steps"], budgets["simvp", "long"]
    assert budgets["simvp", "steps"]["steps"] == vidgen["steps"] < long["steps"]
    time = budgets.get(("simvp", "time"))  # reached within the 3 quick epochs, or noted
    table = (runs / "predictors_textured.md").read_text()
    if time is None:
        assert "SimVP did not reach vidgen's time" in table
    else:
        assert time["train_seconds"] >= vidgen["train_seconds"]
    assert all(len(row["model/mse"]) == 16 for row in rows.values())  # 4 -> 16 rollouts
    assert (runs / "filmstrip_textured.png").is_file()
    stamp = json.loads((runs / "predictors_textured.json").read_text())["provenance"]
    assert "\n- commit: `" in table and stamp["command"].endswith("--datasets textured")
