"""The notebooks run top to bottom (nbmake), shrunk by mocks of their first code cell; clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from vidgen.cli import TINY

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PUBLISHED = ROOT / "docs" / "notebooks"  # executed copies, outputs kept (notebooks/publish.py)
SHRINK = {  # notebook -> knobs set after its first code cell (nbmake mocks)
    "01_quickstart.ipynb": {"OVERRIDES": ["--config", str(TINY)]},
    "02_data.ipynb": {"IMAGE_SIZE": 32, "VIDEO_LENGTH": 40, "GROUPS": 3},
    "03_results.ipynb": {"OVERRIDES": ["--config", str(TINY)]},
    "04_generation.ipynb": {"IMAGE_SIZE": 16, "FRAMES": 5, "MAX_STEPS": 4},
}


def shrunk_copy(path: Path, folder: Path) -> None:
    """``path`` copied into ``folder`` with :data:`SHRINK`'s mocks on its first code cell."""
    nb = nbformat.read(path, as_version=4)
    knobs = next(cell for cell in nb.cells if cell.cell_type == "code")
    knobs.metadata["nbmake"] = {"mock": SHRINK[path.name]}
    nbformat.write(nb, folder / path.name)


def test_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_data.ipynb",
        "03_results.ipynb",
        "04_generation.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


FAST = "01_quickstart.ipynb"
"""The notebook the fast tier runs: each starts a kernel, seconds of imports."""


@pytest.mark.parametrize(
    "path",
    [p if p.name == FAST else pytest.param(p, marks=pytest.mark.slow) for p in NOTEBOOKS],
    ids=lambda p: p.stem,
)
def test_notebook_runs(tmp_path, path):
    """Run a shrunk copy in an empty folder (its run outputs stay out of the repository)."""
    shrunk_copy(path, tmp_path)
    env = dict(os.environ, WANDB_MODE="offline")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def code(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(path, as_version=4).cells if "outputs" in cell]


@pytest.mark.parametrize("published", sorted(PUBLISHED.glob("*.ipynb")), ids=lambda p: p.stem)
def test_published_copy_is_of_this_code(published):
    """docs/notebooks/ holds notebooks executed at their defaults: the same code, outputs kept."""
    assert code(published) == code(ROOT / "notebooks" / published.name), (
        f"outdated: python notebooks/publish.py {published.name}"
    )
    cells = [c for c in nbformat.read(published, as_version=4).cells if "outputs" in c]
    outputs = [out for cell in cells for out in cell.outputs]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no pictures"
    assert all(out.output_type != "error" for out in outputs)
