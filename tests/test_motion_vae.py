"""MotionVAE: the motion latent starts as the motion seen, follows a bounce, samples move a
thing's cells together, the packaged config builds it."""

from __future__ import annotations

from functools import partial

import av
import pytest
import torch
from tiny import tiny_run

from vidgen import MotionVAE, MultiScaleHead
from vidgen.models import ConvLSTMCore, LSTMCore
from vidgen.models.vae_base import VAEModule

S = 16  # frame side of the tiny model: pool2 gives a 4 x 4 latent grid


def tiny(**kw) -> MotionVAE:
    torch.manual_seed(0)
    args = {
        "image_size": S,
        "backbone_layer": "pool2",
        "encoder": partial(ConvLSTMCore, hidden_channels=4, num_layers=1),
        "decoder": partial(ConvLSTMCore, hidden_channels=4, num_layers=1),
        "head": partial(MultiScaleHead, kernel_sizes=(5, 3), channels=2),
        "z_dim": 8,  # a velocity and a change for each of 4 generated steps
        "frames": 5,
        "max_flow": 4.0,
        "change_unit": 1.0,
    }
    return MotionVAE(**{**args, **kw})


def panning(offsets: list[int]) -> torch.Tensor:
    """``(1, len(offsets), 3, S, S)``: a smooth texture seen through a window at these x offsets."""
    torch.manual_seed(0)
    texture = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 48, 48), 3, 1, 1)
    return torch.stack([texture[..., 16:32, x : x + S] for x in offsets], 1)


def test_the_latent_starts_as_the_motion_seen():
    model = tiny().eval()
    assert model.z_shape == (8, 4, 4)
    video = panning([16, 15, 14, 13, 12])  # 1 px a step to the right
    still = video[:, :1].expand_as(video)
    with torch.no_grad():
        mu, logvar = model.posterior(torch.cat([video, still]))
        maps = model.motion_maps(video, (4, 4))
        recon = model.reconstruct(video)
        path = model.interpolate(video, still, steps=3)
    assert mu.shape == logvar.shape == (2, 8, 4, 4)
    assert torch.allclose(maps[:, 0], torch.zeros(1, 2, 4, 4))  # the first frame: nothing seen
    assert maps[0, 1:, 0, 1:3, 1:3].mean() == pytest.approx(1 / 4)  # 1 px of max_flow 4
    assert (mu[0, 0] - mu[1, 0])[1:3, 1:3].mean() == pytest.approx(1.0, abs=0.1)
    assert torch.equal(recon[:, :1], video[:, :1]) and path.shape == (1, 3, 5, 3, S, S)
    # untrained, the reconstruction already moves the texture as it moved
    inner = (slice(None), slice(1, None), slice(None), slice(4, -4), slice(4, -4))
    moved = (recon - video)[inner].pow(2).mean()
    kept = (video[:, :1] - video)[inner].pow(2).mean()  # copying the context frame
    assert moved < 0.5 * kept, (moved, kept)


def test_each_steps_velocity_follows_a_bounce():
    model = tiny().eval()
    video = panning([16, 15, 14, 15, 16])  # the view pans for two steps, then back
    inner = (slice(None), slice(1, None), slice(None), slice(4, -4), slice(4, -4))
    with torch.no_grad():
        mu, _ = model.posterior(video)
        velocity = model.step_velocities(mu, 4)[0, :, :, 1:3, 1:3].mean((-1, -2))
        error = (model.reconstruct(video) - video)[inner].pow(2).mean()
    # untrained, z is the motion seen: x velocity 1, 1, -1, -1 px; one change of -2 px at step
    # 3 (in units of change_unit, 1 px); the reconstruction follows the bounce exactly
    assert torch.allclose(velocity, torch.tensor([[1.0, 0], [1, 0], [-1, 0], [-1, 0]]))
    changes = mu[0, 2:, 1:3, 1:3].mean((-1, -2))
    assert torch.allclose(changes, torch.tensor([0.0, 0, -2, 0, 0, 0]))
    assert error < 1e-10
    with torch.no_grad():
        assert tiny(change_unit=0.5).posterior(video)[0][0, 4, 1:3, 1:3].mean() == pytest.approx(-4)
    # no change: the velocity map moves along itself (a moving blob takes its velocity along)
    z = torch.zeros(1, 8, 4, 4)
    z[0, 0, 1, 1] = 4.0  # one cell moving 4 px = one cell a step right
    carried = model.step_velocities(z, 3)[0, :, 0]
    assert carried[0, 1, 1] == 4 and carried[1, 1, 1] == 0
    assert carried[1, 1, 2] == pytest.approx(4.0, rel=0.02)  # over a still cell: it is in front


