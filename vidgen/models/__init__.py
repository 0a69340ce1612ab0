"""Models: frozen backbone, recurrent cores, heads, losses and the LightningModules."""

from vidgen.models.backbone import FrozenVGG16
from vidgen.models.deconv import Deconv2d
from vidgen.models.heads import FrameHead, MultiScaleHead, UpsampleDeconvHead
from vidgen.models.losses import VideoLoss, kl_divergence
from vidgen.models.predictor import FramePredictor
from vidgen.models.recurrent import ConvLSTMCore, LSTMCore, SequenceCore
from vidgen.models.vae import VideoVAE

__all__ = [
    "ConvLSTMCore",
    "Deconv2d",
    "FrameHead",
    "FramePredictor",
    "FrozenVGG16",
    "LSTMCore",
    "MultiScaleHead",
    "SequenceCore",
    "UpsampleDeconvHead",
    "VideoLoss",
    "VideoVAE",
    "kl_divergence",
]
