"""``vidgen prepare``: the LitData shards of a config's file source (:mod:`vidgen.data.shards`).

The source is the ``data:`` section of one or more ``--config`` files (any other section, the
model's or the trainer's, is ignored), or ``--data <class>`` with its arguments, with the same
``--data.init_args.<name>`` overrides as ``vidgen fit``::

    vidgen prepare --config vidgen/configs/predictor.yaml --data.init_args.root /data/UCF101 \\
        --output s3://bucket/ucf101_224px

Then train on the shards with ``--data vidgen.ShardDataModule --data.root <output>``
(``docs/streaming.md``).
"""

from __future__ import annotations

import json

import yaml
from jsonargparse import ArgumentParser

from vidgen.cli import config_path
from vidgen.data.file_source import VideoFileDataModule
from vidgen.data.shards import write_shards
from vidgen.errors import SETUP_ERRORS, VidgenUserError, describe


def make_parser() -> ArgumentParser:
    """The arguments of ``vidgen prepare`` (``--config`` is read first: :func:`split_configs`)."""
    parser = ArgumentParser(
        prog="vidgen prepare",
        description="Decode a file source into LitData shards (skips the parts already done). "
        "--config FILE (repeatable) reads the data: section of a vidgen config.",
    )
    parser.add_subclass_arguments(VideoFileDataModule, "data", required=True)
    parser.add_argument("--output", required=True, help="a folder or a bucket URL (s3://...)")
    parser.add_argument("--workers", type=int | None, default=None, help="decoding processes")
    parser.add_argument("--videos_per_part", type=int, default=64, help="videos a part commits")
    parser.add_argument("--progress", type=bool, default=True, help="show a progress bar")
    return parser


def split_configs(args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` -> (the ``--config`` files, the other arguments)."""
    configs, rest = [], []
    values = iter(args)
    for arg in values:
        if arg == "--config":
            configs.append(next(values, ""))
        elif arg.startswith("--config="):
            configs.append(arg.removeprefix("--config="))
        else:
            rest.append(arg)
    return configs, rest


def data_args(configs: list[str]) -> list[str]:
    """``--data <section>`` for the ``data:`` section of each config (a file or a packaged
    config's name), in order."""
    args = []
    for config in configs:
        section = (yaml.safe_load(config_path(config).read_text()) or {}).get("data")
        if section is not None:
            args += ["--data", json.dumps(section)]
    return args


def main(args: list[str]) -> dict[str, int]:
    """Run ``vidgen prepare`` on ``args`` (what follows ``prepare``) -> the counts of
    :func:`~vidgen.data.shards.write_shards`."""
    parser = make_parser()
    configs, rest = split_configs(args)
    config = parser.parse_args(data_args(configs) + rest)
    try:
        source = parser.instantiate_classes(config).data
        counts = write_shards(
            source, config.output, config.workers, config.videos_per_part, config.progress
        )
    except SETUP_ERRORS as err:
        raise VidgenUserError(describe(err)) from err
    print(
        f"vidgen prepare: {counts['videos']} videos in {counts['parts']} parts at "
        f"{config.output} ({counts['written_videos']} written now)"
    )
    return counts
