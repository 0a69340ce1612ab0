"""The decoder choice: every installed backend returns the same frames for the same indices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ucf101_corpus import encode_avi, encode_video, read_number

from vidgen.data import decoders


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("decoders")
    encode_avi(d / "plain.avi", 60, 64, 48)
    encode_avi(d / "bframes.avi", 60, 64, 48, b_frames=2)  # no timestamps decord can seek by
    encode_video(d / "h264.mp4", 50, 80, 48, 30)  # B-frames
    encode_video(d / "tall.mkv", 40, 64, 96, 12)
    encode_video(d / "square.mov", 30, 64, 64, 24)
    data = (d / "plain.avi").read_bytes()
    (d / "truncated.avi").write_bytes(data[: len(data) * 6 // 10])
    return d


NAMES = ["plain.avi", "bframes.avi", "h264.mp4", "tall.mkv", "square.mov", "truncated.avi"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "decoder",
    [
        pytest.param(d, marks=pytest.mark.skipif(not decoders.installed(d), reason=f"no {d}"))
        for d in ("decord", "torchcodec")
    ],
)
def test_every_backend_reads_the_same_frames(videos, name, decoder):
    """``decoder`` against PyAV (always installed): probe, frame numbers and pixels."""
    path = str(videos / name)
    info, reference = (decoders.probe(path, decoder=d) for d in (decoder, "pyav"))
    assert (info.frames, info.fps, info.width, info.height) == (
        reference.frames,
        reference.fps,
        reference.width,
        reference.height,
    )
    n = info.frames
    rng = np.random.default_rng(0)
    patterns = [[0, 1, 2, 3], [n - 1, 3, n // 2, n // 2, 0], list(range(0, n, 7))]
    patterns += [np.sort(rng.choice(n, 6, replace=False)).tolist() for _ in range(3)]
    for indices in patterns:
        for resize, size in (("crop", 32), ("pad", 32), ("crop", None)):
            ours, reference = (
                decoders.make_reader(d, resize).read(path, np.array(indices), size)
                for d in (decoder, "pyav")
            )
            assert ours.shape == reference.shape and ours.dtype == np.uint8
            if resize == "crop" and size:
                assert [read_number(f) for f in ours] == indices, (decoder, name)
                assert [read_number(f) for f in reference] == indices, ("pyav", name)
            difference = np.abs(ours.astype(int) - reference).max()
            if decoder == "torchcodec" and size:
                assert difference <= 8  # resizes after the RGB conversion (measured: 3 at most)
            else:  # decord and PyAV scale alike; every backend decodes full frames alike
                assert difference == 0, (decoder, resize, size, name)


def test_choice_and_errors(monkeypatch):
    assert decoders.choose_decoder() == next(d for d in decoders.DECODERS if decoders.installed(d))
    assert decoders.choose_decoder("pyav") == "pyav"
    with pytest.raises(ValueError, match="one of decord, torchcodec, pyav"):
        decoders.choose_decoder("opencv")
    monkeypatch.setattr(decoders, "installed", lambda name: name == "pyav")
    assert decoders.choose_decoder() == "pyav"
    with pytest.raises(ImportError, match=r"pip install 'vidgen\[decord\]'"):
        decoders.choose_decoder("decord")
    with pytest.raises(ImportError, match=r"vidgen\[torchcodec\].*libavcodec-dev"):
        decoders.choose_decoder("torchcodec")
    monkeypatch.setattr(decoders, "installed", lambda name: False)
    with pytest.raises(ImportError, match=r"pip install 'vidgen\[decord\]'"):
        decoders.choose_decoder()


@pytest.mark.slow  # a fresh process: seconds of imports
def test_folder_module_runs_without_decord(tmp_path):
    """A machine without decord (no wheel): the default decoder is the next one installed."""
    code = (
        "import sys; sys.modules['decord'] = None\n"
        "from ucf101_corpus import encode_video\n"
        "from vidgen import VideoFolderDataModule\n"
        f"encode_video(__import__('pathlib').Path('{tmp_path}/v.mp4'), 12, 64, 48, 25)\n"
        f"dm = VideoFolderDataModule('{tmp_path}/v.mp4', frames=2, image_size=16, "
        "num_workers=0, progress=False)\n"
        "clip = next(iter(dm.predict_dataloader()))['video']\n"
        "assert clip.shape == (1, 2, 3, 16, 16), clip.shape\n"
        "from vidgen.data.decoders import choose_decoder; print(choose_decoder())\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1] in ("torchcodec", "pyav")


@pytest.mark.slow
def test_vidgen_imports_without_decord_and_av():
    code = (
        "import sys; sys.modules['decord'] = None; sys.modules['av'] = None\n"
        "import vidgen, vidgen.data.decoders, vidgen.data.ucf101, vidgen.data.datamodule\n"
        "assert 'decord' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
