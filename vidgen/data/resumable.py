"""Exact resume of training data: the order and the random clip positions of every epoch are
functions of ``(seed, epoch, index)``, and Lightning saves and restores the position in the
epoch, so ``fit --ckpt_path last`` sees exactly the batches an uninterrupted run would.

With a plain ``DataLoader(shuffle=True)`` the order and each item's random clip come from
torch's global random state, which a checkpoint does not hold, and a resumed epoch restarts
its data from the first batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffle(Sampler[int]):
    """Yields *tickets* ``epoch * size + index``: a permutation of ``range(size)`` drawn from
    ``(seed, epoch)`` alone (Lightning calls :meth:`set_epoch`); the first ``skip`` items of
    the next pass are left out (a mid-epoch resume)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.skip :]
        self.skip = 0
        return iter((order + self.epoch * self.size).tolist())

    def __len__(self) -> int:
        return self.size


class SeededItems(Dataset):
    """Item ``ticket % size`` of ``dataset``, drawn with torch's random state seeded from
    ``(seed, ticket)`` (restored afterwards): its random clip is the same in any run, worker
    or resume."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, ticket: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed * 1_000_003 + ticket) % 2**62)
            return self.dataset[ticket % len(self.dataset)]


class ResumableLoader(DataLoader):
    """A ``DataLoader`` that Lightning saves and restores (``state_dict``): its state is the
    seed and the number of batches the training loop processed in the current epoch (read from
    ``trainer``; prefetched batches do not count). Mid-epoch positions are restored in a
    single process; under DDP a resumed epoch starts again from its first batch."""

    trainer: Any = None

    def state_dict(self) -> dict[str, int]:
        loop = getattr(self.trainer, "fit_loop", None)
        batches = loop.epoch_loop.batch_progress.current.processed if loop is not None else 0
        epoch = self.sampler.epoch if isinstance(self.sampler, EpochShuffle) else 0
        return {"batches": batches, "seed": self.dataset.seed, "epoch": epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Restore the seed and the place in the epoch. Lightning makes the first iterator of
        a resumed fit before it calls ``set_epoch``, so the epoch is restored here too."""
        self.dataset.seed = state["seed"]
        if not isinstance(self.sampler, EpochShuffle):
            return
        self.sampler.seed = state["seed"]
        per_epoch = getattr(self.trainer, "num_training_batches", len(self))
        ended = state["batches"] >= per_epoch  # saved at the end of an epoch
        self.sampler.epoch = state["epoch"] + ended
        self.sampler.skip = 0 if ended else state["batches"] * (self.batch_size or 1)


def resumable_loader(dataset: Any, trainer: Any, **kwargs: Any) -> ResumableLoader:
    """A shuffled training loader over ``dataset`` that resumes exactly (seed: torch's
    initial seed, i.e. ``seed_everything``'s)."""
    seed = torch.initial_seed() % 2**62
    loader = ResumableLoader(
        SeededItems(dataset, seed),
        sampler=EpochShuffle(len(dataset), seed),
        generator=torch.Generator().manual_seed(seed),  # worker seeds: not the global state
        **kwargs,
    )
    loader.trainer = trainer
    return loader
