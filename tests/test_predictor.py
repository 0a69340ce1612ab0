from functools import partial

import lightning as L
import pytest
import torch
import yaml
from tiny import tiny_predictor

from vidgen import FramePredictor, ShapesDataModule
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


@pytest.mark.parametrize("train_rollout", [False, True])
def test_training_reduces_loss_on_one_batch(train_rollout):
    model = tiny(train_rollout=train_rollout, optimizer=partial(torch.optim.Adam, lr=3e-3))
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
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
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


def test_warp_moves_pixels_by_the_flow():
    from vidgen.models.motion import warp

    frames = torch.zeros(1, 3, 8, 8)
    frames[:, :, 3, 2] = 1.0
    still = warp(frames, torch.zeros(1, 2, 8, 8))
    assert torch.allclose(still, frames, atol=1e-6)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 2.0  # two pixels to the right
    flow[:, 1] = 1.0  # one pixel down
    moved = warp(frames, flow)
    assert moved[0, 0, 4, 4] == pytest.approx(1.0) and moved.sum() == pytest.approx(3.0)


CHANGE_MODES = [
    {"output": "residual"},
    {"output": "warp"},
    {"output": "warp", "warp_from": "context"},
    {"output": "warp", "warp_from": "context", "composite": True, "skip": True},
    {"output": "warp", "warp_from": "context", "momentum": True, "train_rollout": True},
    {
        "output": "warp",
        "warp_from": "context",
        "momentum": True,
        "train_rollout": True,
        "observed_motion": True,
    },
    {
        "output": "warp",
        "warp_from": "context",
        "momentum": True,
        "train_rollout": True,
        "observed_motion": True,
        "splat": True,
        "motion_layers": 3,
    },
]


@pytest.mark.parametrize("options", CHANGE_MODES, ids=lambda o: "-".join(map(str, o.values())))
def test_untrained_change_outputs_are_copy_last_exactly(options):
    model = tiny(**options).eval()
    assert model.head.deconv.out_channels == {"residual": 3, "warp": 2}[options["output"]] + (
        4 if options.get("composite") else 0
    )
    video = torch.rand(2, 5, 3, 16, 16)
    with torch.no_grad():
        pred = model(video[:, :3], horizon=6)
    last = video[:, 2:3].expand_as(pred)
    assert torch.allclose(pred, last, atol=1e-6)  # copy-last, whatever the horizon


@pytest.mark.parametrize("options", CHANGE_MODES[1:], ids=lambda o: "-".join(map(str, o.values())))
def test_change_outputs_train_away_from_copy_last(options):
    options = {**options, "train_rollout": True}
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
    assert losses[-1] < 0.9 * losses[0]  # the zeroed head still gets gradients


def translating(steps: int, speed: tuple[int, int], size: int = 16) -> torch.Tensor:
    """``(1, steps, 3, size, size)``: a smooth random texture moving ``speed`` px a frame."""
    torch.manual_seed(0)
    big = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 3 * size, 3 * size), 3, 1, 1)
    frames = [
        big[
            ...,
            size - t * speed[1] : 2 * size - t * speed[1],
            size - t * speed[0] : 2 * size - t * speed[0],
        ]
        for t in range(steps)
    ]
    return torch.stack(frames, 1)


def test_block_matching_finds_where_pixels_came_from():
    from vidgen.models.motion import block_match, observed_velocity

    video = translating(4, (2, -1))
    flow = block_match(video[:, 0], video[:, 1], radius=3)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert torch.equal(flow[:, 0][inner[:1] + inner[2:]], torch.full((1, 8, 8), 2.0))
    assert torch.equal(flow[:, 1][inner[:1] + inner[2:]], torch.full((1, 8, 8), -1.0))
    flat = torch.zeros(1, 3, 8, 8)
    assert torch.equal(block_match(flat, flat, 2), torch.zeros(1, 2, 8, 8))  # ties: no motion
    velocity = observed_velocity(video, span=3, max_speed=2.0)  # 3 steps apart, / 3
    expected = torch.tensor([2.0, -1.0]).view(1, 2, 1, 1)
    assert torch.allclose(velocity[..., 6:-6, 6:-6], expected, atol=0.02)  # subpixel fits
    assert torch.equal(observed_velocity(video[:, :1], 3, 2.0), torch.zeros(1, 2, 16, 16))
    with pytest.raises(ValueError, match="patch"):
        block_match(flat, flat, 1, patch=4)


