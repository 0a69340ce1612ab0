"""ThingMotionVAE: the posterior reconstructs a shapes clip, an untrained prior continues the
context's motion and bounces off the borders, a fitted prior learns motion they do not
explain, samples keep things whole, bad options are explained, the packaged config fits and
tests."""

from __future__ import annotations

import json

import pytest
import torch
from tiny import tiny_run

from vidgen import ShapesDataModule, ThingMotionVAE
from vidgen.models.vae_base import VAEModule
from vidgen.wholeness import whole_frames

S = 32


def model(**kw) -> ThingMotionVAE:
    torch.manual_seed(0)
    args = {"image_size": S, "backbone_layer": "pool1", "frames": 12, "things": 3}
    return ThingMotionVAE(**{**args, **kw})


def square_clip(xs: list[int], ys: list[int] | None = None, size: int = S) -> torch.Tensor:
    """``(1, len(xs), 3, size, size)``: a red 6 px square over black at these corners."""
    ys = ys or [13] * len(xs)
    clip = torch.zeros(1, len(xs), 3, size, size)
    for t, (x, y) in enumerate(zip(xs, ys, strict=True)):
        clip[0, t, 0, y : y + 6, x : x + 6] = 1.0
    return clip


def shapes_clips(n: int = 8) -> torch.Tensor:
    data = ShapesDataModule(image_size=S, frames=12, num_train=n, num_val=n, num_workers=0)
    data.setup("validate")
    return next(iter(data.val_dataloader()))["video"][:n].float() / 255


def test_the_posterior_mean_reconstructs_a_shapes_clip():
    vae = model().eval()
    video = shapes_clips()
    with torch.no_grad():
        recon = vae.reconstruct(video)
        mu, _ = vae.posterior(video)
    assert mu.shape == (8, 3, 8, 2) and torch.equal(recon[:, :4], video[:, :4])
    assert not mu[:, 2].any()  # 2 shapes a clip: the third slot is empty
    error = (recon[:, 4:] - video[:, 4:]).pow(2).mean()
    copy_last = (video[:, 3:4] - video[:, 4:]).pow(2).mean()
    assert error < 0.2 * copy_last, (error, copy_last)
    # a clip the tracker follows exactly: the reconstruction is the clip, bounce included
    bouncing = square_clip([14, 16, 18, 20, 22, 24, 26, 24, 22, 20, 18, 16])
    with torch.no_grad():
        assert torch.equal(vae.reconstruct(bouncing), bouncing)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(vae.reconstruct(bouncing), bouncing)  # offsets in fp32


def test_the_scene_is_built_once_per_context_and_again_when_it_changes():
    vae = model().eval()
    context = shapes_clips(2)[:, :4]
    built = []
    vae.build_scene = lambda c: built.append(c) or ThingMotionVAE.build_scene(vae, c)
    scene = vae.scene(context)
    assert vae.scene(context[:, :4]) is scene and len(built) == 1  # a view of the same frames
    clip = torch.cat([context, context], 1)
    with torch.no_grad():
        mu, logvar = vae.posterior(clip)  # another tensor: built again ...
        vae.kl(mu, logvar, vae.context(clip))  # ... then kept for the KL and the decoder
        vae.decode(mu, clip.shape[1], vae.context(clip))
    assert len(built) == 2
    copy = context.clone()
    assert vae.scene(copy) is not scene and len(built) == 3
    copy[:, -1] = copy[:, -1].flip(-1)  # changed in place: built again, as a fresh build is
    changed = vae.scene(copy)
    assert len(built) == 4
    fresh = ThingMotionVAE.build_scene(vae, copy.clone())
    assert changed.field is None and fresh.field is None  # things have no layer fields
    pairs = zip(changed, fresh, strict=True)
    assert all(torch.equal(a, b) for a, b in pairs if a is not None)
    assert not torch.equal(changed.masks, scene.masks)
    with torch.inference_mode():  # no version to tell a change by: built each time
        frozen = copy.clone()
        assert vae.scene(frozen) is not vae.scene(frozen) and len(built) == 6
        samples = vae.sample_futures(frozen, 4, 3, torch.Generator().manual_seed(0))
        assert len(built) == 7 and len(built[-1]) == 2  # once per clip, not once per sample
        repeated = VAEModule.sample_repeated(vae, frozen, 3, 8, torch.Generator().manual_seed(0))
    assert len(built) == 9  # the repeated context's, for the prior and the decoder
    assert samples.shape == (2, 3, 4, 3, S, S)
    assert torch.equal(samples, repeated[:, 4:].unflatten(0, (2, 3)))
    assert vae.last_scene.pin is None


