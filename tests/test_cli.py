"""The ``vidgen`` LightningCLI: every packaged config parses, the demo config trains."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiers import by_tier
from tiny import tiny_args, tiny_run

from vidgen import MotionVAE, ShapesDataModule, VideoDataModule
from vidgen.cli import ALWAYS_ON, build, main
from vidgen.cli import CONFIG_DIR as CONFIGS
from vidgen.outputs import EvaluationReport, PredictionWriter, SampleVideos

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
    """``vidgen fit --config <packaged config> --config tiny.yaml --trainer.fast_dev_run=1``."""
    return tiny_run("fit", config, "--trainer.fast_dev_run=1", *extra)


DEMO_MODELS = {
    "demo.yaml": "MotionPredictor",
    "demo_paper.yaml": "FramePredictor",
    "demo_textured.yaml": "MotionPredictor",
    "simvp_demo.yaml": "SimVP",
    "simvp_textured.yaml": "SimVP",
}
"""The predictor demo configs and the model each builds."""


@pytest.mark.parametrize("config", by_tier(DEMO_MODELS))
def test_demo_configs_fast_dev_run(in_tmp, config):
    cli = fast_dev_run(config)
    assert cli.trainer.state.finished
    assert cli.model.image_size == cli.datamodule.image_size == 32
    assert type(cli.model).__name__ == DEMO_MODELS[config]


@pytest.mark.slow  # a fresh process: seconds of imports
def test_python_dash_m_is_the_same_cli():
    out = subprocess.run(
        [sys.executable, "-m", "vidgen", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "fit" in out and "predict" in out


def tiny_demo(*extra: str) -> list[str]:
    """The demo config shrunk to seconds: the tiny overlay, 16 px frames, no logger."""
    return tiny_args(
        "demo.yaml",
        "--trainer.logger=false",
        "--data.init_args.image_size=16",
        "--model.init_args.backbone_layer=pool2",
        "--model.init_args.head.init_args.base_size=2",
        "--model.init_args.head.init_args.kernel_size=5",
        *extra,
    )


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "config", by_tier(["demo.yaml", "demo_textured.yaml", "demo_paper.yaml", "vae_demo.yaml"])
)
def test_bf16_mixed_precision_trains(in_tmp, config):
    """The GPU recipe's precision (bf16 autocast: FFT deconvolution, warp, splatting, motion
    layers, KL) on the CPU."""
    cli = fast_dev_run(config, "--trainer.precision=bf16-mixed")
    loss = cli.trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss) and loss > 0


def printed_config(capsys, *args: str) -> dict:
    """``vidgen fit <args> --print_config``, parsed."""
    with pytest.raises(SystemExit) as done:
        main(["fit", *args, "--print_config"])
    assert done.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_defaults_are_printed_resolved(capsys):
    """The logger and the always-on callbacks are CLI defaults, resolved in --print_config."""
    cfg = printed_config(capsys, "--config", str(CONFIGS / "demo.yaml"))
    logger = cfg["trainer"]["logger"]
    assert logger["class_path"] == "lightning.pytorch.loggers.WandbLogger"
    assert logger["init_args"]["save_dir"] == "runs/demo" == cfg["trainer"]["default_root_dir"]
    assert logger["init_args"]["name"] == "demo" and logger["init_args"]["offline"] is True
    for key, (callback, _) in ALWAYS_ON.items():
        assert cfg[key]["class_path"] == f"{callback.__module__}.{callback.__qualname__}"
    assert cfg["checkpoint"]["init_args"]["save_last"] is True
    assert cfg["sample_videos"]["init_args"]["every_n_epochs"] == 2  # demo.yaml's own value
    assert cfg["sample_videos"]["init_args"]["num_videos"] == 4  # the class default
    moved = printed_config(
        capsys, "--config", str(CONFIGS / "demo.yaml"), "--trainer.default_root_dir=x/y"
    )
    assert moved["trainer"]["logger"]["init_args"]["save_dir"] == "x/y"
    assert moved["trainer"]["logger"]["init_args"]["name"] == "y"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: p.stem)
def test_packaged_configs_do_not_restate_the_defaults(config):
    text = config.read_text()
    for name in ("WandbLogger", *(callback.__name__ for callback, _ in ALWAYS_ON.values())):
        assert name not in text


def test_defaults_can_be_overridden_or_removed(in_tmp):
    mine = in_tmp / "mine.yaml"
    mine.write_text(
        "trainer: {logger: false}\n"
        "sample_videos: null\n"
        "prediction_writer: null\n"
        "checkpoint: {save_top_k: 3}\n"
    )
    cli = build("demo", "--config", str(mine), "--evaluation_report.init_args.every_n_epochs=5")
    kinds = [type(callback) for callback in cli.trainer.callbacks]
    assert SampleVideos not in kinds and PredictionWriter not in kinds
    (report,) = (c for c in cli.trainer.callbacks if isinstance(c, EvaluationReport))
    assert report.every_n_epochs == 5
    assert cli.trainer.checkpoint_callback.save_top_k == 3
    assert cli.trainer.checkpoint_callback.save_last is True  # the default's other value stays
    assert cli.trainer.loggers == []


def test_build_gives_a_packaged_config_in_python():
    built = build("vae_demo.yaml", "--data.init_args.batch_size=4", "--trainer.logger=false")
    assert isinstance(built.model, MotionVAE) and isinstance(built.datamodule, ShapesDataModule)
    assert built.model.image_size == built.datamodule.image_size == 32
    assert built.datamodule.batch_size == 4
    assert built.trainer.max_epochs == built.config.trainer.max_epochs == 5
    assert built.trainer.global_step == 0  # built, not run
    with pytest.raises(FileNotFoundError, match="no config"):
        build("no_such_config")


def test_shapes_module_forwards_the_base_arguments(capsys):
    """ShapesDataModule declares only its own arguments; LightningCLI still sees the base's."""
    cfg = printed_config(
        capsys, "--config", str(CONFIGS / "demo.yaml"), "--data.init_args.frames=5"
    )
    data = cfg["data"]["init_args"]
    base = [p for p in inspect.signature(VideoDataModule.__init__).parameters if p != "self"]
    assert base and set(base) <= set(data)
    assert data["frames"] == 5 and data["eval_frames"] == 20 and data["num_train"] == 512
    built = build("demo", "--data.init_args.frames=5", "--data.init_args.batch_size=3")
    assert (built.datamodule.frames, built.datamodule.batch_size) == (5, 3)


@pytest.mark.slow  # a fresh process: seconds of imports
def test_the_command_line_prints_no_warning(in_tmp):
    """LightningCLI warns when given both ``args`` and a command line: the console script gives
    it the command line only."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidgen",
            "fit",
            "--config",
            str(CONFIGS / "demo.yaml"),
            "--print_config",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "warn" not in out.stderr.lower(), out.stderr
    assert "MotionPredictor" in out.stdout
