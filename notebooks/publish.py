"""Execute the notebooks at their default sizes into ``docs/notebooks/``, outputs included (what
GitHub shows). They run in a temporary folder, so their runs' files stay out of the repository.

    python notebooks/publish.py                    # all (about 15 minutes on 2 CPU cores)
    python notebooks/publish.py 02_data.ipynb      # one
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE.parent / "docs" / "notebooks"


def publish(path: Path) -> Path:
    """Execute ``path`` top to bottom and write the executed copy to :data:`PUBLISHED`."""
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        client = NotebookClient(nb, timeout=3600, resources={"metadata": {"path": folder}})
        client.execute()
    PUBLISHED.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, PUBLISHED / path.name)
    return PUBLISHED / path.name


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(p.name for p in HERE.glob("*.ipynb")):
        print("wrote", publish(HERE / name), flush=True)
