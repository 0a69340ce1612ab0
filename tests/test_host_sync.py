"""No packaged config's training step or rollout forces a host synchronisation.

On a GPU every op that reads a tensor's value on the host (``.item()``, ``bool(tensor)``, a
Python branch on a value, ``nonzero``, boolean-mask indexing, data-dependent shapes) stalls the
step until the device drains. On the CPU they show up as ATen ops, counted here under a
dispatch mode. The optimiser step is left out: Adam keeps its step counters on the host.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from behaviour import SIZE, packaged_configs, small_model
from tiers import by_tier
from torch.utils._python_dispatch import TorchDispatchMode

SYNCING = {
    "aten::_local_scalar_dense",
    "aten::nonzero",
    "aten::masked_select",
    "aten::_unique2",
    "aten::unique_consecutive",
    "aten::repeat_interleave",
}
"""ATen ops whose result on the host depends on tensor values."""
READS_BY_DESIGN = {
    "vae_things_demo.yaml": "ThingMotionVAE grows its one-colour pieces until no label changes "
    "and sizes its tracking templates by the largest thing: host reads in every step",
    "vae_layers_textured.yaml": "LayerMotionVAE sizes its tracking templates by the largest "
    "layer: host reads in every step",
}
"""Configs whose model reads values on the host by design, and why."""


class SyncCounter(TorchDispatchMode):
    """Counts the :data:`SYNCING` ops dispatched while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in SYNCING:
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def test_the_counter_sees_syncs():
    with SyncCounter() as counter:
        x = torch.rand(4)
        x.sum().item()
        (x > 0.5).nonzero()
    assert counter.ops["aten::_local_scalar_dense"] >= 1 and counter.ops["aten::nonzero"] >= 1


@pytest.mark.parametrize("config", by_tier(packaged_configs()))
def test_no_host_sync_in_a_training_step_or_a_rollout(config):
    if config in READS_BY_DESIGN:
        pytest.skip(READS_BY_DESIGN[config])
    model = small_model(config).train()
    video = torch.rand(2, 8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with SyncCounter() as counter:
        model.training_step({"video": video}, 0).backward()
    assert not counter.ops, f"training step: {dict(counter.ops)}"
    model.eval()
    with SyncCounter() as counter, torch.no_grad():
        if hasattr(model, "split"):  # a predictor: a rollout from 4 true frames
            model(video[:, :4], 4)
        else:  # a VAE: a reconstruction and a prior sample
            model.reconstruct(video)
            model.sample(2, 8, context=model.context(video))
    assert not counter.ops, f"evaluation: {dict(counter.ops)}"


def test_no_host_sync_in_coarse_to_fine_matching():
    from vidgen.models.motion_estimation import SEARCH_RADIUS, pyramid_match

    frames = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with SyncCounter() as counter:
        pyramid_match(frames, frames.roll(3, -1), 2 * SEARCH_RADIUS, subpixel=True)
    assert not counter.ops, dict(counter.ops)