def test_subpixel_matching_finds_fractions_of_a_pixel():
    from vidgen.models.motion import block_match, median3, warp

    frame = translating(1, (0, 0))[:, 0]
    shift = torch.tensor([0.3, 0.7]).view(1, 2, 1, 1)
    later = warp(frame, shift.expand(1, 2, 16, 16))
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    whole = (block_match(frame, later, 2) - shift)[inner].abs().mean()
    refined = (block_match(frame, later, 2, subpixel=True) - shift)[inner].abs().mean()
    assert whole.item() == pytest.approx(0.3, abs=1e-6)  # rounds to (0, 1)
    assert refined < 0.15
    outlier = torch.zeros(1, 2, 5, 5)
    outlier[0, 0, 2, 2] = 3.0
    assert torch.equal(median3(outlier), torch.zeros(1, 2, 5, 5))


def test_pooled_flow_is_the_motion_of_what_has_texture():
    from vidgen.models.motion import pool_flow, texture

    frame = torch.zeros(1, 3, 8, 8)
    frame[..., 1:3, 1:3] = 1.0  # a flat square in the top-left cell, black elsewhere
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0, 0:4, 0:4] = torch.where(texture(frame)[0, 0, 0:4, 0:4] > 0, 2.0, 0.0)
    pooled = pool_flow(flow, frame, (2, 2))
    assert pooled[0, 0, 0, 0].item() == pytest.approx(2.0)  # not diluted by the flat pixels
    assert torch.equal(pooled[0, :, 1, 1], torch.zeros(2))  # nothing to see moving: 0
    assert texture(torch.ones(1, 3, 6, 6)).abs().max() == 0


def test_carried_velocity_moves_with_what_moves():
    from vidgen.models.motion import carry

    assert torch.equal(carry(torch.zeros(2, 2, 5, 5)), torch.zeros(2, 2, 5, 5))  # still: still
    block = torch.zeros(1, 2, 6, 6)
    block[0, 0, 1:3, 1:3] = 0.5  # a 2 x 2 region moving half a cell a step right
    moved = carry(block)
    # it covers columns 1-3 a step later (column 3 half-way: it is in front of the still cells)
    assert moved[0, 0, 1:3, 1:4].min() > 0.45 and moved[0, 0, 1:3, 4:].abs().max() == 0
    assert moved[0, 1].abs().max() == 0 and moved[0, 0, 3:].abs().max() == 0
    twice = carry(carry(block))
    assert twice[0, 0, 1:3, 4].min() > 0.45  # ... and further on the next step
    uniform = torch.full((1, 2, 4, 4), -1.0)  # a pan: every cell one cell up-left a step
    assert torch.allclose(carry(uniform)[..., :3, :3], uniform[..., :3, :3])


