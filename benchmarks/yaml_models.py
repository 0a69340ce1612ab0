"""Build a packaged config's model and data module from its YAML without ``vidgen.cli`` (no
jsonargparse): the benchmarks' one builder.

The device machine has torch, Lightning and vidgen's model code but not the CLI's parser, so
every benchmark builds its models here: ``class_path`` + ``init_args`` nodes are resolved the way
LightningCLI resolves them (a parameter typed as a callable, such as a core or head factory or
the optimiser, gets ``functools.partial(cls, **init_args)``: those take their shapes or
parameters first; any other gets an instance), and the model's ``image_size`` follows
``data.init_args.image_size`` (the CLI's link).

Overrides use the CLI's spelling, ``"--model.init_args.z_dim=8"`` (values read as YAML), and
``"--config", path`` merges a second YAML (an overlay), so the same override lists serve
``vidgen.cli.build`` and this module.
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import inspect
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning import LightningDataModule

import vidgen
from vidgen.models.base import VideoModule

CONFIG_DIR = Path(vidgen.__file__).resolve().parent / "configs"


def packaged() -> list[str]:
    """Every packaged config's file name."""
    return sorted(path.name for path in CONFIG_DIR.glob("*.yaml"))


def config_file(config: str | Path) -> Path:
    """A config file: a path, or a packaged config's name (``"demo"``, ``"vae.yaml"``)."""
    path = Path(config)
    if path.is_file():
        return path
    packaged_file = CONFIG_DIR / path.with_suffix(".yaml").name
    if packaged_file.is_file():
        return packaged_file
    raise FileNotFoundError(f"no config {config}: not a file, nor one of {CONFIG_DIR}/*.yaml")


def merge(base: dict, update: dict) -> dict:
    """``update`` merged into a copy of ``base``, dicts key by key (an overlay's semantics)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_config(config: str | Path, *overrides: str) -> dict:
    """The config as a dict, overlays and ``--dotted.key=value`` overrides applied."""
    tree = yaml.safe_load(config_file(config).read_text())
    args = list(overrides)
    while args:
        arg = args.pop(0)
        if arg == "--config":
            tree = merge(tree, yaml.safe_load(Path(args.pop(0)).read_text()))
            continue
        if not arg.startswith("--") or "=" not in arg:
            raise ValueError(f"override {arg!r} is not --dotted.key=value or --config PATH")
        key, value = arg[2:].split("=", 1)
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    data = tree.get("data", {}).setdefault("init_args", {})
    if "image_size" in data:
        tree["model"].setdefault("init_args", {})["image_size"] = data["image_size"]
    return tree


def import_class(path: str) -> Any:
    """The object a dotted ``class_path`` names."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def is_callable_type(hint: Any) -> bool:
    """Whether a type hint is a callable (a factory) or an optional one."""
    if typing.get_origin(hint) is collections.abc.Callable or hint is collections.abc.Callable:
        return True
    return any(is_callable_type(arg) for arg in typing.get_args(hint) if arg is not type(None))


def init_hints(cls: type) -> dict[str, Any]:
    """The type hints of ``cls``'s constructor and of its bases' (what it takes as ``**kwargs``
    and passes on), the class's own first."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if "__init__" in vars(klass) and klass is not object:
            hints.update(typing.get_type_hints(klass.__init__))
    return hints


def instantiate(node: Any, as_factory: bool = False) -> Any:
    """A YAML node with ``class_path`` resolved: an instance, or (``as_factory``) a partial of
    the class over its ``init_args``; nested class nodes are resolved by the class's own type
    hints. Anything else comes back as it is."""
    if not (isinstance(node, dict) and "class_path" in node):
        return node
    cls = import_class(node["class_path"])
    hints = init_hints(cls) if inspect.isclass(cls) else {}
    kwargs = {
        key: instantiate(value, is_callable_type(hints.get(key)))
        for key, value in (node.get("init_args") or {}).items()
    }
    return functools.partial(cls, **kwargs) if as_factory else cls(**kwargs)


def build_model(config: str | Path, *overrides: str) -> tuple[VideoModule, dict[str, Any]]:
    """A config's model (random init as the config says) and its data's ``init_args``."""
    tree = read_config(config, *overrides)
    return instantiate(tree["model"]), dict(tree["data"]["init_args"])


def build_data(config: str | Path, *overrides: str) -> LightningDataModule:
    """A config's data module (the embedded datasets need no files)."""
    return instantiate(read_config(config, *overrides)["data"])


def clip_shape(data: dict[str, Any], batch: int | None = None) -> tuple[int, ...]:
    """``(B, S, 3, H, W)`` of a training batch of the data ``init_args`` (``batch``: B instead
    of the config's own)."""
    size = int(data["image_size"])
    return (batch or int(data.get("batch_size", 16)), int(data.get("frames", 8)), 3, size, size)


def tiny_overrides(config: str, small: dict[str, Sequence[str]], size: int) -> list[str]:
    """Overrides that shrink ``config`` to ``size`` px and 2 clips, with ``small``'s overrides
    for the 224 px models (``tests/behaviour.py``'s ``SMALL``)."""
    return [
        f"--data.init_args.image_size={size}",
        "--data.init_args.batch_size=2",
        "--model.init_args.backbone_weights=null",
        *small.get(config, []),
    ]
