"""vidgen: video prediction and generation with frozen VGG16 features, LSTMs and deconvolutions."""

from vidgen.data import ShapesDataModule, VideoDataModule
from vidgen.models import FramePredictor, FrozenVGG16

__all__ = ["FramePredictor", "FrozenVGG16", "ShapesDataModule", "VideoDataModule"]
__version__ = "0.1.0"
