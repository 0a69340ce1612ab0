"""MotionPredictor: the classical motion at initialisation (copy-last where it does not explain
the context), observed motion and momentum, splatting, training, the fallbacks, the packaged
configs that build it."""

from functools import partial

import pytest
import torch
import yaml
from tiny import tiny_motion_predictor as tiny
from tiny import translating

from vidgen import MotionPredictor, ShapesDataModule
from vidgen.cli import CONFIG_DIR, build

VARIANTS = [{}, {"splat": True}, {"splat": True, "motion_layers": 3}]
"""The packaged configs' variants: warp only (shapes), splatted with motion layers (textured)."""


@pytest.mark.parametrize("options", VARIANTS, ids=str)
def test_untrained_is_the_classical_motion_and_copy_last_where_that_fails(options):
    model = tiny(**options).eval()
    assert model.head.deconv.out_channels == 2 and model.change_gate.item() == 0.0
    moving = translating(9, (1, 0))
    back_and_forth = moving[:, [0, 1, 2, 0, 4, 5, 6, 7, 8]]  # the last context frame returns
    video = torch.cat([moving, back_and_forth])
    with torch.no_grad():
        pred, classical = model(video[:, :4], horizon=5), model.classical(video[:, :4], 5)
        assert model.motion_explained(video[:, :4]).flatten().tolist() == [1.0, 0.0]
    assert torch.equal(pred, classical)
    assert not torch.allclose(pred[0], video[0, 3:4].expand_as(pred[0]), atol=1e-2)  # it moves
    assert torch.equal(pred[1], video[1, 3:4].expand_as(pred[1]))  # at any horizon


def test_motion_must_explain_each_of_the_last_two_context_frames():
    model = tiny().eval()
    moving = translating(6, (1, 0))
    stalled = moving[:, [0, 1, 1, 2, 3, 4]]  # still between frames 1 and 2, then moving
    with torch.no_grad():
        assert model.motion_explained(moving[:, :4]).item() == 1.0
        assert model.motion_explained(stalled[:, :4]).item() == 0.0
        assert model.motion_explained(stalled[:, :2]).item() == 1.0  # too short to check


@pytest.mark.parametrize("options", VARIANTS, ids=str)
def test_trains_away_from_copy_last(options):
    model = tiny(optimizer=partial(torch.optim.Adam, lr=3e-3), **options)
    dm = ShapesDataModule(num_val=4, image_size=16, frames=5, batch_size=4, num_workers=0)
    video = next(iter(dm.val_dataloader()))["video"].float() / 255
    opt = model.configure_optimizers()
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = model.training_step({"video": video}, 0)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]  # the zeroed gate still gets gradients
    assert model.change_gate.item() != 0.0


def test_observed_motion_seeds_the_momentum():
    model = tiny().eval()
    video = translating(7, (1, 0))
    with torch.no_grad():
        pred = model(video[:, :3], horizon=4)
    # constant velocity: 1 px a step to the right, away from the borders it cannot know (the
    # content entering on the left has no match: its subpixel fits are off by up to 0.25 px)
    for step in range(4):
        inner = (slice(None), slice(None), slice(2, -2), slice(4 + step + 1, -2))
        assert torch.allclose(pred[:, step][inner], video[:, 3 + step][inner], atol=1e-5), step


def square_over_texture(steps: int, size: int = 16, side: int = 7) -> torch.Tensor:
    """``(1, steps, 3, size, size)``: a textured square moving 1 px a frame to the right over a
    still textured background."""
    generator = torch.Generator().manual_seed(0)
    smooth = partial(torch.nn.functional.avg_pool2d, kernel_size=3, stride=1, padding=1)
    background = smooth(torch.rand(1, 3, size, size, generator=generator))
    square = 0.5 + 0.5 * smooth(torch.rand(1, 3, side, side, generator=generator))
    frames = background.expand(steps, -1, -1, -1).clone()
    for t in range(steps):
        frames[t, :, 4 : 4 + side, 1 + t : 1 + t + side] = square[0]
    return frames[None]


def test_splatted_pixels_keep_a_moving_thing_whole():
    video = square_over_texture(8)
    errors = {}
    for name, options in (("warp", {}), ("splat", {"splat": True, "motion_layers": 2})):
        model = tiny(**options).eval()
        with torch.no_grad():
            pred = model(video[:, :3], horizon=5)
        errors[name] = [  # on the square, where it truly is at each step
            (pred[0, t, :, 4:11, 4 + t : 11 + t] - video[0, 3 + t, :, 4:11, 4 + t : 11 + t])
            .abs()
            .mean()
            .item()
            for t in range(5)
        ]
    # about the same at the first step (splatted, the square lags a little and the sliver it
    # leaves uncovered shows the background around it); then a backward warp erodes the
    # square's front (it takes the still background's velocity), splatted it only lags
    assert errors["splat"][0] < 1.1 * errors["warp"][0]
    for warped, splatted in zip(errors["warp"][1:], errors["splat"][1:], strict=True):
        assert splatted < 0.8 * warped
    assert errors["splat"][-1] < 0.6 * errors["warp"][-1]


