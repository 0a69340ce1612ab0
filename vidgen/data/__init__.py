"""Data: clip sampling, the embedded shapes dataset, UCF101 and the LightningDataModules.

``vidgen.data.video`` (decord/PyAV) is not imported here: it loads them lazily.
"""

from vidgen.data.datamodule import (
    ShapesDataModule,
    TexturedDataModule,
    UCF101DataModule,
    VideoDataModule,
)
from vidgen.data.sampling import ClipSampler, clip_indices
from vidgen.data.shapes import ShapesVideos
from vidgen.data.textured import TexturedVideos

__all__ = [
    "ClipSampler",
    "ShapesDataModule",
    "ShapesVideos",
    "TexturedDataModule",
    "TexturedVideos",
    "UCF101DataModule",
    "VideoDataModule",
    "clip_indices",
]
