"""Models: the paper's FramePredictor and VideoVAE, vidgen's MotionPredictor, MotionVAE,
ThingMotionVAE and LayerMotionVAE, the learned peer SimVP, and what they are built from (frozen
backbone, recurrent cores, heads, losses)."""

from vidgen.models.backbone import FrozenVGG16
from vidgen.models.deconv import Deconv2d
from vidgen.models.heads import FrameHead, MultiScaleHead, UpsampleDeconvHead
from vidgen.models.layer_vae import LayerMotionVAE
from vidgen.models.losses import VideoLoss, kl_divergence
from vidgen.models.motion_predictor import MotionPredictor
from vidgen.models.motion_vae import MotionVAE
from vidgen.models.predictor import FramePredictor
from vidgen.models.recurrent import ConvLSTMCore, LSTMCore, SequenceCore
from vidgen.models.simvp import SimVP
from vidgen.models.thing_vae import ThingMotionVAE
from vidgen.models.vae import VideoVAE

__all__ = [
    "ConvLSTMCore",
    "Deconv2d",
    "FrameHead",
    "FramePredictor",
    "FrozenVGG16",
    "LSTMCore",
    "LayerMotionVAE",
    "MotionPredictor",
    "MotionVAE",
    "MultiScaleHead",
    "SequenceCore",
    "SimVP",
    "ThingMotionVAE",
    "UpsampleDeconvHead",
    "VideoLoss",
    "VideoVAE",
    "kl_divergence",
]