def test_rollouts_make_nothing_on_another_device():
    """The GPU path without a GPU: PyTorch's ``meta`` device (shapes only) refuses any tensor
    made on the CPU along the way (block matching, motion layers, splatting, warps)."""
    model = tiny(splat=True, motion_layers=3).to("meta")
    pred = model(torch.rand(2, 3, 3, 16, 16, device="meta"), horizon=4)
    assert pred.shape == (2, 4, 3, 16, 16) and pred.device.type == "meta"


def test_bad_options_and_input_are_explained():
    for options in ({"context_frames": 0}, {"max_flow": 0.0}, {"motion_layers": -1}):
        with pytest.raises(ValueError, match=next(iter(options))):
            tiny(**options)
    model = tiny()
    with pytest.raises(ValueError, match="image_size"):
        model(torch.rand(2, 3, 3, 32, 32), horizon=2)
    with pytest.raises(ValueError, match="horizon"):
        model(torch.rand(2, 3, 3, 16, 16), horizon=0)


def packaged_motion_predictors() -> list[str]:
    return sorted(
        path.name
        for path in CONFIG_DIR.glob("*.yaml")
        if yaml.safe_load(path.read_text())["model"]["class_path"] == "vidgen.MotionPredictor"
    )


def test_the_packaged_vidgen_predictor_configs_build_it():
    expected = {"demo.yaml", "demo_textured.yaml", "predictor.yaml", "predictor_folder.yaml"}
    assert set(packaged_motion_predictors()) == expected


@pytest.mark.parametrize("config", packaged_motion_predictors())
def test_packaged_motion_predictors_start_at_their_classical_motion(config):
    torch.manual_seed(0)
    overrides = ["--data.init_args.image_size=32", "--model.init_args.backbone_weights=null"]
    model = build(config, *overrides).model.eval()  # (predictor.yaml asks for ImageNet weights)
    assert isinstance(model, MotionPredictor)
    video = torch.rand(2, 6, 3, 32, 32)
    still = video[:, :1].expand(-1, 4, -1, -1, -1)
    with torch.no_grad():
        assert torch.equal(model(video[:, :4], horizon=5), model.classical(video[:, :4], 5))
        pred = model(still, horizon=5)
    assert torch.allclose(pred, still[:, :1].expand_as(pred), atol=1e-6)


def test_channels_last_backbone_gives_the_same_frames():
    video = torch.rand(2, 5, 3, 16, 16)
    plain, nhwc = tiny(channels_last=False), tiny()
    assert nhwc.backbone.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(plain.encode(video), nhwc.encode(video), atol=1e-5)
        assert torch.allclose(plain(video[:, :3], 4), nhwc(video[:, :3], 4), atol=1e-5)


def test_validation_decides_whether_the_learned_change_is_trusted():
    model = tiny().eval()
    video = translating(8, (1, 0))
    context = video[:, :3]
    with torch.no_grad():
        model.validation_step({"video": video}, 0)  # untrained: ties with the classical rollout
        model.on_validation_epoch_end()
        assert model.trusted.item() == 1.0
        assert torch.equal(model.rollout(context, 5), model(context, 5))
        model.change_gate.fill_(3.0)  # a large learned change: worse than the classical motion
        model.validation_step({"video": video}, 0)
        model.on_validation_epoch_end()
        assert model.trusted.item() == 0.0
        assert torch.equal(model.rollout(context, 5), model.classical(context, 5))
        assert not torch.equal(model(context, 5), model.rollout(context, 5))  # validation's view


def test_each_clip_keeps_its_rollout_only_where_it_explains_its_context():
    model = tiny().eval()
    moving = translating(8, (1, 0))
    fooled = moving[:, [0, 1, 2, 3, 4, 5, 6, 7]].clone()
    fooled[:, 3] = moving[:, 2]  # still at the last context frame: the motion seen is stale
    video = torch.cat([moving, fooled])
    context = video[:, :4]
    with torch.no_grad():
        model.change_gate.fill_(1.0)  # the head's random change moves both clips
        explained = model.explains(model, context)
        pred, rollout = model(context, 4), model.rollout(context, 4)
        assert not torch.equal(pred[1], context[1, -1:].expand(4, -1, -1, -1))
    assert explained.flatten().tolist() == [1.0, 0.0]
    assert torch.equal(rollout[0], pred[0])
    assert torch.equal(rollout[1], context[1, -1:].expand(4, -1, -1, -1))
    assert torch.equal(model.explains(model, context[:, :1]), torch.ones(2, 1, 1, 1, 1))
