"""FrozenVGG16: torchvision's VGG16 convolutional features, cut at a named layer and frozen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import vgg16

# Name of each layer of ``vgg16().features`` -> index of that layer; a cut keeps [0, index].
LAYERS: dict[str, int] = {}
_index = 0
for _block, _convs in enumerate((2, 2, 3, 3, 3), start=1):
    for _conv in range(1, _convs + 1):
        LAYERS[f"conv{_block}_{_conv}"] = _index
        LAYERS[f"relu{_block}_{_conv}"] = _index + 1
        _index += 2
    LAYERS[f"pool{_block}"] = _index
    _index += 1

IMAGENET_FILE = "vgg16-397923af.pth"
IMAGENET_URL = f"https://download.pytorch.org/models/{IMAGENET_FILE}"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_weights_path() -> Path:
    """Where torchvision's cache keeps ImageNet VGG16 weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE


def load_vgg16_state(weights: str) -> dict[str, Tensor]:
    """The ``features.*`` tensors of VGG16 weights: ``"imagenet"`` (torch cache) or a file path.

    Never downloads: offline machines get a message naming the file and where to put it.
    """
    path = imagenet_weights_path() if weights == "imagenet" else Path(weights).expanduser()
    if not path.is_file():
        where = (
            f"Download {IMAGENET_URL} on a machine with internet access and copy it to {path} "
            "(or set TORCH_HOME), or pass its path as backbone weights"
            if weights == "imagenet"
            else "Pass an existing VGG16 state-dict file, 'imagenet' (torch cache) or null"
        )
        raise FileNotFoundError(f"VGG16 weights not found at {path}. {where}.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    features = {
        k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")
    }
    if not features:  # a features-only state dict
        features = {k: v for k, v in state.items() if k.split(".")[0].isdigit()}
    if not features:
        raise ValueError(f"{path} holds no VGG16 'features.*' weights")
    return features


class FrozenVGG16(nn.Module):
    """VGG16 features up to ``layer``, ImageNet normalisation inside, never trained.

    Args:
        layer: last layer kept, e.g. ``"pool5"`` (paper: 512x7x7 = 25088 features at 224 px),
            ``"pool3"``, ``"relu2_2"``; see :data:`LAYERS`.
        weights: ``None`` (random init: works offline), ``"imagenet"`` (from the torch cache, see
            :func:`imagenet_weights_path`) or a path to a VGG16 state dict.

    Input: float frames ``(N, 3, H, W)`` in [0, 1]. Output: ``(N, C, H / 2**p, W / 2**p)``.
    The module stays in eval mode and its parameters never require grad, also after a parent's
    ``.train()``; gradients still flow to the input (perceptual loss, rollout training).
    """

    def __init__(self, layer: str = "pool5", weights: str | None = None) -> None:
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown VGG16 layer {layer!r}; choose one of {', '.join(LAYERS)}")
        self.layer = layer
        self.weights = weights
        features = vgg16(weights=None).features[: LAYERS[layer] + 1]
        for module in features:  # taps must not be overwritten by a following in-place ReLU
            if isinstance(module, nn.ReLU):
                module.inplace = False
        if weights is not None:
            state = load_vgg16_state(weights)
            features.load_state_dict({k: v for k, v in state.items() if k in features.state_dict()})
        self.features = features
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenVGG16:
        """Always eval: a frozen feature extractor has no training mode."""
        return super().train(False)

    @property
    def out_channels(self) -> int:
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels

    def feature_shape(self, image_size: int) -> tuple[int, int, int]:
        """``(C, h, w)`` of the output for square ``image_size`` frames."""
        pools = sum(isinstance(m, nn.MaxPool2d) for m in self.features)
        side = image_size
        for _ in range(pools):
            side //= 2
        if side < 1:
            raise ValueError(
                f"{image_size} px frames vanish before {self.layer}; use larger images"
            )
        return self.out_channels, side, side

    def forward(self, frames: Tensor) -> Tensor:
        return self.features((frames - self.mean) / self.std)

    def taps(self, frames: Tensor, layers: Sequence[str]) -> list[Tensor]:
        """Activations at several named layers (each at or before ``self.layer``), in one pass."""
        wanted = {LAYERS[name]: name for name in layers}
        if max(wanted) >= len(self.features):
            raise ValueError(f"layers {list(layers)} reach past the backbone's cut at {self.layer}")
        out, x = {}, (frames - self.mean) / self.std
        for i, module in enumerate(self.features[: max(wanted) + 1]):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
        return [out[name] for name in layers]
