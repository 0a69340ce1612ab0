"""User mistakes end in one ``vidgen: error: ...`` line and exit status 2, without a traceback;
``--debug`` shows it; programming errors keep theirs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from tiny import tiny_args

import vidgen
from vidgen.checkpoint import check_current, check_fits
from vidgen.cli import entry_point
from vidgen.errors import VidgenUserError

TINY_DEMO = (
    "--trainer.logger=false",
    "--data.init_args.image_size=16",
    "--model.init_args.core.init_args.hidden_channels=4",
    "--model.init_args.head.init_args.base_size=2",
    "--model.init_args.head.init_args.kernel_size=5",
)


def fit_args(*overrides: str) -> list[str]:
    """``vidgen fit`` on the demo config, 16 px, tiny, with ``overrides``."""
    return ["fit", *tiny_args("demo.yaml", *TINY_DEMO, *overrides)]


def user_error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    """Run ``vidgen <args>``; assert exit status 2 and one error line; return that line."""
    with pytest.raises(SystemExit) as done:
        entry_point(args)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = (line for line in err.splitlines() if line.startswith("vidgen: error: "))
    return line


@pytest.fixture
def files(in_tmp):
    """A file (not a folder), a corrupt checkpoint, a checkpoint of a VideoVAE and one of vidgen
    0.1's FramePredictor with vidgen's motion options."""
    (in_tmp / "a_file").write_text("x")
    (in_tmp / "corrupt.ckpt").write_bytes(b"not a checkpoint" * 8)
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"_class_path": "vidgen.VideoVAE"}},
        in_tmp / "vae.ckpt",
    )
    old = {"_class_path": "vidgen.FramePredictor", "core": None, "output": "warp"}
    torch.save({"state_dict": {}, "hyper_parameters": {**old, "feature_cache": 0.0}}, "old.ckpt")
    return in_tmp


BAD_INPUTS = {
    "imagenet_weights_offline": (
        ["--model.init_args.backbone_weights", "imagenet"],
        "VGG16 weights not found at",
    ),
    "ucf101_root_missing": (
        ["--data", "vidgen.UCF101DataModule", "--data.init_args.root", "no_such_root"],
        "UCF101 root no_such_root does not exist: set data.root",
    ),
    "ucf101_lists_missing": (
        ["--data", "vidgen.UCF101DataModule", "--data.init_args.root", "."],
        "no ucfTrainTestlist/classInd.txt under .",
    ),
    "one_frame": (["--data.init_args.frames=1"], "set data.frames >= 2"),
    "unknown_layer": (["--model.init_args.backbone_layer=pool9"], "unknown VGG16 layer 'pool9'"),
    "size_the_head_cannot_make": (["--data.init_args.image_size=4"], "kernel_size 5 must be in"),
    "unwritable_run_folder": (
        ["--trainer.default_root_dir=a_file/run"],
        "cannot write the run folder a_file/run (Not a directory)",
    ),
    "ckpt_missing": (["--ckpt_path=none.ckpt"], "--ckpt_path none.ckpt: no such file"),
    "ckpt_corrupt": (["--ckpt_path=corrupt.ckpt"], "corrupt.ckpt is not a PyTorch checkpoint"),
    "ckpt_of_the_other_model": (
        ["--ckpt_path=vae.ckpt"],
        "holds a vidgen.VideoVAE, this config's model is a vidgen.MotionPredictor",
    ),
    "ckpt_of_vidgen_0_1": (
        ["--ckpt_path=old.ckpt"],
        "old.ckpt was written by vidgen 0.1 (its options feature_cache, output are gone): its "
        "model is a vidgen.MotionPredictor now",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_line(files, capsys, case):
    overrides, message = BAD_INPUTS[case]
    assert message in user_error(capsys, fit_args(*overrides))


def test_loading_a_vidgen_0_1_checkpoint_in_python_names_the_new_class(files):
    from vidgen import FramePredictor

    with pytest.raises(VidgenUserError, match=r"is a vidgen\.MotionPredictor now"):
        FramePredictor.load_from_checkpoint("old.ckpt")


def test_a_motion_vae_checkpoint_is_current():
    """``condition_frames`` was an option of vidgen 0.1's VideoVAE and is one of MotionVAE's:
    the class loading the checkpoint decides."""
    checkpoint = {"state_dict": {}, "hyper_parameters": {"condition_frames": 4}}
    check_current(checkpoint, "motion_vae.ckpt", vidgen.MotionVAE)
    with pytest.raises(VidgenUserError, match=r"is a vidgen\.VideoVAE now"):
        check_current(checkpoint, "motion_vae.ckpt", vidgen.VideoVAE)


def test_debug_shows_the_traceback(files, monkeypatch):
    args = fit_args("--ckpt_path=none.ckpt")
    with pytest.raises(VidgenUserError, match="no such file"):
        entry_point([*args, "--debug"])
    monkeypatch.setenv("VIDGEN_DEBUG", "1")
    with pytest.raises(VidgenUserError, match="no such file"):
        entry_point(args)


def test_programming_errors_keep_their_traceback(in_tmp, monkeypatch):
    """An error once batches run is not a user error, even a ValueError."""

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("vidgen.MotionPredictor.training_step", broken)
    with pytest.raises(ValueError, match="a bug"):
        entry_point(fit_args("--trainer.max_steps=1"))


def test_checkpoint_with_other_weights_is_refused():
    """Same class, other sizes (what LightningCLI < 2.6 would not catch before loading)."""
    small, large = torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)
    check_fits({"state_dict": small.state_dict()}, small, "small.ckpt")
    with pytest.raises(VidgenUserError, match=r"small.ckpt does not fit .* differ in shape"):
        check_fits({"state_dict": small.state_dict()}, large, "small.ckpt")
    with pytest.raises(VidgenUserError, match="are not in it"):
        check_fits({"state_dict": {}}, large, "empty.ckpt")


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        entry_point(["--version"])
    assert (
        done.value.code == 0 and capsys.readouterr().out.strip() == f"vidgen {vidgen.__version__}"
    )


@pytest.mark.slow  # a fresh process: seconds of imports
def test_bad_input_in_a_real_process_prints_no_traceback(files):
    done = subprocess.run(
        [sys.executable, "-m", "vidgen", *fit_args("--ckpt_path=none.ckpt")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "vidgen: error: --ckpt_path none.ckpt: no such file"
    )
    assert "Traceback" not in done.stderr
