"""The ``vidgen`` command: a LightningCLI (fit / validate / test / predict) over vidgen's models.

Lightning 2.x installs no ``lightning`` script; ``vidgen fit --config cfg.yaml`` is this
project's ``lightning fit --config cfg.yaml``. The resolved config is saved as
``<run dir>/config.yaml`` and logged to the logger (W&B run config). The packaged configs log
to W&B offline (``<run dir>/wandb``, ``wandb sync`` later);
``--trainer.logger.init_args.offline=false`` goes online.
"""

from __future__ import annotations

import os
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from vidgen.callbacks import LoggerSaveConfigCallback
from vidgen.data.datamodule import VideoDataModule
from vidgen.models.base import VideoModule

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The packaged YAML configs (paper-faithful, improved and demo)."""


class VidgenCLI(LightningCLI):
    """LightningCLI whose model's ``image_size`` always follows ``data.image_size``."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.init_args.image_size", "model.init_args.image_size")

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


def main(args: list[str] | None = None) -> VidgenCLI:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``)."""
    return VidgenCLI(
        VideoModule,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=LoggerSaveConfigCallback,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def entry_point() -> None:
    """The ``vidgen`` console script and ``python -m vidgen`` (exit status 0 on success)."""
    main()
