"""One W&B run per experiment: ``test``, ``predict`` and a resumed ``fit`` with a run's
checkpoint log into that run, so its dashboard holds the training curves, test tables, plots
and videos together.

:class:`~vidgen.callbacks.WandbRun` (an always-on callback, config key ``wandb_run``) writes the
W&B run's id into every checkpoint; the CLI reads it back (:func:`join_run`) and gives the
logger that id with ``resume="allow"``. ``--wandb_run null`` opts out: a new W&B run, as
without a checkpoint. Offline runs stay offline: ``wandb sync runs/<name>/wandb/offline-run-*``
uploads the parts, in order, into that one run.
"""

from __future__ import annotations

from typing import Any

from jsonargparse import Namespace

from vidgen.callbacks import WANDB_RUN_KEY as KEY

WANDB_LOGGER = "lightning.pytorch.loggers.WandbLogger"


def join_run(loggers: Any, checkpoint: dict[str, Any]) -> str | None:
    """Point the config's ``WandbLogger`` (a parsed, not yet built, namespace) at the run that
    wrote ``checkpoint``; returns that run's id (None: no W&B run in the checkpoint, or the
    config already names one)."""
    run = checkpoint.get(KEY)
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