def test_prior_samples_move_a_things_cells_together():
    model = tiny().eval()
    frame = torch.zeros(1, 1, 3, S, S)
    frame[..., 0, 0:8, 0:8] = 1.0  # a red square over the top-left 2 x 2 cells
    context = frame.expand(64, -1, -1, -1, -1)
    captured = []
    decode = model.decode
    model.decode = lambda z, *args: captured.append(z) or decode(z, *args)
    with torch.no_grad():
        one = model.sample(64, 5, torch.Generator().manual_seed(0), context=context)
        two = model.sample(64, 5, torch.Generator().manual_seed(0), context=context)
    assert torch.equal(one, two) and one.shape == (64, 5, 3, S, S)
    assert torch.equal(one[:, :1], context)
    z = captured[0][:, 0].flatten(1)  # the first step's x velocity, (64 samples, 16 cells)
    corr = torch.corrcoef(z.T)
    assert corr[0, 5] > 0.7  # two cells of the square: drawn together
    assert corr[0, 10].abs() < 0.4  # the square and a background cell: not
    video = torch.rand(2, 5, 3, S, S)
    mu, logvar = model.posterior(video)
    terms = model.objective(model.reconstruct(video), video, mu, logvar, 1.0)
    assert torch.isfinite(terms["loss"]) and terms["kl"] > 0
    with pytest.raises(ValueError, match="context"):
        model.sample(2, 5)


def test_bad_options_and_input_are_explained():
    with pytest.raises(ValueError, match="condition_frames"):
        tiny(condition_frames=5)  # = frames: nothing left to generate
    with pytest.raises(ValueError, match="condition_frames"):
        tiny(condition_frames=0)  # nothing to move
    with pytest.raises(ValueError, match="z_dim"):
        tiny(z_dim=7)  # 2 x 4 generated steps
    with pytest.raises(ValueError, match="change_unit"):
        tiny(change_unit=0.0)
    with pytest.raises(ValueError, match="feature map"):
        tiny(encoder=partial(LSTMCore, hidden_size=8))
    model = tiny()
    with pytest.raises(ValueError, match="exceed"):
        model.decode(torch.zeros(2, 8, 4, 4), 1, torch.rand(2, 1, 3, S, S))
    with pytest.raises(ValueError, match="z"):
        model.decode(torch.zeros(2, 8), 5, torch.rand(2, 1, 3, S, S))


def test_predict_step_writes_several_samples_per_clip():
    model = tiny(predict_samples=3).eval()
    video = torch.rand(2, 5, 3, S, S)
    with torch.no_grad():
        out = model.predict_step({"video": video, "index": torch.arange(2)}, 0)
    assert out["pred"].shape == video.shape
    assert out["samples"].shape == (2, 3, 5, 3, S, S)
    assert torch.equal(out["samples"][:, :, 0], video[:, None, 0].expand(-1, 3, -1, -1, -1))


def test_sampling_reads_each_context_once_and_draws_the_same_futures(monkeypatch):
    model = tiny(condition_frames=2).eval()
    context = torch.rand(2, 2, 3, S, S)
    with torch.no_grad():
        repeated = VAEModule.sample_repeated(model, context, 3, 5, torch.Generator().manual_seed(0))
        matched = []
        monkeypatch.setattr(model, "motion_maps", counting(model.motion_maps, matched))
        samples = model.sample_futures(context, 3, 3, torch.Generator().manual_seed(0))
    assert samples.shape == (2, 3, 3, 3, S, S)
    assert matched == [2]  # once for the two clips, not for the six samples
    assert torch.equal(samples, repeated[:, 2:].unflatten(0, (2, 3)))


def counting(method, calls: list):
    """``method``, recording the batch size of each call in ``calls``."""

    def counted(frames, *args, **kwargs):
        calls.append(len(frames))
        return method(frames, *args, **kwargs)

    return counted


def test_vae_demo_config_builds_it(in_tmp):
    cli = tiny_run("fit", "vae_demo.yaml", "--trainer.fast_dev_run=1")
    assert cli.trainer.state.finished
    model = cli.model
    assert isinstance(model, MotionVAE) and isinstance(model.head, MultiScaleHead)
    assert model.image_size == cli.datamodule.image_size == 32
    assert model.condition_frames == 4 and model.z_shape == (16, 8, 8)
    assert cli.datamodule.eval_frames == 20 and model.predict_samples == 10  # 16-step futures


def test_vidgen_predict_returns_reconstructions_and_samples(in_tmp):
    cli = tiny_run(
        "predict", "vae_demo.yaml", "--trainer.logger=false", "--model.init_args.predict_samples=2"
    )
    out = cli.trainer.predict_loop.predictions[0]
    assert len(cli.trainer.predict_loop.predictions) == 2  # the tiny overlay's batch limit
    assert out["pred"].shape == out["target"].shape == (2, 20, 3, 32, 32)
    samples = out["samples"]  # 2 per clip: its 4 context frames, then a 16-step future
    assert samples.shape == (2, 2, 20, 3, 32, 32)
    assert torch.equal(samples[:, 0, :4], out["target"][:, :4])
    assert torch.equal(samples[:, 1, :4], out["target"][:, :4])
    assert not torch.equal(samples[:, 0, 4:], samples[:, 1, 4:])
    folder = in_tmp / "runs" / "vae_demo" / "predictions"  # the config's PredictionWriter
    for index in out["index"].tolist():
        for key in ("target", "pred", "samples0", "samples1"):
            with av.open(str(folder / f"{index:06d}_{key}.mp4")) as video:
                assert sum(1 for _ in video.decode(video=0)) == 20
        assert not (folder / f"{index:06d}_samples2.mp4").exists()
