"""FramePredictor: frame t in, frame t+1 out (paper section 2.3).

Each frame goes through the frozen VGG16; a recurrent core carries the sequence; a head turns
each step's output back into a frame. Training is teacher-forced next-frame prediction (the
paper) or, with ``train_rollout=True``, the evaluation protocol itself: see ``context_frames``
true frames, then feed back its own predictions. Evaluation always rolls out from
``context_frames`` true frames for as many steps as the clip has left, which may be longer than
the training clips.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn

from vidgen.models.base import CoreFactory, HeadFactory, VideoModule, paper_adam
from vidgen.models.heads import SkipRefine, UpsampleDeconvHead, clamp_unit
from vidgen.models.losses import VideoLoss
from vidgen.models.motion import compose_flows, observed_velocity, splat_over, texture, warp
from vidgen.models.motion_layers import motion_layers
from vidgen.models.recurrent import LSTMCore

RESIDUAL_EPS = 0.01  # previous frames are clamped to [eps, 1 - eps] before their logit
OUTPUT_CHANNELS = {"frame": 3, "residual": 3, "warp": 2}  # what the head emits per output mode
COMPOSITE_CHANNELS = 4  # a gate and RGB pixels, after the flow, with ``composite=True``
MOTION_SPAN = 3  # observed_motion: frames between the two context frames matched
SPLAT_SHARPNESS = 1.0  # splat=True: a pixel's weight where several land is exp(this x its
# speed, pixels a step, relative to the clip's median motion): what moves against the camera's
# motion is in front (1, 3 and 10 measured on constant-velocity extrapolation: 1 scores best)
GATE_SCALE = 30.0  # the motion gate is this times its parameter: Adam moves a parameter by
# about the learning rate a step, and the gate has to travel from 0 to ~1 in tens of steps


class Motion(NamedTuple):
    """A rollout's flows after a step, each ``(B, 1, 2, H, W)``: ``step`` moved the previous
    frame to the new one, ``total`` moves the warp source (the last context frame with
    ``warp_from="context"``, else the previous frame) to it. With ``splat``: ``velocity`` and
    ``offset``, at each pixel of the warp source, are the velocity and the displacement so far
    of what was there."""

    step: Tensor
    total: Tensor
    velocity: Tensor | None = None
    offset: Tensor | None = None


class FramePredictor(VideoModule):
    """Next-frame prediction with a frozen VGG16, a recurrent core and a deconvolution head.

    Args:
        image_size: frame side in pixels (linked to ``data.image_size`` by the CLI).
        backbone_layer: VGG16 cut, e.g. ``"pool5"`` (paper) or ``"pool3"``.
        backbone_weights: ``None`` (random), ``"imagenet"`` (torch cache) or a file path.
        core: builds the core from the per-frame feature shape, e.g. ``LSTMCore`` or
            ``functools.partial(ConvLSTMCore, hidden_channels=64)``; in YAML a ``class_path``
            with ``init_args`` lacking ``in_shape``.
        head: builds the head from ``(core.out_shape, image_size)``.
        context_frames: true frames seen before the rollout at evaluation.
        train_rollout: train on rollouts from ``context_frames`` instead of teacher forcing.
        output: what the head's output means. ``"frame"`` (paper): the next frame itself.
            ``"residual"``: a change of the previous frame, added in logit space, so an untrained
            model starts at copy-last-frame. ``"warp"``: a 2-channel flow field (at most
            ``max_flow`` pixels a step) that moves the previous frame's pixels (bilinear
            sampling): motion stays sharp and cannot fade into the background. Both start from
            a zeroed head output: the untrained model predicts copy-last-frame exactly, and
            training moves it away only where that lowers the loss.
        max_flow: the largest displacement, in pixels per step, of ``output="warp"``.
        warp_from: ``"previous"``: each step warps the frame before it (its own prediction in a
            rollout). ``"context"``: every step warps the last true frame along the flow
            accumulated since it (:func:`compose_flows`), so pixels are resampled once, not once
            a step: no interpolation blur piles up over a long rollout.
        composite: with ``output="warp"``, the head also emits a gate and RGB pixels; the frame
            is ``warped + gate * (pixels - warped)`` (gate and pixels clipped to [0, 1]): new
            pixels where warping has none to move (disocclusions, borders; Finn et al. 2016).
        momentum: with ``output="warp"``, each step's flow starts from the previous step's,
            carried along itself, and the head adds a change: things keep moving at the same
            velocity unless the model sees a reason to change it (constant motion is the prior,
            as for a camera pan or a thrown ball). Needs ``train_rollout``.
        splat: with ``momentum`` and ``warp_from="context"``, every pixel of the last true
            frame also moves on its own: it keeps its velocity (plus the head's change where it
            is) and is splatted forward (:func:`~vidgen.models.motion.splat`) to where its
            velocity has taken it; where nothing lands (what a moving thing uncovers, what
            enters at the borders) the frame shows the colours around the hole, of what is
            behind (:func:`~vidgen.models.motion.splat_over`). Backward warping asks each
            output pixel where it came from, so the front of a moving thing takes the velocity
            of the background ahead of it and the thing erodes over a rollout; splatted, it
            stays whole. Where several pixels land, what moves against the clip's median motion
            is in front (:data:`SPLAT_SHARPNESS`).
        motion_layers: with ``observed_motion``, replace the velocity seen by its fit of this
            many motion layers (:func:`~vidgen.models.motion_layers.motion_layers`; 0: off):
            the pixels of one thing share one motion and stay together over a long rollout.
        skip: refine the head's output with the previous frame's pixels at full resolution
            (:class:`SkipRefine`): edges of the flow and gate follow the image's edges.
        observed_motion: with ``momentum``, the first rollout step's flow also gets the
            velocity seen in the context (:func:`~vidgen.models.motion.observed_velocity`:
            block matching of the last true frame against the one ``MOTION_SPAN`` steps
            earlier) times a learned gate that starts at 0 (copy-last at initialisation):
            momentum carries it on, the head learns what to change. Motion read at the pixel,
            not from coarse features alone.
        loss: reconstruction loss (default: MSE, the paper's).
        optimizer: default Adam with lr 0.01 (paper).
        lr_scheduler: e.g. ``StepLR(step_size=1000, gamma=0.1)`` per epoch (paper).
        feature_cache: GiB of memory for the backbone features of true training frames,
            computed once per frame (:mod:`vidgen.models.feature_cache`; 0 = off). Needs data
            with ``frame_ids`` (every embedded and file source has them).
        channels_last: run the backbone in NHWC memory layout (default: on; same features
            to 1e-5; 1.0-1.5x faster training steps on a CPU, ``benchmarks/throughput.py``).
    """

    def __init__(
        self,
        image_size: int = 224,
        backbone_layer: str = "pool5",
        backbone_weights: str | None = None,
        core: CoreFactory = LSTMCore,
        head: HeadFactory = UpsampleDeconvHead,
        context_frames: int = 4,
        train_rollout: bool = False,
        output: Literal["frame", "residual", "warp"] = "frame",
        max_flow: float = 4.0,
        warp_from: Literal["previous", "context"] = "previous",
        composite: bool = False,
        momentum: bool = False,
        splat: bool = False,
        motion_layers: int = 0,
        skip: bool = False,
        observed_motion: bool = False,
        loss: VideoLoss | None = None,
        optimizer: OptimizerCallable = paper_adam,
        lr_scheduler: LRSchedulerCallable | None = None,
        feature_cache: float = 0.0,
        channels_last: bool = True,
    ) -> None:
        super().__init__(
            image_size,
            backbone_layer,
            backbone_weights,
            loss,
            optimizer,
            lr_scheduler,
            feature_cache,
            channels_last,
        )
        self.save_hyperparameters(ignore=["loss"])
        if context_frames < 1:
            raise ValueError(f"context_frames must be >= 1, got {context_frames}")
        if output not in OUTPUT_CHANNELS:
            raise ValueError(f"output must be one of {sorted(OUTPUT_CHANNELS)}, got {output!r}")
        if warp_from not in ("previous", "context"):
            raise ValueError(f"warp_from must be 'previous' or 'context', got {warp_from!r}")
        if (
            composite or momentum or observed_motion or warp_from == "context"
        ) and output != "warp":
            raise ValueError(
                "composite, momentum, observed_motion and warp_from='context' need output='warp'"
            )
        if momentum and not train_rollout:
            raise ValueError("momentum carries flows from step to step: set train_rollout=true")
        if observed_motion and not momentum:
            raise ValueError("observed_motion seeds the momentum: set momentum=true")
        if splat and not (momentum and warp_from == "context"):
            raise ValueError(
                "splat moves the last true frame's pixels: set momentum=true and "
                "warp_from='context'"
            )
        if motion_layers < 0 or (motion_layers and not observed_motion):
            raise ValueError(
                f"motion_layers must be >= 0 and needs observed_motion, got {motion_layers}"
            )
        channels = OUTPUT_CHANNELS[output] + (COMPOSITE_CHANNELS if composite else 0)
        self.core = core(self.feature_shape)
        self.motion_gate = nn.Parameter(torch.zeros(())) if observed_motion else None
        self.head = head(self.core.out_shape, image_size, out_channels=channels)
        self.refine = SkipRefine(channels) if skip else None
        if output != "frame":
            self.head.zero_output_()
        self.context_frames = context_frames
        self.train_rollout = train_rollout
        self.output = output
        self.max_flow = max_flow
        self.warp_from = warp_from
        self.composite = composite
        self.momentum = momentum
        self.splat = splat
        self.motion_layers = motion_layers

    def forward(self, context: Tensor, horizon: int, ids: Tensor | None = None) -> Tensor:
        """Roll out ``horizon`` frames after ``context`` ``(B, T, C, H, W)`` (any horizon >= 1).

        ``ids``: the context's frame ids, for the feature cache (see :meth:`encode`).
        """
        self.check_video(context)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        out, state = self.core(self.encode(context, ids))
        last = context[:, -1:]
        source = last if self.warp_from == "context" else None
        frame, motion = self.next_frames(out[:, -1:], last, observed=self.observed(context))
        frames = [frame]
        for _ in range(horizon - 1):
            out, state = self.core(self.encode(frame), state)
            frame, motion = self.next_frames(out, frame, motion, source)
            frames.append(frame)
        return torch.cat(frames, dim=1)

    def observed(self, frames: Tensor) -> Tensor | None:
        """The velocity seen at the last of ``frames`` ``(B, T, C, H, W)``, ``(B, 1, 2, H, W)``
        pixels a step, times the motion gate (``None`` without ``observed_motion``)."""
        if self.motion_gate is None:
            return None
        seen = observed_velocity(frames.detach(), MOTION_SPAN, self.max_flow)
        if self.motion_layers:
            seen = motion_layers(seen, texture(frames[:, -1].detach()), self.motion_layers)
        return GATE_SCALE * self.motion_gate * seen[:, None]

    def next_frames(
        self,
        out: Tensor,
        previous: Tensor,
        motion: Motion | None = None,
        source: Tensor | None = None,
        observed: Tensor | None = None,
    ) -> tuple[Tensor, Motion | None]:
        """Frames after ``previous`` ``(B, S, C, H, W)`` from the core's outputs at them, and
        the :class:`Motion` that made them (``output="warp"``; else ``None``).

        ``motion`` is the previous step's: with ``momentum`` its step flow, carried along
        itself, is the new step's starting point; with ``source`` (``warp_from="context"``)
        the step is composed with its total flow and ``source`` is warped. ``observed``
        (pixels, like the flows) is added to a step that carries no motion yet.
        """
        if self.output == "frame":
            return self.render(self.head, out), None
        logits = self.render(self.head.logits, out)
        if self.refine is not None:
            refined = self.refine(logits.flatten(0, 1), previous.flatten(0, 1))
            logits = refined.view_as(logits)
        if self.output == "residual":
            base = torch.logit(previous.clamp(RESIDUAL_EPS, 1 - RESIDUAL_EPS))
            change = torch.sigmoid(base + logits) - torch.sigmoid(base)  # exactly 0 at init
            return (previous + change).clamp(0.0, 1.0), None
        change = torch.tanh(logits[:, :, :2]) * self.max_flow
        step = change
        if self.momentum and motion is not None:
            carried = warp(motion.step, motion.step)
            step = (carried + step).clamp(-self.max_flow, self.max_flow)
        elif observed is not None:
            step = (observed + step).clamp(-self.max_flow, self.max_flow)
        if source is not None and motion is not None:
            total = compose_flows(motion.total, step)
            warped = warp(source, total)
        else:
            total, warped = step, warp(previous, step)
        moved = Motion(step, total)
        if self.splat:
            moved = self.move_pixels(moved, motion, change)
            origin = previous if source is None else source
            warped = splat_over(origin, moved.offset, moved.velocity, warped, SPLAT_SHARPNESS)
        if not self.composite:
            return warped, moved
        gate, pixels = clamp_unit(logits[:, :, 2:3]), clamp_unit(logits[:, :, 3:])
        return warped + gate * (pixels - warped), moved

    def move_pixels(self, moved: Motion, before: Motion | None, change: Tensor) -> Motion:
        """``moved`` with the velocity and offset of each pixel of the warp source after this
        step: at the first step (``before`` is ``None``) the step's flow; then the velocity
        ``before`` plus the head's ``change`` where the pixel is (momentum, per pixel)."""
        if before is None or before.velocity is None or before.offset is None:
            return moved._replace(velocity=moved.step, offset=moved.step)
        here = warp(change, -before.offset)  # the change at each pixel's place now
        velocity = (before.velocity + here).clamp(-self.max_flow, self.max_flow)
        return moved._replace(velocity=velocity, offset=before.offset + velocity)

    def teacher_forced(self, video: Tensor, ids: Tensor | None = None) -> Tensor:
        """Predictions of frames ``1..S-1``, each from the true frames before it (``ids``: the
        clip's frame ids, for the feature cache)."""
        self.check_video(video)
        inputs = video[:, :-1]
        out, _ = self.core(self.encode(inputs, None if ids is None else ids[:, :-1]))
        observed = None
        if self.motion_gate is not None:  # each step sees the motion up to its input frame
            steps = range(1, inputs.shape[1] + 1)
            observed = torch.cat([self.observed(inputs[:, :t]) for t in steps], dim=1)
        return self.next_frames(out, inputs, observed=observed)[0]

    def split(self, video: Tensor) -> tuple[Tensor, Tensor]:
        """A clip's context (at most ``context_frames``, leaving >= 1 frame) and its target."""
        context = min(self.context_frames, video.shape[1] - 1)
        return video[:, :context], video[:, context:]

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        video, ids = batch["video"], self.frame_ids(batch)
        if self.train_rollout:
            context, target = self.split(video)
            pred = self(
                context, target.shape[1], None if ids is None else ids[:, : context.shape[1]]
            )
        else:
            pred, target = self.teacher_forced(video, ids), video[:, 1:]
        terms = self.loss(pred, target, self.backbone)
        self.log_terms("train", terms, video.shape[0])
        return terms["loss"]

    def evaluate(self, stage: str, batch: dict) -> dict[str, Tensor]:
        """Roll out from the context, log the loss and update the per-horizon metrics."""
        context, target = self.split(batch["video"])
        pred = self(context, target.shape[1])
        self.log_terms(stage, self.loss(pred, target, self.backbone), target.shape[0])
        self.update_metrics(stage, pred, target, context)
        return {"context": context, "target": target, "pred": pred}

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("val", batch)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        return self.evaluate("test", batch)

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, Any]:
        context, target = self.split(batch["video"])
        return {
            "context": context,
            "target": target,
            "pred": self(context, target.shape[1]),
            "index": batch["index"],
        }
