"""vidgen: video prediction and generation with frozen VGG16 features, LSTMs and deconvolutions."""

from vidgen.data import (
    ShapesDataModule,
    ShardDataModule,
    TexturedDataModule,
    UCF101DataModule,
    VideoDataModule,
    VideoFolderDataModule,
)
from vidgen.models import (
    FramePredictor,
    FrozenVGG16,
    LayerMotionVAE,
    MotionPredictor,
    MotionVAE,
    MultiScaleHead,
    SimVP,
    ThingMotionVAE,
    VideoVAE,
)

__all__ = [
    "FramePredictor",
    "FrozenVGG16",
    "LayerMotionVAE",
    "MotionPredictor",
    "MotionVAE",
    "MultiScaleHead",
    "ShapesDataModule",
    "ShardDataModule",
    "SimVP",
    "TexturedDataModule",
    "ThingMotionVAE",
    "UCF101DataModule",
    "VideoDataModule",
    "VideoFolderDataModule",
    "VideoVAE",
]
__version__ = "0.2.0"
