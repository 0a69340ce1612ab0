"""LayerMotionVAE: the camera and a thing are found as layers with their motion, the mean
future moves both whole (and bounces the thing off the border, or in the futures without
walls lets it leave), the posterior tracks the thing, samples are futures of the right shape
that the temperature spreads, the packaged config fits and tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny import tiny_run

from vidgen import LayerMotionVAE, TexturedDataModule
from vidgen.data.textured import pink_noise
from vidgen.models.layer_vae import share_box
from vidgen.models.motion_transport import warp

S = 32


def model(**kw) -> LayerMotionVAE:
    torch.manual_seed(0)
    args = {"image_size": S, "backbone_layer": "pool1", "frames": 12, "things": 5}
    return LayerMotionVAE(**{**args, **kw})


def background(shift: int) -> torch.Tensor:
    """``(3, S, S)``: a periodic 1/f texture in [0, 0.5], moved ``shift`` px to the right."""
    noise = pink_noise(np.random.default_rng(0), S, 3)
    return torch.from_numpy(noise).permute(2, 0, 1).roll(shift, -1) * 0.5


def panning_clip(frames: int = 12, square_step: int = 2, pan: int = 1) -> torch.Tensor:
    """``(1, frames, 3, S, S)``: a periodic 1/f texture panning ``pan`` px a frame to the right
    and a bright textured 8 px square moving ``square_step`` px a frame to the right, from
    column 8 and bouncing off the right border (at column 24)."""
    texture = torch.from_numpy(pink_noise(np.random.default_rng(1), 8, 3)).permute(2, 0, 1)
    clip, x, step = torch.zeros(1, frames, 3, S, S), 8, square_step
    for t in range(frames):
        clip[0, t] = background(pan * t)
        clip[0, t, :, 12:20, x : x + 8] = texture * 0.5 + 0.5
        if not 0 <= x + step <= S - 8:
            step = -step
        x += step
    return clip


def test_share_box_leaves_out_stray_pixels():
    mask = torch.zeros(2, 16, 16, dtype=torch.bool)
    mask[0, 4:10, 5:12] = True
    assert share_box(mask[:1], 0.0).tolist() == [[4, 5, 10, 12]]
    mask[0, 15, 0] = True  # one stray pixel of 43
    assert share_box(mask[:1], 0.05).tolist() == [[4, 5, 10, 12]]
    assert share_box(mask, 0.0).tolist()[1] == [0, 0, 0, 0]  # empty


def test_the_scene_finds_the_camera_and_the_thing_with_their_motion():
    vae = model().eval()
    scene = vae.scene(panning_clip()[:, :4])
    assert scene.masks.shape == (1, 5, S, S) and scene.masks.sum(1).eq(1).all()  # a partition
    assert scene.area[0, 0] == scene.area[0].max()  # the camera's layer first
    assert torch.allclose(scene.velocity[0, 0], torch.tensor([0.0, 1.0]), atol=0.2)
    assert (scene.low[0, 0] < -1000).all() and (scene.high[0, 0] > 1000).all()  # no walls
    thing = scene.masks[0, 1:, 12:20, 14:22].flatten(1).sum(1).argmax() + 1
    assert torch.allclose(scene.velocity[0, thing], torch.tensor([0.0, 2.0]), atol=0.3)


def test_the_plate_shows_what_the_thing_covers_from_earlier_frames():
    vae = model().eval()
    scene = vae.scene(panning_clip()[:, :4])
    # the square covers columns 14-21 in the last context frame (3); in its coordinates (the
    # background panned 1 px a frame) it covered 13-20 in frame 2, 12-19 in frame 1, 11-18 in
    # frame 0: columns 20-21 were seen uncovered
    plate, behind = scene.plate[0, :, 12:20, 20:22], background(3)[:, 12:20, 20:22]
    assert (plate - behind).abs().max() < 0.02
    assert (panning_clip()[0, 3, :, 12:20, 20:22] - behind).abs().mean() > 0.2  # the square
    camera = ~scene.masks[0, 1:].any(0)  # the camera's pixels are the last frame's
    assert camera.sum() > 0.8 * S * S
    assert torch.equal(scene.plate[0][:, camera], panning_clip()[0, 3][:, camera])


def test_the_mean_future_moves_the_layers_and_bounces_the_thing():
    vae = model(temperature=0.0).eval()
    clip = panning_clip()
    with torch.no_grad():
        future = vae.sample_futures(clip[:, :4], 8)[:, 0]
    assert future.shape == (1, 8, 3, S, S) and future.min() >= 0 and future.max() <= 1
    truth = clip[:, 4:]
    error = (future - truth).pow(2).mean((0, 2, 3, 4))
    copy_last = (clip[:, 3:4] - truth).pow(2).mean((0, 2, 3, 4))
    assert (error < 0.5 * copy_last).all(), (error, copy_last)
    # the square is where the truth has it at every step: it bounced off the right border
    for step in range(8):
        columns = [
            (frame.mean(0) > 0.55)[12:20].any(0).nonzero().flatten()
            for frame in (future[0, step], truth[0, step])
        ]
        assert (columns[0].min() - columns[1].min()).abs() <= 1, (step, columns)
        assert (columns[0].max() - columns[1].max()).abs() <= 1, (step, columns)
    assert truth[0, 4].mean(0)[12:20, S - 1].min() > 0.5  # the truth's square touched it


def test_what_enters_the_frame_is_the_colours_around_it():
    vae = model(temperature=0.0).eval()
    clip = panning_clip()
    with torch.no_grad():
        future = vae.sample_futures(clip[:, :4], 8)[0, 0, -1]  # the camera moved 8 px right
        plate = vae.scene(clip[:, :4]).plate
    entered, truth = future[:, :, :6], clip[0, 11, :, :, :6]  # columns from outside the frame
    repeated = warp(plate, torch.tensor([8.0, 0.0]).view(1, 2, 1, 1).expand(1, 2, S, S))
    repeated = repeated[0, :, :, :6]  # the plate's left edge repeated
    assert (repeated - repeated[..., :1]).abs().max() < 1e-6
    assert entered.std(1).mean() < 0.5 * clip[0, 11, :, :, 10].std(1).mean()  # no streaks
    assert (entered - truth).pow(2).mean() < (repeated - truth).pow(2).mean()


def test_wall_share_draws_which_futures_bounce_the_thing():
    clip = panning_clip()

    def left_edge(frame: torch.Tensor) -> int:
        """The square's leftmost column in ``frame`` (S where it is gone)."""
        columns = (frame.mean(0) > 0.55)[12:20].any(0).nonzero().flatten()
        return int(columns.min()) if len(columns) else S

    with torch.no_grad():
        gone = model(temperature=0.0, wall_share=0.0).eval().sample_futures(clip[:, :4], 8)
        generator = torch.Generator().manual_seed(0)
        mixed = model(temperature=0.0, wall_share=0.5).eval()
        futures = mixed.sample_futures(clip[:, :4], 8, 16, generator)[0]
    assert left_edge(gone[0, 0, -1]) >= 28  # flew on past the right border (x = 30)
    lefts = [left_edge(future[-1]) for future in futures]
    assert all(x in (18, 19) or x >= 28 for x in lefts), lefts  # bounced (x = 18) or gone
    assert 0 < sum(x < 28 for x in lefts) < 16, lefts
    with pytest.raises(ValueError, match="wall_share"):
        model(wall_share=1.5)


