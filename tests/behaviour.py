"""What a packaged config's model does, in a few numbers: the behaviour record that a refactor
must keep (``tests/test_behaviour.py``; ``tests/data/behaviour.json`` holds the record).

Each packaged config's model is built through the CLI with the tiny overlay, small enough for a
test (32 px, random backbone weights, small heads for the 224 px configs), seeded, and run on an
embedded clip: its output at initialisation and after two optimiser steps on that clip. The clip
shows real motion (textured video; shapes for the models of one-colour things): on noise some
gradients are float-rounding residue (~1e-8) whose sign differs between CPU kinds, and Adam's
first step turns either sign into a full step, so another CPU trained another model. A
predictor's output is its rollout; a VAE's its reconstruction from mu and a seeded prior sample.
Each output frame is summarised by its projections on fixed random directions: equal digests
mean equal frames (to float rounding), and the file stays small.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

RECORD = Path(__file__).parent / "data" / "behaviour.json"
SIZE = 32  # frame side of every digest run
STEPS = 2  # optimiser steps between the two digests
PROJECTIONS = 4  # random directions each frame is projected on
SMALL = {  # config -> overrides that fit its model into SIZE px and a test's time
    "predictor_paper.yaml": [
        "--model.init_args.core.init_args.hidden_size=48",
        "--model.init_args.head.init_args.channels=3",
        "--model.init_args.head.init_args.base_size=4",
        "--model.init_args.head.init_args.kernel_size=13",
    ],
    "predictor.yaml": ["--model.init_args.max_flow=4"],
    "vae_paper.yaml": [
        "--model.init_args.encoder.init_args.hidden_size=32",
        "--model.init_args.decoder.init_args.hidden_size=48",
        "--model.init_args.head.init_args.channels=3",
        "--model.init_args.head.init_args.base_size=4",
        "--model.init_args.head.init_args.kernel_size=13",
        "--model.init_args.z_dim=8",
    ],
    "vae.yaml": [
        "--model.init_args.encoder.init_args.hidden_size=32",
        "--model.init_args.decoder.init_args.hidden_size=48",
        "--model.init_args.head.init_args.channels=3",
        "--model.init_args.head.init_args.kernel_sizes=[13,5]",
        "--model.init_args.head.init_args.base_sizes=[4,4]",
        "--model.init_args.z_dim=8",
    ],
}


def packaged_configs() -> list[str]:
    """Every packaged config's file name."""
    from vidgen.cli import CONFIG_DIR  # here: SMALL is read where the CLI is not installed

    return sorted(path.name for path in CONFIG_DIR.glob("*.yaml"))


def digest(video: Tensor) -> list:
    """``(B, T, C, H, W)`` -> ``(B, T, PROJECTIONS)`` as nested lists: each frame's
    projections on fixed random directions."""
    generator = torch.Generator().manual_seed(1234)
    directions = torch.randn(video[0, 0].numel(), PROJECTIONS, generator=generator)
    return (video.detach().flatten(2).double() @ directions.double()).tolist()


def outputs(model, video: Tensor) -> dict[str, list]:
    """The model's outputs on ``video``, in eval mode, digested."""
    model.eval()
    with torch.no_grad():
        if hasattr(model, "posterior"):  # a VAE: its reconstruction and a prior sample
            generator = torch.Generator().manual_seed(7)
            context = video[:, : model.condition_frames] if model.condition_frames else None
            sample = model.sample(2, video.shape[1], generator=generator, context=context)
            return {"reconstruction": digest(model.reconstruct(video)), "sample": digest(sample)}
        return {"rollout": digest(model(video[:, :4], video.shape[1] - 4))}


SHAPES_ONLY = {"vae_things_demo.yaml"}
"""Configs whose model moves one-colour things over a flat background: in texture it finds none."""


def small_model(config: str, *overrides: str):
    """``config``'s model built through the CLI with the tiny overlay at :data:`SIZE` px,
    random backbone weights and :data:`SMALL`'s overrides (then ``overrides``)."""
    from vidgen.cli import TINY, build  # here: SMALL is read where the CLI is not installed

    args = ["--config", str(TINY), f"--data.init_args.image_size={SIZE}"]
    args += ["--model.init_args.backbone_weights=null", *SMALL.get(config, []), *overrides]
    return build(config, *args).model


def behaviour(config: str) -> dict[str, dict[str, list]]:
    """``config``'s model outputs at initialisation and after :data:`STEPS` optimiser steps,
    on one thread (the order of floating-point sums, hence the last bits, depends on the thread
    count, and block matching's choices on the last bits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(config)
    finally:
        torch.set_num_threads(threads)


def clip(config: str) -> Tensor:
    """The clips ``(2, 8, 3, SIZE, SIZE)`` a config's model is run on: the first two validation
    clips of the embedded textured data, or for :data:`SHAPES_ONLY` of the shapes data."""
    from vidgen import ShapesDataModule, TexturedDataModule

    kind = ShapesDataModule if config in SHAPES_ONLY else TexturedDataModule
    data = kind(image_size=SIZE, frames=8, num_train=2, num_val=2, num_workers=0)
    data.setup("validate")
    return next(iter(data.val_dataloader()))["video"][:2].float() / 255


def run(config: str) -> dict[str, dict[str, list]]:
    """:func:`behaviour`'s work, on the current threads."""
    torch.manual_seed(0)
    model = small_model(config)
    video = clip(config)
    record = {"init": outputs(model, video)}
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    model.train()
    torch.manual_seed(1)
    for step in range(STEPS):
        optimizer.zero_grad()
        model.training_step({"video": video}, step).backward()
        optimizer.step()
    record["trained"] = outputs(model, video)
    return record


if __name__ == "__main__":  # write the record (run at the commit whose behaviour it keeps);
    # `python behaviour.py <config> ...` records only those, keeping the others' entries as they are
    import sys
    import warnings

    warnings.filterwarnings("ignore")
    names = sys.argv[1:]
    record = json.loads(RECORD.read_text()) if names else {}
    record.update({c: behaviour(c) for c in names or packaged_configs()})
    RECORD.write_text(json.dumps(dict(sorted(record.items()))))
    print(f"wrote {RECORD}")