def test_splat_sends_pixels_forward():
    from vidgen.models.motion import splat

    frames = torch.rand(2, 3, 6, 6)
    ones = torch.ones(2, 1, 6, 6)
    sums, mass = splat(frames, torch.zeros(2, 2, 6, 6), 2 * ones)
    assert torch.equal(sums / mass, frames) and torch.equal(mass, 2 * ones)  # still: exact
    flow = torch.zeros(2, 2, 6, 6)
    flow[:, 0], flow[:, 1] = 2.0, -1.0  # 2 px right, 1 up
    sums, mass = splat(frames, flow, ones)
    assert torch.equal(sums[:, :, :5, 2:], frames[:, :, 1:, :4])
    assert mass[:, :, :5, :2].abs().max() == 0 and mass[:, :, 5].abs().max() == 0  # nothing came
    half = torch.zeros(1, 2, 6, 6, requires_grad=True)
    dot = torch.zeros(1, 1, 6, 6)
    dot[0, 0, 2, 2] = 1.0
    sums, mass = splat(dot, half + torch.tensor([0.5, 0.0])[:, None, None], ones[:1])
    assert sums[0, 0, 2, 2:4].tolist() == [0.5, 0.5]  # shared between the two pixels
    sums[0, 0, 2, 3].backward()
    assert half.grad[0, 0, 2, 2] == 1.0  # moving it further right sends it more of the dot
    a, b = torch.zeros(1, 1, 1, 3), torch.zeros(1, 2, 1, 3)
    a[..., 0], b[..., 0, :, 0] = 1.0, 1.0  # pixel 0 (value 1) lands on pixel 1 (value 0) ...
    weight = torch.tensor([3.0, 1.0, 1.0]).view(1, 1, 1, 3)  # ... weighing 3 to its 1
    sums, mass = splat(a, b, weight)
    assert (sums / mass)[0, 0, 0, 1].item() == pytest.approx(0.75)


def test_push_pull_fills_holes_with_the_colours_around_them():
    from vidgen.models.motion import push_pull, splat

    image = torch.rand(2, 3, 7, 5)  # odd sizes: the pyramid halves them rounding up
    colour, found = push_pull(image, torch.ones(2, 1, 7, 5))
    assert torch.equal(colour, image) and found.all()  # fully covered: unchanged
    halves = torch.zeros(1, 1, 8, 8)
    halves[..., 4:] = 1.0  # a dark left half, a bright right half
    mass = torch.ones(1, 1, 8, 8)
    mass[..., 2:6, 2:6] = 0.0  # a hole across the middle
    colour, _ = push_pull(halves * mass, mass)
    assert torch.equal(colour[..., :2], halves[..., :2]) and torch.equal(
        colour[..., 6:], halves[..., 6:]
    )
    hole = colour[0, 0, 2:6, 2:6]
    assert hole[:, 0].max() < 0.5 < hole[:, 3].min()  # each side takes after its own side
    assert hole[:, :2].mean() < hole[:, 2:].mean() and hole.min() >= 0.0 and hole.max() <= 1.0
    dot = torch.zeros(1, 1, 1, 3, 3)  # nothing landed anywhere but at one pixel
    dot[..., 1, 1] = 1.0
    colour, found = push_pull(torch.full((1, 3, 3, 3), 0.7) * dot[0], dot[0])
    assert torch.allclose(colour, torch.full_like(colour, 0.7)) and found.item()
    gone = torch.full((1, 2, 4, 4), 100.0)  # every pixel leaves the frame
    sums, mass = splat(torch.rand(1, 3, 4, 4), gone, torch.ones(1, 1, 4, 4))
    assert not push_pull(sums, mass)[1].any()


