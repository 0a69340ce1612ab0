"""Data: clip sampling, the embedded shapes dataset and the LightningDataModules."""

from vidgen.data.datamodule import ShapesDataModule, VideoDataModule
from vidgen.data.sampling import ClipSampler, clip_indices
from vidgen.data.shapes import ShapesVideos

__all__ = ["ClipSampler", "ShapesDataModule", "ShapesVideos", "VideoDataModule", "clip_indices"]