def test_an_untrained_prior_continues_the_context_velocity():
    vae = model().eval()
    clip = square_clip([2 + 2 * t for t in range(12)], [4 + t for t in range(12)])
    context = clip[:, :4]
    with torch.no_grad():
        mean = vae.correlate(torch.zeros(1, *vae.z_shape), context)
        assert torch.equal(vae.decode(mean, 12, context), clip)  # 2 px right, 1 down a step
    assert not mean.any()
    size = 64  # room for the samples' spread
    vae = model(image_size=size).eval()
    clip = square_clip([20 + 2 * t for t in range(8)], [20 + t for t in range(8)], size)
    with torch.no_grad():
        futures = vae.sample_futures(clip[:, :4], 4, samples=64, generator=torch.Generator())
    red = futures[0, :, :, 0] > 0  # (samples, steps, H, W)
    rows, columns = red.any(-1).float(), red.any(-2).float()
    index = torch.arange(size)
    centre = torch.stack([(m * index).sum(-1) / m.sum(-1) for m in (rows, columns)], -1)
    truth = torch.tensor([[20 + t + 2.5, 20 + 2 * t + 2.5] for t in range(4, 8)])
    assert (centre.mean(0) - truth).abs().max() < 2.0  # spread around the continued motion
    assert (centre.std(0)[-1] > 1.0).all()  # the samples differ
    assert (red.sum((-1, -2)) == 36).all()  # each one whole