def test_splat_over_puts_what_moves_in_front_and_fills_the_rest():
    from vidgen.models.motion import splat_over

    frames, fill = torch.rand(1, 2, 3, 8, 8), torch.rand(1, 2, 3, 8, 8)
    still = torch.zeros(1, 2, 2, 8, 8)
    assert torch.equal(splat_over(frames, still, still, fill, 1.0), frames)
    velocity = torch.zeros(1, 2, 2, 8, 8)
    velocity[..., 0, 2:4, 2:4] = 1.0  # a 2 x 2 block moving right over a still background
    out = splat_over(frames, velocity, velocity, fill, 10.0)
    block = frames[..., 2:4, 2:4]
    assert torch.allclose(out[..., 2:4, 3:5], block, atol=1e-3)  # in front of what it covers
    soft = splat_over(frames, velocity, velocity, fill, 1.0)[..., 2:4, 4]
    mixed = (torch.e * block[..., 1] + frames[..., 2:4, 4]) / (torch.e + 1)  # weights e : 1
    assert torch.allclose(soft, mixed, atol=1e-5)
    flat = torch.full((1, 1, 3, 8, 8), 0.2)
    flat[..., 2:4, 2:4] = 0.9  # a bright block on a flat dark background, moving right
    out = splat_over(flat, velocity[:, :1], velocity[:, :1], fill[:, :1], 10.0)
    assert torch.allclose(out[..., 2:4, 2], torch.full((1, 1, 3, 2), 0.2), atol=1e-3)
    # ... where it was, nothing landed: the background around the hole, not the block
    pan = torch.full((1, 1, 2, 8, 8), 1.0)  # everything moves: nothing is in front
    shifted = splat_over(flat, pan, pan, fill[:, :1], 10.0)
    assert torch.allclose(shifted[..., 1:, 1:], flat[..., :-1, :-1], atol=1e-6)
    entering = shifted[..., 0, :]  # the border entering: colours from just inside the frame
    assert entering.min() >= 0.2 - 1e-6 and entering.max() <= 0.9 + 1e-6
    gone = torch.full((1, 2, 2, 8, 8), 100.0)  # everything leaves: only the fill is left
    assert torch.equal(splat_over(frames, gone, gone, fill, 1.0), fill)