def test_the_posterior_tracks_the_thing_and_leaves_the_camera_as_seen():
    vae = model().eval()
    clip = panning_clip()
    with torch.no_grad():
        mu, _ = vae.posterior(clip)
        recon = vae.reconstruct(clip)
    assert mu.shape == (1, 5, 8, 2) and mu[0, 0].abs().max() < 1e-5  # the camera goes on
    assert torch.equal(recon[:, :4], clip[:, :4])
    error = (recon[:, 4:] - clip[:, 4:]).pow(2).mean()
    assert error < 0.2 * (clip[:, 3:4] - clip[:, 4:]).pow(2).mean()


def test_samples_spread_with_the_temperature():
    data = TexturedDataModule(image_size=S, frames=12, num_train=4, num_val=4, num_workers=0)
    data.setup("validate")
    context = next(iter(data.val_dataloader()))["video"][:2, :4].float() / 255
    spreads = []
    for temperature in (0.0, 1.0):
        vae = model(temperature=temperature).eval()
        with torch.no_grad():
            samples = vae.sample_futures(context, 10, 3, torch.Generator().manual_seed(0))
        assert samples.shape == (2, 3, 10, 3, S, S)
        spreads.append(samples.std(1).mean())
    assert spreads[0] == 0 and spreads[1] > 0.01, spreads


@pytest.mark.slow
def test_the_packaged_config_fits_and_tests(in_tmp):
    cli = tiny_run("fit", "vae_layers_textured.yaml", "--trainer.logger=false")
    assert cli.trainer.state.finished and isinstance(cli.model, LayerMotionVAE)
    assert cli.model.z_shape == (6, 16, 2) and cli.model.predict_samples == 10
    assert isinstance(cli.datamodule, TexturedDataModule) and cli.model.image_size == 32
    last = in_tmp / "runs" / "vae_layers_textured" / "checkpoints" / "last.ckpt"
    assert LayerMotionVAE.load_from_checkpoint(last).things == 6
    tiny_run("test", "vae_layers_textured.yaml", "--trainer.logger=false", f"--ckpt_path={last}")
    metrics = json.loads((in_tmp / "runs" / "vae_layers_textured" / "metrics.json").read_text())
    assert "best_of_k" in json.dumps(metrics)
