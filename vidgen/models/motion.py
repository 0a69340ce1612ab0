"""MotionProposal: the motion seen in the last two frames, as a flow at full resolution.

The frozen backbone sees one frame at a time, coarsely (8 x 8 maps at pool2 and 32 px), and the
core has to infer from features of consecutive frames that barely differ where things move: in
short runs it hardly learns more than copy-last-frame at the first step. A frame difference says
it at the pixel: its sign along an edge gives the direction of motion (MCnet's motion encoder,
Villegas et al. 2017, reads differences too). This small conv net maps
``[frame, frame - previous]`` to flow logits at the frame's own resolution; dilated layers see
~20 px around each pixel. Its last layer starts at zero (no proposal: copy-last).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MotionProposal(nn.Module):
    """``(frames, previous)``, each ``(N, C, H, W)`` -> flow logits ``(N, 2, H, W)``.

    Args:
        frame_channels: C, 3 for RGB.
        hidden: width of the conv layers.
    """

    def __init__(self, frame_channels: int = 3, hidden: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 2 * frame_channels
        for dilation in (1, 2, 4, 1):
            layers += [nn.Conv2d(width, hidden, 3, padding=dilation, dilation=dilation), nn.ReLU()]
            width = hidden
        layers.append(nn.Conv2d(hidden, 2, 3, padding=1))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, frames: Tensor, previous: Tensor) -> Tensor:
        return self.net(torch.cat([frames, frames - previous], dim=1))