def test_temperature_scales_the_draws_around_the_prior_mean():
    clip, vae = shapes_clips(2)[:, :4], model()
    eps = torch.randn(2, *vae.z_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        vae.prior_net[-1].bias.data[2:] = 1.0  # a wide prior: draws differ from its mean
        changes = {}
        for t in (0.0, 0.3, 1.0):
            vae.temperature = t
            changes[t] = vae.correlate(eps, clip)
    first = {t: c[:, :, 0] for t, c in changes.items()}  # later steps' states differ
    present = first[1.0].abs().sum(-1) > 0
    assert present.any() and torch.equal(changes[0.0], vae.correlate(0 * eps, clip))
    torch.testing.assert_close(first[0.3] - first[0.0], 0.3 * (first[1.0] - first[0.0]))
    assert not torch.equal(changes[0.3], changes[1.0])


def mean_path(vae: ThingMotionVAE, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The prior's mean future of ``clip``'s context ``(1, 12, 3, S, S)`` and the left edge of
    the red square in each of its generated frames."""
    context = clip[:, :4]
    with torch.no_grad():
        mean = vae.correlate(torch.zeros(1, *vae.z_shape), context)
        future = vae.decode(mean, 12, context)
    red = (future[0, 4:, 0] > 0).any(-2)  # (steps, W): the columns it covers
    return future, red.float().argmax(-1)


def test_an_untrained_prior_bounces_off_the_borders():
    bouncing = square_clip([12, 14, 16, 18, 20, 22, 24, 26, 24, 22, 20, 18])  # off the right
    future, _ = mean_path(model().eval(), bouncing)
    assert torch.equal(future, bouncing)


def test_a_fitted_prior_learns_motion_the_borders_do_not_explain():
    xs = [0, 5, 9, 12, 14, 15, 15, 15, 15, 15, 15, 15]  # slows down by 1 px a step, stops
    clip = square_clip(xs)
    vae = model()
    _, untrained = mean_path(vae, clip)
    assert untrained[:3].tolist() == [16, 20, 24]  # goes on at the context's speed
    mu, logvar = vae.posterior(clip)
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-2)
    before = vae.kl(mu, logvar, clip[:, :4]).item()
    for _ in range(150):
        optimizer.zero_grad()
        kl = vae.kl(mu, logvar, clip[:, :4])
        kl.backward()
        optimizer.step()
    assert kl.item() < 0.5 * before
    _, fitted = mean_path(vae, clip)
    assert (fitted - torch.tensor(xs[4:])).abs().max() <= 1, fitted  # slows down and stops


def test_samples_keep_each_thing_whole():
    size = 48
    vae = model(image_size=size, frames=6).eval()
    clip = torch.zeros(1, 4, 3, size, size)
    for t in range(4):  # a red square going right, a green one going up, far apart
        clip[0, t, 0, 10:17, 10 + t : 17 + t] = 1.0
        clip[0, t, 1, 30 - t : 36 - t, 28:34] = 0.8
    with torch.no_grad():
        futures = vae.sample_futures(clip, 2, samples=32, generator=torch.Generator())
    frames = futures[0]  # (32 samples, 2 steps, 3, size, size)
    assert not torch.equal(frames[0], frames[1])
    whole = whole_frames(frames, clip[0, -1:].expand(32, -1, -1, -1).reshape(32, 3, size, size))
    assert whole.all()
    assert ((frames[:, :, 0] == 1).sum((-1, -2)) == 49).all()  # every red pixel, in every frame
    assert ((frames[:, :, 1] == 0.8).sum((-1, -2)) == 36).all()


def test_bad_options_and_input_are_explained():
    with pytest.raises(ValueError, match="beta"):
        model(beta=0.0)
    with pytest.raises(ValueError, match="condition_frames"):
        model(condition_frames=1)  # no velocity to read off one frame
    with pytest.raises(ValueError, match="condition_frames"):
        model(condition_frames=12)  # nothing left to generate
    with pytest.raises(ValueError, match="z_dim"):
        model(z_dim=8)
    with pytest.raises(ValueError, match="kl_warmup_steps"):
        model(kl_warmup_steps=10)
    with pytest.raises(ValueError, match="temperature"):
        model(temperature=-0.5)
    vae = model()
    z = torch.zeros(2, *vae.z_shape)
    with pytest.raises(ValueError, match="context"):
        vae.decode(z, 12, torch.rand(2, 3, 3, S, S))  # 3 context frames, 4 needed
    with pytest.raises(ValueError, match="context"):
        vae.sample(2, 12)
    with pytest.raises(ValueError, match="exceed"):
        vae.decode(z, 4, torch.rand(2, 4, 3, S, S))


@pytest.mark.slow
def test_the_packaged_config_fits_and_tests(in_tmp):
    cli = tiny_run("fit", "vae_things_demo.yaml", "--trainer.logger=false")
    assert cli.trainer.state.finished and isinstance(cli.model, ThingMotionVAE)
    assert cli.model.z_shape == (4, 16, 2) and cli.model.predict_samples == 10
    assert cli.datamodule.eval_frames == 20 and cli.model.image_size == 32
    last = in_tmp / "runs" / "vae_things_demo" / "checkpoints" / "last.ckpt"
    tiny_run("test", "vae_things_demo.yaml", "--trainer.logger=false", f"--ckpt_path={last}")
    metrics = json.loads((in_tmp / "runs" / "vae_things_demo" / "metrics.json").read_text())
    text = json.dumps(metrics)
    assert "futures" in text and "best_of_k" in text
