"""The ``vidgen`` command: a LightningCLI (fit / validate / test / predict) over vidgen's models.

No ``lightning`` script runs ``fit``: Lightning 2.4-2.5.0 ship one that only launches Fabric
scripts, 2.5.1+ ship none; ``vidgen fit --config cfg.yaml`` is this project's
``lightning fit --config cfg.yaml``. The resolved config is saved as
``<run dir>/config.yaml`` and logged to the logger (W&B run config).

Every run gets, unless its config says otherwise (``--print_config`` shows them resolved):
- the W&B logger, offline, writing to ``<run dir>/wandb`` under the run folder's name
  (``--trainer.logger.init_args.offline=false`` goes online, ``--trainer.logger=false`` drops it);
- the always-on callbacks, one top-level key each (:data:`ALWAYS_ON`): a config changes one
  with ``sample_videos: {every_n_epochs: 5}`` and removes one with ``sample_videos: null``.

A user mistake (a bad setting or path) ends in one ``vidgen: error: ...`` line and exit status
2, without a traceback (:mod:`vidgen.errors` has the rule; ``--debug`` shows it).

In Python, :func:`build` gives a config's model, data module and trainer without running.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path, PurePath
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from omegaconf import OmegaConf

from vidgen import __version__
from vidgen.callbacks import (
    FiniteLoss,
    FirstBatch,
    InterruptCheckpoint,
    LoggerSaveConfigCallback,
    RunCheckpoint,
)
from vidgen.checkpoint import (
    check_class,
    check_current,
    check_fits,
    is_file_path,
    load_class,
    read_checkpoint,
)
from vidgen.data.datamodule import VideoDataModule
from vidgen.errors import SETUP_ERRORS, VidgenUserError, as_user_error, describe
from vidgen.models.base import VideoModule
from vidgen.outputs import EvaluationReport, PredictionWriter, SampleVideos
from vidgen.wandb_run import WANDB_LOGGER, WandbRun, join_run

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The packaged YAML configs (paper-faithful, improved and demo)."""

TINY = CONFIG_DIR / "overlays" / "tiny.yaml"
"""An overlay (a second ``--config``) that shrinks any packaged config's run to seconds."""

ALWAYS_ON: dict[str, tuple[type[L.Callback], dict[str, Any]]] = {
    "checkpoint": (RunCheckpoint, {"save_last": True, "monitor": "val/loss"}),
    "sample_videos": (SampleVideos, {}),
    "evaluation_report": (EvaluationReport, {}),
    "prediction_writer": (PredictionWriter, {}),
    "wandb_run": (WandbRun, {}),
    "finite_loss": (FiniteLoss, {}),
    "interrupt_checkpoint": (InterruptCheckpoint, {}),
}
"""Callbacks of every run: config key -> (class, default arguments)."""

LOGGER = {
    "class_path": WANDB_LOGGER,
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
        self.checkpoint: dict[str, Any] | None = None
        self.first_batch = FirstBatch()
        super().__init__(*args, **kwargs)

    def setup_parser(self, add_subcommands: bool, *args: Any, **kwargs: Any) -> None:
        """Add ``--version`` and ``--debug`` (handled by :func:`entry_point`) to ``vidgen``."""
        super().setup_parser(add_subcommands, *args, **kwargs)
        self.parser.add_argument("--version", action="version", version=f"vidgen {__version__}")
        self.parser.add_argument(
            "--debug", action="store_true", help="show the traceback of user errors too"
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.init_args.image_size", "model.init_args.image_size")
        for key, (callback, init_args) in ALWAYS_ON.items():
            parser.add_lightning_class_args(callback, key, subclass_mode=True, required=False)
            class_path = f"{callback.__module__}.{callback.__qualname__}"
            parser.set_defaults({key: {"class_path": class_path, "init_args": init_args}})
        parser.set_defaults({"trainer.logger": LOGGER})

    def _parse_ckpt_path(self) -> None:
        """Read ``--ckpt_path`` first: a clear error for a missing or damaged file."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if is_file_path(ckpt_path):
            self.checkpoint = read_checkpoint(ckpt_path)
            model = self.config[subcommand].get("model")
            named = isinstance(model, Namespace) and model.get("class_path")
            loading = load_class(model.class_path) if named else None
            check_current(self.checkpoint, f"--ckpt_path {ckpt_path}", loading)
            if named:
                check_class(self.checkpoint, model.class_path, ckpt_path)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        """Point the W&B logger at the run of ``--ckpt_path``'s checkpoint; make relative
        logger ``save_dir``s absolute.

        wandb writes through a service process that resolves relative paths against its own
        working directory, which differs from ours after an ``os.chdir`` (notebooks, tests).
        """
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        loggers = config.get("trainer.logger") if config is not None else None
        if self.checkpoint is not None and config.get("wandb_run") is not None:
            join_run(loggers, self.checkpoint)
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init_args = logger.get("init_args") if isinstance(logger, Namespace) else None
            save_dir = init_args.get("save_dir") if init_args is not None else None
            if isinstance(save_dir, str) and not os.path.isabs(save_dir):
                init_args["save_dir"] = os.path.abspath(save_dir)

    def instantiate_classes(self) -> None:
        """Build the config's classes; their setting errors become :class:`VidgenUserError`."""
        try:
            super().instantiate_classes()
        except Exception as err:
            user_error = as_user_error(err)
            if user_error is None:
                raise
            raise user_error from err

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> L.Trainer:
        """Leave out the always-on callbacks that the config set to ``null``."""
        kept = [c for c in callbacks if c is not None] + [self.first_batch]
        return super()._instantiate_trainer(config, kept)

    def _run_subcommand(self, subcommand: str) -> None:
        """Check the run folder and the checkpoint, then run; ``ValueError``s and ``OSError``s
        before the first batch (data setup, checkpoint loading) become user errors."""
        make_run_dir(self.trainer.default_root_dir)
        if self.checkpoint is not None:
            check_fits(self.checkpoint, self.model, self.config[subcommand].ckpt_path)
        try:
            super()._run_subcommand(subcommand)
        except SETUP_ERRORS as err:
            if self.first_batch.started:
                raise
            raise VidgenUserError(describe(err)) from err


def make_run_dir(folder: str | os.PathLike) -> None:
    """Create the run folder and check that it is writable (a clear error if not)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise VidgenUserError(
            f"cannot write the run folder {folder} ({err.strerror or err}); set "
            "trainer.default_root_dir to a writable folder"
        ) from err


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


def entry_point(args: list[str] | None = None) -> None:
    """The ``vidgen`` console script and ``python -m vidgen`` (``vidgen prepare ...``: LitData
    shards, :mod:`vidgen.prepare`): exit status 0 on success, 2 and
    ``vidgen: error: <message>`` on stderr for a user error (:mod:`vidgen.errors`); ``--debug``
    anywhere on the line, or ``VIDGEN_DEBUG=1``, shows its traceback."""
    args = sys.argv[1:] if args is None else list(args)
    debug = "--debug" in args or os.environ.get("VIDGEN_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    argv, sys.argv = sys.argv, [sys.argv[0], *args]  # LightningCLI reads the command line
    try:
        if args[:1] == ["prepare"]:  # not a Trainer method: its own parser (vidgen/prepare.py)
            from vidgen.prepare import main as prepare

            prepare(args[1:])
        else:
            main()
    except VidgenUserError as err:
        if debug:
            raise
        print(f"vidgen: error: {err}", file=sys.stderr)
        sys.exit(2)
    finally:
        sys.argv = argv
