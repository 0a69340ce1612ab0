"""Sampled futures: K futures of a context for any horizon, going on from their own frames; a
prior that goes on as the context moved; best and mean of K, collapse and Fréchet distance;
``vidgen test`` reports them."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from test_motion_vae import S, panning, tiny
from tiny import tiny_run, tiny_vae

from vidgen.evaluation import frame_metrics
from vidgen.sampled_futures import FutureMetrics, best_and_mean, format_futures


def recorded_decodes(model) -> list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Wrap ``model.decode``: each call's frame count, context, output and z, in order."""
    calls, decode = [], model.decode

    def record(z, frames=None, context=None, *rest):
        out = decode(z, frames, context, *rest)
        calls.append((frames, context, out, z))
        return out

    model.decode = record
    return calls


def test_futures_of_any_horizon_go_on_from_their_own_last_frames():
    model = tiny(condition_frames=2).eval()  # 5-frame clips: 3 steps from one prior draw
    video = panning([16, 15, 14, 13, 12])
    calls = recorded_decodes(model)
    with torch.no_grad():
        for horizon, frames in ((2, [4]), (3, [5]), (7, [5, 5, 3])):
            calls.clear()
            futures = model.sample_futures(video[:, :2], horizon, samples=3)
            assert futures.shape == (1, 3, horizon, 3, S, S)
            assert [call[0] for call in calls] == frames
            assert torch.equal(calls[0][1], video[:, :2].expand(3, -1, -1, -1, -1))
            for before, after in itertools.pairwise(calls):
                assert torch.equal(after[1], before[2][:, -2:])  # its own last 2 frames
            generated = torch.cat([call[2][:, 2:] for call in calls], 1)
            assert torch.equal(futures[0], generated)
        assert futures.min() >= 0 and futures.max() <= 1
        with pytest.raises(ValueError, match="horizon"):
            model.sample_futures(video[:, :2], 0)
        with pytest.raises(ValueError, match="context"):
            model.sample_futures(video[:, :1], 3)  # fewer frames than condition_frames
        with pytest.raises(ValueError, match="unconditional"):
            tiny_vae().sample_futures(video[..., :16, :16], 3)


def test_samples_differ_but_share_the_context():
    model = tiny(condition_frames=2, predict_samples=3).eval()
    video = torch.cat([panning(list(range(16, 7, -1))), panning(list(range(8, 17)))])
    with torch.no_grad():
        out = model.predict_step({"video": video, "index": torch.arange(2)}, 0)
        seeded = [
            model.sample_futures(video[:, :2], 7, 3, torch.Generator().manual_seed(1))
            for _ in range(2)
        ]
    samples = out["samples"]  # 9 frames: longer than the 5-frame clips
    assert samples.shape == (2, 3, 9, 3, S, S) and out["pred"].shape == video.shape
    assert torch.equal(samples[:, :, :2], video[:, None, :2].expand(-1, 3, -1, -1, -1, -1))
    for k in range(1, 3):
        assert (samples[:, k, 2:] - samples[:, 0, 2:]).abs().amax((1, 2, 3, 4)).min() > 0.01
    assert torch.equal(*seeded)


def test_the_prior_goes_on_as_the_context_moved():
    model = tiny(condition_frames=2).eval()
    video = panning([16, 15, 14, 13, 12])  # 1 px a step to the right
    context = video[:, :2]
    with torch.no_grad():
        mean = model.prior_mean(context)
        mu, logvar = model.posterior(video)
        calls = recorded_decodes(model)
        many = context.expand(512, -1, -1, -1, -1)
        model.sample(512, 3, torch.Generator().manual_seed(0), context=many)
    inner = (slice(None), slice(0, 2), slice(1, 3), slice(1, 3))
    assert torch.allclose(mean[inner], mu[inner], atol=1e-5)  # the motion the encoder sees
    drawn = calls[0][3].mean(0, keepdim=True)  # prior samples spread around it
    assert torch.allclose(drawn[inner], mean[inner], atol=0.2)
    assert mean[inner][:, 0].mean() == pytest.approx(1.0) and mean[inner][:, 1].abs().max() == 0
    assert mean[:, 2:].abs().max() == 0  # no change of velocity after it
    assert model.prior_mean(video[:, 1:2]).abs().max() == 0  # one frame: no motion seen
    # the KL is taken against it: the clip's own motion costs less than standing still
    still = video[:, 1:2].expand_as(context)
    assert model.kl(mu, logvar, context) < model.kl(mu, logvar, still)


