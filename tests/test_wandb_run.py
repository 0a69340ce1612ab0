"""One W&B run per experiment: test / predict with a run's checkpoint log into that run."""

from __future__ import annotations

import pytest
import torch
import wandb
from jsonargparse import Namespace
from test_errors import TINY_DEMO
from tiny import tiny_args

from vidgen.cli import VidgenCLI, entry_point, main
from vidgen.wandb_run import WANDB_LOGGER, join_run


def run_ids(folder) -> list[str]:
    """The run ids of the offline W&B runs in ``folder``, oldest first."""
    return [p.name.rsplit("-", 1)[-1] for p in sorted(folder.glob("offline-run-*"))]


def vidgen(*args: str) -> None:
    """One ``vidgen`` command; ``wandb.finish()`` as its process's exit would do."""
    try:
        entry_point(list(args))
    finally:
        wandb.finish()


@pytest.mark.slow
def test_test_logs_into_the_training_run(in_tmp):
    demo = [*tiny_args("demo.yaml", *TINY_DEMO[1:])]  # with the default (offline) W&B logger
    vidgen("fit", *demo)
    run = in_tmp / "runs" / "demo"
    last = run / "checkpoints" / "last.ckpt"
    (trained,) = run_ids(run / "wandb")
    assert torch.load(last, mmap=True)["wandb_run"] == {"id": trained, "project": "vidgen"}
    vidgen("test", *demo, f"--ckpt_path={last}")
    assert run_ids(run / "wandb") == [trained, trained]  # the same run, resumed


def test_join_run_sets_the_id_unless_the_config_names_one():
    checkpoint = {"wandb_run": {"id": "abc", "project": "p"}}
    logger = Namespace(class_path=WANDB_LOGGER, init_args=Namespace(id=None, project="vidgen"))
    assert join_run(logger, checkpoint) == "abc"
    assert logger.init_args == Namespace(id="abc", project="p", resume="allow")
    named = Namespace(class_path=WANDB_LOGGER, init_args=Namespace(id="mine"))
    assert join_run([named], checkpoint) is None and named.init_args.id == "mine"
    assert join_run(logger, {}) is None  # a checkpoint without a W&B run


@pytest.mark.parametrize("opt_out", [False, True])
def test_a_checkpoint_names_the_run_unless_opted_out(in_tmp, monkeypatch, opt_out):
    """``--wandb_run null``: the logger gets no id from the checkpoint (a new run)."""
    last = in_tmp / "last.ckpt"
    torch.save({"state_dict": {}, "wandb_run": {"id": "abc", "project": "vidgen"}}, last)
    monkeypatch.setattr(VidgenCLI, "_run_subcommand", lambda self, subcommand: None)
    extra = ["--wandb_run=null"] if opt_out else []
    cli = main(["test", *tiny_args("demo.yaml", *TINY_DEMO[1:], f"--ckpt_path={last}", *extra)])
    assert cli.trainer.logger.version == (None if opt_out else "abc")
