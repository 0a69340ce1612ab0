"""The models stay readable: every constructor takes at most 12 options beyond the shared ones
(:class:`~vidgen.models.base.VideoModule`'s), and no function in the package is longer than 60
lines."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import vidgen
from vidgen import FramePredictor, MotionPredictor, MotionVAE, SimVP, VideoVAE
from vidgen.models.base import VideoModule

MAX_OPTIONS = 12
MAX_LINES = 60


def options(cls: type) -> list[str]:
    """The constructor options of ``cls`` beyond the shared ones (:class:`VideoModule`'s): its
    own and its bases' up to :class:`VideoModule`, which each passes on as ``**kwargs``."""
    names = []
    for base in cls.__mro__[: cls.__mro__.index(VideoModule)]:
        if "__init__" in vars(base):
            params = inspect.signature(base.__init__).parameters.values()
            names += [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
    return names


@pytest.mark.parametrize("model", [FramePredictor, VideoVAE, MotionPredictor, MotionVAE, SimVP])
def test_constructors_take_few_options(model):
    assert 0 < len(options(model)) <= MAX_OPTIONS, options(model)
    assert len(set(options(model))) == len(options(model))  # none shadows another
    shared = set(inspect.signature(VideoModule.__init__).parameters) - {"self"}
    assert not shared & set(options(model))


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
