"""MotionPredictor: vidgen's predictor, which moves the last true frame's pixels instead of
painting new ones.

The paper's predictor paints every frame from coarse features: its predictions blur and fade
into the background within a few steps. This one predicts motion and keeps the pixels:

1. **Observed motion.** The velocity of every pixel of the last true frame is read from the
   context by block matching (:func:`~vidgen.models.motion_estimation.observed_velocity`),
   optionally explained by a few motion layers (``motion_layers``) so a thing's pixels share
   one motion. It seeds the first step's flow whole, in the clips where it explains the
   context itself (:meth:`~MotionPredictor.motion_explained`: each of the last two context
   frames is predicted better by moving the frame before along the motion seen up to it than by
   copying it), and not at all elsewhere: motion is all or nothing per clip, as a scaled
   velocity would both misplace pixels and blur them.
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

Untrained (the change gate 0) it is the classical motion (observed motion and momentum, the
:meth:`~MotionPredictor.classical` rollout) where that explains the context, copy-last-frame
elsewhere. It trains as it is evaluated: on its own rollouts. Training can still overfit a few
clips, so what the model predicts (:meth:`~MotionPredictor.rollout`) keeps the learned change
only while the last validation found it at least as good as the classical rollout at every
horizon step (PSNR and SSIM; ``val/trusted`` in the logs), and falls back on the last frame
for a clip whose own context the rollout does not explain better than copying does
(:meth:`~MotionPredictor.explains`). On the validation clips, the trained model is never below
its untrained self.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
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
CHECKED_FRAMES = 2  # the last context frames that the observed motion must each explain
LEARNED, CLASSICAL = "learned", "classical"  # validation's groups of results of the guarded
# rollouts with and without the learned change

Roll = Callable[[Tensor, int], Tensor]
"""A rollout: ``(context, horizon) -> frames``."""
SPLAT_SHARPNESS = 1.0  # where splatted pixels collide, the weight of one is exp(this x its speed
# relative to the clip's median motion): what moves against the camera's motion is in front
HEAD_INIT = 0.01  # standard deviation of the flow head's last weights at initialisation


def fp32(device: torch.device) -> AbstractContextManager:
    """A context with autocast off on ``device`` (nothing to turn off on ``meta``)."""
    return nullcontext() if device.type == "meta" else torch.autocast(device.type, enabled=False)


def beats_copy(pred: Tensor, truth: Tensor, copy: Tensor) -> Tensor:
    """``(B,)`` bool: the clips in which ``pred`` is at least as close to ``truth`` as ``copy``
    is, on MSE and on SSIM, at every frame (each ``(B, T, C, H, W)``)."""
    mse = frame_mse(pred, truth) <= frame_mse(copy, truth)
    return (mse & (frame_ssim(pred, truth) >= frame_ssim(copy, truth))).all(1)


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

    def classical(self, context: Tensor, horizon: int) -> Tensor:
        """The rollout of the observed motion and momentum alone (no learned change): what the
        untrained model predicts, and what a trained one falls back on."""
        source, seen = context[:, -1:], self.observed(context)
        motion, frames, still = None, [], torch.zeros_like(seen)
        for _ in range(horizon):
            motion = self.advance(motion, still, seen)
            frames.append(self.move(source, motion))
        return torch.cat(frames, dim=1)

    def rollout(self, context: Tensor, horizon: int) -> Tensor:
        """What the model predicts (test, ``vidgen predict``): its rollout with the learned
        change if the last validation trusted that (:attr:`trusted`), else the
        :meth:`classical` one; either :meth:`guarded` per clip by the clip's own context."""
        learned = self.guarded(self, context, self(context, horizon))
        classical = self.guarded(self.classical, context, self.classical(context, horizon))
        return self.trusted * learned + (1 - self.trusted) * classical

    def guarded(self, roll: Roll, context: Tensor, pred: Tensor) -> Tensor:
        """``pred``, ``roll``'s rollout of ``context``, in the clips that ``roll``
        :meth:`explains`; copy-last-frame in the others."""
        keep = self.explains(roll, context)
        return keep * pred + (1 - keep) * context[:, -1:]

    def explains(self, roll: Roll, context: Tensor) -> Tensor:
        """``(B, 1, 1, 1, 1)``: 1 for the clips whose last context frame ``roll`` predicts from
        the frames before it at least as well as copying the one before does (MSE and SSIM),
        0 for the others; 1 for a context of one frame (nothing to check). Where a rollout does
        not explain the context itself, it is not trusted to predict what follows."""
        if context.shape[1] < 2:
            return context.new_ones(context.shape[0], 1, 1, 1, 1)
        better = beats_copy(roll(context[:, :-1], 1), context[:, -1:], context[:, -2:-1])
        return better.to(context.dtype).view(-1, 1, 1, 1, 1)

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Score the rollout (as every predictor) and, beside it, the two candidates of
        :meth:`rollout`: the learned and the :meth:`classical` one, each :meth:`guarded`."""
        out = self.evaluate("val", batch)
        context, target = out["context"], out["target"]
        learned = self.guarded(self, context, out["pred"])
        classical = self.guarded(self.classical, context, self.classical(context, target.shape[1]))
        self.update_metrics(f"val/{LEARNED}", learned, target, context)
        self.update_metrics(f"val/{CLASSICAL}", classical, target, context)
        return out

    def on_validation_epoch_end(self) -> None:
        """Trust the learned change only if, on the validation clips, the guarded rollout with
        it is at least as good as the guarded :meth:`classical` one (what the untrained model
        predicts) on PSNR and SSIM at every horizon step."""
        results = self.summarise("val")
        if results:
            learned, classical = f"{LEARNED}/model", f"{CLASSICAL}/model"
            psnr = (results[f"{learned}/psnr"] >= results[f"{classical}/psnr"]).all()
            ssim = (results[f"{learned}/ssim"] >= results[f"{classical}/ssim"]).all()
            self.trusted.copy_((psnr & ssim).to(self.trusted))
            self.log("val/trusted", self.trusted, sync_dist=False)

    def observed(self, context: Tensor) -> Tensor:
        """The velocity seen at the last context frame, ``(B, 1, 2, H, W)`` pixels a step, in
        the clips where it explains the context (:meth:`motion_explained`), 0 in the others."""
        return self.velocity(context) * self.motion_explained(context)

    def velocity(self, context: Tensor) -> Tensor:
        """The velocity seen at the last of ``context``'s frames, ``(B, 1, 2, H, W)``."""
        seen = observed_velocity(context.detach(), MOTION_SPAN, self.max_flow)
        if self.layers:
            seen = motion_layers(seen, texture(context[:, -1].detach()), self.layers)
        return seen[:, None]

    @torch.no_grad()
    def motion_explained(self, context: Tensor) -> Tensor:
        """``(B, 1, 1, 1, 1)``: 1 for the clips in which each of the last
        :data:`CHECKED_FRAMES` context frames is predicted at least as well (MSE and SSIM) by
        moving the frame before along the velocity seen up to that frame as by copying it, else
        0; 1 where the context is too short to check (fewer than 3 frames). Decided in fp32
        under any autocast: near ties must not flip with the precision."""
        ok = torch.ones(context.shape[0], dtype=torch.bool, device=context.device)
        with fp32(context.device):
            frames = context.float()
            for end in range(frames.shape[1], max(frames.shape[1] - CHECKED_FRAMES, 2), -1):
                before, truth = frames[:, end - 2 : end - 1], frames[:, end - 1 : end]
                seen = self.velocity(frames[:, : end - 1])
                ok &= beats_copy(self.move(before, Motion(seen, seen, seen, seen)), truth, before)
        return ok.to(context.dtype).view(-1, 1, 1, 1, 1)

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
