"""VideoVAE, the paper's VAE, and the heads: shapes, sampling, the objective, evaluation,
configs (tiny, CPU)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
import yaml
from tiny import quiet_trainer, tiny_run
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl
from ucf101_corpus import fit_on_corpus

from vidgen import MultiScaleHead, ShapesDataModule, VideoVAE
from vidgen.cli import CONFIG_DIR
from vidgen.models import LSTMCore, UpsampleDeconvHead, kl_divergence

S = 16  # frame side of the tiny models


def tiny(**kw) -> VideoVAE:
    torch.manual_seed(0)
    args = {
        "image_size": S,
        "backbone_layer": "pool2",  # 128 x 4 x 4 at 16 px
        "encoder": partial(LSTMCore, hidden_size=32),
        "decoder": partial(LSTMCore, hidden_size=48),
        "head": partial(MultiScaleHead, kernel_sizes=(9, 5, 3), channels=4, base_sizes=(2, 4, 8)),
        "z_dim": 8,
        "frames": 5,
    }
    return VideoVAE(**{**args, **kw})


def clip(b: int = 2, s: int = 4) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(b, s, 3, S, S)


def test_shapes_and_range():
    model = tiny().eval()
    video = clip()
    with torch.no_grad():
        recon, mu, logvar = model(video)
        assert recon.shape == video.shape
        assert mu.shape == logvar.shape == (2, 8)
        assert model.reconstruct(video).shape == video.shape
        assert model.sample(3).shape == (3, 5, 3, S, S)  # default length: `frames`
        assert model.sample(2, frames=11).shape == (2, 11, 3, S, S)  # any length
        assert model.decode(torch.zeros(4, 8), 3).shape == (4, 3, 3, S, S)
        lerp = model.interpolate(video, video.flip(0), steps=4)
    assert lerp.shape == (2, 4, 4, 3, S, S)
    for v in (recon, lerp):
        assert v.min() >= 0 and v.max() <= 1


def test_eval_uses_mu_and_interpolation_ends_at_the_clips():
    model = tiny().eval()
    a, b = clip(), clip().flip(-1)
    with torch.no_grad():
        assert torch.equal(model(a)[0], model.reconstruct(a))  # eval: z = mu, deterministic
        lerp = model.interpolate(a, b, steps=3)
        assert torch.allclose(lerp[:, 0], model.reconstruct(a), atol=1e-6)
        assert torch.allclose(lerp[:, -1], model.reconstruct(b), atol=1e-6)
    model.train()
    with torch.no_grad():
        assert not torch.equal(model(a)[0], model(a)[0])  # training: z is sampled


def test_bad_input_is_explained():
    model = tiny()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.rand(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="z"):
        model.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="frames"):
        model.sample(1, frames=0)


def test_reparameterisation_statistics_and_gradients():
    mu = torch.tensor([1.0, -2.0, 0.0])
    logvar = torch.tensor([0.0, math.log(4.0), math.log(0.01)])
    gen = torch.Generator().manual_seed(0)
    z = VideoVAE.reparameterise(mu.expand(50_000, 3), logvar.expand(50_000, 3), gen)
    assert torch.allclose(z.mean(0), mu, atol=0.03)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 2.0, 0.1]), rtol=0.02)
    mu_, logvar_ = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    VideoVAE.reparameterise(mu_, logvar_).sum().backward()
    assert torch.equal(mu_.grad, torch.ones(3)) and logvar_.grad.abs().sum() > 0


def test_kl_matches_the_closed_form():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    expected = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    assert torch.allclose(kl_divergence(mu, logvar), expected, atol=1e-5)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)) == 0  # q = prior


def test_beta_zero_is_pure_mse():
    model = tiny(beta=0.0)
    video = clip()
    torch.manual_seed(3)
    loss = model.training_step({"video": video}, 0)
    torch.manual_seed(3)
    recon, mu, logvar = model(video)
    assert torch.equal(loss, F.mse_loss(recon, video))
    assert kl_divergence(mu, logvar) > 0  # reported, but not in the loss


def test_beta_adds_kl_with_linear_warmup():
    model = tiny(beta=0.5, kl_warmup_steps=100)
    assert [model.kl_weight(s) for s in (0, 25, 100, 1000)] == [0.0, 0.125, 0.5, 0.5]
    assert tiny(beta=0.5).kl_weight(0) == 0.5  # no warm-up
    video = clip()
    recon, mu, logvar = model(video)
    terms = model.objective(recon, video, mu, logvar, model.kl_weight(25))
    assert {"mse", "recon", "kl", "kl_weight", "loss"} <= terms.keys()
    expected = F.mse_loss(recon, video) + 0.125 * kl_divergence(mu, logvar)
    assert torch.allclose(terms["loss"], expected)
    assert torch.equal(terms["recon"], terms["mse"])


def test_sampling_is_deterministic_under_a_seed():
    model = tiny().eval()
    with torch.no_grad():
        torch.manual_seed(7)
        a = model.sample(2, 3)
        torch.manual_seed(7)
        b = model.sample(2, 3)
        c = model.sample(2, 3)
        g1 = model.sample(2, 3, generator=torch.Generator().manual_seed(5))
        g2 = model.sample(2, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(b, c) and torch.equal(g1, g2)


@pytest.mark.parametrize("size", [64, 112, 224])
def test_head_output_sizes(size):
    z = torch.rand(1, 36, 1, 1)
    paper = UpsampleDeconvHead((36, 1, 1), size, channels=1, base_size=size // 32,
                               kernel_size=round(size * 190 / 224))  # fmt: skip
    multi = MultiScaleHead((36, 1, 1), size, channels=1)  # defaults scale with the frame
    on_map = MultiScaleHead((6, size // 32, size // 32), size, channels=[1, 1, 2])
    with torch.no_grad():
        for head, x in ((paper, z), (multi, z), (on_map, torch.rand(1, 6, size // 32, size // 32))):
            out = head(x)
            assert out.shape == (1, 3, size, size)
            assert out.min() >= 0 and out.max() <= 1
    assert multi.split_sizes == [12, 12, 12]
    assert multi.branches[0].deconv.kernel_size[0] == round(size * 190 / 224)
    if size == 224:  # the paper's head: 16 x 7 x 7 -> 35 x 35 -> kernel 190 -> 224 x 224
        head = UpsampleDeconvHead((784, 1, 1), 224, channels=16, base_size=7, kernel_size=190)
        assert isinstance(head.project.proj, torch.nn.Identity)
        assert head.upsampled == 35 and head.deconv.weight.shape == (16, 3, 190, 190)
        kernels = [b.deconv.kernel_size[0] for b in multi.branches]
        assert kernels == [190, 29, 5]
        assert [b.project.shape[1] for b in multi.branches] == [7, 14, 28]


def test_multiscale_head_sums_branch_logits_and_rejects_bad_settings():
    head = MultiScaleHead((10, 1, 1), S, kernel_sizes=(9, 3), channels=2, base_sizes=4)
    z = torch.rand(2, 10, 1, 1)
    a, b = z.split([5, 5], dim=1)
    expected = torch.sigmoid(head.branches[0].logits(a) + head.branches[1].logits(b))
    assert torch.allclose(head(z), expected)
    with pytest.raises(ValueError, match="per branch"):
        MultiScaleHead((10, 1, 1), S, kernel_sizes=(9, 3), channels=[1, 2, 3])
    with pytest.raises(ValueError, match="split"):
        MultiScaleHead((2, 1, 1), S, kernel_sizes=(9, 5, 3))


def test_predict_step_contract():
    model = tiny().eval()
    video = (clip(3, 4) * 255).byte()
    batch = model.on_after_batch_transfer({"video": video, "index": torch.arange(3)}, 0)
    with torch.no_grad():
        out = model.predict_step(batch, 0)
    assert set(out) == {"target", "pred", "samples", "index"}
    for key in ("target", "pred", "samples"):
        assert out[key].shape == (3, 4, 3, S, S) and out[key].dtype == torch.float32
        assert out[key].min() >= 0 and out[key].max() <= 1
    assert torch.equal(out["index"], torch.arange(3))


def test_fit_and_test_log_terms_metrics_and_baselines(tmp_path):
    dm = ShapesDataModule(
        num_train=8, num_val=4, num_test=4, image_size=S, frames=4, batch_size=4, num_workers=0
    )
    model = tiny(beta=1e-3, kl_warmup_steps=2, optimizer=partial(torch.optim.Adam, lr=1e-3))
    trainer = quiet_trainer(tmp_path)
    trainer.fit(model, dm)
    logged = trainer.callback_metrics
    for key in ("train/loss", "train/recon", "train/kl", "val/loss", "val/recon", "val/kl"):
        assert key in logged
    results = trainer.test(model, dm, verbose=False)[0]
    for key in ("test/model/mse", "test/model/psnr", "test/model/ssim", "test/mean_frame/psnr"):
        assert key in results
    assert model.results["test"]["model/ssim"].shape == (4,)  # one value per frame


# CPU-sized overrides of the UCF101 configs: 64 px frames (the paper's 190 px kernel needs 224 px),
# no ImageNet download, narrow LSTMs, small batches.
UCF101_SMALL = ["--model.init_args.encoder.init_args.hidden_size=32", "--model.init_args.z_dim=8"]
HEAD_SMALL = {
    "vae_paper.yaml": [  # 48 = 3 x 4 x 4, reshaped as in the paper, upsampled to 35, kernel 30
        "--model.init_args.decoder.init_args.hidden_size=48",
        "--model.init_args.head.init_args.channels=3",
        "--model.init_args.head.init_args.base_size=4",
        "--model.init_args.head.init_args.kernel_size=30",
    ],
    "vae.yaml": [
        "--model.init_args.decoder.init_args.hidden_size=48",
        "--model.init_args.head.init_args.kernel_sizes=[54,8,5]",
        "--model.init_args.head.init_args.channels=2",
        "--model.init_args.head.init_args.base_sizes=[2,4,8]",
    ],
}


def test_vae_demo_paper_config_is_the_paper_vae_at_demo_size(in_tmp):
    cli = tiny_run("fit", "vae_demo_paper.yaml", "--trainer.fast_dev_run=1")
    assert cli.trainer.state.finished
    model = cli.model
    assert isinstance(model.head, UpsampleDeconvHead) and model.head.activation == "sigmoid"
    assert model.beta == 0 and model.condition_frames == 0 and isinstance(model.decoder, LSTMCore)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["vae_paper.yaml", "vae.yaml"])
def test_ucf101_vae_config_fast_dev_run_on_ucf101_layout(config, in_tmp):
    cli, _ = fit_on_corpus(in_tmp, config, *UCF101_SMALL, *HEAD_SMALL[config])
    assert cli.trainer.state.finished
    assert type(cli.datamodule).__name__ == "UCF101DataModule"
    assert isinstance(cli.model, VideoVAE) and cli.model.image_size == 64
    paper = config == "vae_paper.yaml"
    assert cli.model.beta == 0 if paper else cli.model.beta > 0
    assert isinstance(cli.model.head, UpsampleDeconvHead if paper else MultiScaleHead)


def test_vae_configs_are_what_they_say():
    paper = yaml.safe_load((CONFIG_DIR / "vae_paper.yaml").read_text())
    model, data = paper["model"]["init_args"], paper["data"]["init_args"]
    assert paper["model"]["class_path"] == "vidgen.VideoVAE" and model["beta"] == 0
    assert model["backbone_layer"] == "pool5"
    assert model["decoder"]["init_args"]["hidden_size"] == 784  # = 16 x 7 x 7, reshaped
    assert model["head"]["init_args"] == {"channels": 16, "base_size": 7, "kernel_size": 190}
    assert model["optimizer"]["init_args"]["lr"] == 0.01
    assert model["lr_scheduler"]["init_args"] == {"step_size": 1000, "gamma": 0.1}
    assert paper["data"]["class_path"] == "vidgen.UCF101DataModule"
    assert data["image_size"] == 224 and data["frames"] == 6
    improved = yaml.safe_load((CONFIG_DIR / "vae.yaml").read_text())
    model = improved["model"]["init_args"]
    assert model["head"]["class_path"] == "vidgen.models.MultiScaleHead"
    assert model["beta"] > 0 and model["kl_warmup_steps"] > 0
    assert improved["data"]["init_args"]["image_size"] == 224
