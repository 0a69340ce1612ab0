"""MotionPredictor: vidgen's predictor, which moves the last true frame's pixels instead of
painting new ones.

The paper's predictor paints every frame from coarse features: its predictions blur and fade
into the background within a few steps. This one predicts motion and keeps the pixels:

1. **Observed motion.** The velocity of every pixel of the last true frame is read from the
   context by block matching (:func:`~vidgen.models.motion_estimation.observed_velocity`),
   optionally explained by a few motion layers (``motion_layers``) so a thing's pixels share
   one motion. A learned gate (zero at initialisation) scales it into the first step's flow.
2. **Momentum.** Each later step's flow is the previous one carried along itself: things keep
   moving at the same velocity (constant motion is the prior: camera pans, thrown balls).
3. **A learned change.** The recurrent core reads the backbone features of each frame (the
   true context, then its own predictions) and the head emits a 2-channel flow change
   (``tanh * max_flow`` pixels a step) added to the momentum, times a learned change gate that
   starts at 0. Adam moves every weight by about the learning rate a step: a head whose
   thousands of weights all start at 0 would swing the flow by pixels within ten steps, and the
   change accumulates over a rollout; a single gate grows the change a little a step.
4. **Moving pixels.** Every frame is the last true frame warped along the flow accumulated since
   it (:func:`~vidgen.models.motion_transport.compose_flows`): pixels are resampled once, so no
   blur piles up. With ``splat``, each pixel also carries its own velocity and is splatted
   forward to where it has moved (:func:`~vidgen.models.motion_transport.splat_over`): a moving
   thing stays whole and what it uncovers is filled with what is behind it.

Untrained (both gates 0) it predicts copy-last-frame exactly; training moves it away from that
only where that lowers the loss. It trains as it is evaluated: on its own rollouts. Training
can still overfit a few clips, and motion seen in a few frames can mislead: what the model
predicts (:meth:`rollout`) falls back on the last frame for a clip whose own context it does
not explain better than copying does (:meth:`explains`), and for every clip while the last
validation found the rollout worse than copy-last-frame at any horizon step (PSNR or SSIM;
``val/trusted`` in the logs).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from vidgen.evaluation import frame_mse, frame_ssim
from vidgen.models.base import CoreFactory, HeadFactory, adam
from vidgen.models.heads import UpsampleDeconvHead
from vidgen.models.motion_estimation import motion_layers, observed_velocity, texture
from vidgen.models.motion_transport import compose_flows, splat_over, warp
from vidgen.models.recurrent import ConvLSTMCore
from vidgen.models.rollout import RolloutModule

MOTION_SPAN = 3  # frames between the two context frames whose match gives the observed velocity
SPLAT_SHARPNESS = 1.0  # where splatted pixels collide, the weight of one is exp(this x its speed
# relative to the clip's median motion): what moves against the camera's motion is in front
HEAD_INIT = 0.01  # standard deviation of the flow head's last weights at initialisation
GATE_SCALE = 30.0  # the motion gate is this times its parameter: Adam moves a parameter by
# about the learning rate a step, and the gate has to travel from 0 to ~1 in tens of steps


class Motion(NamedTuple):
    """The flows of a rollout after a step, each ``(B, 1, 2, H, W)`` in pixels: ``step`` moved
    the previous frame to the new one, ``total`` moves the last true frame to it; ``velocity``
    and ``offset``, at each pixel of the last true frame, are the velocity and the displacement
    so far of what was there."""

    step: Tensor
    total: Tensor
    velocity: Tensor
    offset: Tensor


class MotionPredictor(RolloutModule):
    """Next-frame prediction by moving the last true frame's pixels along observed motion,
    momentum and a learned change. The shared options (``**kwargs``) are
    :class:`~vidgen.models.base.VideoModule`'s.

    Args:
        core: builds the recurrent core from the per-frame feature shape (a
            :class:`~vidgen.models.ConvLSTMCore` keeps the feature map's layout).
        head: builds the flow head from ``(core.out_shape, image_size)``; it emits 2 channels.
        context_frames: true frames seen before a rollout (training and evaluation).
        max_flow: the largest displacement, pixels a step, of a step's flow and of the motion
            that block matching looks for.
        splat: move each pixel of the last true frame on its own velocity and splat it forward
            (things stay whole), instead of only warping the frame backward.
        motion_layers: replace the observed velocity by its fit of this many motion layers
            (:func:`~vidgen.models.motion_estimation.motion_layers`; 0: the raw velocity).
    """

    default_optimizer = staticmethod(adam)

    def __init__(
        self,
        core: CoreFactory = ConvLSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        context_frames: int = 4,
        max_flow: float = 4.0,
        splat: bool = False,
        motion_layers: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["loss"])
        if context_frames < 1 or max_flow <= 0 or motion_layers < 0:
            raise ValueError(
                "context_frames must be >= 1, max_flow > 0 and motion_layers >= 0, got "
                f"{context_frames}, {max_flow}, {motion_layers}"
            )
        self.core = core(self.feature_shape)
        self.motion_gate = nn.Parameter(torch.zeros(()))
        self.head = head(self.core.out_shape, self.image_size, out_channels=2)
        for layer in self.head.output_layers():  # small, not zero: the change gate gets gradients
            nn.init.normal_(layer.weight, std=HEAD_INIT)
            nn.init.zeros_(layer.bias)
        self.change_gate = nn.Parameter(torch.zeros(()))
        self.register_buffer("trusted", torch.ones(()))
        self.context_frames = context_frames
        self.max_flow = max_flow
        self.splat = splat
        self.layers = motion_layers

    def forward(self, context: Tensor, horizon: int, ids: Tensor | None = None) -> Tensor:
        """Roll out ``horizon`` frames after ``context`` ``(B, T, C, H, W)``."""
        self.check_rollout(context, horizon)
        source = context[:, -1:]
        seen = self.observed(context)
        out, state = self.core(self.encode(context, ids))
        out, motion, frames = out[:, -1:], None, []
        for step in range(horizon):
            if step:
                out, state = self.core(self.encode(frames[-1]), state)
            flow = torch.tanh(self.render(self.head.logits, out)) * self.max_flow
            change = self.change_gate * flow
            motion = self.advance(motion, change, seen)
            frames.append(self.move(source, motion))
        return torch.cat(frames, dim=1)

    def rollout(self, context: Tensor, horizon: int) -> Tensor:
        """What the model predicts (test, ``vidgen predict``): for each clip its rollout, or
        copy-last-frame where the clip's own context says the rollout is worse than that
        (:meth:`explains`), or everywhere if the last validation found it worse on the
        validation clips (:attr:`trusted` is 0)."""
        pred = self(context, horizon)
        keep = self.trusted * self.explains(context)
        return keep * pred + (1 - keep) * context[:, -1:]

    def explains(self, context: Tensor) -> Tensor:
        """``(B, 1, 1, 1, 1)``: 1 for the clips whose last context frame the model predicts from
        the frames before it at least as well as copying the one before does (MSE and SSIM),
        0 for the others; 1 for a context of one frame (nothing to check). A rollout's first
        step is made of the motion seen in the context: where that motion does not explain the
        context itself, it is not trusted to predict what follows."""
        if context.shape[1] < 2:
            return context.new_ones(context.shape[0], 1, 1, 1, 1)
        truth, copy = context[:, -1:], context[:, -2:-1]
        check = self(context[:, :-1], 1)
        better = (frame_mse(check, truth) <= frame_mse(copy, truth)) & (
            frame_ssim(check, truth) >= frame_ssim(copy, truth)
        )
        return better.to(context.dtype).view(-1, 1, 1, 1, 1)

    def on_validation_epoch_end(self) -> None:
        """Trust the rollout only if, on the validation clips, it is at least as good as
        copy-last-frame (the untrained model) on PSNR and SSIM at every horizon step."""
        results = self.summarise("val")
        if results:
            psnr = (results["model/psnr"] >= results["copy_last/psnr"]).all()
            ssim = (results["model/ssim"] >= results["copy_last/ssim"]).all()
            self.trusted.copy_((psnr & ssim).to(self.trusted))
            self.log("val/trusted", self.trusted, sync_dist=False)

    def observed(self, context: Tensor) -> Tensor:
        """The velocity seen at the last context frame, ``(B, 1, 2, H, W)`` pixels a step, times
        the motion gate."""
        seen = observed_velocity(context.detach(), MOTION_SPAN, self.max_flow)
        if self.layers:
            seen = motion_layers(seen, texture(context[:, -1].detach()), self.layers)
        return GATE_SCALE * self.motion_gate * seen[:, None]

    def advance(self, motion: Motion | None, change: Tensor, seen: Tensor) -> Motion:
        """The :class:`Motion` after one more step with the head's flow ``change``: the first
        step's flow is the ``seen`` velocity plus the change; a later step's is the previous
        step's carried along itself plus the change (momentum). Each pixel of the last true
        frame keeps its velocity plus the change where it is now."""
        limit = self.max_flow
        if motion is None:
            step = (seen + change).clamp(-limit, limit)
            return Motion(step, step, step, step)
        step = (warp(motion.step, motion.step) + change).clamp(-limit, limit)
        here = warp(change, -motion.offset)  # the change at each pixel's place now
        velocity = (motion.velocity + here).clamp(-limit, limit)
        return Motion(step, compose_flows(motion.total, step), velocity, motion.offset + velocity)

    def move(self, source: Tensor, motion: Motion) -> Tensor:
        """The last true frame ``source`` ``(B, 1, C, H, W)`` moved by ``motion``: warped along
        its total flow, or (``splat``) each pixel splatted to its offset, the warped frame
        showing only where nothing lands at all."""
        warped = warp(source, motion.total)
        if not self.splat:
            return warped
        return splat_over(source, motion.offset, motion.velocity, warped, SPLAT_SHARPNESS)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self.rollout_loss(batch)
