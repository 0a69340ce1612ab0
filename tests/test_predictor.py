"""FramePredictor, the paper's predictor: rollouts, teacher forcing, training, defaults."""

from functools import partial

import pytest
import torch
import yaml
from tiny import quiet_trainer, tiny_predictor

from vidgen import FramePredictor, ShapesDataModule
from vidgen.cli import CONFIG_DIR
from vidgen.models import ConvLSTMCore, UpsampleDeconvHead


def tiny(**kw):
    return tiny_predictor(hidden_size=32, context_frames=3, **kw)


def test_rollout_beyond_training_length():
    model = tiny().eval()
    context = torch.rand(2, 3, 3, 16, 16)
    with torch.no_grad():
        pred = model(context, horizon=20)
    assert pred.shape == (2, 20, 3, 16, 16)
    assert pred.min() >= 0 and pred.max() <= 1


def test_rollout_first_step_equals_teacher_forcing():
    model = tiny().eval()
    video = torch.rand(2, 5, 3, 16, 16)
    with torch.no_grad():
        forced = model.teacher_forced(video)
        rolled = model(video[:, :3], horizon=1)
    assert forced.shape == (2, 4, 3, 16, 16)
    assert torch.allclose(rolled[:, 0], forced[:, 2], atol=1e-6)


def test_bad_input_is_explained():
    model = tiny()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.rand(2, 3, 3, 32, 32), horizon=2)
    with pytest.raises(ValueError, match="horizon"):
        model(torch.rand(2, 3, 3, 16, 16), horizon=0)


def test_training_reduces_loss_on_one_batch():
    model = tiny(optimizer=partial(torch.optim.Adam, lr=3e-3))
    dm = ShapesDataModule(num_val=4, image_size=16, frames=5, batch_size=4, num_workers=0)
    video = next(iter(dm.val_dataloader()))["video"]
    batch = model.on_after_batch_transfer({"video": video.clone()}, 0)
    assert batch["video"].dtype == torch.float32 and batch["video"].max() <= 1
    opt = model.configure_optimizers()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model.training_step({"video": batch["video"]}, 0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_trainer_fit_and_test_log_model_and_baselines(tmp_path):
    dm = ShapesDataModule(
        num_train=8,
        num_val=4,
        num_test=4,
        image_size=16,
        frames=4,
        eval_frames=7,
        batch_size=4,
        num_workers=0,
    )
    model = FramePredictor(
        image_size=16,
        backbone_layer="pool2",
        core=partial(ConvLSTMCore, hidden_channels=4, num_layers=1),
        head=partial(UpsampleDeconvHead, channels=4, kernel_size=9),
        context_frames=2,
    )
    trainer = quiet_trainer(tmp_path)
    trainer.fit(model, dm)
    assert model.backbone.training is False
    results = trainer.test(model, dm, verbose=False)[0]
    for key in (
        "test/model/mse",
        "test/copy_last/mse",
        "test/mean_frame/ssim",
        "test/model/collapse",
    ):
        assert key in results
    assert model.results["test"]["model/psnr"].shape == (5,)  # 7 frames - 2 context


def test_defaults_are_the_paper():
    model = FramePredictor()
    assert model.image_size == 224 and model.feature_shape == (512, 7, 7)  # pool5: 25088
    assert model.head.deconv.kernel_size == (190, 190)
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.01


@pytest.mark.parametrize("config", ["demo_paper.yaml", "predictor_paper.yaml"])
def test_paper_configs_build_the_paper_predictor(config):
    model = yaml.safe_load((CONFIG_DIR / config).read_text())["model"]
    assert model["class_path"] == "vidgen.FramePredictor"
    assert model["init_args"]["core"]["class_path"] == "vidgen.models.LSTMCore"
    assert model["init_args"]["head"]["class_path"] == "vidgen.models.UpsampleDeconvHead"
