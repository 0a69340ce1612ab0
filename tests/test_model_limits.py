"""The models stay readable: every constructor takes at most 12 options beyond the shared ones,
and no function in the package is longer than 60 lines."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import vidgen
from vidgen import FramePredictor, MotionPredictor, MotionVAE, VideoVAE

SHARED = {
    "self",
    "image_size",
    "backbone_layer",
    "backbone_weights",
    "loss",
    "optimizer",
    "lr_scheduler",
    "feature_cache_gib",
    "channels_last",
}
MAX_OPTIONS = 12
MAX_LINES = 60


@pytest.mark.parametrize("model", [FramePredictor, VideoVAE, MotionPredictor, MotionVAE])
def test_constructors_take_few_options(model):
    options = set(inspect.signature(model.__init__).parameters) - SHARED
    assert len(options) <= MAX_OPTIONS, sorted(options)
    assert SHARED - {"self"} <= set(inspect.signature(model.__init__).parameters)


def functions(root: Path):
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{path.relative_to(root.parent)}:{node.lineno} {node.name}", node


def test_no_function_is_longer_than_60_lines():
    root = Path(vidgen.__file__).parent
    found = list(functions(root))
    assert len(found) > 100  # the walk sees the package
    long = [name for name, node in found if node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, long
