"""Mixed precision and compile: every packaged config trains in bf16 autocast (Lightning's
``bf16-mixed``) to the fp32 loss within a stated tolerance, and ``torch.compile`` of a whole
model's forward gives the eager output.

Models are the test-size builds of ``tests/behaviour.py`` (32 px, random backbone weights,
small heads for the 224 px configs), trained two fp32 steps first so that every head is away
from its zero initialisation (an untrained motion model copies the last frame exactly, in any
precision). ``benchmarks/graph_breaks.py`` lists where compile breaks each training step.
"""

from __future__ import annotations

import pytest
import torch
from behaviour import SIZE, packaged_configs, small_model
from tiers import by_tier

from vidgen.models import motion_estimation, motion_vae

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning"),  # no Trainer here
    pytest.mark.filterwarnings("ignore:Torchinductor does not support code generation for complex"),
]

BF16_RTOL = 1e-2
"""Relative tolerance of a bf16-autocast loss against fp32 on the same batch: bf16 keeps 8 bits
of mantissa, so a loss drifts by parts in a thousand (most with the SSIM term); a gap of a
percent would be a layer that autocast must not lower."""
COMPILE_ATOL = 1e-3
"""Largest absolute difference (frames in [0, 1]) of a compiled forward from the eager one:
fused kernels reorder float32 sums, and a warp turns a flow's rounding into a pixel's change
times the image's gradient there."""


def trained(config: str) -> tuple[torch.nn.Module, torch.Tensor]:
    """``config``'s test-size model after two fp32 optimiser steps on a seeded clip, and the
    clip."""
    torch.manual_seed(0)
    model = small_model(config)
    video = torch.rand(2, 8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    model.train()
    for step in range(2):
        optimizer.zero_grad()
        model.training_step({"video": video}, step).backward()
        optimizer.step()
    return model, video


def step_loss(model: torch.nn.Module, video: torch.Tensor, bf16: bool) -> torch.Tensor:
    """The training-step loss on ``video`` (seeded: a VAE draws z), its backward run."""
    torch.manual_seed(5)
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model.training_step({"video": video}, 2)
    loss.backward()
    return loss.detach().float()


@pytest.mark.parametrize("config", by_tier(packaged_configs()))
def test_bf16_autocast_loss_matches_fp32(config: str) -> None:
    model, video = trained(config)
    fp32 = step_loss(model, video, bf16=False)
    bf16 = step_loss(model, video, bf16=True)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert abs(bf16 - fp32) <= BF16_RTOL * abs(fp32), (float(fp32), float(bf16))


def forward(model: torch.nn.Module, video: torch.Tensor) -> torch.Tensor:
    """A predictor's rollout of 4 frames from 4, or a VAE's reconstruction from mu."""
    if hasattr(model, "posterior"):
        return model(video)[0]
    return model(video[:, :4], 4)


@pytest.mark.slow
@pytest.mark.parametrize(  # demo_textured and vae_demo compile for minutes (unrolled loops)
    "config", ["demo.yaml", "demo_paper.yaml", "vae_demo_paper.yaml"]
)
def test_compiled_forward_matches_eager(config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # block matching's loop over every displacement unrolls into one graph of thousands of ops
    # that inductor does not compile in a test's time: it runs eagerly between two graphs
    eager_matching = torch.compiler.disable(motion_estimation.block_match)
    for module in (motion_estimation, motion_vae):
        monkeypatch.setattr(module, "block_match", eager_matching)
    torch._dynamo.reset()
    model, video = trained(config)
    model.eval()
    with torch.no_grad():
        eager = forward(model, video)
        compiled = forward(torch.compile(model), video)
    assert compiled.shape == eager.shape
    assert (compiled - eager).abs().max() <= COMPILE_ATOL
