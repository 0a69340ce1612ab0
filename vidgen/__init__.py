"""vidgen: video prediction and generation with frozen VGG16 features, LSTMs and deconvolutions."""

from vidgen.data import ShapesDataModule, UCF101DataModule, VideoDataModule
from vidgen.models import FramePredictor, FrozenVGG16

__all__ = [
    "FramePredictor",
    "FrozenVGG16",
    "ShapesDataModule",
    "UCF101DataModule",
    "VideoDataModule",
]
__version__ = "0.1.0"
