"""SimVP: rollouts of any horizon in chunks of ``pred_frames``, gradients everywhere, it learns
a moving square, clear errors for bad options, the packaged size."""

from __future__ import annotations

import pytest
import torch

from vidgen import SimVP
from vidgen.cli import build

pytestmark = pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")  # no Trainer here


def tiny_simvp(**kw) -> SimVP:
    """A 16 px SimVP, 4 -> 3 frames (fewer predicted than read), seeded."""
    torch.manual_seed(0)
    options = {"channels": 8, "translator_channels": 16, "translator_blocks": 2, "pred_frames": 3}
    return SimVP(image_size=16, backbone_layer="conv1_1", **{**options, **kw})


def moving_square(clips: int = 4, frames: int = 8, size: int = 16) -> torch.Tensor:
    """``(clips, frames, 3, size, size)``: a white 4 px square on black, each clip's moving
    1 px a frame from its own start."""
    video = torch.zeros(clips, frames, 3, size, size)
    for c in range(clips):
        for t in range(frames):
            x, y = 1 + t, 2 + 2 * c
            video[c, t, :, y : y + 4, x : x + 4] = 1.0
    return video


@pytest.mark.parametrize("horizon", [2, 3, 7])  # shorter than, equal to, longer than 3
def test_rollouts_of_any_horizon_are_frames(horizon):
    model = tiny_simvp().eval()
    context = torch.rand(2, 4, 3, 16, 16)
    with torch.no_grad():
        pred = model(context, horizon)
    assert pred.shape == (2, horizon, 3, 16, 16)
    assert pred.min() >= 0 and pred.max() <= 1


def test_a_long_rollout_is_chunks_fed_back():
    """Each chunk of ``pred_frames`` comes from the last ``context_frames`` frames, true then
    predicted; a shorter horizon is the longer one's start; frames before the last
    ``context_frames`` of a context are not read."""
    model = tiny_simvp().eval()
    context = torch.rand(2, 4, 3, 16, 16)
    with torch.no_grad():
        long = model(context, 7)
        second = model(torch.cat([context, long[:, :3]], dim=1)[:, -4:], 3)
        longer_context = model(torch.cat([torch.rand(2, 2, 3, 16, 16), context], dim=1), 7)
        short = model(context, 2)
    torch.testing.assert_close(long[:, 3:6], second)
    torch.testing.assert_close(longer_context, long)
    torch.testing.assert_close(short, long[:, :2])
    assert not torch.allclose(long[:, :3], long[:, 3:6])  # the chunks differ


def test_gradients_reach_every_parameter():
    model = tiny_simvp().train()
    model.training_step({"video": torch.rand(2, 7, 3, 16, 16)}, 0).backward()  # 4 -> 3: one chunk
    trainable = dict(model.named_parameters())
    frozen = {name for name, p in trainable.items() if not p.requires_grad}
    assert frozen and all(name.startswith("backbone.") for name in frozen)
    missing = [
        name
        for name, p in trainable.items()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not missing, missing


def test_a_few_steps_learn_a_moving_square():
    """Thirty steps on one batch end far below painting the black background and below copying
    the last frame: the square is predicted where it moves."""
    model = tiny_simvp(pred_frames=4).train()
    video = moving_square()
    context, target = video[:, :4], video[:, 4:]
    black = target.pow(2).mean()
    copy_last = (target - context[:, -1:]).pow(2).mean()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(30):
        optimizer.zero_grad()
        loss = model.training_step({"video": video}, step)
        loss.backward()
        optimizer.step()
    assert loss < 0.25 * min(black, copy_last), (float(loss), float(black), float(copy_last))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"context_frames": 0}, "context_frames"),
        ({"pred_frames": 0}, "pred_frames"),
        ({"translator_channels": 0}, "translator_channels"),
        ({"translator_blocks": 1}, "translator_blocks"),
        ({"channels": 7}, "channels must be a positive multiple of 2"),
        ({"spatial_blocks": 3}, "spatial_blocks must be even"),
        ({"spatial_blocks": 10}, "image_size must divide by"),  # 16 px halved 5 times
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_simvp(**options)


def test_a_short_context_or_horizon_is_refused():
    model = tiny_simvp()
    with pytest.raises(ValueError, match="reads 4 context frames, got 3"):
        model(torch.rand(1, 3, 3, 16, 16), 2)
    with pytest.raises(ValueError, match="horizon"):
        model(torch.rand(1, 4, 3, 16, 16), 0)


@pytest.mark.parametrize("config", ["simvp_demo", "simvp_textured"])
def test_packaged_size(config):
    model = build(config, "--trainer.logger=false").model
    assert isinstance(model, SimVP) and model.image_size == 32
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 1.2e6 <= trainable <= 1.8e6, trainable
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert backbone < 2000  # the one-convolution cut: the base builds it, SimVP never runs it
    assert (model.context_frames, model.pred_frames) == (4, 4)