def test_best_of_k_is_each_clips_best_whole_future():
    torch.manual_seed(0)
    target = torch.rand(2, 4, 3, S, S)
    early = (target + 0.02).clamp(0, 1)
    early[:, 2:] = 1 - target[:, 2:]  # nearly right for 2 steps, then far off
    steady = (target + 0.05).clamp(0, 1)  # a little off at every step
    samples = torch.stack([early, steady, torch.rand_like(target)], 1)
    scores = best_and_mean(samples, target)
    each = [frame_metrics(samples[:, k], target) for k in range(3)]
    # the steady sample is best over the horizon; it is taken whole, though the early one is
    # better at steps 1 and 2
    assert torch.equal(scores["best_of_k/mse"], each[1]["mse"])
    assert (each[0]["mse"][:, :2] < each[1]["mse"][:, :2]).all()
    assert (each[0]["psnr"][:, :2] > each[1]["psnr"][:, :2]).all()
    assert torch.equal(scores["best_of_k/psnr"], each[1]["psnr"])
    for name in ("mse", "psnr", "ssim"):
        stacked = torch.stack([e[name] for e in each], 1)
        assert torch.allclose(scores[f"mean_of_k/{name}"], stacked.mean(1))
    best, mean = scores["best_of_k/mse"].mean(1), scores["mean_of_k/mse"].mean(1)
    assert (best <= mean).all() and (best < mean).any()


def clip_means(videos: torch.Tensor) -> torch.Tensor:
    """A cheap stand-in feature net: each frame's mean colour, per clip ``(B, T * 3)``."""
    return videos.mean((-1, -2)).flatten(1)


def test_future_metrics_accumulate_collapse_and_distance():
    torch.manual_seed(0)
    video = torch.rand(6, 7, 3, S, S)
    context, target = video[:, :3], video[:, 3:]
    still = context[:, -1:].expand_as(target)
    samples = torch.stack([target, still, torch.rand_like(target)], 1)
    whole, halves = (FutureMetrics(4, ("frechet", clip_means)) for _ in range(2))
    whole.update(samples, target, context)
    for part in (slice(0, 2), slice(2, 6)):
        halves.update(samples[part], target[part], context[part])
    results, split = whole.compute(), halves.compute()
    for key, value in results.items():
        assert torch.allclose(value, split[key], rtol=1e-5, atol=1e-6), key
    assert torch.allclose(results["samples/collapse"][:2], torch.tensor([1.0, 0.0]))
    assert results["samples/frechet"][0] == pytest.approx(0.0, abs=1e-6)  # the truth itself
    assert results["samples/frechet"][1] == pytest.approx(float(results["copy_last/frechet"]))
    assert results["best_of_k/mse"].abs().max() == 0  # the truth is among the samples
    assert torch.equal(results["copy_last/mse"], frame_metrics(still, target)["mse"].mean(0))
    text = format_futures({f"futures/{k}": v for k, v in results.items()}, trained_steps=2)
    assert "beyond the training length" in text and "frechet distance" in text
    with pytest.raises(ValueError, match="horizon"):
        whole.update(samples[:, :, :3], target[:, :3], context)


@pytest.mark.slow
def test_vidgen_test_reports_sampled_futures(in_tmp, capsys):
    tiny_run("fit", "vae_demo.yaml", "--trainer.logger=false")
    last = in_tmp / "runs" / "vae_demo" / "checkpoints" / "last.ckpt"
    cli = tiny_run("test", "vae_demo.yaml", "--trainer.logger=false", f"--ckpt_path={last}")
    metrics = json.loads((in_tmp / "runs" / "vae_demo" / "metrics.json").read_text())
    for source in ("best_of_k", "mean_of_k", "copy_last", "mean_frame"):
        for name in ("mse", "psnr", "ssim"):
            assert len(metrics[f"futures/{source}/{name}"]) == 16  # 20-frame clips, 4 context
    assert len(metrics["futures/samples/collapse"]) == len(metrics["futures/samples/frechet"])
    assert len(metrics["futures/samples/collapse"]) == cli.model.predict_samples == 10
    assert all(d >= 0 for d in metrics["futures/samples/frechet"])
    assert metrics["futures/copy_last/frechet"] > 0
    best, mean = metrics["futures/best_of_k/mse"], metrics["futures/mean_of_k/mse"]
    assert sum(best) <= sum(mean)
    logged = cli.trainer.callback_metrics
    assert logged["test/futures/best_of_k/mse"] == pytest.approx(sum(best) / 16, rel=1e-5)
    assert "test/model/mse" in logged  # the reconstruction's scores stay
    printed = capsys.readouterr().out
    assert "Sampled futures" in printed and "beyond the training length" in printed
