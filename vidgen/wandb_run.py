"""W&B in one place: the trainer's W&B logger, and one W&B run per experiment.

:func:`wandb_logger` finds the trainer's ``WandbLogger``; the callbacks that log to W&B go
through it, so ``wandb`` is imported only when that logger is in use.

One run per experiment: ``test``, ``predict`` and a resumed ``fit`` with a run's checkpoint log
into that run, so its dashboard holds the training curves, test tables, plots and videos
together. :class:`WandbRun` (an always-on callback, config key ``wandb_run``) writes the W&B
run's id into every checkpoint; the CLI reads it back (:func:`join_run`) and gives the logger
that id with ``resume="allow"``. ``--wandb_run null`` opts out: a new W&B run, as without a
checkpoint. Offline runs stay offline: ``wandb sync runs/<name>/wandb/offline-run-*`` uploads
the parts, in order, into that one run.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from jsonargparse import Namespace

WANDB_LOGGER = "lightning.pytorch.loggers.WandbLogger"
"""The class path of the W&B logger in a config."""


def wandb_logger(trainer: L.Trainer) -> Any:
    """The trainer's ``WandbLogger``, or ``None`` (wandb is never imported for other loggers)."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger
    return None


WANDB_RUN_KEY = "wandb_run"
"""Where a checkpoint keeps its W&B run: ``{"id": ..., "project": ...}``."""


class WandbRun(L.Callback):
    """Writes the trainer's W&B run id and project into every checkpoint, so that ``test``,
    ``predict`` and a resumed ``fit`` with it log into the same run (:func:`join_run`)."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        logger = wandb_logger(trainer)
        if logger is not None and logger.version:
            checkpoint[WANDB_RUN_KEY] = {"id": logger.version, "project": logger.name}


def join_run(loggers: Any, checkpoint: dict[str, Any]) -> str | None:
    """Point the config's ``WandbLogger`` (a parsed, not yet built, namespace) at the run that
    wrote ``checkpoint``; returns that run's id (None: no W&B run in the checkpoint, or the
    config already names one)."""
    run = checkpoint.get(WANDB_RUN_KEY)
    if not run:
        return None
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not isinstance(logger, Namespace) or logger.get("class_path") != WANDB_LOGGER:
            continue
        init_args = logger.get("init_args")
        if init_args is None or init_args.get("id") or init_args.get("version"):
            continue
        init_args["id"] = run["id"]
        init_args["resume"] = "allow"
        if run.get("project"):
            init_args["project"] = run["project"]
        return run["id"]
    return None
