"""Checkpoint checks before a run: the file exists, loads, and fits the config's model.

Lightning's own failures here are a bare ``FileNotFoundError``, torch's "weights only" text for
a file that is not a checkpoint, or a ``state_dict`` key dump for another model's checkpoint;
these raise a :class:`~vidgen.errors.VidgenUserError` that names the file and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import os
import zipfile
from typing import Any

import torch
from torch import nn

from vidgen.errors import VidgenUserError

LIGHTNING_PATHS = ("last", "best", "hpc")
"""``--ckpt_path`` values that Lightning resolves itself (``registry...`` too)."""


def is_file_path(ckpt_path: Any) -> bool:
    """Whether ``ckpt_path`` names a local file (not ``None``, ``last``, ``best``, a URL...)."""
    if not isinstance(ckpt_path, str | os.PathLike):
        return False
    text = str(ckpt_path)
    return text not in LIGHTNING_PATHS and not text.startswith("registry") and "://" not in text


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint at ``path``, memory-mapped (cheap to read twice), loaded as Lightning
    loads it (torch's default ``weights_only``)."""
    where = f"--ckpt_path {path}"
    if not os.path.isfile(path):
        raise VidgenUserError(f"{where}: no such file")
    if not zipfile.is_zipfile(path):
        raise VidgenUserError(
            f"{where} is not a PyTorch checkpoint (truncated, or another kind of file); "
            "point it at a .ckpt file that vidgen fit wrote (<run dir>/checkpoints/)"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True)
    except Exception as err:  # torch raises several types for a damaged archive
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VidgenUserError(f"{where} cannot be read ({first})") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise VidgenUserError(f"{where} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def load_class(class_path: str) -> Any:
    """The object that a dotted path names (``"vidgen.FramePredictor"``)."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


RETIRED = {
    "output": "vidgen.MotionPredictor",
    "warp_from": "vidgen.MotionPredictor",
    "momentum": "vidgen.MotionPredictor",
    "observed_motion": "vidgen.MotionPredictor / vidgen.MotionVAE",
    "train_rollout": "vidgen.MotionPredictor",
    "latent": "vidgen.MotionVAE",
    "motion_steps": "vidgen.MotionVAE",
    "condition_frames": "vidgen.MotionVAE",
    "feature_cache": "the same class (its option is feature_cache_gib now)",
}
"""Options of vidgen 0.1's FramePredictor / VideoVAE that 0.2 moved, with where they went."""


def check_current(
    checkpoint: dict[str, Any], path: str | os.PathLike, model: type | None = None
) -> None:
    """Raise when ``checkpoint`` was written by vidgen 0.1, whose FramePredictor and VideoVAE
    also held vidgen's own designs (now :class:`~vidgen.MotionPredictor` and
    :class:`~vidgen.MotionVAE`): its options no longer build the class it names. An option of
    :data:`RETIRED` that ``model``, the class loading it, or a class it builds on takes
    (MotionVAE's ``condition_frames``) is current."""
    hparams = checkpoint.get("hyper_parameters", {})
    inits = [
        c.__init__ for c in (model.__mro__ if model is not None else ()) if "__init__" in vars(c)
    ]
    taken = {name for init in inits for name in inspect.signature(init).parameters}
    old = sorted(set(hparams) & set(RETIRED) - taken)
    if not old:
        return
    if hparams.get("output") == "warp":
        new = "vidgen.MotionVAE" if "latent" in hparams else "vidgen.MotionPredictor"
    else:
        new = "vidgen.FramePredictor" if "core" in hparams else "vidgen.VideoVAE"
    raise VidgenUserError(
        f"{path} was written by vidgen 0.1 (its options {', '.join(old)} are gone): its model "
        f"is a {new} now (CHANGELOG.md). Train it again with the current packaged config"
    )


def check_class(checkpoint: dict[str, Any], class_path: str, path: str | os.PathLike) -> None:
    """Raise when ``checkpoint`` was written by a model class other than ``class_path``.

    LightningCLI (>= 2.6) would otherwise build the checkpoint's class in place of the
    config's, silently training or testing another model than the config names.
    """
    theirs = checkpoint.get("hyper_parameters", {}).get("_class_path")
    if theirs and load_class(theirs) is not load_class(class_path):
        raise VidgenUserError(
            f"--ckpt_path {path} holds a {theirs}, this config's model is a {class_path}; "
            "use the config the checkpoint was trained with (<run dir>/config.yaml)"
        )


def check_fits(checkpoint: dict[str, Any], model: nn.Module, path: str | os.PathLike) -> None:
    """Raise when ``checkpoint``'s weights are not ``model``'s (other class, other sizes)."""
    theirs, ours = checkpoint["state_dict"], model.state_dict()
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    resized = sorted(k for k in set(ours) & set(theirs) if theirs[k].shape != ours[k].shape)
    if not (missing or unexpected or resized):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} of the model's weights are not in it ({missing[0]}, ...)")
    if unexpected:
        problems.append(
            f"{len(unexpected)} of its weights are not the model's ({unexpected[0]}, ...)"
        )
    if resized:
        key = resized[0]
        problems.append(
            f"{len(resized)} weights differ in shape ({key}: {tuple(theirs[key].shape)} in the "
            f"checkpoint, {tuple(ours[key].shape)} in the model)"
        )
    raise VidgenUserError(
        f"--ckpt_path {path} does not fit this config's {type(model).__name__}: "
        f"{'; '.join(problems)}. Use the config the checkpoint was trained with "
        "(<run dir>/config.yaml)"
    )
