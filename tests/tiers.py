"""The two test tiers: ``make test`` runs every test, ``make test-fast`` (``pytest -m "not
slow"``) the edit loop's few minutes. A test parametrised over packaged configs keeps one config
per model class in the fast tier; the others run in the whole suite only."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

FAST_CONFIGS = frozenset(
    {
        "demo.yaml",  # MotionPredictor
        "demo_paper.yaml",  # FramePredictor
        "simvp_demo.yaml",  # SimVP
        "vae_demo.yaml",  # MotionVAE
        "vae_demo_paper.yaml",  # VideoVAE
        "vae_things_demo.yaml",  # ThingMotionVAE
        "vae_layers_textured.yaml",  # LayerMotionVAE
    }
)
"""One packaged config per model class, the fast tier's."""


def by_tier(configs: Iterable[str]) -> list:
    """``configs`` as parameters: those in :data:`FAST_CONFIGS` plain, the rest marked slow."""
    return [c if c in FAST_CONFIGS else pytest.param(c, marks=pytest.mark.slow) for c in configs]
