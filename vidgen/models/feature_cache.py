"""FeatureCache: the frozen backbone's features of true frames, computed once per frame.

The VGG16 never trains, so the features of a frame the data gives again (the same frame of the
same video, at the same size, in the next epoch or another clip's window) are the same numbers.
A dataset that can say which frame a pixel array is gives each clip ``frame_ids`` (int64
``(S,)``, equal ids = equal pixels within a split; see DESIGN section 3); the model then looks
features up by id and runs the backbone only on frames it has not seen. Used where the inputs are
true frames of the training split: teacher forcing, the context of rollout training, the VAE
encoder. Predicted frames always go through the backbone (they change as the model trains).

The cache lives in memory on the features' device, up to ``max_bytes``; past that, new frames are
computed every time. It is never saved in checkpoints and is emptied at the start of every fit.
Every ``verify_every`` calls one cached frame is recomputed and compared: a data source whose
pixels differ under one id (random augmentation) stops the run with a message, instead of
training on stale features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor

log = logging.getLogger(__name__)


class FeatureCache:
    """Features by frame id; ``cache(compute, frames, ids)`` replaces ``compute(frames)``.

    Args:
        max_bytes: memory for cached features; frames past it are computed every time.
        verify_every: recompute one cached frame every this many calls (0: never) and raise if
            it differs from the cache.
        rtol, atol: tolerance of that check (features computed in a different batch may differ
            in the last bits).
    """

    def __init__(
        self, max_bytes: int, verify_every: int = 100, rtol: float = 1e-3, atol: float = 1e-4
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.verify_every = verify_every
        self.rtol, self.atol = rtol, atol
        self.clear()

    def clear(self) -> None:
        """Forget every cached feature (and the hit counts)."""
        self.rows: dict[int, int] = {}
        self.store: Tensor | None = None
        self.hits = self.misses = self.calls = 0
        self.full = False

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        """Bytes held by the store (its allocated capacity)."""
        return 0 if self.store is None else self.store.numel() * self.store.element_size()

    def __call__(self, compute: Callable[[Tensor], Tensor], frames: Tensor, ids: Tensor) -> Tensor:
        """``compute(frames)`` ``(N, ...)``, with each frame's row taken from the cache when its
        id (``ids`` ``(N,)``) was computed before. No gradient flows to ``frames``."""
        if ids.shape != frames.shape[:1]:
            raise ValueError(f"ids {tuple(ids.shape)} must name each of {frames.shape[0]} frames")
        self.calls += 1
        keys = ids.tolist()
        new = {}  # id -> first position in this batch, for ids not cached yet
        for i, key in enumerate(keys):
            if key not in self.rows and key not in new:
                new[key] = i
        hit = next((i for i, key in enumerate(keys) if key in self.rows), None)
        with torch.no_grad():
            if hit is not None and self.verify_every and self.calls % self.verify_every == 0:
                self.verify(compute, frames[hit : hit + 1], keys[hit])
            computed = compute(frames[list(new.values())]) if new else None
        if computed is not None and self.store is None:
            self.store = computed.new_empty((0, *computed.shape[1:]))
        if computed is not None and not self.full:
            self.add(list(new), computed)
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        fresh = {key: j for j, key in enumerate(new)}
        if all(key in self.rows for key in keys):  # the common case: one gather
            index = torch.tensor([self.rows[k] for k in keys], device=self.store.device)
            return self.store[index]
        rows = [self.store[self.rows[k]] if k in self.rows else computed[fresh[k]] for k in keys]
        return torch.stack(rows)

    def add(self, keys: list[int], features: Tensor) -> None:
        """Store ``features`` (one row per key), growing the store while it fits."""
        assert self.store is not None
        if features.dtype != self.store.dtype or features.shape[1:] != self.store.shape[1:]:
            raise ValueError(
                f"features {features.dtype} {tuple(features.shape[1:])} do not match the cache's "
                f"{self.store.dtype} {tuple(self.store.shape[1:])}: clear() it first"
            )
        used = len(self.rows)
        needed = used + len(keys)
        if needed > self.store.shape[0]:
            row_bytes = features[0].numel() * features.element_size()
            capacity = min(max(needed, 2 * self.store.shape[0]), self.max_bytes // row_bytes)
            if capacity < needed:
                self.full = True
                log.warning(
                    "feature cache full at %d frames (%.2f GiB): later frames are computed "
                    "every time; raise the model's feature_cache_gib to cache more",
                    used,
                    used * row_bytes / 2**30,
                )
                return
            grown = features.new_empty((capacity, *features.shape[1:]))
            grown[:used] = self.store[:used]
            self.store = grown
        self.store[used:needed] = features
        self.rows.update({key: used + j for j, key in enumerate(keys)})

    def verify(self, compute: Callable[[Tensor], Tensor], frame: Tensor, key: int) -> None:
        """Raise if the cached features of ``key`` are not ``compute(frame)``."""
        assert self.store is not None
        cached, fresh = self.store[self.rows[key]], compute(frame)[0]
        if not torch.allclose(cached.float(), fresh.float(), rtol=self.rtol, atol=self.atol):
            diff = (cached.float() - fresh.float()).abs().max().item()
            raise RuntimeError(
                f"the feature cache holds other features for frame id {key} than the backbone "
                f"computes now (max difference {diff:.3g}): the data gives different pixels "
                "under one frame id (random augmentation?). Turn the cache off "
                "(model.feature_cache_gib: 0) or make the data deterministic per frame id."
            )

    @property
    def hit_rate(self) -> float:
        """Share of looked-up frames served from the cache so far."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0
