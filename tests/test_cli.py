"""The ``vidgen`` LightningCLI: every packaged config parses, the demo config trains."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from vidgen.cli import CONFIG_DIR as CONFIGS
from vidgen.cli import main

ALL_CONFIGS = sorted(CONFIGS.glob("*.yaml"))


def test_configs_exist():
    names = {p.name for p in ALL_CONFIGS}
    assert {"demo.yaml", "demo_paper.yaml", "predictor_paper.yaml", "predictor.yaml"} <= names
    assert {"vae_demo.yaml", "vae_paper.yaml", "vae.yaml"} <= names


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_parses(config, capsys):
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["init_args"]["image_size"] >= 16
    assert "image_size" not in printed["model"]["init_args"]  # linked from data.image_size


def test_paper_config_is_the_paper():
    cfg = yaml.safe_load((CONFIGS / "predictor_paper.yaml").read_text())
    model = cfg["model"]["init_args"]
    assert cfg["data"]["init_args"]["image_size"] == 224
    assert model["backbone_layer"] == "pool5"
    assert model["head"]["init_args"] == {"channels": 16, "base_size": 7, "kernel_size": 190}
    assert model["optimizer"]["init_args"]["lr"] == 0.01
    assert model["lr_scheduler"]["init_args"] == {"step_size": 1000, "gamma": 0.1}
    assert cfg["trainer"]["max_epochs"] == 5000


def fast_dev_run(config: str, *extra: str):
    """``vidgen fit --config <packaged config> --trainer.fast_dev_run=1`` on 2-clip batches."""
    return main(
        [
            "fit",
            "--config",
            str(CONFIGS / config),
            "--trainer.fast_dev_run=1",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            *extra,
        ]
    )


@pytest.mark.parametrize("config", ["demo.yaml", "demo_paper.yaml", "demo_textured.yaml"])
def test_demo_configs_fast_dev_run(in_tmp, config):
    cli = fast_dev_run(config)
    assert cli.trainer.state.finished
    assert cli.model.image_size == cli.datamodule.image_size == 32
    assert cli.model.output == ("frame" if config == "demo_paper.yaml" else "warp")


def test_python_dash_m_is_the_same_cli():
    out = subprocess.run(
        [sys.executable, "-m", "vidgen", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "fit" in out and "predict" in out


def tiny_demo(*extra: str) -> list[str]:
    """The demo config shrunk to seconds: 16 px frames, 2-clip batches, 2 steps an epoch."""
    return [
        "--config",
        str(CONFIGS / "demo.yaml"),
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--data.init_args.num_train=4",
        "--data.init_args.num_val=2",
        "--data.init_args.num_test=2",
        "--data.init_args.image_size=16",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--model.init_args.backbone_layer=pool2",
        "--model.init_args.head.init_args.base_size=2",
        "--model.init_args.head.init_args.kernel_size=5",
        *extra,
    ]


def test_fit_resume_then_test_writes_outputs(in_tmp):
    first = main(["fit", *tiny_demo("--trainer.max_epochs=1")])
    assert first.trainer.global_step == 2
    last = in_tmp / "runs" / "demo" / "checkpoints" / "last.ckpt"
    assert last.is_file() and (in_tmp / "runs" / "demo" / "config.yaml").is_file()
    resumed = main(["fit", *tiny_demo("--trainer.max_epochs=2", f"--ckpt_path={last}")])
    assert resumed.trainer.global_step == 4 and resumed.trainer.current_epoch == 2
    main(["test", *tiny_demo(f"--ckpt_path={last}")])
    metrics = yaml.safe_load((in_tmp / "runs" / "demo" / "metrics.json").read_text())
    horizon = 20 - 4  # eval_frames - context_frames: 2x the 8 training frames
    assert len(metrics["model/psnr"]) == len(metrics["copy_last/psnr"]) == horizon
    assert sorted(p.name for p in (in_tmp / "runs" / "demo" / "videos").glob("test_*.gif"))


def test_console_script_exits_zero_after_a_run(in_tmp):
    """The installed `vidgen fit ...` (what `make demo` runs) ends with exit status 0."""
    script = Path(sys.executable).with_name("vidgen")
    assert script.is_file(), "install the package (make venv) to get the vidgen command"
    done = subprocess.run(
        [str(script), "fit", *tiny_demo("--trainer.max_steps=1")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (in_tmp / "runs" / "demo" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("config", ["demo.yaml", "demo_paper.yaml", "vae_demo.yaml"])
def test_bf16_mixed_precision_trains(in_tmp, config):
    """The GPU recipe's precision (bf16 autocast: FFT deconvolution, warp, KL) on the CPU."""
    cli = fast_dev_run(config, "--trainer.precision=bf16-mixed")
    loss = cli.trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss) and loss > 0