def test_observed_motion_seeds_the_momentum():
    from vidgen.models.predictor import GATE_SCALE

    options = dict(output="warp", warp_from="context", momentum=True, train_rollout=True)
    model = tiny(observed_motion=True, **options).eval()
    assert model.motion_gate.item() == 0.0  # copy-last at initialisation (CHANGE_MODES)
    video = translating(7, (1, 0))
    with torch.no_grad():
        model.motion_gate.fill_(1 / GATE_SCALE)  # as if trained to trust what it sees
        pred = model(video[:, :3], horizon=4)
        forced = model.teacher_forced(video[:, :4])
    # constant velocity: 1 px a step to the right, away from the borders it cannot know (the
    # content entering on the left has no match: its subpixel fits are off by up to 0.25 px)
    for step in range(4):
        inner = (slice(None), slice(None), slice(2, -2), slice(4 + step + 1, -2))
        assert torch.allclose(pred[:, step][inner], video[:, 3 + step][inner], atol=1e-5), step
    assert torch.allclose(forced[:, 2], pred[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="momentum"):
        tiny(output="warp", observed_motion=True)


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
    from vidgen.models.predictor import GATE_SCALE

    video = square_over_texture(8)
    options = dict(output="warp", warp_from="context", momentum=True, train_rollout=True)
    errors = {}
    for name, extra in (("warp", {}), ("splat", {"splat": True, "motion_layers": 2})):
        model = tiny(observed_motion=True, **options, **extra).eval()
        with torch.no_grad():
            model.motion_gate.fill_(1 / GATE_SCALE)  # trust the motion seen
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
    # (its velocity is seen 0.93 px)
    assert errors["splat"][0] < 1.1 * errors["warp"][0]
    for warped, splatted in zip(errors["warp"][1:], errors["splat"][1:], strict=True):
        assert splatted < 0.8 * warped
    assert errors["splat"][-1] < 0.6 * errors["warp"][-1]
    with pytest.raises(ValueError, match="splat"):
        tiny(output="warp", splat=True)
    with pytest.raises(ValueError, match="motion_layers"):
        tiny(motion_layers=3, **options)


def test_warp_rollouts_make_nothing_on_another_device():
    """The GPU path without a GPU: PyTorch's ``meta`` device (shapes only) refuses any tensor
    made on the CPU along the way (block matching, motion layers, splatting, warps)."""
    options = dict(output="warp", warp_from="context", momentum=True, train_rollout=True)
    model = tiny(observed_motion=True, splat=True, motion_layers=3, **options).to("meta")
    pred = model(torch.rand(2, 3, 3, 16, 16, device="meta"), horizon=4)
    assert pred.shape == (2, 4, 3, 16, 16) and pred.device.type == "meta"


def test_flows_compose_and_context_warping_resamples_once():
    from vidgen.models.motion import compose_flows, warp

    a = torch.zeros(1, 2, 8, 8)
    a[:, 0] = 1.0
    b = torch.zeros(1, 2, 8, 8)
    b[:, 1] = 2.0
    assert torch.allclose(compose_flows(a, b), a + b)  # translations add
    frames = torch.rand(1, 3, 8, 8)
    half = torch.full((1, 2, 8, 8), 0.5)
    twice = warp(warp(frames, half), half)  # two bilinear resamplings blur
    once = warp(frames, compose_flows(half, half))  # one whole-pixel shift does not
    shifted = torch.roll(frames, (1, 1), (2, 3))
    assert torch.allclose(once[..., 1:, 1:], shifted[..., 1:, 1:], atol=1e-6)
    assert not torch.allclose(twice[..., 1:, 1:], shifted[..., 1:, 1:], atol=1e-2)


def test_options_that_need_warp_are_refused():
    with pytest.raises(ValueError, match="output='warp'"):
        tiny(output="frame", composite=True)
    with pytest.raises(ValueError, match="warp_from"):
        tiny(output="warp", warp_from="last")
    with pytest.raises(ValueError, match="train_rollout"):
        tiny(output="warp", momentum=True)


def test_unknown_output_mode():
    with pytest.raises(ValueError, match="output"):
        tiny(output="flow")


def test_defaults_are_the_paper():
    model = FramePredictor()
    assert model.image_size == 224 and model.feature_shape == (512, 7, 7)  # pool5: 25088
    assert model.head.deconv.kernel_size == (190, 190) and model.output == "frame"
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == 0.01


PAPER_CONFIGS = {"demo_paper.yaml", "predictor_paper.yaml"}  # the paper's head paints frames


def packaged_predictors() -> list[str]:
    from vidgen.cli import CONFIG_DIR

    names = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        model = yaml.safe_load(path.read_text())["model"]
        if model["class_path"].endswith("FramePredictor") and path.name not in PAPER_CONFIGS:
            names.append(path.name)
    return names


def test_paper_configs_paint_frames_and_all_others_change_the_last_frame():
    from vidgen.cli import CONFIG_DIR

    assert {"demo.yaml", "demo_textured.yaml", "predictor.yaml"} <= set(packaged_predictors())
    for name in PAPER_CONFIGS:
        model = yaml.safe_load((CONFIG_DIR / name).read_text())["model"]["init_args"]
        assert model.get("output", "frame") == "frame"


@pytest.mark.parametrize("config", packaged_predictors())
def test_packaged_predictors_start_at_copy_last(config):
    from vidgen.cli import build

    torch.manual_seed(0)
    overrides = ["--data.init_args.image_size=32", "--model.init_args.backbone_weights=null"]
    cli = build(config, *overrides)  # (predictor.yaml asks for ImageNet weights)
    model = cli.model.eval()
    video = torch.rand(2, 6, 3, 32, 32)
    with torch.no_grad():
        pred = model(video[:, :4], horizon=5)
    assert torch.allclose(pred, video[:, 3:4].expand_as(pred), atol=1e-6)


def test_channels_last_backbone_gives_the_same_frames():
    video = torch.rand(2, 5, 3, 16, 16)
    plain, nhwc = tiny(output="warp", channels_last=False), tiny(output="warp")
    assert nhwc.backbone.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(plain.encode(video), nhwc.encode(video), atol=1e-5)
        assert torch.allclose(plain(video[:, :3], 4), nhwc(video[:, :3], 4), atol=1e-5)
