"""DDP end to end, run by ``tests/test_ddp.py`` in a subprocess (not a test module itself).

``python tests/ddp_run.py OUT CORPUS CACHE RUN...`` fits (1 epoch) and tests each RUN (a key of
:data:`RUNS`) with ``strategy="ddp"`` on 2 CPU processes (gloo): what ``--trainer.strategy ddp``
picks. Lightning starts rank 1 by running this same command again. Every rank writes
``OUT/<run>/rank<r>.json``: its test metrics, the ``index`` of every batch it saw per stage, and
what its data module probed and decoded; rank 0 also writes the fitted weights
(``OUT/<run>/model.pt``) so that the test can run a single process on them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
from tiny import tiny_predictor, tiny_vae

from vidgen import ShapesDataModule
from vidgen.data import ShardDataModule
from vidgen.data.shards import write_shards
from vidgen.data.ucf101 import UCF101DataModule

RUNS = ("predictor-ucf101", "vae-ucf101", "predictor-shapes", "vae-shapes", "predictor-shards")
DATA = dict(frames=4, image_size=16, batch_size=1, num_workers=0)


def build(run: str, corpus: str, cache: str) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The tiny model and data of ``run``: ``<model>-<data>`` (predictor or vae, ucf101 with the
    frame cache in ``cache``, shapes, or shards of the ucf101 data in ``cache/shards``, written
    here by whichever rank gets there first while the other waits)."""
    model_name, data_name = run.split("-")
    model = tiny_predictor() if model_name == "predictor" else tiny_vae(frames=DATA["frames"])
    if data_name in ("ucf101", "shards"):  # fold 1 of the tiny corpus: 4 train, 2 val, 4 test
        data = UCF101DataModule(
            corpus,
            frame_cache=data_name == "ucf101",
            cache_dir=cache,
            val_fraction=0.2,
            index_workers=1,
            progress=False,
            **DATA,
        )
        if data_name == "shards":
            write_shards(data, f"{cache}/shards", workers=1, videos_per_part=4, progress=False)
            data = ShardDataModule(f"{cache}/shards", **DATA)
    else:
        data = ShapesDataModule(num_train=4, num_val=2, num_test=4, video_length=8, **DATA)
    return model, data


class SeenBatches(L.Callback):
    """The ``index`` of every item of every batch this rank trained or tested on."""

    def __init__(self) -> None:
        self.seen: dict[str, list[int]] = {"train": [], "test": []}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen["train"] += batch["index"].tolist()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.seen["test"] += batch["index"].tolist()


def run(name: str, out: Path, corpus: str, cache: str) -> None:
    L.seed_everything(0, verbose=False)
    model, data = build(name, corpus, cache)
    seen = SeenBatches()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        num_sanity_val_steps=0,
        callbacks=[seen],
        default_root_dir=out,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, data)
    metrics = trainer.test(model, data, verbose=False)[0]
    index = getattr(data, "_index", None) or {}
    report = {
        "rank": trainer.global_rank,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "seen": seen.seen,
        "probed": index.get("probed"),
        "decoded": index.get("decoded"),
        "cached": len(index.get("cached", {})),
    }
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))
    if trainer.global_rank == 0:
        torch.save(model.state_dict(), folder / "model.pt")


def main(argv: list[str]) -> None:
    out, corpus, cache, *runs = argv
    for name in runs:
        run(name, Path(out), corpus, cache)


if __name__ == "__main__":
    main(sys.argv[1:])
