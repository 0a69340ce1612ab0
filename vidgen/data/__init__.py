"""Data: clip sampling, the embedded shapes datasets, video files (UCF101, any folder), a fake
UCF101 to try them on (:func:`make_corpus`), LitData shards of file sources and the
LightningDataModules.

The decoders (decord, TorchCodec, PyAV) are imported lazily, when a video is first read.
"""

from vidgen.data.datamodule import ShapesDataModule, TexturedDataModule, VideoDataModule
from vidgen.data.fake_ucf101 import Corpus, make_corpus, read_number
from vidgen.data.file_source import VideoFileDataModule
from vidgen.data.folder import VideoFolderDataModule
from vidgen.data.sampling import ClipSampler, clip_indices
from vidgen.data.shapes import ShapesVideos
from vidgen.data.streaming import ShardDataModule
from vidgen.data.textured import TexturedVideos
from vidgen.data.ucf101 import UCF101DataModule

__all__ = [
    "ClipSampler",
    "Corpus",
    "ShapesDataModule",
    "ShapesVideos",
    "ShardDataModule",
    "TexturedDataModule",
    "TexturedVideos",
    "UCF101DataModule",
    "VideoDataModule",
    "VideoFileDataModule",
    "VideoFolderDataModule",
    "clip_indices",
    "make_corpus",
    "read_number",
]
