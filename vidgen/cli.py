"""The ``vidgen`` command: a LightningCLI (fit / validate / test / predict) over vidgen's models.

Lightning 2.x installs no ``lightning`` script; ``vidgen fit --config cfg.yaml`` is this
project's ``lightning fit --config cfg.yaml``. The resolved config is saved as
``<run dir>/config.yaml`` and logged to the logger (W&B run config).

Every run gets, unless its config says otherwise (``--print_config`` shows them resolved):
- the W&B logger, offline, writing to ``<run dir>/wandb`` under the run folder's name
  (``--trainer.logger.init_args.offline=false`` goes online, ``--trainer.logger=false`` drops it);
- the always-on callbacks, one top-level key each (:data:`ALWAYS_ON`): a config changes one
  with ``sample_videos: {every_n_epochs: 5}`` and removes one with ``sample_videos: null``.

In Python, :func:`build` gives a config's model, data module and trainer without running.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from omegaconf import OmegaConf

from vidgen.callbacks import (
    EvaluationReport,
    LoggerSaveConfigCallback,
    PredictionWriter,
    RunCheckpoint,
    SampleVideos,
)
from vidgen.data.datamodule import VideoDataModule
from vidgen.models.base import VideoModule

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The packaged YAML configs (paper-faithful, improved and demo)."""

TINY = CONFIG_DIR / "overlays" / "tiny.yaml"
"""An overlay (a second ``--config``) that shrinks any packaged config's run to seconds."""

ALWAYS_ON: dict[str, tuple[type[L.Callback], dict[str, Any]]] = {
    "checkpoint": (RunCheckpoint, {"save_last": True, "monitor": "val/loss"}),
    "sample_videos": (SampleVideos, {}),
    "evaluation_report": (EvaluationReport, {}),
    "prediction_writer": (PredictionWriter, {}),
}
"""Callbacks of every run: config key -> (class, default arguments)."""

LOGGER = {
    "class_path": "lightning.pytorch.loggers.WandbLogger",
    "init_args": {
        # interpolations relative to trainer.logger.init_args, resolved over the merged config
        "save_dir": "${...default_root_dir}",
        "name": "${basename:${...default_root_dir}}",
        "project": "vidgen",
        "offline": True,
    },
}
"""The default ``trainer.logger``: W&B offline in the run folder, named after it."""

if not OmegaConf.has_resolver("basename"):
    OmegaConf.register_resolver("basename", lambda path: path and PurePath(path).name)


class VidgenCLI(LightningCLI):
    """LightningCLI with vidgen's defaults (logger, always-on callbacks); the model's
    ``image_size`` always follows ``data.image_size``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_kwargs", {}).setdefault("parser_mode", "omegaconf+")
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.init_args.image_size", "model.init_args.image_size")
        for key, (callback, init_args) in ALWAYS_ON.items():
            parser.add_lightning_class_args(callback, key, subclass_mode=True, required=False)
            class_path = f"{callback.__module__}.{callback.__qualname__}"
            parser.set_defaults({key: {"class_path": class_path, "init_args": init_args}})
        parser.set_defaults({"trainer.logger": LOGGER})

    def before_instantiate_classes(self) -> None:
        """Make relative logger ``save_dir``s absolute.

        wandb writes through a service process that resolves relative paths against its own
        working directory, which differs from ours after an ``os.chdir`` (notebooks, tests).
        """
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        loggers = config.get("trainer.logger") if config is not None else None
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
            save_dir = init_args.get("save_dir") if init_args is not None else None
            if isinstance(save_dir, str) and not os.path.isabs(save_dir):
                init_args["save_dir"] = os.path.abspath(save_dir)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> L.Trainer:
        """Leave out the always-on callbacks that the config set to ``null``."""
        return super()._instantiate_trainer(config, [c for c in callbacks if c is not None])


def main(args: list[str] | None = None, run: bool = True) -> VidgenCLI:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``); ``run=False``: no subcommand,
    only build the model, data module and trainer."""
    return VidgenCLI(
        VideoModule,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=LoggerSaveConfigCallback,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def config_path(config: str | os.PathLike) -> Path:
    """A config file: a path, or the name of a packaged config (``"demo"``, ``"vae.yaml"``)."""
    path = Path(config)
    if path.is_file():
        return path
    packaged = CONFIG_DIR / path.with_suffix(".yaml").name
    if path.parent == Path() and packaged.is_file():
        return packaged
    raise FileNotFoundError(f"no config {config!s}: not a file, nor one of {CONFIG_DIR}/*.yaml")


def build(config: str | os.PathLike, *overrides: str) -> VidgenCLI:
    """A config's model, data module and trainer, built as ``vidgen fit`` would, not run.

    ``config`` is a path or a packaged config's name; ``overrides`` are command-line arguments
    (``"--data.init_args.batch_size=4"``, ``"--config", TINY``). Use ``.model``,
    ``.datamodule``, ``.trainer`` and ``.config`` (the resolved config) of the result.
    """
    return main(["--config", str(config_path(config)), *overrides], run=False)


def entry_point() -> None:
    """The ``vidgen`` console script and ``python -m vidgen`` (exit status 0 on success)."""
    main()
