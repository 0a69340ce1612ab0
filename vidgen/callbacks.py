"""Callbacks that keep a run safe and in one place: checkpoints in the run folder, the resolved
config saved and logged, training stopped at a non-finite loss, a checkpoint on Ctrl-C, and the
mark of the first batch (before it, setup errors are user errors: :mod:`vidgen.errors`).

What a run writes for people to look at (videos, predictions, metric reports) is in
:mod:`vidgen.outputs`; the W&B run bookkeeping is in :mod:`vidgen.wandb_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from vidgen.errors import NonFiniteLossError
from vidgen.outputs import run_dir


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves into ``<run dir>/checkpoints`` unless ``dirpath`` is set.

    Keeps every output of a run (checkpoints, videos, metrics, config) under one folder,
    whatever the logger. With ``save_last``, ``last.ckpt`` holds the latest weights after every
    epoch, also when the monitored metric did not improve.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = str(run_dir(trainer) / "checkpoints")
        super().setup(trainer, pl_module, stage)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._keep_last_current(trainer)

    def _keep_last_current(self, trainer: L.Trainer) -> None:
        """Lightning writes ``last.ckpt`` only when a monitored checkpoint is saved the same step,
        which makes it the best checkpoint, not the last: write it whenever it is behind."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Saves ``config.yaml`` to the run folder (LightningCLI's default) and also puts the
    resolved config into every logger's hyperparameters (``config`` key; W&B's run config)."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            return
        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class FiniteLoss(L.Callback):
    """Stops training at the first NaN or infinite loss, before its backward pass: the weights
    and optimiser state stay those of the last good step and no checkpoint is written over
    the last good one. The error names the step, the loss terms and what to try."""

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        finite = bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        results = getattr(trainer, "_results", None) or {}  # this step's logged terms
        terms = {key.split(".", 1)[-1]: metric.value for key, metric in results.items()}
        shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items() if torch.is_tensor(v))
        raise NonFiniteLossError(
            f"the training loss is {float(loss.detach()):.4g} at step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}): {shown or 'no terms logged'}. Stopped before this "
            f"step's update; the checkpoints in {run_dir(trainer) / 'checkpoints'} are from "
            "before it. Try clipping gradients (--trainer.gradient_clip_val=1.0, advised with "
            "the paper's Adam lr 0.01; --ckpt_path last resumes from the last good checkpoint) "
            "or a lower learning rate in a new run (--model.init_args.optimizer.init_args.lr)"
        )


class InterruptCheckpoint(L.Callback):
    """Ctrl-C during ``fit`` saves ``last.ckpt`` (the state of the last finished step) into the
    run's checkpoint folder before Lightning shuts down, so ``--ckpt_path last`` resumes there.
    Only an interrupt: after any other error (a NaN loss) no checkpoint is written."""

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, KeyboardInterrupt) or not trainer.training:
            return
        checkpoint = trainer.checkpoint_callback
        folder = getattr(checkpoint, "dirpath", None) or run_dir(trainer) / "checkpoints"
        path = Path(folder) / "last.ckpt"
        trainer.save_checkpoint(path)
        rank_zero_info(f"interrupted: {path} saved; resume with --ckpt_path last")


class FirstBatch(L.Callback):
    """Records whether a batch has started: before it, setup errors are user errors."""

    def __init__(self) -> None:
        self.started = False

    def _start(self, *args: Any) -> None:
        self.started = True

    on_train_batch_start = on_validation_batch_start = _start
    on_test_batch_start = on_predict_batch_start = _start
