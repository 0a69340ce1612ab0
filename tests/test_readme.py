"""README.md stays a true user's guide: its Python example runs and builds what it says (the
model and data of ``demo.yaml``), it fits in 200 lines, and its config table lists every
packaged config."""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import torch

from vidgen.cli import CONFIG_DIR, build

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = re.compile(r"<!-- example:start -->\n```python\n(.*?)```\n<!-- example:end -->", re.S)
SHRINK = {  # README text -> what the test runs instead (each must occur exactly once)
    "batch_size=16": "batch_size=2",
    "num_train=512, num_val=64, num_test=128, num_workers=1": "num_train=4, num_val=2, "
    "num_test=2, num_workers=0",
    "max_epochs=12, logger=False": "max_epochs=1, logger=False, limit_train_batches=2, "
    "limit_val_batches=1, limit_test_batches=1, num_sanity_val_steps=0, "
    "enable_progress_bar=False, enable_model_summary=False",
}


def example() -> str:
    found = EXAMPLE.findall(README.read_text())
    assert len(found) == 1, "README.md needs one ```python block between the example markers"
    return found[0]


def shrunk(code: str) -> str:
    for text, small in SHRINK.items():
        assert code.count(text) == 1, f"the README example no longer says {text!r}"
        code = code.replace(text, small)
    return code


def test_readme_is_at_most_200_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_lists_every_packaged_config():
    text = README.read_text()
    rows = set(re.findall(r"^\| `([\w.]+\.yaml)` \|", text, re.M))
    packaged = {p.name for p in CONFIG_DIR.glob("*.yaml")}
    assert packaged <= rows, f"missing from README's config table: {sorted(packaged - rows)}"
    assert rows <= packaged, f"not packaged: {sorted(rows - packaged)}"


def test_readme_example_runs_and_builds_what_demo_yaml_builds(tmp_path, monkeypatch):
    """The example, shrunk (fewer clips and steps), runs top to bottom; its model and data are
    the ones ``demo.yaml`` builds, and its rollout has the shape it claims."""
    monkeypatch.chdir(tmp_path)  # the Trainer's checkpoints land here
    L.seed_everything(0)
    scope: dict = {}
    exec(compile(shrunk(example()), "README.md example", "exec"), scope)
    assert scope["future"].shape == (2, 16, 3, 32, 32)
    assert scope["future"].min() >= 0 and scope["future"].max() <= 1

    model, data = scope["model"], scope["data"]
    built = build("demo", "--trainer.logger=false")
    packaged, packaged_data = built.model, built.datamodule
    assert type(model) is type(packaged)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in packaged.state_dict().items()}
    for name in ("image_size", "context_frames", "max_flow", "splat", "layers", "channels_last"):
        assert getattr(model, name) == getattr(packaged, name), name
    assert model.backbone.layer == packaged.backbone.layer
    assert model.loss.weights == packaged.loss.weights
    assert model.hparams["backbone_weights"] == packaged.hparams["backbone_weights"]
    ours, theirs = model.optimizer(model.parameters()), packaged.optimizer(packaged.parameters())
    assert type(ours) is type(theirs) and ours.defaults["lr"] == theirs.defaults["lr"]
    assert packaged.lr_scheduler is None and model.lr_scheduler is None

    assert type(data) is type(packaged_data)
    for name in ("image_size", "frames", "eval_frames", "frame_skip", "sampling"):
        assert getattr(data, name) == getattr(packaged_data, name), name
    readme = example()
    assert packaged_data.batch_size == 16 and "batch_size=16" in readme
    assert packaged_data.num_workers == 1 and "num_workers=1" in readme
    assert packaged_data.sizes == {"train": 512, "val": 64, "test": 128}
    assert built.trainer.max_epochs == 12 and "max_epochs=12" in readme
    assert torch.is_tensor(scope["video"])
